"""The pipeline: stages in plain ``dvc.yaml``, the checks every run starts with, repro, commit.

- ``stages``: ``stage add/list/remove`` and ``mlopskit validate`` (the pre-run checks:
  stage names, deps and outs inside the project, a DAG DVC accepts).
- ``run``: ``repro`` (DVC's repro after those checks, fetching only what is missing) and
  ``commit`` (the outputs, ``dvc.lock`` and one git commit, then push), under the project
  lock and the journal.
- ``consistency``: whether a commit's ``dvc.lock`` still matches the params, code and data
  it names.

The public API of ``mlopskit.pipeline`` (``repro``, ``commit_state``, ...) is ``run``'s and
stays importable from here, so ``from mlopskit import pipeline; pipeline.repro(...)`` works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fastpath import fresh_clone_up_to_date as fresh_clone_up_to_date
    from .run import CommitResult as CommitResult
    from .run import DirtyDep as DirtyDep
    from .run import ReproResult as ReproResult
    from .run import commit_candidates as commit_candidates
    from .run import commit_state as commit_state
    from .run import dirty_deps as dirty_deps
    from .run import refuse_dirty as refuse_dirty
    from .run import repro as repro

__all__ = [
    "CommitResult",
    "DirtyDep",
    "ReproResult",
    "commit_candidates",
    "commit_state",
    "dirty_deps",
    "fresh_clone_up_to_date",
    "refuse_dirty",
    "repro",
]


def __getattr__(name: str) -> Any:
    """The public API of ``run``, imported on first use (no import cost, no cycle)."""
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
