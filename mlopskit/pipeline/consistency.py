"""Does a commit's dvc.lock still tell the truth about the params, code and data it names?

DVC's own status is the oracle (``_dvc.stale_stages``), read in the work tree when it is
the revision asked about, else in a temporary worktree: the user's files are never
touched. After a fetch, a cheaper sufficient question decides whether rebasing onto the
moved branch would make the lock stale: did upstream change any pipeline input?
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from .. import _dvc, scm
from ..project import Project


def stale_stages(root: Path, rev: str) -> list[str]:
    """Stages whose dvc.lock entry does not match the code, params and pipeline at ``rev``
    (missing data is fine: DVC's allow-missing view, as on a fresh clone)."""
    head = scm.head(root)
    if rev in ("HEAD", head) and not scm.dirty_tracked(root):
        with _dvc.open_repo(root) as repo:
            return _dvc.stale_stages(repo)
    with tempfile.TemporaryDirectory(prefix="mlopskit-rev-") as tmp:
        wt = Path(tmp) / "wt"
        scm.git(root, "worktree", "add", "--quiet", "--detach", str(wt), rev)
        try:
            # The project may be a sub-folder of its repository (init --subdir).
            here = wt / (scm.layout(root) or (root, ""))[1]
            local = root / ".dvc" / "config.local"
            if local.is_file():
                (here / ".dvc" / "config.local").write_text(local.read_text())
            # The project's DVC cache, wherever DVC's configuration puts it (`dvc cache
            # dir --local` elsewhere too), set through DVC's config (one [cache] section).
            _dvc.set_local_cache_dir(here / ".dvc", _dvc.cache_dir(root))
            with _dvc.open_repo(here) as repo:
                return _dvc.stale_stages(repo)
        finally:
            scm.git(root, "worktree", "remove", "--force", str(wt), check=False)


def upstream_pipeline_changes(project: Project, ours: str, theirs: str) -> list[str]:
    """The pipeline inputs (see ``_dvc.pipeline_inputs``; any dvc.yaml, dvc.lock or
    .dvcignore of the project too) that ``theirs`` changed since it forked from ``ours``,
    as git prints them: what a rebase of ``ours`` onto ``theirs`` would bring under a
    dvc.lock that was computed without them."""
    base = scm.merge_base(project.root, ours, theirs)
    changed = scm.changed_paths(project.root, base, theirs) if base else None
    if changed is None:
        return ["(no common history)"]
    if not changed:
        return []
    top = project.git_root
    with _dvc.open_repo(project.root) as repo:
        inputs = _dvc.pipeline_inputs(repo)
    watched: list[str] = []
    for path in inputs:
        try:
            watched.append(Path(path).relative_to(top).as_posix())
        except ValueError:
            continue
    return [
        p
        for p in changed
        if any(p == w or p.startswith(w.rstrip("/") + "/") for w in watched)
        or (
            PurePosixPath(p).name in ("dvc.yaml", "dvc.lock", ".dvcignore")
            and project.project_path(p) is not None
        )
    ]
