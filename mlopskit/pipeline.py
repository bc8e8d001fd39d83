"""Reproducing the pipeline (DVC's repro, with checks first and lazy fetching) and
committing its state (push data before refs; rebase and retry on a moved branch).
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _dvc, journal, lock, scm
from .errors import PreconditionError, UsageError
from .project import Project

if TYPE_CHECKING:
    from dvc.repo import Repo

from .stages import _load_stages, _stages_in_scope, check_params, check_paths


@dataclass(frozen=True)
class ReproResult:
    ran: list[str]
    dry: bool = False
    pushed: int | None = None
    commit: str | None = None
    committed: list[str] = field(default_factory=list)
    git_pushed: str | None = None
    remote: str | None = None


def _git_tracked_outputs(stages: Sequence[Any], root: Path) -> list[str]:
    out = []
    for s in stages:
        for o in s.outs:
            if not o.use_cache:
                out.append(Path(o.fs_path).relative_to(root).as_posix())
    return out


def _dep_paths(stages: Sequence[Any], root: Path) -> set[str]:
    from dvc.dependency.param import ParamsDependency

    found = set()
    for s in stages:
        for d in s.deps:
            if isinstance(d, ParamsDependency):
                continue
            try:
                found.add(Path(d.fs_path).relative_to(root).as_posix())
            except ValueError:
                continue
    return found


def commit_candidates(root: Path, stages: Sequence[Any]) -> list[str]:
    from . import dvcfiles

    with dvcfiles.Reader(root) as reader:
        state = reader.state(None)
    locks = [posixpath.join(posixpath.dirname(f), "dvc.lock") for f in state.dvcfiles]
    files = ["dvc.lock", "dvc.yaml", *state.dvcfiles, *locks, *state.params]
    files += _git_tracked_outputs(stages, root)
    for entry in scm.status(root):
        if entry.path.endswith(".gitignore") or entry.path.endswith(".dvc"):
            files.append(entry.path)
    return list(dict.fromkeys(files))


def _dirty_code(root: Path, stages: Sequence[Any], ours: set[str]) -> list[str]:
    deps = _dep_paths(stages, root)
    dvc_outs = {Path(o.fs_path).relative_to(root).as_posix() for s in stages for o in s.outs}
    dirty = []
    for entry in scm.status(root):
        p = entry.path
        if p in ours:
            continue
        if (
            entry.code != "??"
            or any(p == d or p.startswith(d.rstrip("/") + "/") for d in deps)
            and not any(p == o or p.startswith(o + "/") for o in dvc_outs)
        ):
            dirty.append(p)
    return dirty


@contextmanager
def _interpreter_on_path() -> Iterator[None]:
    """Stages that call ``python`` get the interpreter mlopskit runs in (and so its
    scikit-learn and pandas) even when its virtualenv is not activated."""
    bindir = str(Path(sys.executable).parent)
    old = os.environ.get("PATH", "")
    if bindir in old.split(os.pathsep):
        yield
        return
    os.environ["PATH"] = bindir + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def repro(
    project: Project,
    targets: Sequence[str] = (),
    *,
    pull: bool = False,
    push: bool = False,
    commit: bool = False,
    message: str | None = None,
    force: bool = False,
    dry: bool = False,
    allow_dirty: bool = False,
    remote: str | None = None,
    wait: bool = False,
) -> ReproResult:
    """Check params, run DVC's repro, then push data (before) and commit (after)."""
    root = project.root
    journal.require_none(project.tmp_dir)
    if commit and not dry:
        project.require_branch("repro --commit")
    if not (root / "dvc.yaml").exists():
        raise UsageError("dvc.yaml: not found", "add a stage with 'mlopskit stage add'")
    if pull and not (force or dry or targets) and fresh_clone_up_to_date(root):
        # What DVC's --pull --allow-missing would conclude, without importing DVC; with no
        # DVC-managed output in the workspace there is nothing to push either.
        return ReproResult(ran=[])
    from dvc.repo import lock_repo

    from . import data

    with lock.held(project.tmp_dir, wait=wait), _dvc.open_repo(root) as repo:
        # Holding DVC's repo lock across the checks and the run keeps DVC from
        # rebuilding its index in reproduce(), and no other DVC process can get between.
        with _dvc.translated(), lock_repo(repo):
            stages = _load_stages(root, repo, targets)
            check_paths(root, stages)
            check_params(root, stages)
            if commit and not dry and not allow_dirty:
                dirty = _dirty_code(root, stages, set(commit_candidates(root, stages)))
                if dirty:
                    raise PreconditionError(
                        "uncommitted changes the pipeline depends on: "
                        + ", ".join(dirty[:8])
                        + (" ..." if len(dirty) > 8 else ""),
                        "commit them first so the model traces to a commit, or pass --allow-dirty",
                    )
            name = None
            if push and not dry:
                repo.cloud.get_remote(remote, "push")  # no remote: exit 2 before training
                name = remote or repo.config["core"].get("remote")
            with _interpreter_on_path():
                ran = repo.reproduce(
                    list(targets) or None,
                    force=force,
                    dry=dry,
                    allow_missing=pull,
                    repro_fn=_puller(repo, remote) if pull and not dry else _plain,
                )
        names = [getattr(s, "addressing", str(s)) for s in ran or []]
        if dry:
            return ReproResult(ran=names, dry=True)
    pushed = None
    if push:
        pushed = data.push(project, remote=remote, run_cache=True, wait=wait).count
    state = CommitResult(None, [], None)
    if commit:
        msg = message or (f"repro: {', '.join(names)}" if names else "repro: pipeline state")
        state = commit_state(
            project, targets, message=msg, push=push, note_dirty=allow_dirty, wait=wait
        )
    return ReproResult(
        ran=names,
        pushed=pushed,
        commit=state.commit,
        committed=state.committed,
        git_pushed=state.pushed_to,
        remote=name,
    )


