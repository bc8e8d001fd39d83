"""C2.13-14: mlopskit's project lock, with real processes.

A holder process takes the lock the way every command does (``project_lock.held``); the
commands under test run as ``python -m mlopskit`` subprocesses against real git and DVC.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlopskit import errors

from .._wait import wait_for
from ..conftest import Repo, run_subprocess

LOCK_DIR = Path(".dvc/tmp/mlopskit")

HOLDER = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from mlopskit import project_lock

    with project_lock.held(Path(".dvc/tmp/mlopskit")):
        print("held", flush=True)
        time.sleep(600)  # held until the test kills it
    """
)


def _read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the holder did not report in time"
    return proc.stdout.readline().strip()


@contextmanager
def holding(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A separate process that holds the project's lock until it is killed."""
    # The extra argument shows up as the holder's command in the lock file.
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "holder-of-the-lock"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc)
        assert line == "held", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


def _wait_until_lock_opened(proc: subprocess.Popen[str], lock_file: Path) -> None:
    """Wait until ``proc`` has the lock file open, i.e. is polling for the lock."""
    fds = Path(f"/proc/{proc.pid}/fd")

    def opened() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return any(os.path.realpath(fd) == str(lock_file.resolve()) for fd in fds.iterdir())
        except OSError:  # an fd closed while we looked
            return False

    wait_for(opened, 20, "the waiting command to open the lock file")


def _unchanged(repo: Repo, status: str, head: str) -> None:
    assert repo.status() == status
    assert repo.head() == head
    assert not (repo.root / "x.dvc").exists()
    assert not (repo.root / ".gitignore").exists()
    assert not (repo.root / LOCK_DIR / "txn.json").exists()


@pytest.mark.parametrize("command", [["data", "add", "x"], ["data", "push"], ["recover"]])
def test_second_command_is_refused_naming_the_holder(repo: Repo, command: list[str]) -> None:
    """C2.13: while another process holds the lock, a command exits 3 at once."""
    repo.write("x", "payload\n")
    status, head = repo.status(), repo.head()
    with holding(repo.root) as holder:
        # The holder never lets go: a command that waited for it would time out here.
        res = run_subprocess(*command, cwd=repo.root, timeout=60)
        assert res.returncode == errors.PRECONDITION, res.stderr
        assert f"pid {holder.pid} " in res.stderr
        assert "holder-of-the-lock" in res.stderr
        assert "--wait" in res.stderr
        assert "Traceback" not in res.stderr
        _unchanged(repo, status, head)
        assert holder.poll() is None


def test_wait_blocks_until_the_holder_is_gone(repo: Repo) -> None:
    """C2.13: with --wait the second command blocks, then runs once the lock is free."""
    repo.write("x", "payload\n")
    status, head = repo.status(), repo.head()
    with holding(repo.root) as holder:
        waiter = subprocess.Popen(
            [sys.executable, "-m", "mlopskit", "data", "add", "x", "--wait"],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_lock_opened(waiter, repo.root / LOCK_DIR / "lock")
            time.sleep(0.5)  # not synchronisation: a window to misbehave in, while blocked
            assert waiter.poll() is None, waiter.communicate()
            _unchanged(repo, status, head)
            holder.kill()
            out, err = waiter.communicate(timeout=60)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
    assert waiter.returncode == 0, err
    assert "Versioned x" in out
    assert repo.log()[0] == "data: version x"
    files = repo.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == [".gitignore", "x.dvc"]
    assert repo.status() == ""


def test_lock_left_by_sigkill_does_not_block(repo: Repo) -> None:
    """C2.14: the kernel drops a killed holder's flock; its lock file is only information."""
    repo.write("x", "payload\n")
    with holding(repo.root) as holder:
        pid = holder.pid
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=20) == -signal.SIGKILL
    lock_file = repo.root / LOCK_DIR / "lock"
    # The dead holder never cleaned up: the file still names it.
    assert json.loads(lock_file.read_text())["pid"] == pid
    res = run_subprocess("data", "add", "x", cwd=repo.root, timeout=60)
    assert res.returncode == 0, res.stderr
    assert repo.status() == ""
    # Released normally this time: nothing names a holder any more.
    assert lock_file.read_text() == ""


def test_lock_file_naming_a_dead_pid_does_not_block(repo: Repo) -> None:
    """C2.14: a lock file written by hand for a dead process (no flock held) is ignored."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_dir = repo.root / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "lock").write_text(
        json.dumps({"pid": dead.pid, "host": os.uname().nodename, "cmd": "mlopskit data add"})
    )
    repo.write("x", "payload\n")
    res = run_subprocess("data", "add", "x", cwd=repo.root, timeout=60)
    assert res.returncode == 0, res.stderr
    assert repo.status() == ""
