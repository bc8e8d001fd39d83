"""Versioned data: ``dvc add`` + one git commit, and push / pull / status."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from . import _dvc, journal, names, paths, project_lock, scm
from .errors import MlopskitError, OperationFailed, RemoteError, UsageError
from .formatting import first
from .project import Project

if TYPE_CHECKING:
    from dvc.repo import Repo

T = TypeVar("T")


@dataclass(frozen=True)
class AddResult:
    targets: list[str]
    committed: list[str]
    commit: str | None


@dataclass(frozen=True)
class TransferResult:
    count: int
    remote: str | None


@dataclass(frozen=True)
class DataStatus:
    remote: str | None
    # path -> state: "modified", "not in cache", "not in remote", "untracked"...
    entries: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.entries


def _pointer_files(target: str) -> list[str]:
    return [f"{target}.dvc", names.gitignore_of(target)]


# dvc-objects' temporary names: f".{secrets.token_urlsafe(16)}.tmp".
_DVC_TMP = _dvc.TMP_NAME


def _drop_dvc_tmp(exc: BaseException, within: Path | None) -> list[Path]:
    return _dvc.drop_interrupted_tmp(exc, within)


@journal.barrier
def add(
    project: Project, targets: Sequence[str], *, message: str | None = None, wait: bool = False
) -> AddResult:
    """``dvc add`` the targets, then commit exactly their pointers and .gitignore entries.

    The journal is written, and each target hashed into it, before DVC touches anything:
    if the process dies at any instant, the data is in the workspace or in the cache
    object the journal names, and ``recover`` (or the rollback on Ctrl-C) puts it back.
    """
    root = project.root
    rels = [paths.inside(root, t, cwd=project.cwd) for t in targets]
    _refuse_root(root, rels)
    if not rels:
        raise MlopskitError("nothing to add")
    for rel in rels:
        names.check_ignorable(rel)
    project.require_branch("data add")
    max_mb = project.config.git.max_file_mb
    files = sorted({f for t in rels for f in _pointer_files(t)})
    msg = message or f"data: version {', '.join(rels)}"
    with project_lock.held(project.tmp_dir, wait=wait):
        txn = journal.begin(
            root, project.tmp_dir, op="data add", message=msg, targets=rels, files=files
        )
        cache: Path | None = None
        try:
            journal.checkpoint("add:journal")
            with _dvc.open_repo(root) as repo:
                cache = _cache_dir(repo)
                with _dvc.translated():
                    for t in rels:
                        md5, size = _dvc.hash_target(repo, str(root / t))
                        txn.data[t] = journal.Data(md5, size)
                    txn.save()
                    journal.checkpoint("add:hashed")
                    _dvc.add(repo, [str(root / t) for t in rels])
            journal.checkpoint("add:pointer")
            _escape_gitignore(root, rels, txn)
            changed = txn.changed()
            commit = scm.commit_paths(root, changed, msg, max_file_mb=max_mb)
        except BaseException as exc:
            _drop_dvc_tmp(exc, cache)
            if txn.committed():
                txn.finish()  # interrupted once git had committed: keep the commit
            else:
                txn.rollback(cache)
            raise
        try:
            journal.checkpoint("add:committed")
        finally:
            txn.finish()
    return AddResult(targets=rels, committed=changed if commit else [], commit=commit)


def _refuse_root(root: Path, rels: Sequence[str]) -> None:
    """The project root cannot be one DVC output: it holds .git, .dvc and dvc.yaml
    (DVC fails with "does not overlap with base path"). Name what could be added."""
    if "." not in rels:
        return
    res = scm.git(root, "ls-files", "-z", "--others", "--exclude-standard", "--directory")
    untracked = [p.rstrip("/") for p in res.out.split("\0") if p and "/" not in p.rstrip("/")]
    example = " ".join(untracked[:3]) or "data/raw"
    raise UsageError(
        f"{root.name}: the project root cannot be one DVC output: it holds .git, .dvc and dvc.yaml",
        f"name the files or folders to add, e.g. 'mlopskit data add {example}'",
    )


def _escape_gitignore(root: Path, rels: list[str], txn: journal.Txn) -> None:
    """The .gitignore lines for the targets, trailing spaces escaped and each checked
    with ``git check-ignore`` (:func:`mlopskit.names.ignore_exactly`)."""
    before = {
        gitignore: base64.b64decode(old) if old else None
        for gitignore, old in txn.before.items()
        if gitignore.endswith(".gitignore")
    }
    names.ignore_exactly(
        root,
        rels,
        before=before,
        hint="nothing was changed; check the .gitignore files for a '!' rule that re-includes it",
    )


def retry_transfer(fn: Callable[[], T], *, what: str, retries: int = 2) -> T:
    """Bounded retries with backoff for network errors; then exit 4."""
    delay = 1.0
    for attempt in range(retries + 1):
        try:
            with _dvc.translated():
                return fn()
        except MlopskitError as err:
            cause = err.__cause__
            if cause is None or not _dvc.is_connection_error(cause):
                raise
            if attempt == retries:
                raise RemoteError(
                    f"{what}: remote unreachable: {_dvc.remote_error_text(cause)}",
                    "check the remote URL, network and credentials; nothing local was changed",
                ) from cause
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError) and exc.filename:
                # e.g. an SSH keyfile that is not there: the remote's config is wrong.
                raise UsageError(
                    f"{what}: cannot read {exc.filename}: {exc.strerror}",
                    "check the remote's settings ('mlopskit remote list')",
                ) from exc
            if not _dvc.is_connection_error(exc):
                raise
            if attempt == retries:
                raise RemoteError(
                    f"{what}: remote unreachable: {_dvc.remote_error_text(exc)}",
                    "check the remote URL, network and credentials; nothing local was changed",
                ) from exc
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def default_remote(project: Project) -> str | None:
    with _dvc.open_repo(project.root) as repo:
        name = repo.config["core"].get("remote")
        return str(name) if name else None


def _cache_dir(repo: Repo) -> Path | None:
    try:
        return Path(repo.cache.local.path)
    except Exception:
        return None


def _local_remote(repo: Repo, name: str | None) -> Path | None:
    """The directory of a local-path remote, or None (cloud remote, none, unreadable)."""
    try:
        rem = repo.cloud.get_remote(name, "push")
        return Path(rem.path) if rem.fs.protocol == "local" else None
    except Exception:
        return None


def _sweep_tmp(repo: Repo, remote: str | None) -> None:
    """After a transfer: drop the stale ``.tmp`` orphans an earlier, killed transfer left in
    the cache or a local remote (gc sweeps SSH remotes too)."""
    from .gc import sweep_stale_tmp

    rem = _local_remote(repo, remote)
    sweep_stale_tmp([_cache_dir(repo), rem / "files" / "md5" if rem else None])


@journal.barrier
def push(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    run_cache: bool = False,
    revs: Sequence[str] = (),
    wait: bool = False,
) -> TransferResult:
    """Upload what the targets (default: the whole workspace) need, and with ``revs``
    what those commits point at too (DVC's ``push(revs=...)``); missing cache fails."""
    rels = [paths.inside(project.root, t, cwd=project.cwd, must_exist=False) for t in targets]
    with project_lock.held(project.tmp_dir, wait=wait), _dvc.open_repo(project.root) as repo:
        name = remote or repo.config["core"].get("remote")

        def run() -> int:
            with _dvc.collect_warnings() as warned:
                count = int(
                    repo.push(
                        rels or None,
                        jobs=jobs,
                        remote=remote,
                        run_cache=run_cache,
                        revs=list(revs) or None,
                    )
                )
            missing = _dvc.missing_cache(warned.records)
            if missing:
                raise OperationFailed(
                    f"{len(missing)} object(s) are neither in the cache nor in the remote: "
                    + first(missing, 10),
                    "re-create them ('mlopskit repro' or 'mlopskit data add') or pull them "
                    "from another remote",
                )
            return count

        try:
            journal.checkpoint("push:start")
            count = retry_transfer(run, what="push")
            journal.checkpoint("push:transferred")
        except BaseException as exc:
            _drop_dvc_tmp(exc, _local_remote(repo, remote))
            raise
        _sweep_tmp(repo, remote)
        return TransferResult(count=count, remote=name)


def outputs_not_in_remote(project: Project, repo: Repo) -> tuple[str | None, list[str]]:
    """(the default DVC remote, the DVC-cached outputs dvc.lock and the pointers name that
    it lacks): ``data status``'s remote check. No remote: every such output is missing."""
    name = repo.config["core"].get("remote")
    if not name:
        outs = {
            Path(os.path.relpath(o.fs_path, project.root)).as_posix()
            for o in repo.index.outs
            if o.use_cache and getattr(o.fs, "protocol", "local") in ("local", "file")
        }
        return None, sorted(outs)

    def run() -> list[str]:
        raw = repo.data_status(not_in_remote=True, remote_refresh=True)
        found = raw.get("not_in_remote") or []
        return [str(p).replace(os.sep, "/") for p in found]

    return str(name), sorted(retry_transfer(run, what="remote check"))


def objects_not_in_remote(
    repo: Repo, md5s: Sequence[str], remote: str | None = None
) -> tuple[str | None, set[str]]:
    """(the DVC remote, which of these md5s it lacks); no remote: all of them."""
    name = remote or repo.config["core"].get("remote")
    if not name or not md5s:
        return (str(name) if name else None), set(md5s)
    return str(name), retry_transfer(
        lambda: _dvc.objects_not_in_remote(repo, str(name), md5s), what="remote check"
    )


@journal.barrier
def pull(
    project: Project,
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    allow_missing: bool = False,
    wait: bool = False,
) -> TransferResult:
    """Download and check out what the targets need."""
    rels = [paths.inside(project.root, t, cwd=project.cwd, must_exist=False) for t in targets]
    with project_lock.held(project.tmp_dir, wait=wait), _dvc.open_repo(project.root) as repo:
        name = remote or repo.config["core"].get("remote")
        check_can_pull(repo, project.root, name, rels)

        def run() -> int:
            try:
                result = repo.pull(
                    rels or None, jobs=jobs, remote=remote, allow_missing=allow_missing
                )
            except BaseException as exc:
                # Interrupted mid-copy: the half-written object in the cache (the fetch)
                # or file in the workspace (the checkout) is no one's; remove it.
                for within in (_cache_dir(repo), project.root):
                    _drop_dvc_tmp(exc, within)
                raise
            stats = result.get("stats", {}) if isinstance(result, dict) else {}
            return int(stats.get("fetched", 0))

        try:
            journal.checkpoint("pull:start")
            count = retry_transfer(run, what="pull")
            journal.checkpoint("pull:transferred")
        except OperationFailed as err:
            failed = getattr(err.__cause__, "target_infos", None)  # DVC's CheckoutError
            if not failed:
                raise
            where = sorted(Path(str(p)).as_posix() for p in failed)
            raise OperationFailed(
                f"{len(where)} path(s) are in neither the cache nor remote '{name}': "
                + first(where, 8),
                "push them from the machine that made them ('mlopskit data push'), "
                "or skip them with --allow-missing",
            ) from err.__cause__
        _sweep_tmp(repo, remote)
        return TransferResult(count=count, remote=name)


def check_can_pull(repo: Repo, root: Path, name: str | None, targets: Sequence[str] = ()) -> None:
    """When data is missing that only a remote can bring, there must be a remote, and a
    local one must exist: else DVC warns, then fails the checkout with "Is your cache up
    to date?" (pull) or calls the pipeline "up to date" without the data (repro --pull)."""
    if name and _local_remote(repo, name) is None:
        return  # a cloud remote: only a transfer can tell whether it answers
    missing = missing_data(root, _cache_dir(repo), targets)
    if not missing:
        return
    if not name:
        from .remote import no_remote_error

        raise no_remote_error()
    path = _local_remote(repo, name)
    if path is not None and not path.is_dir():
        raise RemoteError(
            f"DVC remote '{name}' is a folder that does not exist here ({path}): "
            f"{len(missing)} path(s) cannot be pulled, e.g. {missing[0]}",
            f"point it at the data: mlopskit remote add {name} URL --default --force",
        )


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def missing_data(root: Path, cache: Path | None, targets: Sequence[str] = ()) -> list[str]:
    """DVC-managed paths (pointers' and dvc.lock's cached outputs) that are neither in the
    workspace nor in the local cache: only a remote can bring them (a fresh clone)."""
    from . import dvcfiles

    with dvcfiles.Reader(root) as reader:  # the one reader of dvc.lock and .dvc files
        recorded = reader.outputs(dvcfiles.WORKSPACE)
    found = {path: recorded.hashes[path] for path in recorded.producers}  # outputs only
    tracked = set(scm.git(root, "ls-files", "-z").out.split("\0"))  # cache: false outputs
    wanted = [t.rstrip("/") for t in targets]

    def in_cache(md5: str) -> bool:
        if cache is None or len(md5) < 32:
            return False
        return (cache / md5[:2] / md5[2:]).exists()  # the cache's path ends in files/md5

    return sorted(
        path
        for path, md5 in found.items()
        if path not in tracked
        and not (root / path).exists()
        and not in_cache(md5)
        and (not wanted or any(_overlap(path, w) for w in wanted))
    )


_LABELS = {
    "not_in_cache": "not in cache",
    "not_in_remote": "not in remote",
    "untracked": "untracked",
    "unknown": "unknown",
}


def status(
    project: Project, targets: Sequence[str] = (), *, remote: str | None = None, cloud: bool = True
) -> DataStatus:
    """Workspace vs cache vs remote for every DVC-tracked path (or the targets)."""
    rels = [paths.inside(project.root, t, cwd=project.cwd, must_exist=False) for t in targets]
    with _dvc.open_repo(project.root) as repo:
        name = remote or repo.config["core"].get("remote")
        check_remote = cloud and bool(name)
        if check_remote:
            check_can_pull(repo, project.root, name, rels)  # a local remote that is not here

        def run() -> dict[str, object]:
            return dict(
                repo.data_status(
                    [str(project.root / r) for r in rels] or None,
                    remote=remote,
                    not_in_remote=check_remote,
                    remote_refresh=check_remote,
                )
            )

        raw = retry_transfer(run, what="status")
    entries: dict[str, list[str]] = {}

    def note(path: str, state: str) -> None:
        entries.setdefault(path, [])
        if state not in entries[path]:
            entries[path].append(state)

    for group in ("committed", "uncommitted"):
        value = raw.get(group) or {}
        if isinstance(value, dict):
            for kind, items in value.items():
                for p in items:
                    if isinstance(p, dict):
                        # {"old": ..., "new": ...}: a `dvc move` not committed yet.
                        need = "git commit" if group == "committed" else "dvc commit"
                        note(str(p.get("new")), f"{kind} from {p.get('old')} (needs {need})")
                        continue
                    if group == "uncommitted" and kind == "deleted":
                        # Tracked but absent: never pulled (a fresh clone) or removed by
                        # hand. `dvc commit` cannot record that; a pull brings it back.
                        note(p, f"not in the workspace (pull it: mlopskit data pull {p})")
                        continue
                    need = "git commit" if group == "committed" else "dvc commit"
                    note(p, f"{kind} (needs {need})")
    for key, label in _LABELS.items():
        value = raw.get(key) or []
        if isinstance(value, list):
            for p in value:
                note(p, label)
    uncommitted = raw.get("uncommitted")
    absent = set(uncommitted.get("deleted") or []) if isinstance(uncommitted, dict) else set()
    for p in absent & set(entries):
        if "not in remote" in entries[p]:
            # Pulling cannot bring it: say so instead of "pull it".
            entries[p] = [
                f"not in the workspace nor in remote '{name}' (push it from where it was made)"
                if s.startswith("not in the workspace")
                else s
                for s in entries[p]
                if s != "not in remote"
            ]
    not_cached = raw.get("not_in_cache")
    if not name and absent & set(not_cached if isinstance(not_cached, list) else []):
        from .remote import no_remote_error

        raise no_remote_error()
    return DataStatus(remote=name, entries=dict(sorted(entries.items())))


@dataclass(frozen=True)
class RecoverResult:
    op: str | None
    action: str  # "none", "completed", "reverted"
    files: list[str]
    commit: str | None = None
    # data files put back from the cache (they were missing or a link into it)
    restored: list[str] = field(default_factory=list)


def recover(project: Project, *, wait: bool = False) -> RecoverResult:
    """Finish or undo what an interrupted ``data add`` left behind.

    First every target file that is missing comes back from the cache object the journal
    names (md5 verified); then the commit is completed when the pointers are whole and
    match the data, or every journaled file is put back as it was."""
    root = project.root
    with project_lock.held(project.tmp_dir, wait=wait, journal_ok=True):
        txn = journal.load(root, project.tmp_dir)
        if txn is None:
            return RecoverResult(op=None, action="none", files=[])
        with _dvc.open_repo(root) as repo:
            cache = _cache_dir(repo)
        _drop_orphan_tmp(root, txn.targets, cache)
        restored = txn.restore_data(cache, unlink=False)
        changed = txn.changed()
        whole = bool(changed) and all((root / f"{t}.dvc").is_file() for t in txn.targets)
        if whole:
            with _dvc.open_repo(root) as repo:
                st = repo.status([str(root / f"{t}.dvc") for t in txn.targets])
            whole = not st
        if whole:
            commit = scm.commit_paths(
                root, changed, txn.message, max_file_mb=project.config.git.max_file_mb
            )
            txn.finish()
            return RecoverResult(
                op=txn.op, action="completed", files=changed, commit=commit, restored=restored
            )
        undone = txn.rollback(cache)
        return RecoverResult(
            op=txn.op,
            action="reverted",
            files=[f for f in undone if f in txn.before],
            restored=sorted({*restored, *(f for f in undone if f not in txn.before)}),
        )


def _drop_orphan_tmp(root: Path, targets: list[str], cache: Path | None) -> list[Path]:
    """The ``.<token>.tmp`` files a killed DVC copy left in the cache or beside a target,
    and the copies a killed restore left.

    Only recover calls this, holding the project's lock, so no mlopskit process is
    writing them; a plain ``dvc`` command running at the same moment could be.
    """
    dirs: list[Path] = []
    if cache is not None and cache.is_dir():
        dirs += [d for d in cache.iterdir() if d.is_dir()]
    dirs += [(root / t).parent for t in targets]
    removed = []
    for d in dict.fromkeys(dirs):
        try:
            entries = list(d.iterdir())
        except OSError:
            continue
        for p in entries:
            ours = p.name.endswith(".mlopskit-restore.tmp")  # a killed restore's copy
            if (_DVC_TMP.fullmatch(p.name) or ours) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
