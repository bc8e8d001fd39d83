"""``mlopskit init``: a git + DVC repository with the generated project in it, committed."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import _dvc, remote, scm, templating
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
    warnings: tuple[str, ...] = ()


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


def render(name: str, remote_url: str | None = None) -> dict[str, str]:
    return templating.render_tree(
        "project",
        {"name": name, "pins": _pins(ci_kind(remote_url)), "ci_kind": ci_kind(remote_url)},
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


def init(
    path: Path | str | None = None,
    *,
    remote_url: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    """Create or adopt ``path`` as an mlopskit project and commit what it wrote."""
    root = Path(path or ".").resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory")
    if remote_url is not None:
        remote.check_url(remote_url)
    project_name = _slug(name or root.name)
    files = render(project_name, remote_url)
    # Everything is checked before anything is written: a conflict changes nothing.
    conflicts = []
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
            if current == text:
                continue
            if not force:
                conflicts.append(rel)
                continue
        to_write[rel] = text
    if conflicts:
        raise PreconditionError(
            f"{root}: would overwrite {len(conflicts)} existing file(s): " + ", ".join(conflicts),
            "move them away or pass --force to overwrite",
        )
    root.mkdir(parents=True, exist_ok=True)
    top = scm.toplevel(root)
    if top is None:
        scm.init(root)
        top = root
    if scm.current_branch(top) is None and scm.has_commits(top):
        raise PreconditionError(f"{top}: HEAD is detached", "checkout a branch first")
    if not (root / ".dvc").is_dir():
        _dvc.init(root, subdir=top.resolve() != root)
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

    from . import workflows

    gen = workflows.generate(project, force=force)
    generated = gen.written
    prefix = "" if top.resolve() == root else root.relative_to(top.resolve()).as_posix() + "/"
    # generated paths are relative to the git root already (.github/ lives there)
    to_commit = [prefix + rel for rel in to_write] + generated
    to_commit += [prefix + p for p in (".dvc/config", ".dvc/.gitignore", ".dvcignore")]
    changed = {e.path for e in scm.status(top)}
    to_commit = [p for p in to_commit if p in changed]
    commit = scm.commit_paths(
        top, to_commit, f"mlopskit init: {project_name}", max_file_mb=project.config.git.max_file_mb
    )
    return InitResult(
        root=root,
        written=sorted([*to_write, *generated]),
        commit=commit,
        remote_name=rname,
        remote_url=rurl,
        remote_local_only=local_only,
        warnings=(
            (
                f"the workflows cannot install mlopskit yet: {gen.install_problem}; "
                + workflows.install_hint(),
            )
            if gen.install_problem
            else ()
        ),
    )
