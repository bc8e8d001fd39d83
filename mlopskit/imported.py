"""Imported data sources (``dvc import-url`` / ``dvc import``): which changed upstream.

DVC records the source's checksum or ETag in the import's ``.dvc`` file; asking the
source for its current one costs a metadata request, not a download.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _dvc
from .journal import barrier
from .project import Project


@dataclass(frozen=True)
class SourceStatus:
    path: str  # the .dvc file of the import
    source: str
    changed: bool
    detail: str = ""


def check_updates(project: Project) -> list[SourceStatus]:
    """Every import in the project, and whether its source changed since it was imported."""
    out: list[SourceStatus] = []
    with _dvc.open_repo(project.root) as repo, _dvc.translated(), _dvc.repo_lock(repo):
        for stage in repo.index.stages:
            if not (stage.is_import or stage.is_repo_import):
                continue
            dep = stage.deps[0]
            source = str(getattr(dep, "def_path", dep))
            try:
                status = dep.workspace_status() if not stage.is_repo_import else dep.status()
            except Exception as exc:  # noqa: BLE001 - one unreachable source must not hide the rest
                out.append(
                    SourceStatus(
                        stage.relpath,
                        source,
                        False,
                        f"could not check: {_dvc.remote_error_text(exc)[:200]}",
                    )
                )
                continue
            changed = bool(status)
            detail = ", ".join(f"{v}" for v in status.values()) if changed else ""
            out.append(SourceStatus(stage.relpath, source, changed, detail))
    return sorted(out, key=lambda s: s.path)


@barrier
def update(project: Project, targets: list[str] | None = None) -> list[str]:
    """Re-import the sources that changed upstream (``dvc update``; imports are frozen, so
    ``repro`` alone never refreshes them). Returns the .dvc files that changed; committing
    them is the caller's step (``mlopskit commit`` in CT)."""
    from . import paths

    wanted = {paths.inside(project.root, t, cwd=project.cwd) for t in targets or []}
    changed = [
        s.path
        for s in check_updates(project)
        if s.changed and (not wanted or s.path in wanted or s.path.removesuffix(".dvc") in wanted)
    ]
    if changed:
        with _dvc.open_repo(project.root) as repo, _dvc.translated():
            repo.update([str(project.root / p) for p in changed])
    return changed
