"""``mlopskit doctor``: check a project's health and name the fix for each problem.

Each check calls the library function that owns the state it looks at (``remote``,
``data``, ``stages``, ``journal``, ``workflows``) and turns the answer into one line:
ok, warn (worth knowing; things still work) or fail (something is broken or will be
for a teammate or CI). Nothing is changed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import _dvc, journal, remote, scm
from .errors import MlopskitError, UsageError
from .formatting import first
from .project import Project

OK, WARN, FAIL = "ok", "warn", "fail"
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    root: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def ok(self) -> bool:
        return not self.failed


def check(project: Project, *, timeout: float = 10.0) -> DoctorReport:
    """Every health check of ``project``; a remote gets ``timeout`` seconds to answer."""
    root = project.root
    checks: list[Check] = []
    top = scm.toplevel(root) if root.is_dir() else None
    if top is None:
        checks.append(
            Check(
                "git",
                FAIL,
                f"{root}: not a git repository",
                "run 'mlopskit init' here (or 'git init -b main')",
            )
        )
        return DoctorReport(root, checks)
    checks.append(_git(root))
    checks.append(_identity(root))
    if not (root / ".dvc").is_dir():
        checks.append(
            Check("dvc", FAIL, f"{root}: DVC is not initialised (no .dvc/)", "run 'mlopskit init'")
        )
        return DoctorReport(root, checks)
    checks.append(Check("dvc", OK, "DVC is initialised"))
    remote_check, reachable = _remote(project, timeout)
    checks.append(remote_check)
    checks.append(_ci_remote(project))
    checks.append(_journal(project))
    checks.append(_data_pushed(project) if reachable else _data_unchecked(remote_check))
    checks.append(_lock(project))
    checks.append(_workflows(project))
    checks.append(_version(project))
    checks.append(_orphans(project))
    return DoctorReport(root, checks)


def _safely(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except UsageError as exc:
        fix = exc.hint or "correct it; 'mlopskit validate' checks the project's files"
        return Check(name, FAIL, exc.message, fix)
    except MlopskitError as exc:
        return Check(name, FAIL, exc.message, exc.hint)


# --------------------------------------------------------------------------- git


def _git(root: Path) -> Check:
    branch = scm.current_branch(root)
    if not scm.has_commits(root):
        return Check("git", WARN, "git repository with no commit yet", "commit the project files")
    if branch is None:
        return Check(
            "git", WARN, "HEAD is detached", "checkout a branch ('git switch -c NAME') to commit"
        )
    return Check("git", OK, f"git repository on branch '{branch}'")


def _identity(root: Path) -> Check:
    fix = (
        'set it: git config --global user.name "Your Name" && '
        'git config --global user.email "you@example.com"'
    )
    res = scm.git(root, "var", "GIT_COMMITTER_IDENT", check=False)
    if res.returncode != 0:
        last = res.err.splitlines()[-1] if res.err else f"exit {res.returncode}"
        return Check(
            "git identity", FAIL, f"git has no identity, so no commit can be made ({last})", fix
        )
    who = res.out.strip().rsplit(" ", 2)[0]
    strict = scm.git(
        root, "-c", "user.useConfigOnly=true", "var", "GIT_COMMITTER_IDENT", check=False
    )
    if strict.returncode != 0:
        return Check(
            "git identity",
            WARN,
            f"git guesses the identity {who} from the host name; commits will carry it",
            fix,
        )
    return Check("git identity", OK, f"commits as {who}")


# --------------------------------------------------------------------------- remotes


def _remote(project: Project, timeout: float) -> tuple[Check, bool]:
    try:
        remotes = remote.list_remotes(project)
        from . import data

        name = data.default_remote(project)
    except MlopskitError as exc:
        return Check("remote", FAIL, exc.message, exc.hint), False
    add = "add one: 'mlopskit remote add NAME URL --default'"
    if name is None:
        return Check("remote", FAIL, "no default DVC remote is configured", add), False
    info = next((r for r in remotes if r.name == name), None)
    if info is None:
        return (
            Check(
                "remote",
                FAIL,
                f"the default remote '{name}' is not defined",
                f"add it ('mlopskit remote add {name} URL') "
                "or pick another ('dvc remote default NAME')",
            ),
            False,
        )
    found, detail = _probe(project, name, timeout)
    if not found:
        return (
            Check(
                "remote",
                FAIL,
                f"default remote '{name}' ({info.url}) is not reachable from here: {detail}",
                "check the URL, the network and the credentials ('mlopskit remote list'); "
                "a local folder must exist",
            ),
            False,
        )
    return Check("remote", OK, f"default remote '{name}' ({info.url}) is reachable{detail}"), True


def _probe(project: Project, name: str, timeout: float) -> tuple[bool, str]:
    """Does the remote's root exist? A local folder is looked at; anything else gets one
    ``exists`` call on DVC's file system in a thread that is given up on after ``timeout``."""
    try:
        with _dvc.open_repo(project.root) as repo, _dvc.translated():
            rem = repo.cloud.get_remote(name, "push")
            fs, path = rem.fs, str(rem.path)
    except MlopskitError as exc:
        return False, str(exc)
    except Exception as exc:  # a plugin that fails to configure itself
        return False, _dvc.remote_error_text(exc)
    if fs.protocol == "local":
        if Path(path).is_dir():
            return True, ""
        return False, f"the folder {path} does not exist"
    answer: dict[str, Any] = {}

    def run() -> None:
        try:
            if fs.exists(path):
                answer["exists"] = True
                return
            # A new remote's prefix has no objects until the first push: its bucket counts.
            for parent in fs.parents(path):
                if parent in ("", "/", fs.root_marker) or parent.endswith(":"):
                    break
                if fs.exists(parent):
                    answer["exists"] = answer["empty"] = True
                    return
            answer["exists"] = False
        except BaseException as exc:
            answer["error"] = exc

    worker = threading.Thread(target=run, name="mlopskit-doctor-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return False, f"no answer within {timeout:g} s"
    if "error" in answer:
        return False, _dvc.remote_error_text(answer["error"])
    if not answer.get("exists"):
        return False, f"{_dvc.redact(path)} does not exist on the remote"
    return True, " (nothing pushed to it yet)" if answer.get("empty") else ""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "local"


def _ci_remote(project: Project) -> Check:
    try:
        seen = remote.committed(project)
        ci = project.config.ci.remote
    except MlopskitError as exc:
        return Check("ci remote", FAIL, exc.message, exc.hint)
    if seen.secrets:
        where = "; ".join(f"'{n}': {', '.join(opts)}" for n, opts in seen.secrets.items())
        return Check(
            "ci remote",
            FAIL,
            f".dvc/config (committed) holds credentials ({where})",
            "move each with 'dvc remote modify --local NAME OPTION VALUE', delete it from "
            ".dvc/config and rotate it: it is in the git history",
        )
    kind_fix = "set ci.remote.kind in mlopskit.yaml to match and run 'mlopskit ci generate'"
    share = (
        "commit a remote CI can reach: 'mlopskit remote add NAME s3://... --default' "
        "(or gs://, azure://, ssh://), set ci.remote.kind in mlopskit.yaml, "
        "then 'mlopskit ci generate'"
    )
    if seen.default is None or seen.default not in seen.urls:
        what = (
            "no default remote is committed in .dvc/config"
            if seen.default is None
            else f"the committed default '{seen.default}' has no URL in .dvc/config"
        )
        stores = (
            "; ci.remote.kind is none, so CT trains but stores nothing"
            if not ci.stores
            else f"; ci.remote.kind is {ci.kind}, so CT will fail without it"
        )
        return Check("ci remote", WARN, f"CI cannot reach a remote: {what}{stores}", share)
    url = seen.urls[seen.default]
    scheme = _scheme(url)
    scheme = {"gcs": "gs", "azure": "azure"}.get(scheme, scheme)
    if scheme == "local" and ci.kind != "local":
        return Check(
            "ci remote",
            WARN,
            f"the committed default remote '{seen.default}' is a local path ({url}): "
            "GitHub-hosted runners cannot reach it",
            share + " (ci.remote.kind: local is for self-hosted runners that see that path)",
        )
    if scheme not in ("local", "s3", "gs", "azure", "ssh"):
        return Check(
            "ci remote",
            OK,
            f"CI uses the committed remote '{seen.default}' ({url}); the workflows set up no "
            f"credentials for {scheme}://, so it must need none",
        )
    if scheme != "local" and ci.kind != scheme:
        return Check(
            "ci remote",
            WARN,
            f"the committed default remote '{seen.default}' is {scheme}:// but ci.remote.kind "
            f"is {ci.kind}: the workflows set up no credentials for it",
            kind_fix,
        )
    if ci.auth == "oidc":
        creds = "OIDC (no stored secret)"
    elif ci.secrets:
        creds = f"the secrets {', '.join(ci.secrets)} in the GitHub environment '{ci.environment}'"
    else:
        creds = "no credentials"
    return Check(
        "ci remote",
        OK,
        f"CI uses the committed remote '{seen.default}' ({url}); the workflows expect {creds}",
    )


# --------------------------------------------------------------------------- state


def _journal(project: Project) -> Check:
    try:
        txn = journal.load(project.root, project.tmp_dir)
    except MlopskitError as exc:
        return Check("journal", FAIL, exc.message, exc.hint)
    if txn is None:
        return Check("journal", OK, "no interrupted operation")
    rel = journal.path_for(project.tmp_dir).relative_to(project.root).as_posix()
    return Check(
        "journal",
        FAIL,
        f"an interrupted '{txn.op}' of {', '.join(txn.targets)} left {rel}; "
        "commands that change the project refuse to run",
        "run 'mlopskit recover' to complete or undo it",
    )


def _data_unchecked(remote_check: Check) -> Check:
    return Check(
        "data pushed",
        WARN,
        "not checked: the default remote is not usable",
        remote_check.fix,
    )


def _data_pushed(project: Project) -> Check:
    from . import data

    def run() -> Check:
        st = data.status(project, cloud=True)
        missing = [p for p, states in st.entries.items() if "not in remote" in states]
        if missing:
            shown = first(missing, 10)
            return Check(
                "data pushed",
                FAIL,
                f"{len(missing)} DVC-tracked path(s) are not in remote '{st.remote}': {shown}",
                "run 'mlopskit data push'",
            )
        return Check("data pushed", OK, f"every DVC-tracked output is in remote '{st.remote}'")

    return _safely("data pushed", run)


def _lock(project: Project) -> Check:
    if not (project.root / "dvc.yaml").is_file():
        return Check("dvc.lock", OK, "no pipeline (no dvc.yaml)")
    from .pipeline import stages

    def run() -> Check:
        changed = [s for s in stages.stage_list(project) if s.changed]
        if not changed:
            return Check("dvc.lock", OK, "dvc.lock matches the workspace")
        what = "; ".join(
            f"{s.name} ({', '.join(s.changes[:3])}{' ...' if len(s.changes) > 3 else ''})"
            for s in changed
        )
        return Check(
            "dvc.lock",
            WARN,
            f"dvc.lock does not match the workspace: {what}",
            "run 'mlopskit repro --push --commit' (or undo the change)",
        )

    return _safely("dvc.lock", run)


def _orphans(project: Project) -> Check:
    """Half-written ``.<token>.tmp`` copies an interrupted transfer left in the cache or a
    local remote (treeverse/dvc-objects#379)."""
    from . import data

    dirs: list[Path] = []
    try:
        with _dvc.open_repo(project.root) as repo:
            cache = data._cache_dir(repo)
            local = data._local_remote(repo, None)
    except MlopskitError:
        cache = local = None
    dirs = [d for d in (cache, local) if d is not None and d.is_dir()]
    found = [p for d in dirs for p in d.rglob("*.tmp") if data._DVC_TMP.fullmatch(p.name)]
    if not found:
        return Check("temporary files", OK, "no half-written copies in the cache or remote")
    shown = first(found, 5)
    return Check(
        "temporary files",
        WARN,
        f"{len(found)} half-written cop{'y' if len(found) == 1 else 'ies'} left by an "
        f"interrupted transfer: {shown}",
        "delete them when no mlopskit or dvc command is running ('rm' each path)",
    )


# --------------------------------------------------------------------------- workflows


def _workflows(project: Project) -> Check:
    from .ci import workflows

    def run() -> Check:
        rendered = workflows.render(project)
        # Generated paths are relative to where .github/ lives: the git root for a project
        # in a sub-folder when workflows has a layout, else the project root.
        layout = getattr(workflows, "layout", None)
        base = Path(layout(project).base) if callable(layout) else project.root
        missing: list[str] = []
        stale: list[str] = []
        edited: list[str] = []
        for rel, text in rendered.items():
            f = base / rel
            if not f.is_file():
                missing.append(rel)
                continue
            current = f.read_text(encoding="utf-8", errors="replace")
            if current == text:
                continue
            (edited if workflows.edited_by_hand(current) else stale).append(rel)
        present = [r for r in rendered if r not in missing]
        if not present:
            return Check("workflows", WARN, "no generated workflows", "run 'mlopskit ci generate'")
        res = workflows.check(project)
        if res.findings:
            shown = "; ".join(
                f"{f.file}: [{f.tool}] {f.message.splitlines()[0]}" for f in res.findings[:5]
            )
            return Check(
                "workflows",
                FAIL,
                f"'ci check' has {len(res.findings)} finding(s): {shown}",
                "run 'mlopskit ci check' for the details; move hand edits into mlopskit.yaml "
                "and run 'mlopskit ci generate --force'",
            )
        if edited:
            return Check(
                "workflows",
                WARN,
                f"edited by hand: {', '.join(edited)}",
                "move the change into mlopskit.yaml, then 'mlopskit ci generate --force'",
            )
        if stale or missing:
            return Check(
                "workflows",
                WARN,
                "out of date with mlopskit.yaml and this mlopskit: "
                + ", ".join(stale + [f"{m} (missing)" for m in missing]),
                "run 'mlopskit ci generate'",
            )
        tools = ", ".join(res.ran) + (
            f" ({', '.join(res.missing)} not installed)" if res.missing else ""
        )
        note = (
            "; note: GitHub turns off retrain.yml's schedule in a public repository after 60 "
            "days without activity (workflow_dispatch still starts it)"
            if any(Path(r).name.startswith("retrain") for r in present)
            else ""
        )
        return Check("workflows", OK, f"up to date; 'ci check' ({tools}) finds nothing{note}")

    return _safely("workflows", run)


def _version(project: Project) -> Check:
    def run() -> Check:
        return _compare_versions(project)

    return _safely("mlopskit version", run)


def installed() -> tuple[str | None, dict[str, Any] | None]:
    """The installed mlopskit's version and its PEP 610 ``direct_url.json``, if any."""
    try:
        dist = metadata.distribution("mlopskit")
    except metadata.PackageNotFoundError:
        return None, None
    text = dist.read_text("direct_url.json")
    try:
        direct = json.loads(text) if text else None
    except ValueError:
        direct = None
    return dist.version, direct if isinstance(direct, dict) else None


def workflow_requirement(project: Project) -> tuple[str | None, str]:
    """The mlopskit requirement the generated workflows install, and where it is read.

    ``ci.install`` when set; else the ``mlopskit`` line of requirements.txt (which the
    jobs install); else the explicit install step of the generated ci.yml.
    """
    configured = str(getattr(project.config.ci, "install", "") or "").strip()
    if configured:
        return configured, "ci.install in mlopskit.yaml"
    req = project.root / "requirements.txt"
    if req.is_file():
        for line in req.read_text(encoding="utf-8", errors="replace").splitlines():
            text = line.split(" #", 1)[0].strip()
            if not text or text.startswith(("#", "-")):
                continue
            m = _REQ_NAME.match(text)
            if m and _norm(m.group(1)) == "mlopskit":
                return text, "requirements.txt"
    for f in _ci_workflows(project):
        text = f.read_text(encoding="utf-8", errors="replace")
        step = _INSTALL_STEP.search(text)
        if step:
            return step.group("req"), f".github/workflows/{f.name}"
        if _NO_SOURCE in text:
            return None, f".github/workflows/{f.name}, generated without a source of mlopskit"
    return None, "requirements.txt"


_INSTALL_STEP = re.compile(
    r"- name: Install mlopskit.*\n\s+run: python -m pip install "
    r'(?:--index-url "[^"]*" )?"(?P<req>[^"]+)"'
)
_NO_SOURCE = "Install mlopskit (no source known"


def _ci_workflows(project: Project) -> list[Path]:
    """The generated ci.yml (ci-NAME.yml in a monorepo), beside the project or at the git root."""
    bases = [project.root]
    top = scm.toplevel(project.root)
    if top is not None and top.resolve() != project.root:
        bases.append(top.resolve())
    found: list[Path] = []
    for base in bases:
        d = base / ".github" / "workflows"
        if d.is_dir():
            found += sorted(d.glob("ci.yml")) + sorted(d.glob("ci-*.yml"))
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _describe_install(version: str, direct: dict[str, Any] | None) -> str:
    if direct is None:
        return f"mlopskit {version}"
    url = str(direct.get("url", ""))
    if "dir_info" in direct:
        editable = " (editable)" if direct["dir_info"].get("editable") else ""
        return f"mlopskit {version} from {url}{editable}"
    if "vcs_info" in direct:
        commit = str(direct["vcs_info"].get("commit_id", ""))[:12]
        return f"mlopskit {version} from {url}@{commit}"
    return f"mlopskit {version} from {url}"


def _install_hint(source: str, version: str | None) -> str:
    from .ci import workflows

    hint = getattr(workflows, "install_hint", None)
    if callable(hint):
        return str(hint())
    if source == "requirements.txt" and version:
        return f"add 'mlopskit=={version}' to requirements.txt"
    return "set ci.install in mlopskit.yaml, then run 'mlopskit ci generate'"


def _same_url(wanted: str, direct: dict[str, Any]) -> bool:
    """Does a URL requirement (``git+https://...@REF`` or an archive URL) name what
    ``direct_url.json`` says was installed?"""
    have = str(direct.get("url", "")).removeprefix("git+").rstrip("/")
    url, _, fragment = wanted.partition("#")
    if url.startswith("git+") or "vcs_info" in direct:
        url = url.removeprefix("git+")
        ref = ""
        if "@" in url.rsplit("/", 1)[-1]:
            url, _, ref = url.rpartition("@")
        vcs = direct.get("vcs_info") or {}
        refs = {str(vcs.get("commit_id", "")), str(vcs.get("requested_revision", ""))}
        return url.rstrip("/") == have and (not ref or ref in refs)
    archive = direct.get("archive_info") or {}
    digest = str((archive.get("hashes") or {}).get("sha256") or "")
    if not digest and str(archive.get("hash", "")).startswith("sha256="):
        digest = str(archive["hash"]).split("=", 1)[1]
    wanted_digest = fragment.split("sha256=", 1)[1] if "sha256=" in fragment else ""
    return url.rstrip("/") == have and (not wanted_digest or wanted_digest == digest)


def _compare_versions(project: Project) -> Check:
    name = "mlopskit version"
    if not (project.root / ".github" / "workflows").is_dir() and not _ci_workflows(project):
        return Check(name, OK, "no workflows, nothing to compare")
    version, direct = installed()
    requirement, source = workflow_requirement(project)
    if requirement is None:
        return Check(
            name,
            FAIL,
            f"the workflows install no mlopskit ({source}), so CI cannot run it",
            _install_hint(source, version),
        )
    if version is None:
        return Check(
            name,
            OK,
            f"unknown: the workflows install '{requirement}' ({source}); "
            "this mlopskit has no package metadata",
        )
    here = _describe_install(version, direct)
    local = direct is not None and "dir_info" in direct
    align = (
        f"make them the same: put 'mlopskit=={version}' in requirements.txt, "
        "or install that one here"
        if source == "requirements.txt"
        else f"make them the same: install '{requirement}' here, or point ci.install at this "
        "one (then 'mlopskit ci generate')"
    )
    url = requirement.split("@", 1)[1].strip() if " @ " in requirement else requirement
    if "://" in url:
        if direct is None or local:
            return Check(
                name,
                OK,
                f"unknown: the workflows install {requirement} ({source}); {here} here, "
                "which cannot be matched to it",
            )
        if _same_url(url, direct):
            return Check(name, OK, f"the workflows install {requirement} ({source}), as here")
        return Check(
            name, WARN, f"the workflows install {requirement} ({source}), but {here} here", align
        )
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with DVC
        return Check(name, OK, f"unknown: cannot parse '{requirement}' ({source}); {here} here")
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return Check(name, OK, f"unknown: cannot parse '{requirement}' ({source}); {here} here")
    if req.specifier.contains(version, prereleases=True):
        note = (
            "; this one is a local checkout, which may hold changes that version lacks"
            if local
            else ""
        )
        return Check(
            name, OK, f"the workflows install '{requirement}' ({source}); {here} here{note}"
        )
    return Check(
        name,
        WARN,
        f"the workflows install '{requirement}' ({source}), but {here} is installed here",
        align,
    )
