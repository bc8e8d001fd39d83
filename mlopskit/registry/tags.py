"""The model registry: annotated Git tags in GTO's format, readable by ``gto`` itself.

``NAME@vX.Y.Z`` registers a version, ``NAME#STAGE#N`` assigns a stage (N: one counter
per artifact), ``NAME#STAGE!#N`` unassigns it, ``NAME@vX.Y.Z!`` deregisters a version,
``NAME@deprecated`` deprecates the artifact. Names are checked against GTO's rule and
``git check-ref-format``; git is always called with ``--`` before names; tags are
created atomically (git refuses an existing tag) and pushed without ``--force``.
The state (which version is in which stage) is GTO's, read by mlopskit/_gto.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _gto, at_revision, names, scm
from ..errors import MlopskitError, PreconditionError, RemoteError, UsageError
from ..journal import barrier
from ..project import Project

_SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


# --------------------------------------------------------------------------- names


def check_version(version: str) -> None:
    if not _SEMVER.match(version):
        raise UsageError(
            f"version {version!r} is not strict SemVer",
            "use vMAJOR.MINOR.PATCH, e.g. v1.2.0 (no leading zeros)",
        )


def _semver_key(version: str) -> tuple[int, int, int, int, str]:
    m = _SEMVER.match(version)
    assert m is not None
    pre = m.group(4)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre or "")


def bump(version: str | None, part: str) -> str:
    if version is None:
        return {"major": "v1.0.0", "minor": "v0.1.0", "patch": "v0.0.1"}[part]
    major, minor, patch, _, _ = _semver_key(version)
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Tag:
    name: str
    artifact: str
    kind: str  # register, deregister, assign, unassign, deprecate
    commit: str
    version: str | None = None
    stage: str | None = None
    counter: int = 0
    tagger: str = ""
    email: str = ""
    date: str = ""
    message: str = ""


_KINDS = {
    "registration": "register",
    "deregistration": "deregister",
    "assignment": "assign",
    "unassignment": "unassign",
    "deprecation": "deprecate",
}


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _tag_of(e: Any) -> Tag:
    m = _gto.TAG_RE.match(e.tag or "")
    return Tag(
        e.tag or "",
        e.artifact,
        _KINDS[e.kind],
        e.commit,
        e.version or None,
        e.stage,
        int(m["counter"]) if m and m["counter"] else 0,
        e.author,
        e.email,
        _iso(e.time),
        e.message.splitlines()[0] if e.message else "",
    )


@dataclass
class Artifact:
    """One artifact as GTO sees it (mlopskit/_gto.py): active registered versions, the
    version in each stage (a commit id when the stage points at an unregistered commit)."""

    name: str
    versions: dict[str, Tag] = field(default_factory=dict)  # version -> registration tag
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version
    stage_commits: dict[str, str] = field(default_factory=dict)  # stage -> commit
    history: list[Tag] = field(default_factory=list)  # oldest first
    deprecated: bool = False
    latest: str | None = None
    counter: int = 0  # the greatest #N among its tags

    def version_at(self, commit: str) -> str | None:
        for v, t in self.versions.items():
            if t.commit == commit:
                return v
        return None

    def ever_in(self, version: str, stage: str) -> bool:
        commit = self.versions[version].commit if version in self.versions else None
        return any(
            t.kind == "assign" and t.stage == stage and t.commit == commit for t in self.history
        )


def state(root: Path) -> dict[str, Artifact]:
    """The registry as ``gto show`` reports it (GTO's rules, ported in mlopskit/_gto.py)."""
    raw = _gto.read_tags(root)
    arts: dict[str, Artifact] = {}
    for name, g in _gto.build(root, raw).items():
        a = Artifact(name)
        for v in g.get_versions():
            reg = v.registrations[-1]
            a.versions[v.version] = _tag_of(reg)
        latest = g.latest()
        a.latest = latest.version if latest else None
        vstages = g.vstages()
        a.stages = {s: vs.version for s, vs in vstages.items()}
        a.stage_commits = {s: vs.commit for s, vs in vstages.items()}
        a.history = [_tag_of(e) for e in g.events()[::-1] if e.kind != _gto.COMMIT]
        a.deprecated = not g.is_active
        a.counter = _gto.max_counter(raw, name)
        arts[name] = a
    return arts


def next_counter(artifact: Artifact | None) -> int:
    return artifact.counter + 1 if artifact else 1


# --------------------------------------------------------------------------- declared artifacts


def declared(root: Path, rev: str | None) -> dict[str, dict[str, Any]]:
    """``artifacts:`` of every dvc.yaml at ``rev`` (path, type, desc, labels), resolved
    as DVC resolves them; one of ``sub/dvc.yaml`` is ``sub:name``, its path
    repository-relative, as GTO and ``dvc artifacts get`` name them."""
    from .. import dvcfiles

    with dvcfiles.Reader(root) as reader:
        return {k: dict(v) for k, v in reader.state(rev).artifacts.items()}


@dataclass(frozen=True)
class Located:
    """Where an artifact's bytes are recorded at a revision, and their md5."""

    md5: str
    source: str  # "dvc.lock", ".dvc" or "git"
    where: str  # the stage that produces it, the .dvc file, or "git"
    dir_md5: str | None = None  # the directory output it lies in, if any
    lockfile: str = "dvc.lock"  # the dvc.lock that records it ("sub/dvc.lock")

    @property
    def described(self) -> str:
        if self.source == "dvc.lock":
            return f"the outs of stage '{self.where}' in {self.lockfile}"
        if self.source == ".dvc":
            return self.where
        return "git"


def _dir_entry(root: Path, dir_md5: str, rel: str) -> str | None:
    """The md5 of ``rel`` inside a directory output, from its .dir manifest (local cache,
    else the default DVC remote)."""
    import json

    raw: str | None = None
    cached = at_revision.cache_path(root, dir_md5)
    if cached.is_file():
        raw = cached.read_text()
    else:
        from .. import _dvc

        try:
            with _dvc.open_repo(root) as repo, _dvc.translated():
                odb = repo.cloud.get_remote_odb(None, "model")
                if odb.exists(dir_md5):
                    with odb.fs.open(odb.oid_to_path(dir_md5), "r") as fh:
                        raw = fh.read()
        except (MlopskitError, OSError):
            return None
    if raw is None:
        return None
    for entry in json.loads(raw):
        if isinstance(entry, dict) and entry.get("relpath") == rel and entry.get("md5"):
            return str(entry["md5"])
    return None


def locate(root: Path, rev: str, path: str) -> Located | None:
    """The md5 of artifact ``path`` at ``rev``: the ``outs`` entry of the stage that
    produces it in its dvc.lock (any dvc.yaml's, nested ones too; never a downstream
    stage's ``deps``, which is stale when that stage was not re-run), else the ``.dvc``
    file that tracks it, or a directory output holding it (the file's md5 then comes
    from the directory's manifest), else its git blob."""
    import hashlib
    import posixpath

    from .. import dvcfiles

    path = posixpath.normpath(path)
    with dvcfiles.Reader(root) as reader:
        outs = reader.outputs(rev)
    recorded = outs.recorded()

    def located(out: str, md5: str, dir_md5: str | None = None) -> Located:
        producer = outs.producers[out]
        lockfile = outs.lockfiles.get(out)
        if lockfile is None:
            return Located(md5, ".dvc", producer, dir_md5)
        where = posixpath.dirname(lockfile)
        address = producer if not where else f"{where}/dvc.yaml:{producer}"
        return Located(md5, "dvc.lock", address, dir_md5, lockfile)

    if path in recorded:
        return located(path, recorded[path])
    parts = path.split("/")
    for i in range(len(parts) - 1, 0, -1):
        top = "/".join(parts[:i])
        md5 = recorded.get(top)
        if md5 is not None and md5.endswith(".dir"):
            inner = _dir_entry(root, md5, "/".join(parts[i:]))
            return located(top, inner, md5) if inner else None
    blob = scm.show(root, rev, path)
    if blob is not None:
        return Located(hashlib.md5(blob).hexdigest(), "git", "git")
    return None


def _artifact_md5(root: Path, rev: str, path: str) -> str | None:
    found = locate(root, rev, path)
    return found.md5 if found else None


# --------------------------------------------------------------------------- preconditions


def _stale_stages(root: Path, rev: str) -> list[str]:
    """Stages whose dvc.lock entry does not match the code, params and pipeline at ``rev``
    (missing data is fine: DVC's allow-missing view, as on a fresh clone)."""
    from ..pipeline.consistency import stale_stages

    return stale_stages(root, rev)


def _missing_in_remote(project: Project, md5: str, remote: str | None) -> list[str]:
    from .. import _dvc

    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        odb = repo.cloud.get_remote_odb(remote, "model register")
        try:
            wanted = [md5]
            if md5.endswith(".dir"):
                import json

                raw = None
                cached = at_revision.cache_path(project.root, md5)
                if cached.is_file():
                    raw = cached.read_text()
                elif odb.exists(md5):
                    with odb.fs.open(odb.oid_to_path(md5), "r") as fh:
                        raw = fh.read()
                if raw is None:
                    return [md5]
                wanted += [e["md5"] for e in json.loads(raw)]
            return [h for h in wanted if not odb.exists(h)]
        except OSError as exc:
            raise RemoteError(f"DVC remote unreachable: {_dvc.remote_error_text(exc)}") from exc


# --------------------------------------------------------------------------- tags


def _after_last(root: Path, tag: str) -> dict[str, str] | None:
    """GTO orders an artifact's events by their tags' creation time, in whole seconds, and
    ties go whichever way its sort leaves them: a promote, unpromote and promote again
    within one second read back as "no stage" (in ``gto show`` too). So an event tag is
    dated one second after the artifact's newest tag when the clock has not moved past it
    yet (at most a second ahead per event of a burst); otherwise git's own time."""
    import os
    import time

    m = _gto.TAG_RE.match(tag)
    if m is None or "GIT_COMMITTER_DATE" in os.environ:
        return None
    artifact = m["artifact"]
    res = scm.git(
        root,
        "for-each-ref",
        "--sort=-creatordate",
        "--count=1",
        "--format=%(creatordate:unix)",
        f"refs/tags/{artifact}@*",
        f"refs/tags/{artifact}#*",
        check=False,
    )
    newest = res.out.strip()
    if not newest.isdigit() or int(time.time()) > int(newest):
        return None
    return {"GIT_COMMITTER_DATE": f"@{int(newest) + 1} +0000"}


def _create_tag(root: Path, name: str, commit: str, message: str, *, sign: bool = False) -> None:
    import uuid

    # An id makes every registration event its own tag object: two people registering the
    # same version in the same second must not produce identical tags that both "win".
    body = f"{message}\n\nmlopskit-event: {uuid.uuid4()}"
    how = ["-c", "gpg.format=ssh", "tag", "-s"] if sign else ["tag", "-a"]
    res = scm.git(
        root, *how, "-m", body, "--", name, commit, check=False, env=_after_last(root, name)
    )
    if res.returncode != 0 and sign and "already exists" not in res.err:
        raise UsageError(
            f"git could not sign the tag '{name}': {res.err.strip().splitlines()[-1:]}",
            "set an SSH signing key: git config user.signingkey ~/.ssh/id_ed25519.pub",
        )
    if res.returncode != 0:
        if "already exists" in res.err:
            raise PreconditionError(
                f"tag '{name}' already exists", "someone registered or promoted it first"
            )
        raise MlopskitError(f"git tag failed: {res.err}")


def _push_tag(root: Path, name: str) -> None:
    """Push one tag (scm.push: token, the branch's remote, retries), never forced; a tag
    already on the remote means someone else won."""
    remote = scm.default_remote(root)
    rejected = scm.push(
        root,
        remote,
        f"refs/tags/{name}",
        kept=f"the tag '{name}' is kept locally",
        hint=f"retry with 'git push {remote} refs/tags/{name}'",
    )
    if rejected is not None:
        scm.git(root, "tag", "-d", "--", name, check=False)
        raise PreconditionError(
            f"tag '{name}' already exists on '{remote}'",
            "another registration won; fetch tags and choose another version",
        )


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Registered:
    artifact: str
    version: str
    tag: str
    commit: str
    pushed: bool


@barrier
def register(
    project: Project,
    name: str,
    *,
    version: str | None = None,
    bump_part: str | None = None,
    rev: str = "HEAD",
    push: bool = False,
    remote: str | None = None,
    check_remote: bool = True,
) -> Registered:
    root = project.root
    commit = at_revision.resolve_rev(root, rev)
    arts = state(root)
    decl = declared(root, commit)
    names.check_artifact_name(root, name, known=[*arts, *decl])
    if name not in decl:
        raise UsageError(
            f"dvc.yaml at {rev}: no artifact '{name}' under 'artifacts:'",
            "declare it (path, type, desc) in dvc.yaml and commit",
        )
    existing = arts.get(name)
    if version and bump_part:
        raise UsageError("give --version or --bump, not both")
    if version:
        check_version(version)
    else:
        latest = existing.latest if existing else None
        version = bump(latest, bump_part or "patch")
        if latest and not _gto.SemVer(latest) < _gto.SemVer(version):  # pragma: no cover
            raise PreconditionError(f"{version} does not come after {latest}")
    if existing and version in existing.versions:
        raise PreconditionError(
            f"{name}@{version} already exists",
            "versions are immutable; register a new one (--bump)",
        )
    if existing and existing.version_at(commit):
        raise PreconditionError(
            f"commit {commit[:8]} is already {name}@{existing.version_at(commit)}",
            "one version per commit",
        )
    path = str(decl[name].get("path", ""))
    stale = _stale_stages(root, commit)
    if stale:
        raise PreconditionError(
            f"dvc.lock at {rev} is out of date for stage(s) {', '.join(stale)}",
            "run 'mlopskit repro --commit' and register that commit",
        )
    found = locate(root, commit, path)
    if found is None:
        raise PreconditionError(
            f"{path}: not a stage output in dvc.lock, not tracked by a .dvc file and not "
            f"in git at {rev}",
            "produce it with the pipeline and commit dvc.lock",
        )
    md5 = found.md5
    if check_remote and found.source != "git":  # git-tracked: the git remote holds it
        missing = _missing_in_remote(project, md5, remote)
        if missing:
            raise PreconditionError(
                f"{path} ({md5}) is not in the DVC remote",
                "push it first: 'mlopskit data push' (or 'mlopskit repro --push')",
            )
    tag = f"{names.tag_name(name)}@{version}"
    _create_tag(root, tag, commit, f"Registering artifact {name} version {version}")
    if push:
        _push_tag(root, tag)
    return Registered(name, version, tag, commit, push)


@dataclass(frozen=True)
class Assigned:
    artifact: str
    version: str
    stage: str
    tag: str
    commit: str
    dispatched: str = ""  # the deploy workflow started by workflow_dispatch, if any


def _stages(project: Project) -> tuple[str, ...]:
    return project.config.registry.stages


@barrier
def promote(
    project: Project,
    name: str,
    version: str,
    stage: str,
    *,
    push: bool = False,
    sign: bool = False,
) -> Assigned:
    root = project.root
    stages = _stages(project)
    names.check_registry_stage(stage)
    check_version(version)
    arts = state(root)
    art = arts.get(name)
    if art is None or version not in art.versions:
        raise UsageError(f"{name}@{version} is not registered", "mlopskit model list")
    if art.deprecated:
        raise PreconditionError(f"artifact '{name}' is deprecated")
    if art.stages.get(stage) == version:
        raise PreconditionError(f"{name}@{version} is already in {stage}")
    if project.config.registry.enforce_order and stage in stages:
        # The order binds the configured stages only; other stages are free.
        i = stages.index(stage)
        if i > 0 and not art.ever_in(version, stages[i - 1]):
            raise PreconditionError(
                f"{name}@{version} has not passed {stages[i - 1]}; enforce_order forbids "
                f"going to {stage} directly",
                f"promote it to {stages[i - 1]} first",
            )
    commit = art.versions[version].commit
    tag = f"{names.tag_name(name)}#{stage}#{next_counter(art)}"
    _create_tag(
        root,
        tag,
        commit,
        f"Assigning stage {stage} to artifact {name} version {version}",
        sign=sign,
    )
    dispatched = ""
    if push:
        _push_tag(root, tag)
        dispatched = _dispatch_deploy(project, tag)
    return Assigned(name, version, stage, tag, commit, dispatched)


# GitHub's documented prefixes of personal access tokens (classic, fine-grained): a push
# made with one starts workflows, unlike one made with the job's GITHUB_TOKEN.
_PAT_PREFIXES = ("ghp_", "github_pat_")


def _push_started_deploy() -> bool:
    """True when the tag push authenticated (scm.auth_args: MLOPSKIT_GIT_TOKEN, else
    GITHUB_TOKEN) with a token whose pushes start workflows, so the tag push itself starts
    the deploy workflow: MLOPSKIT_GIT_TOKEN other than the job's GITHUB_TOKEN (a PAT or a
    GitHub App token), or a personal access token by its prefix."""
    import os

    job = os.environ.get("GITHUB_TOKEN", "")
    pushed_with = os.environ.get("MLOPSKIT_GIT_TOKEN") or job
    return pushed_with != job or pushed_with.startswith(_PAT_PREFIXES)


def _dispatch_deploy(project: Project, tag: str) -> str:
    """Inside GitHub Actions (GITHUB_ACTIONS=true, GITHUB_TOKEN set), start the project's
    deploy workflow with ``tag`` by workflow_dispatch on git.main_branch: a tag pushed
    with GITHUB_TOKEN starts no workflow. Not when the push used a token whose pushes do
    start workflows (``_push_started_deploy``): that would deploy twice. Returns the
    workflow's file name ("" when not in Actions, pushed with such a token, or the
    repository has no generated deploy workflow)."""
    import os

    from ..ci import workflows
    from ..report import github

    if os.environ.get("GITHUB_ACTIONS") != "true" or not os.environ.get("GITHUB_TOKEN"):
        return ""
    if _push_started_deploy():
        return ""
    where = workflows.layout(project)
    name = where.filename("deploy")
    if not (where.base / ".github" / "workflows" / name).is_file():
        return ""
    ref = project.config.git.main_branch
    try:
        github.dispatch_workflow(name, ref=ref, inputs={"tag": tag})
    except RemoteError as exc:
        raise RemoteError(
            f"{tag} is pushed, but {name} did not start: {exc.message}",
            f"{exc.hint}; or start it by hand: gh workflow run {name} --ref {ref} -f tag='{tag}'",
        ) from None
    return name


@dataclass(frozen=True)
class Unassigned:
    artifact: str
    version: str
    stage: str
    tag: str
    commit: str
    now: str | None  # the version GTO now reports in that stage (an earlier assignment)


@barrier
def unpromote(project: Project, name: str, stage: str, *, push: bool = False) -> Unassigned:
    """Unassign the version now in ``stage``; as in GTO, the stage then falls back to the
    version whose earlier assignment is still active (reported in ``now``)."""
    root = project.root
    art = state(root).get(name)
    if art is None or stage not in art.stages:
        raise UsageError(f"'{name}' has no version in stage {stage!r}")
    version = art.stages[stage]
    commit = art.stage_commits[stage]
    tag = f"{names.tag_name(name)}#{stage}!#{next_counter(art)}"
    _create_tag(
        root, tag, commit, f"Unassigning stage {stage} from artifact {name} version {version}"
    )
    if push:
        _push_tag(root, tag)
    after = state(root).get(name)
    return Unassigned(name, version, stage, tag, commit, after.stages.get(stage) if after else None)


@barrier
def deprecate(project: Project, name: str, *, push: bool = False) -> str:
    root = project.root
    art = state(root).get(name)
    if art is None:
        raise UsageError(f"no artifact '{name}' in the registry")
    if art.deprecated:
        raise PreconditionError(f"'{name}' is already deprecated")
    latest = art.latest
    commit = art.versions[latest].commit if latest else at_revision.resolve_rev(root, "HEAD")
    tag = f"{names.tag_name(name)}@deprecated"
    _create_tag(root, tag, commit, f"Deprecating artifact {name}")
    if push:
        _push_tag(root, tag)
    return tag


@dataclass(frozen=True)
class Listed:
    artifact: str
    latest: str | None
    stages: dict[str, str]
    versions: list[str]
    deprecated: bool


def list_models(project: Project) -> list[Listed]:
    arts = state(project.root)
    listed = sorted(set(arts) | set(declared(project.root, None)))
    out = []
    for n in listed:
        a = arts.get(n, Artifact(n))
        out.append(
            Listed(
                n,
                a.latest,
                dict(sorted(a.stages.items())),
                sorted(a.versions, key=_gto.SemVer),
                a.deprecated,
            )
        )
    return out


@dataclass(frozen=True)
class Spec:
    """A parsed ``NAME``, ``NAME@VERSION`` or ``NAME#STAGE`` (at most one of the two)."""

    name: str
    version: str | None = None
    stage: str | None = None


_SPEC = re.compile(r"^(?P<name>[^@#]+)(?:@(?P<version>[^@#]+)|#(?P<stage>[^@#]+))?$")


def parse_spec(spec: str) -> Spec:
    """The one parser of model specs (``model get``, ``serve``, lineage); exit 2 when
    ``spec`` is none of the three forms."""
    m = _SPEC.match(spec)
    if not m:
        raise UsageError(f"{spec!r}: expected NAME, NAME@vX.Y.Z or NAME#STAGE")
    return Spec(m["name"], m["version"], m["stage"])


def resolve(root: Path, spec: str) -> tuple[Artifact, str]:
    """``NAME``, ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#STAGE`` -> (artifact, version)."""
    m = parse_spec(spec)
    name = m.name
    art = state(root).get(name)
    if art is None or not art.versions:
        raise UsageError(f"no registered versions of '{name}'", "mlopskit model register")
    if m.stage:
        version = art.stages.get(m.stage)
        if version is None:
            raise UsageError(f"'{name}' has no version in stage {m.stage!r}")
        if version not in art.versions:
            raise UsageError(
                f"stage {m.stage!r} of '{name}' points at commit {version[:8]}, which has "
                "no registered version",
                f"register that commit ('mlopskit model register {name} --rev {version[:8]}')",
            )
    elif m.version and m.version != "latest":
        version = m.version
        check_version(version)
        if version not in art.versions:
            raise UsageError(f"{name}@{version} is not registered")
    else:
        version = art.latest or ""
    return art, version
