"""A journal for the steps that change files and then commit them.

``data add`` keeps one invariant at every instant: the user's bytes are in the
workspace, or in the DVC cache with a journal entry naming them. Before DVC touches
anything, the journal ``.dvc/tmp/mlopskit/txn.json`` records what the pointer and
.gitignore files held and the md5 of every target. If the process dies, ``mlopskit
recover`` first puts back any target file that is missing from the cache object the
journal names (verifying its md5), then completes the commit (when the pointers are
whole and match the data) or puts the files back as they were.

While a journal exists, every command that changes the repository or the remote
refuses to run (:func:`barrier`); ``recover`` is the way out. A journal's paths are
checked before use: inside the project, no link leading out, nothing under ``.git``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import posixpath
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from . import paths, scm, yamlio
from .errors import IntegrityError, PreconditionError, UsageError

if TYPE_CHECKING:
    from .project import Project

NAME = "txn.json"
# Test-only: MLOPSKIT_TEST_FAULT=<step> stops the process at that step until a signal
# arrives (see checkpoint); read here and nowhere else.
FAULT_ENV = "MLOPSKIT_TEST_FAULT"

P = ParamSpec("P")
R = TypeVar("R")


def path_for(tmp_dir: Path) -> Path:
    return tmp_dir / NAME


def fault_step() -> str | None:
    return os.environ.get(FAULT_ENV) or None


def checkpoint(step: str) -> None:
    """Test-only fault point: with ``MLOPSKIT_TEST_FAULT=step``, announce the step on
    stderr and wait here for a signal (SIGINT, SIGTERM or SIGKILL), so a test can
    interrupt each step of an operation deterministically. Otherwise a no-op."""
    if fault_step() != step:
        return
    sys.stderr.write(f"mlopskit-fault: paused at {step}\n")
    sys.stderr.flush()
    while True:
        time.sleep(0.05)


@dataclass(frozen=True)
class Data:
    """A target as it was hashed before DVC touched it."""

    md5: str  # a file's md5, or a directory's "<md5>.dir" manifest
    size: int | None

    @property
    def isdir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass
class Txn:
    root: Path
    journal: Path
    op: str
    message: str
    targets: list[str]
    # path -> base64 of the bytes it held before, or None when it did not exist
    before: dict[str, str | None] = field(default_factory=dict)
    # path -> "mode sha" of its index entry before, or None when it was not in the index;
    # None as a whole for a journal written before this was recorded
    index: dict[str, str | None] | None = None
    # target -> its content as hashed before DVC touched it (the cache object to restore)
    data: dict[str, Data] = field(default_factory=dict)
    # the commit HEAD named when the operation began
    head: str | None = None

    def save(self) -> None:
        doc = {
            "op": self.op,
            "message": self.message,
            "targets": self.targets,
            "before": self.before,
            "index": self.index,
            "data": {t: {"md5": d.md5, "size": d.size} for t, d in self.data.items()},
            "head": self.head,
        }
        yamlio.atomic_write_text(self.journal, json.dumps(doc, indent=2))

    def changed(self) -> list[str]:
        """The journaled files whose content differs from before."""
        out = []
        for rel, old in self.before.items():
            f = self.root / rel
            now = f.read_bytes() if f.is_file() else None
            was = base64.b64decode(old) if old is not None else None
            if now != was:
                out.append(rel)
        return out

    def restore_data(self, cache: Path | None, *, unlink: bool) -> list[str]:
        """Put back every journaled target file that is missing (from the cache object the
        journal names, md5 verified). With ``unlink``, a target that DVC replaced by a
        link into the cache becomes a plain copy again. Returns the paths restored."""
        restored: list[str] = []
        for target, data in self.data.items():
            if data.isdir:
                entries = _manifest(cache, data.md5, target)
                if entries is None:  # no manifest: DVC never got as far as removing files
                    continue
                for rel, md5 in entries:
                    path = _check_path(self.root, self.journal, f"{target}/{rel}")
                    if _restore_file(self.root, path, md5, cache, unlink=unlink):
                        restored.append(path)
            elif _restore_file(self.root, target, data.md5, cache, unlink=unlink):
                restored.append(target)
        return restored

    def rollback(self, cache: Path | None = None) -> list[str]:
        """Restore the data, put every journaled file back as it was and unstage it;
        returns the paths restored. The journal goes last: an interrupted rollback can
        be run again by ``recover``."""
        restored = self.restore_data(cache, unlink=True)
        for rel, old in self.before.items():
            f = self.root / rel
            if old is None:
                if f.is_file() or f.is_symlink():
                    f.unlink()
                    restored.append(rel)
            else:
                data = base64.b64decode(old)
                if f.is_symlink() or not f.is_file() or f.read_bytes() != data:
                    f.parent.mkdir(parents=True, exist_ok=True)
                    replace_bytes(f, data)
                    restored.append(rel)
        paths = list(self.before)
        if self.index is not None:
            _restore_index(self.root, self.index)
        elif scm.has_commits(self.root):
            scm.git(self.root, "reset", "-q", "--", *paths, check=False)
        else:
            scm.git(
                self.root, "rm", "-q", "--cached", "--ignore-unmatch", "--", *paths, check=False
            )
        self.finish()
        return restored

    def committed(self) -> bool:
        """Whether HEAD moved since the operation began (its commit went through)."""
        return scm.head(self.root) != self.head

    def finish(self) -> None:
        self.journal.unlink(missing_ok=True)


def object_path(cache: Path, md5: str) -> Path:
    """Where DVC's local cache (``.../files/md5``) keeps the object ``md5``."""
    return cache / md5[:2] / md5[2:]