def _plain(stage: Any, **kwargs: Any) -> Any:
    from dvc.repo.reproduce import _reproduce_stage

    return _reproduce_stage(stage, **kwargs)


def _puller(repo: Repo, remote: str | None) -> Any:
    """DVC's per-stage step, fetching lazily: only for a stage that will run, its missing
    inputs (DVC's --pull --allow-missing alone skips the unchanged stage that produces
    them, and the run then fails), and the run-cache once, before the first such stage.
    An unchanged pipeline therefore moves no data at all."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo.reproduce import _reproduce_stage
    from dvc.stage.cache import RunCacheNotSupported

    pulled_run_cache = False

    def step(stage: Any, **kwargs: Any) -> Any:
        nonlocal pulled_run_cache
        if not (kwargs.get("force") or stage.changed(True, kwargs.get("upstream"))):
            return _reproduce_stage(stage, **kwargs)
        if not pulled_run_cache:
            pulled_run_cache = True
            try:
                repo.stage_cache.pull(remote)
            except RunCacheNotSupported:
                pass
        missing = sorted(
            {
                os.path.relpath(d.fs_path, repo.root_dir)
                for d in stage.deps
                if not isinstance(d, ParamsDependency)
                and getattr(d.fs, "protocol", "local") in ("local", "file")
                and not Path(d.fs_path).exists()
            }
        )
        if missing:
            repo.pull(missing, remote=remote)
        return _reproduce_stage(stage, **{**kwargs, "pull": True})

    return step


def fresh_clone_up_to_date(root: Path) -> bool:
    """True when nothing can need reproducing on a fresh clone (a CI runner): the tree is
    clean, no DVC-managed data is in the workspace (DVC's --allow-missing then judges by
    dvc.lock alone), and git shows no change to the pipeline, params, pointers or any
    stage input since the commit that last wrote dvc.lock. Anything else: ask DVC."""
    if scm.status(root):
        return False
    from . import dvcfiles

    with dvcfiles.Reader(root) as reader:
        state = reader.state(None)  # every dvc.yaml, foreach/matrix resolved by DVC
        recorded = reader.outputs(None).producers
    if not state.dvcfiles or any(s.always_changed for s in state.stages):
        return False  # DVC runs an always_changed stage on every repro
    for dvcfile in state.dvcfiles:
        # Each dvc.yaml against the commit that last wrote its own dvc.lock.
        where = posixpath.dirname(dvcfile)
        lockfile = posixpath.join(where, "dvc.lock")
        last = scm.git(root, "log", "-1", "--format=%H", "--", lockfile).out.strip()
        if not last:
            return False
        own = [s for s in state.stages if s.dvcfile == dvcfile]
        watched = {d for s in own for d in s.deps} | {f for s in own for f, _ in s.params}
        watched |= {dvcfile, lockfile, posixpath.join(where, "params.yaml")}
        watched |= set(state.tracked_vars)
        diff = scm.git(root, "diff", "--name-only", "-z", last, "HEAD").out.split("\0")
        for path in filter(None, diff):
            if (
                path.endswith(".dvc")
                or path in watched
                or any(path.startswith(w.rstrip("/") + "/") for w in watched)
            ):
                return False
    managed = {o.path for s in state.stages for o in s.outs} | set(recorded)
    for pointer in scm.git(root, "ls-files", "-z", "--", "*.dvc").out.split("\0"):
        if pointer:
            managed.add(pointer[: -len(".dvc")])
    tracked = set(scm.git(root, "ls-files", "-z").out.split("\0"))  # cache: false outputs
    return not any((root / p).exists() for p in managed - tracked)


@dataclass(frozen=True)
class CommitResult:
    commit: str | None
    committed: list[str]
    pushed_to: str | None
    pull_request: str | None = None


def commit_state(
    project: Project,
    targets: Sequence[str] = (),
    *,
    message: str,
    push: bool = False,
    note_dirty: bool = False,
    wait: bool = False,
    retries: int = 3,
    pull_request: bool = False,
) -> CommitResult:
    """One commit of the pipeline's state (dvc.lock, params, metrics, plots data, pointers).

    With ``push``, the branch then goes to its configured git remote; a non-fast-forward
    is rebased and retried (at most ``retries`` times), never forced. With
    ``pull_request``, the commit goes to a new branch and a pull request is opened.
    """
    root = project.root
    branch = project.require_branch("committing the pipeline state")
    if not scm.status(root):
        # A clean tree has nothing to commit: answer before paying for DVC.
        return CommitResult(None, [], None)
    with _dvc.open_repo(root) as repo, _dvc.translated():
        stages = _stages_in_scope(repo, targets)
    files = commit_candidates(root, stages)
    changed = {e.path for e in scm.status(root)}
    todo = [f for f in files if f in changed]
    msg = message
    if note_dirty and (dirty := _dirty_code(root, stages, set(files))):
        msg += f"\n\nmlopskit: built from a dirty work tree ({', '.join(dirty[:8])})"
    with lock.held(project.tmp_dir, wait=wait):
        sha = scm.commit_paths(root, todo, msg, max_file_mb=project.config.git.max_file_mb)
    pushed_to = None
    pr_url = None
    if push and sha:
        remote_name = scm.push_remote(root, branch) or ("origin" if pull_request else None)
        if remote_name and pull_request:
            from . import github

            head = f"mlopskit/ct-{sha[:12]}"
            scm.push_rebasing(root, remote_name, head, retries=retries)
            pushed_to = f"{remote_name}/{head}"
            title = msg.splitlines()[0].replace("[skip ci]", "").strip()
            pr_url = github.open_pull_request(
                head=head,
                base=branch,
                title=title,
                body=f"Retrained by mlopskit: `{', '.join(todo)}` updated.\n\n{msg}",
            )
        elif remote_name:
            scm.push_rebasing(root, remote_name, branch, retries=retries)
            pushed_to = remote_name
    return CommitResult(sha, todo if sha else [], pushed_to, pr_url)
