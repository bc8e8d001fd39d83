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

from .. import _dvc, journal, paths, project_lock, scm
from ..errors import PreconditionError, RemoteError, UsageError
from ..formatting import first
from ..project import Project
from ..remote import plainly_reachable

if TYPE_CHECKING:
    from dvc.repo import Repo

from .fastpath import fresh_clone_up_to_date
from .stages import _load_stages, _stages_in_scope, check_params, check_paths
from .stages import outputs_ignored_exactly as _ignored_exactly


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


def commit_candidates(project: Project, stages: Sequence[Any]) -> list[str]:
    """What a state commit takes (project-relative): every dvc.yaml and dvc.lock, params
    files, git-tracked outputs, and changed pointers and .gitignore files inside the project."""
    from .. import dvcfiles

    root = project.root
    with dvcfiles.Reader(root) as reader:
        state = reader.state(None)
    locks = [posixpath.join(posixpath.dirname(f), "dvc.lock") for f in state.dvcfiles]
    files = ["dvc.lock", "dvc.yaml", *state.dvcfiles, *locks, *state.params]
    files += _git_tracked_outputs(stages, root)
    for entry in project.status():
        if entry.path.endswith(".gitignore") or entry.path.endswith(".dvc"):
            files.append(entry.path)
    return list(dict.fromkeys(files))


@dataclass(frozen=True)
class DirtyDep:
    path: str  # relative to the project root ("../x" when outside it)
    stages: list[str]

    def __str__(self) -> str:
        word = "stage" if len(self.stages) == 1 else "stages"
        return f"{self.path} ({word} {', '.join(self.stages)})"


def dirty_deps(project: Project, stages: Sequence[Any], ours: set[str]) -> list[DirtyDep]:
    """The one "dirty" rule of the pipeline (``repro --commit``'s pre-run check, ``commit``,
    and the ``--allow-dirty`` note): uncommitted changes (modified, staged, deleted or new)
    to a file a stage depends on, minus what the state commit takes (``ours``: dvc.yaml,
    params files...) and DVC's outputs.

    Only stage dependencies count: dvc.yaml and params changes never block (they go into
    the commit), nor does a modified README.md, a staged unrelated file or a workflow file.
    Compared in git's own terms (paths from the git root), so a project in a sub-folder
    and a dependency outside it are judged alike. (``scm.dirty_tracked`` answers another
    question: does the work tree differ from HEAD at all.)
    """
    top = project.git_root
    deps: dict[str, list[str]] = {}
    outs: set[str] = set()
    for s in stages:
        name = getattr(s, "addressing", str(s))
        for d in s.deps:
            if _dvc.is_params_dep(d) or getattr(d.fs, "protocol", "local") not in (
                "local",
                "file",
            ):
                continue
            rel = paths.within(top, d.fs_path)
            if rel is not None:
                deps.setdefault(rel, []).append(name)
        for o in s.outs:
            if (out_rel := paths.within(top, o.fs_path)) is not None:
                outs.add(out_rel)
    skip = {project.git_path(p) for p in ours}
    found: dict[str, list[str]] = {}
    for entry in scm.status(project.root):
        p = entry.path
        if p in skip or any(p == o or p.startswith(o + "/") for o in outs):
            continue
        for dep, names in deps.items():
            if p == dep or p.startswith(dep.rstrip("/") + "/"):
                found.setdefault(p, [])
                found[p] += [n for n in names if n not in found[p]]
    out = []
    for p, names in found.items():
        shown = project.project_path(p)
        if shown is None:
            shown = os.path.relpath(top / p, project.root)
        out.append(DirtyDep(Path(shown).as_posix(), names))
    return out


def refuse_dirty(project: Project, stages: Sequence[Any], ours: set[str], hint: str) -> None:
    """Exit 3 naming each dirty stage dependency (:func:`dirty_deps`) and its stages."""
    dirty = dirty_deps(project, stages, ours)
    if dirty:
        raise PreconditionError(
            "uncommitted changes the pipeline depends on: " + first(dirty, 8),
            hint,
        )


