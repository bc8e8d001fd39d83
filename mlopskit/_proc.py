"""The one place that starts subprocesses. Arguments are lists, never shell strings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "surrogateescape").strip()


def run(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> Result:
    full_env = dict(os.environ)
    full_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    full_env["LC_ALL"] = "C"
    full_env["LANGUAGE"] = "C"
    if env:
        full_env.update(env)
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        check=False,
    )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)


# How long a stage gets to exit after SIGTERM before its process group is killed.
STOP_GRACE = 5.0


def run_stage(args: Sequence[str], **kwargs: Any) -> int:
    """Run a pipeline stage's command in its own process group; returns its exit code.

    SIGINT or SIGTERM to mlopskit (a KeyboardInterrupt here) stops the whole group,
    SIGTERM and then SIGKILL after ``STOP_GRACE`` seconds (at once on a second signal),
    and waits until no process of it is left before the interrupt goes on: nothing of
    the stage runs, or writes, after mlopskit has exited. A terminal's Ctrl-C reaches
    only mlopskit's group, which then stops the stage the same way.
    """
    if "stdin" not in kwargs and sys.stdin is not None and sys.stdin.isatty():
        # A background process group that reads the terminal would be stopped (SIGTTIN).
        kwargs["stdin"] = subprocess.DEVNULL
    proc = subprocess.Popen(list(args), process_group=0, **kwargs)
    try:
        return proc.wait()
    except BaseException:
        stop_group(proc)
        raise


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group led by ``proc``, SIGKILL it after the grace period (or
    on another interrupt), and return once the leader is reaped and the group is empty.
    Another Ctrl-C or SIGTERM during this cannot cut it short: it only ends the grace."""
    pgid = proc.pid
    deadline = time.monotonic() + STOP_GRACE
    termed = killed = False
    while True:
        try:
            if not termed:
                termed = True
                _killpg(pgid, signal.SIGTERM)
            now = time.monotonic()
            if not killed and now >= deadline:
                killed = True
                deadline = now
            if killed:
                if now > deadline + 30:
                    return  # a process the kernel cannot kill (stuck in I/O)
                _killpg(pgid, signal.SIGKILL)  # again: members forked in between
            if proc.poll() is None:
                proc.wait(timeout=0.05)
            elif not group_alive(pgid):
                return
            else:
                time.sleep(0.02)
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            if not killed:
                deadline = 0.0  # a second Ctrl-C: no more grace