def _manifest(cache: Path | None, md5: str, target: str) -> list[tuple[str, str]] | None:
    """A directory object's (relpath, md5) entries, or None when it is not in the cache."""
    if cache is None:
        return None
    obj = object_path(cache, md5)
    if not obj.is_file():
        return None
    try:
        items = json.loads(obj.read_bytes())
        return [(str(i["relpath"]), str(i["md5"])) for i in items]
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(
            f"{target}: its directory object {md5} in the cache is unreadable",
            "nothing was changed; inspect the cache, then run 'mlopskit recover' again",
        ) from None


def _same_inode(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _restore_file(root: Path, rel: str, md5: str, cache: Path | None, *, unlink: bool) -> bool:
    f = root / rel
    obj = object_path(cache, md5) if cache is not None else None
    if f.is_symlink():
        # DVC's symlink cache type: the content is the cache object's.
        if not unlink or obj is None or Path(os.path.realpath(f)) != obj.resolve():
            return False
    elif f.exists() and (not unlink or obj is None or not _same_inode(f, obj)):
        # Present as the user has it (DVC writes through temporary names, so a file under
        # its own name is whole); only a hardlink into the cache needs undoing.
        return False
    if obj is None or not obj.is_file():
        raise IntegrityError(
            f"{rel}: missing from the workspace, and its cache object {md5} is gone",
            "nothing was changed; restore the file from a backup or "
            "'mlopskit data pull', then run 'mlopskit recover' again",
        )
    _copy_verified(obj, f, md5, rel)
    return True


def _copy_verified(src: Path, dst: Path, md5: str, shown: str) -> None:
    """Copy ``src`` to ``dst`` through a temporary name, checking the md5 on the way."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.mlopskit-restore.tmp"
    h = hashlib.md5()
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while block := fin.read(1 << 20):
                h.update(block)
                fout.write(block)
        if h.hexdigest() != md5:
            raise IntegrityError(
                f"{shown}: its cache object {md5} is corrupt (md5 {h.hexdigest()})",
                "nothing was changed; restore the file from a backup or the remote",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_bytes(f: Path, data: bytes) -> None:
    """Replace ``f`` (never write through a link it may be)."""
    tmp = f.parent / f".{f.name}.mlopskit-restore.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, f)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _index_entries(root: Path, files: list[str]) -> dict[str, str | None]:
    """path -> "mode sha" of its (stage 0) index entry, or None when it is not in the index."""
    entries: dict[str, str | None] = dict.fromkeys(files)
    raw = scm.git(root, "--literal-pathspecs", "ls-files", "--stage", "-z", "--", *files).out
    for item in raw.split("\0"):
        if "\t" not in item:
            continue
        info, path = item.split("\t", 1)
        mode, sha, stage = info.split()
        if path in entries and stage == "0":
            entries[path] = f"{mode} {sha}"
    return entries


def _restore_index(root: Path, entries: dict[str, str | None]) -> None:
    """Put each path's index entry back exactly, so what the user had staged stays staged."""
    # --index-info takes paths from the top of the work tree (a project may be a sub-folder).
    prefix = (scm.layout(root) or (root, ""))[1]
    keep = "".join(f"{e}\t{prefix}{p}\0" for p, e in entries.items() if e is not None)
    drop = "".join(f"{p}\0" for p, e in entries.items() if e is None)
    if keep:
        scm.git(
            root,
            "update-index",
            "-z",
            "--index-info",
            input=keep.encode("utf-8", "surrogateescape"),
            check=False,
        )
    if drop:
        scm.git(
            root,
            "update-index",
            "--force-remove",
            "-z",
            "--stdin",
            input=drop.encode("utf-8", "surrogateescape"),
            check=False,
        )


def pending(tmp_dir: Path) -> Path | None:
    j = path_for(tmp_dir)
    return j if j.is_file() else None


def _describe(j: Path) -> str:
    try:
        doc = json.loads(j.read_text())
        return f"'{doc['op']}' of {', '.join(doc['targets'])}"
    except (OSError, ValueError, KeyError, TypeError):
        return "operation"


def refuse_pending(tmp_dir: Path) -> None:
    """Refuse (exit 3) while a journal is left: for a caller that holds the project lock,
    so the journal's writer is gone (killed) and only ``recover`` may go on."""
    j = pending(tmp_dir)
    if j is not None:
        raise PreconditionError(
            f"{j}: an interrupted {_describe(j)} left a journal",
            "run 'mlopskit recover' to complete or undo it",
        )


def require_none(tmp_dir: Path, *, wait: bool = False) -> None:
    """Refuse (exit 3) while a journal exists. If its operation is still running (it holds
    the project lock) and ``wait`` is set, go on: the caller waits for the lock, and
    :func:`mlopskit.project_lock.held` checks the journal again once it has it."""
    j = pending(tmp_dir)
    if j is None:
        return
    from . import project_lock

    who = project_lock.holder(tmp_dir)
    if who is None:
        refuse_pending(tmp_dir)
        return  # the journal went away in between
    if wait:
        return
    raise PreconditionError(
        f"{j}: a {_describe(j)} is in progress ({who})", "wait for it to finish, or pass --wait"
    )


def barrier(fn: Callable[Concatenate[Project, P], R]) -> Callable[Concatenate[Project, P], R]:
    """For every library function that changes the repository or the remote: refuse
    (exit 3) while an interrupted operation's journal waits for ``mlopskit recover``."""

    @functools.wraps(fn)
    def wrapper(project: Project, /, *args: P.args, **kwargs: P.kwargs) -> R:
        require_none(project.tmp_dir, wait=bool(kwargs.get("wait")))
        return fn(project, *args, **kwargs)

    return wrapper


def begin(
    root: Path, tmp_dir: Path, *, op: str, message: str, targets: list[str], files: list[str]
) -> Txn:
    require_none(tmp_dir)
    before: dict[str, str | None] = {}
    for rel in files:
        f = root / rel
        before[rel] = base64.b64encode(f.read_bytes()).decode() if f.is_file() else None
    txn = Txn(root, path_for(tmp_dir), op, message, targets, before, _index_entries(root, files))
    txn.head = scm.head(root)
    txn.save()
    return txn


def _check_path(root: Path, j: Path, rel: Any) -> str:
    """A journal's path: relative, normal, not in .git, and no link along it leads out."""
    bad = (
        not isinstance(rel, str)
        or not rel
        or "\0" in rel
        or rel.startswith("/")
        or posixpath.normpath(rel) != rel
        or ".." in PurePosixPath(rel).parts
        or PurePosixPath(rel).parts[0] in (".git", ".dvc")
    )
    if not bad:
        bad = paths.within(root, root / rel) is None
    if bad:
        raise UsageError(
            f"{j}: names {rel!r}, outside the project or inside .git or .dvc",
            "mlopskit did not write this journal; nothing was changed. Inspect it, then delete it",
        )
    return str(rel)


def load(root: Path, tmp_dir: Path) -> Txn | None:
    j = pending(tmp_dir)
    if j is None:
        return None
    try:
        doc = json.loads(j.read_text())
        targets = [str(t) for t in doc["targets"]]
        before = dict(doc["before"])
        index = dict(doc["index"]) if doc.get("index") is not None else None
        data = {
            str(t): Data(str(d["md5"]), int(d["size"]) if d.get("size") is not None else None)
            for t, d in dict(doc.get("data") or {}).items()
        }
        txn = Txn(root, j, str(doc["op"]), str(doc["message"]), targets, before, index, data)
        txn.head = str(doc["head"]) if doc.get("head") else None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PreconditionError(
            f"{j}: the journal is unreadable",
            "inspect 'git status', then delete the file by hand",
        ) from None
    for rel in [*targets, *before, *(index or {}), *data]:
        _check_path(root, j, rel)
    for rel in [*before, *(index or {})]:
        if not (rel.endswith(".dvc") or PurePosixPath(rel).name == ".gitignore"):
            raise UsageError(
                f"{j}: names {rel!r}, which is neither a .dvc pointer nor a .gitignore",
                "mlopskit did not write this journal; nothing was changed. Inspect it, "
                "then delete it",
            )
    for d in data.values():
        if not all(c in "0123456789abcdef" for c in d.md5.removesuffix(".dir")) or (
            len(d.md5.removesuffix(".dir")) != 32
        ):
            raise UsageError(f"{j}: {d.md5!r} is not an md5", "inspect it, then delete it")
    for v in before.values():
        if v is not None and not isinstance(v, str):
            raise UsageError(f"{j}: unreadable contents", "inspect it, then delete it")
    return txn