def _git_push_target(project: Project, branch: str) -> str:
    """The remote ``--push`` pushes ``branch`` to; none configured: exit 4 with the fix."""
    remote_name = scm.push_remote(project.root, branch)
    if remote_name is not None:
        return remote_name
    names = scm.remotes(project.root)
    if not names:
        raise RemoteError(
            f"--push: this repository has no git remote to push '{branch}' to",
            f"git remote add origin URL && git push -u origin {branch}",
        )
    guess = "origin" if "origin" in names else names[0]
    raise RemoteError(
        f"--push: branch '{branch}' has no upstream branch to push to",
        f"git push -u {guess} {branch}",
    )


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
    """Check params, run DVC's repro, then push data (before) and commit (after).

    The project lock is held from the first read to the last ref update: a ``params
    set`` (or any other mlopskit command) cannot get between training, pushing the data
    and committing, so the commit never pairs new params with an old dvc.lock.
    """
    with project_lock.held(project.tmp_dir, wait=wait):
        return _repro(
            project,
            targets,
            pull=pull,
            push=push,
            commit=commit,
            message=message,
            force=force,
            dry=dry,
            allow_dirty=allow_dirty,
            remote=remote,
            wait=wait,
        )


def _repro(
    project: Project,
    targets: Sequence[str],
    *,
    pull: bool,
    push: bool,
    commit: bool,
    message: str | None,
    force: bool,
    dry: bool,
    allow_dirty: bool,
    remote: str | None,
    wait: bool,
) -> ReproResult:
    root = project.root
    journal.require_none(project.tmp_dir, wait=wait)
    if commit and not dry:
        project.require_branch("repro --commit")
    if not (root / "dvc.yaml").exists():
        raise UsageError("dvc.yaml: not found", "add a stage with 'mlopskit stage add'")
    if (
        pull
        and not (force or dry or targets)
        and plainly_reachable(root, remote)
        and fresh_clone_up_to_date(root)
    ):
        # What DVC's --pull --allow-missing would conclude, without importing DVC; with no
        # DVC-managed output in the workspace there is nothing to push either. Without a
        # remote in the project's config that plainly exists, DVC decides below.
        return ReproResult(ran=[])
    from .. import data

    with _dvc.open_repo(root) as repo:
        # Holding DVC's repo lock across the checks and the run keeps DVC from
        # rebuilding its index in reproduce(), and no other DVC process can get between.
        with _dvc.translated(), _dvc.repo_lock(repo):
            stages = _load_stages(root, repo, targets)
            check_paths(root, stages)
            check_params(root, stages)
            if commit and not dry and not allow_dirty:
                refuse_dirty(
                    project,
                    stages,
                    set(commit_candidates(project, stages)),
                    "commit them first so the model traces to a commit, or pass --allow-dirty",
                )
            if pull and not dry:
                # "Pipeline is up to date." would be false when the data is not here and
                # no remote can bring it.
                data.check_can_pull(repo, root, remote or repo.config["core"].get("remote"))
            name = None
            if push and not dry:
                repo.cloud.get_remote(remote, "push")  # no remote: exit 2 before training
                name = remote or repo.config["core"].get("remote")
                if commit:  # nowhere to push the commit to: exit 4 before training
                    _git_push_target(project, project.require_branch("repro --commit"))
            with _interpreter_on_path(), _ignored_exactly(root, [] if dry else stages):
                ran = repo.reproduce(
                    list(targets) or None,
                    force=force,
                    dry=dry,
                    allow_missing=pull,
                    repro_fn=_dvc.pulling_step(repo, remote)
                    if pull and not dry
                    else _dvc.plain_step,
                )
        names = [getattr(s, "addressing", str(s)) for s in ran or []]
        if dry:
            return ReproResult(ran=names, dry=True)
    journal.checkpoint("repro:reproduced")
    pushed = None
    if push:
        pushed = data.push(project, remote=remote, run_cache=True, wait=wait).count
        journal.checkpoint("repro:pushed")
    state = CommitResult(None, [], None)
    if commit:
        msg = message or (f"repro: {', '.join(names)}" if names else "repro: pipeline state")
        # Trained just now under the lock, and (with --push) its outputs just pushed:
        # the state is true by construction, no need to ask DVC again.
        state = commit_state(
            project,
            targets,
            message=msg,
            push=push,
            note_dirty=allow_dirty,
            wait=wait,
            verified=True,
            remote=remote,
        )
    return ReproResult(
        ran=names,
        pushed=pushed,
        commit=state.commit,
        committed=state.committed,
        git_pushed=state.pushed_to,
        remote=name,
    )


@dataclass(frozen=True)
class CommitResult:
    commit: str | None
    committed: list[str]
    pushed_to: str | None
    pull_request: str | None = None


