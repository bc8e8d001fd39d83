"""``mlopskit init``: a git + DVC repository with the generated project in it, committed."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import _dvc, journal, remote, scm, templating
from .errors import PreconditionError, UsageError
from .project import Project

DEFAULT_REMOTE = "storage"
LOCAL_REMOTE = "local"
# Runtime packages of the generated project, pinned to what is installed now.
PINNED = ("mlopskit", "dvc", "scikit-learn", "pandas", "skops", "pyyaml")


@dataclass(frozen=True)
class InitResult:
    root: Path
    written: list[str]
    commit: str | None
    remote_name: str
    remote_url: str
    remote_local_only: bool
    # The top of the project's git work tree: the root itself, or with --subdir the
    # enclosing repository the project is a sub-folder of.
    git_root: Path | None = None
    # The git repository DIR was inside when init made DIR a repository of its own.
    enclosing: Path | None = None
    warnings: tuple[str, ...] = ()
    ci_needs: tuple[str, ...] = ()  # what to set on GitHub for the generated workflows

    @property
    def subdir(self) -> bool:
        return self.git_root is not None and self.git_root != self.root


def _pins(kind: str = "none") -> list[tuple[str, str]]:
    """(requirement name, version) pinned to what is installed; DVC with its remote's extra."""
    pins = []
    for name in PINNED:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if name == "dvc" and kind in ("s3", "gs", "azure", "ssh"):
            name = f"dvc[{kind}]"
        pins.append((name, version))
    return pins


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "project"
    return slug[:100]


def ci_kind(remote_url: str | None) -> str:
    """The ci.remote.kind for a --remote URL (none: the per-user default CI cannot reach)."""
    if remote_url is None:
        return "none"
    scheme = remote_url.split("://", 1)[0] if "://" in remote_url else "local"
    return {"gcs": "gs", "azure": "azure", "s3": "s3", "gs": "gs", "ssh": "ssh"}.get(
        scheme, "local" if scheme == "local" else "none"
    )


def render(
    name: str,
    remote_url: str | None = None,
    template: str = templating.DEFAULT_PROJECT_TEMPLATE,
) -> dict[str, str]:
    from .config import MonitorConfig

    return templating.render_project(
        template,
        {
            "name": name,
            "pins": _pins(ci_kind(remote_url)),
            "ci_kind": ci_kind(remote_url),
            "monitor": MonitorConfig(),  # drift defaults: written from the config's own
        },
    )


def _merge_gitignore(existing: str, ours: str) -> str:
    have = set(existing.splitlines())
    extra = [line for line in ours.splitlines() if line and line not in have]
    if not extra:
        return existing
    sep = "" if existing.endswith("\n") or not existing else "\n"
    return existing + sep + "\n".join(["# added by mlopskit init", *extra]) + "\n"


def default_remote_dir(name: str) -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("mlopskit")) / "remotes" / f"{_slug(name)}-{uuid.uuid4().hex[:8]}"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _uncommitted(top: Path | None, root: Path, rels: list[str]) -> list[str]:
    """Of ``rels`` (existing files under ``root``), those whose content git could not
    give back: modified or staged, untracked, ignored, or in no repository at all."""
    if not rels:
        return []
    if top is None:
        return sorted(rels)
    found = scm.layout(root)
    prefix = found[1] if found else ""
    dirty = {e.path for e in scm.status(root, rels)}
    tracked = scm.tracked(root, rels)
    return sorted(r for r in rels if r not in tracked or prefix + r in dirty)


def _overwritten_workflows(root: Path) -> list[str]:
    """Workflow files ``ci generate --force`` would replace because they were edited."""
    from .ci import workflows

    names = [*workflows.WORKFLOWS, "monitor"]
    rels = [f".github/workflows/{n}.yml" for n in names]
    rels += [".github/dependabot.yml", ".github/actionlint.yaml"]
    out = []
    for rel in rels:
        f = root / rel
        text = f.read_text(encoding="utf-8", errors="replace") if f.is_file() else None
        if text is not None and workflows.edited_by_hand(text):
            out.append(rel)
    return out


