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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PreconditionError


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
    """Hold the project's lock; exit 3 naming the holder if it is taken (``wait`` blocks).

    Once held, an interrupted operation's journal refuses the caller (exit 3, "run
    mlopskit recover"): a process that waited for the lock of one that was then killed
    must not build on its half-done files. Only ``recover`` passes ``journal_ok``.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / "lock"
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
                raise PreconditionError(
                    f"{path}: the project is locked by {_describe(path)}",
                    "wait for it to finish, or pass --wait",
                ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cmd": " ".join(["mlopskit", *sys.argv[1:]])[:200],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            if not journal_ok:
                from . import journal

                journal.refuse_pending(tmp_dir)
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