@journal.barrier
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
    allow_missing_remote: bool = False,
    verified: bool = False,
    remote: str | None = None,
) -> CommitResult:
    """One commit of the pipeline's state (dvc.lock, params, metrics, plots data, pointers).

    No commit that lies: dvc.lock must match the params, code and data it names (DVC's
    own status; else exit 3, nothing committed), and with ``push`` every output it points
    at must be in the DVC remote (else exit 3, unless ``allow_missing_remote``).
    ``verified``: the caller (``repro --commit``) has just produced and pushed that
    state under the same lock (to DVC remote ``remote``, None: the default). Each
    earlier unpushed commit's outputs are checked all the same.

    With ``push``, the branch then goes to its configured git remote; a non-fast-forward
    is rebased and retried (at most ``retries`` times), never forced. When the branch
    moved with changes to a pipeline input (params, code, data pointers, dvc.yaml,
    dvc.lock) the rebased dvc.lock would lie: nothing is pushed, exit 4, "retrain". With
    ``pull_request``, the commit goes to a new branch and a pull request is opened.
    The project lock is held from the first read to the last ref update.
    """
    with project_lock.held(project.tmp_dir, wait=wait):
        return _commit_state(
            project,
            targets,
            message=message,
            push=push,
            note_dirty=note_dirty,
            retries=retries,
            pull_request=pull_request,
            allow_missing_remote=allow_missing_remote,
            verified=verified,
            remote=remote,
        )


def _check_true(project: Project, repo: Repo, stages: Sequence[Any], files: set[str]) -> None:
    """Refuse (exit 3) a commit whose dvc.lock does not match what it names."""
    refuse_dirty(project, stages, files, "commit them first so dvc.lock traces to a commit")
    stale = _dvc.stale_stages(repo)
    if stale:
        raise PreconditionError(
            f"dvc.lock does not match the params, code or data of stage(s) {', '.join(stale)}: "
            "the commit would record a state no run produced",
            "run 'mlopskit repro' first, or 'mlopskit repro --commit' to train and commit",
        )


def _check_in_remote(project: Project, repo: Repo) -> None:
    from .. import data

    name, missing = data.outputs_not_in_remote(project, repo)
    if missing:
        where = f"DVC remote '{name}'" if name else "a DVC remote (none is configured)"
        raise PreconditionError(
            f"{len(missing)} output(s) the commit points at are not in {where}: "
            + first(missing, 8),
            "push them first ('mlopskit data push'), or pass --allow-missing-remote "
            "to push the commit anyway (a fresh clone cannot pull them)",
        )


def _cached_outputs(reader: Any, rev: str | None) -> dict[str, str]:
    """The DVC-cached outputs ``rev`` records (path -> md5): stages' outs without
    ``cache: false`` and pointers' outs (``cache: false`` in a .dvc file skipped)."""
    state = reader.state(rev)
    recorded = reader.outputs(rev)
    uncached = {o.path for s in state.stages for o in s.outs if not o.cache}
    out = {}
    for path, md5 in recorded.hashes.items():
        producer = recorded.producers.get(path)
        if producer is None or path in uncached:
            continue  # a dependency's md5, or an output git keeps
        if producer.endswith(".dvc"):
            doc = reader.load(rev, producer, strict=False)
            items = doc.get("outs") if isinstance(doc, dict) else None
            if any(isinstance(i, dict) and i.get("cache") is False for i in items or []):
                continue
        out[path] = md5
    return out


def _check_commits_in_remote(
    project: Project, git_remote: str, branch: str, dvc_remote: str | None
) -> None:
    """Refuse (exit 3) a push of commits that point at data the DVC remote lacks: every
    commit in ``git_remote/branch..HEAD``, not only the work tree's state. What the work
    tree points at was just checked (or pushed) by the caller, so only what an earlier
    commit points at and the work tree does not is asked of the remote: for the usual
    single commit, nothing is."""
    from .. import data, dvcfiles

    commits = scm.unpushed(project.root, git_remote, branch)
    if not commits:
        return
    wanted: dict[str, list[tuple[str, str]]] = {}  # md5 -> [(commit, path)]
    with dvcfiles.Reader(project.root) as reader:
        checked = set(_cached_outputs(reader, None).values())
        for sha in commits:
            for path, md5 in _cached_outputs(reader, sha).items():
                if md5 not in checked:
                    wanted.setdefault(md5, []).append((sha, path))
    if not wanted:
        return
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        name, missing = data.objects_not_in_remote(repo, sorted(wanted), dvc_remote)
    if not missing:
        return
    found = sorted(
        {(sha, path) for md5 in missing for sha, path in wanted[md5]},
        key=lambda item: (commits.index(item[0]), item[1]),
    )
    shas = list(dict.fromkeys(sha for sha, _ in found))
    where = f"DVC remote '{name}'" if name else "a DVC remote (none is configured)"
    shown = [f"{path} (commit {sha[:8]})" for sha, path in found]
    revs = " ".join(f"--rev {sha[:8]}" for sha in shas[:8])
    raise PreconditionError(
        f"{len(found)} output(s) that commit(s) being pushed point at are not in {where}: "
        + first(shown, 8),
        f"push them first ('mlopskit data push {revs}'), or pass --allow-missing-remote "
        "to push the commits anyway (a clone of them cannot pull that data)",
    )


