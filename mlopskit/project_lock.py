"""mlopskit's own process lock, beside DVC's ``.dvc/tmp/lock``.

An flock is released by the kernel when its holder dies, so a lock left by a
``kill -9`` is never stale; the file only tells a waiting process who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PreconditionError

_HELD: set[tuple[str, int]] = set()  # (lock file, thread) this process holds


class LockedError(PreconditionError):
    """Another process holds the project's lock (exit 3).

    The hint names ``--wait`` only where the command has it: the CLI, which knows its
    commands, adds it (``with_wait_hint``); the library's callers pass ``wait=True``.
    """

    def __init__(self, message: str, hint: str = "wait for it to finish, then run again") -> None:
        super().__init__(message, hint)

    def with_wait_hint(self) -> LockedError:
        return LockedError(self.message, "wait for it to finish, or pass --wait")


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}: {info['cmd']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another mlopskit process"


def holder(tmp_dir: Path) -> str | None:
    """Who holds the project's lock, or None when it is free."""
    path = tmp_dir / "lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextmanager
def held(
    tmp_dir: Path, *, wait: bool = False, timeout: float = 0.0, journal_ok: bool = False
) -> Iterator[None]:
    """Hold the project's lock; LockedError (exit 3) naming the holder if it is
    taken (``wait`` blocks until it is free).

    Once held, an interrupted operation's journal refuses the caller (exit 3, "run
    mlopskit recover"): a process that waited for the lock of one that was then killed
    must not build on its half-done files. Only ``recover`` passes ``journal_ok``.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / "lock"
    # Re-entrant within a thread (exp promote holds it and commits through commit_state):
    # a second flock on a new descriptor would block on our own lock.
    key = (os.path.realpath(path), threading.get_ident())
    if key in _HELD:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait or time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise LockedError(f"{path}: the project is locked by {_describe(path)}") from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cmd": " ".join(["mlopskit", *sys.argv[1:]])[:200],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        _HELD.add(key)
        try:
            if not journal_ok:
                from . import journal

                journal.refuse_pending(tmp_dir)
            yield
        finally:
            _HELD.discard(key)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