def init(
    path: Path | str | None = None,
    *,
    remote_url: str | None = None,
    name: str | None = None,
    force: bool = False,
    template: str = templating.DEFAULT_PROJECT_TEMPLATE,
    subdir: bool = False,
) -> InitResult:
    """Create or adopt ``path`` as an mlopskit project and commit what it wrote.

    Inside another git repository ``path`` becomes a repository of its own (the outer
    one is not touched), unless ``subdir``: then it is a DVC project in a sub-folder of
    the enclosing repository (``dvc init --subdir``), committed there, with its
    workflows at that repository's top.
    """
    root = Path(path or ".").resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory")
    # Re-run on a project an interrupted operation left a journal in: refuse before
    # anything is written (init rewrites mlopskit.yaml, the remote and the workflows).
    journal.require_none(Project(root=root).tmp_dir)
    if remote_url is not None:
        remote.check_url(remote_url)
    project_name = _slug(name or root.name)
    files = render(project_name, remote_url, template)
    # Where git is: no repository, root is the top of one, or root is inside one.
    found = scm.layout(_nearest_existing(root))
    top = found[0].resolve() if found else None
    enclosing: Path | None = None
    if top is not None and top != root:
        if subdir or (root / ".dvc").is_dir():  # --subdir, or re-run on such a project
            subdir = True
        else:
            enclosing, top = top, None  # root gets a repository of its own
            theirs = scm.tracked(root, ["."]) if root.is_dir() else set()
            if theirs:
                raise PreconditionError(
                    f"{root} holds files of the git repository {enclosing} "
                    f"({', '.join(sorted(theirs)[:3])}{' ...' if len(theirs) > 3 else ''}); "
                    "making it a repository of its own would hide them from that one",
                    "pass --subdir to make the project a sub-folder of that repository",
                )
    elif subdir and top is None:
        raise UsageError(
            f"--subdir: {root} is not inside a git repository",
            "drop --subdir: the project then gets a repository of its own",
        )
    else:
        subdir = False
    # Everything is checked before anything is written: a conflict changes nothing.
    conflicts = []
    overwrite = []
    to_write: dict[str, str] = {}
    for rel, text in files.items():
        target = root / rel
        if target.exists():
            current = target.read_text(encoding="utf-8", errors="replace")
            if rel == ".gitignore":
                merged = _merge_gitignore(current, text)
                if merged != current:
                    to_write[rel] = merged
                continue
            if rel == "dvc.yaml" and template == "none":
                continue  # adopting a DVC project: its own pipeline stays
            if current == text:
                continue
            if not force:
                conflicts.append(rel)
                continue
            overwrite.append(rel)
        to_write[rel] = text
    if conflicts:
        raise PreconditionError(
            f"{root}: would overwrite {len(conflicts)} existing file(s): " + ", ".join(conflicts),
            "move them away or pass --force to overwrite",
        )
    if force and not subdir:
        overwrite += _overwritten_workflows(root)
    # --force overwrites only what git can give back (committed); for a repository of its
    # own inside another one, committed in that enclosing repository.
    unsaved = _uncommitted(top or enclosing, root, overwrite)
    if unsaved:
        raise PreconditionError(
            f"{root}: --force would overwrite {len(unsaved)} file(s) with uncommitted "
            "changes: " + ", ".join(unsaved),
            "commit them (or move them away) first; committed files can be overwritten",
        )
    if top is not None and scm.current_branch(top) is None and scm.has_commits(top):
        raise PreconditionError(f"{top}: HEAD is detached", "checkout a branch first")
    # What git already saw changed is the user's, not ours: only what init writes is
    # committed (with --subdir the enclosing repository may hold anything).
    if top is not None:
        before = {e.path for e in scm.status(top)}
    else:  # a new repository: what the user already had in root is theirs too
        github = root / ".github"
        before = {f.relative_to(root).as_posix() for f in github.rglob("*") if f.is_file()}
    root.mkdir(parents=True, exist_ok=True)
    if top is None:
        scm.init(root)
        top = root
    if not (root / ".dvc").is_dir():
        _dvc.init(root, subdir=subdir)
    for rel, text in to_write.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if rel.endswith(".sh"):
            target.chmod(0o755)

    project = Project(root=root)
    local_only = remote_url is None
    if remote_url is None:
        existing = remote.list_remotes(project)
        default = next((r for r in existing if r.default), None)
        if default is not None:
            rname, rurl, local_only = default.name, default.url, False
        else:
            remote_dir = default_remote_dir(project_name)
            remote_dir.mkdir(parents=True, exist_ok=True)
            remote.add(project, LOCAL_REMOTE, str(remote_dir), default=True, local=True)
            rname, rurl = LOCAL_REMOTE, str(remote_dir)
    else:
        remote.add(project, DEFAULT_REMOTE, remote_url, default=True, force=force)
        rname, rurl = DEFAULT_REMOTE, remote_url

    from .ci import workflows

    gen = workflows.generate(project, force=force)
    generated = gen.written
    gen_base: Path = getattr(gen, "base", root)  # where .github/ is: the git root in a monorepo
    ours = [*to_write, ".dvc/config", ".dvc/.gitignore", ".dvcignore"]
    planned = {project.git_path(rel) for rel in ours}
    for rel in generated:
        planned.add(Path(os.path.relpath(gen_base / rel, project.git_root)).as_posix())
    changed = [e.path for e in scm.status(project.git_root)]
    # Plus any workflow file generate wrote that git sees as new (wherever it writes them).
    gh = (".github/", project.git_path(".github/"))
    to_commit = [p for p in changed if p in planned or (p.startswith(gh) and p not in before)]
    commit = scm.commit_paths(
        project.git_root,
        to_commit,
        f"mlopskit init: {project_name}",
        max_file_mb=project.config.git.max_file_mb,
    )
    return InitResult(
        root=root,
        written=sorted([*to_write, *generated]),
        commit=commit,
        remote_name=rname,
        remote_url=rurl,
        remote_local_only=local_only,
        git_root=project.git_root,
        enclosing=enclosing,
        warnings=(
            (
                f"the workflows cannot install mlopskit yet: {gen.install_problem}; "
                + workflows.install_hint(),
            )
            if gen.install_problem
            else ()
        )
        + tuple(gen.warnings),
        ci_needs=tuple(gen.needs),
    )