def _commit_state(
    project: Project,
    targets: Sequence[str],
    *,
    message: str,
    push: bool,
    note_dirty: bool,
    retries: int,
    pull_request: bool,
    allow_missing_remote: bool,
    verified: bool,
    remote: str | None,
) -> CommitResult:
    root = project.root
    branch = project.require_branch("committing the pipeline state")
    remote_name = None
    if push and pull_request:
        remote_name = scm.push_remote(root, branch) or "origin"
    elif push:
        # No remote to push to is an error before anything is committed, never a skip.
        remote_name = _git_push_target(project, branch)
    check_remote = remote_name is not None and not (verified or allow_missing_remote)
    sha = None
    todo: list[str] = []
    msg = message
    if status := project.status():  # a clean tree: no need to pay for DVC
        with _dvc.open_repo(root) as repo, _dvc.translated():
            stages = _stages_in_scope(repo, targets)
            files = commit_candidates(project, stages)
            changed = {e.path for e in status}
            todo = [f for f in files if f in changed]
            if note_dirty and (dirty := dirty_deps(project, stages, set(files))):
                msg += (
                    "\n\nmlopskit: built from a dirty work tree ("
                    + ", ".join(d.path for d in dirty[:8])
                    + ")"
                )
            if todo and not verified:
                _check_true(project, repo, stages, set(files))
            if todo and check_remote:
                _check_in_remote(project, repo)
                check_remote = False
        sha = scm.commit_paths(root, todo, msg, max_file_mb=project.config.git.max_file_mb)
        journal.checkpoint("commit:committed")
    pushed_to = None
    pr_url = None
    if remote_name is None:
        return CommitResult(sha, todo if sha else [], None)
    # Nothing new, but an earlier push may have died (killed, network): push what the
    # remote branch lacks. An unknown remote-tracking branch: push to find out.
    if sha is None and (pull_request or scm.ahead(root, remote_name, branch) == 0):
        return CommitResult(None, [], None)
    if check_remote:  # nothing committed now: the work tree's outputs, then each commit's
        with _dvc.open_repo(root) as repo, _dvc.translated():
            _check_in_remote(project, repo)
    if not allow_missing_remote:
        _check_commits_in_remote(project, remote_name, branch, remote)

    def before_rebase(ours: str, theirs: str) -> None:
        from . import consistency

        moved = consistency.upstream_pipeline_changes(project, ours, theirs)
        if moved:
            raise RemoteError(
                f"{branch} moved with pipeline changes: retrain ({remote_name}/{branch} "
                f"changed {', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}, "
                "which this dvc.lock was computed without); nothing was pushed, "
                "the local commit is kept",
                f"run the pipeline again on the new '{branch}' (in CT: rerun the workflow)",
            )

    def after_rebase() -> None:
        from . import consistency

        stale = consistency.stale_stages(root, "HEAD")
        if stale:
            raise RemoteError(
                f"{branch} moved with pipeline changes: retrain (rebased on "
                f"{remote_name}/{branch}, dvc.lock does not match stage(s) "
                f"{', '.join(stale)}); nothing was pushed, the local commit is kept",
                f"run the pipeline again on the new '{branch}' (in CT: rerun the workflow)",
            )

    if pull_request:
        assert sha is not None
        from ..report import github

        head = f"mlopskit/ct-{sha[:12]}"
        scm.push_rebasing(
            root,
            remote_name,
            head,
            retries=retries,
            before_rebase=before_rebase,
            after_rebase=after_rebase,
        )
        pushed_to = f"{remote_name}/{head}"
        title = msg.splitlines()[0].replace("[skip ci]", "").strip()
        pr_url = github.open_pull_request(
            head=head,
            base=branch,
            title=title,
            body=f"Retrained by mlopskit: `{', '.join(todo)}` updated.\n\n{msg}",
        )
    else:
        journal.checkpoint("commit:pushing")
        scm.push_rebasing(
            root,
            remote_name,
            branch,
            retries=retries,
            before_rebase=before_rebase,
            after_rebase=after_rebase,
        )
        journal.checkpoint("commit:pushed")
        pushed_to = remote_name
    return CommitResult(sha, todo if sha else [], pushed_to, pr_url)
