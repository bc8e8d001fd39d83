"""Waiting in tests: on an observable condition, with a timeout that fails the test.

No fixed sleeps for synchronisation: a test waits for a file, a process or a line to
appear, and a timeout is an AssertionError naming what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; raise
    AssertionError naming ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def processes(*words: str) -> dict[int, list[str]]:
    """Live processes (from /proc, zombies left out) whose argv contains every one of
    ``words`` as an element: {pid: argv}."""
    out: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and all(w in argv for w in words):
            out[int(entry.name)] = argv
    return out
