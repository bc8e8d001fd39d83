"""``--wait`` wherever the project lock is taken (issue 10.5, C2.13).

Which commands take the lock is found at run time, not from a hand list: every command
of the click tree runs while a real process holds the lock, and those that report the
lock are the lock takers. Each of them must accept ``--wait``, name it in its message,
and with ``--wait`` block until the holder lets go, then do its work.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest

from mlopskit import errors
from mlopskit.cli import cli

from .._wait import wait_for
from ..conftest import Repo, _copy, run_cli

LOCK_FILE = Path(".dvc/tmp/mlopskit/lock")
LOCKED = "the project is locked by"

# Holds the lock until a line arrives on stdin (or 120 s pass: a test that forgets it
# fails instead of hanging).
HOLDER = textwrap.dedent(
    """
    import select, sys
    from pathlib import Path
    from mlopskit import project_lock

    with project_lock.held(Path(".dvc/tmp/mlopskit")):
        print("held", flush=True)
        select.select([sys.stdin], [], [], 120)
    print("released", flush=True)
    """
)

# Arguments that take each command to the point where it would take the lock, if it
# does (a dirty tree for commit, an existing file for data add...). Commands that
# never take it get arguments that make them cheap.
ARGS: dict[str, list[str]] = {
    "ci generate": [],
    "ci check": [],
    "monitor drift": ["--current", "data/raw/data.csv"],
    "data add": ["extra.txt"],
    "data push": [],
    "data pull": [],
    "data status": ["--no-remote"],
    "data schema infer": ["data/raw/data.csv", "-o", "{tmp}/schema.yaml"],
    "data validate": ["data/raw/data.csv", "--schema", "data/schema.yaml"],
    "data update": [],
    "data check-updates": [],
    "remote add": ["spare", "{tmp}/spare-remote", "--local"],
    "remote list": [],
    "exp run": ["-n", "waited", "-S", "train.C=0.5"],
    "exp sweep": ["-S", "train.no_such_param=1,2"],
    "exp plan": ["--grid", "train.C=0.5,1.0"],
    "exp fetch": [],
    "exp show": [],
    "exp promote": ["waited"],
    "params show": [],
    "params set": ["train.max_iter=400"],
    "params diff": [],
    "metrics show": [],
    "metrics diff": [],
    "metrics history": [],
    "check": [],
    "report": ["--no-plots"],
    "model register": ["model"],
    "model promote": ["model", "v0.0.1", "--stage", "dev"],
    "model unpromote": ["model", "--stage", "dev"],
    "model deprecate": ["no-such-model"],
    "model list": [],
    "model show": ["model"],
    "model card": ["model", "--out", "{tmp}/card.md"],
    "model get": ["no-such-model"],
    "serve": ["no-such-model"],
    "model release": ["no-such-model@v0.0.1", "--dir", "{tmp}"],
    "model describe-tag": ["model@v0.0.1"],
    "init": ["{tmp}/another"],
    "quickstart": ["{tmp}/quick", "--dataset", "no-such-dataset"],
    "recover": [],
    "validate": [],
    "commit": ["-m", "waited commit"],
    "repro": ["--dry"],
    "stage add": ["extra", "--cmd", "cat extra.txt", "-d", "extra.txt"],
    "stage list": [],
    "gate list": [],
    "gate add": ["accuracy >= 0.1"],
    "gate remove": ["accuracy >= 0.1"],
    "stage remove": ["evaluate"],
    "doctor": ["--timeout", "2"],
    "gc": [],
}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def _read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the holder did not answer in time"
    return proc.stdout.readline().strip()


@contextmanager
def holding(root: Path) -> Iterator[subprocess.Popen[str]]:
    """Another real process that holds the project's lock until told to let go."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _read_line(proc) == "held", proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert _read_line(holder) == "released"


def _has_lock_open(proc: subprocess.Popen[str], lock_file: Path) -> bool:
    try:
        return any(
            os.path.realpath(fd) == str(lock_file.resolve())
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir()
        )
    except OSError:  # an fd closed while we looked
        return False


def _wait_until_polling(proc: subprocess.Popen[str], lock_file: Path) -> None:
    """Until ``proc`` has the lock file open, i.e. waits for the lock (fails after 60 s)."""

    def polling() -> bool:
        assert proc.poll() is None, proc.communicate()
        return _has_lock_open(proc, lock_file)

    wait_for(polling, 60, "the waiting command to reach the lock")


def _argv(command: str, tmp: Path) -> list[str]:
    return [*command.split(), *(a.replace("{tmp}", str(tmp)) for a in ARGS[command])]


def test_every_command_has_arguments_here() -> None:
    """A new command must get its arguments above, so that the enumeration sees it."""
    assert {" ".join(c) for c in _commands(cli)} == set(ARGS)


def _discover(repo: Repo, tmp: Path) -> dict[str, str]:
    """command -> its stderr, for each command that reports the held lock."""
    found: dict[str, str] = {}
    with holding(repo.root):
        for command in ARGS:
            code, _out, err = run_cli(*_argv(command, tmp), cwd=repo.root)
            if LOCKED in err:
                assert code == errors.PRECONDITION, (command, err)
                found[command] = err
            assert "Traceback" not in err, (command, err)
    return found


def _prepare(repo: Repo) -> None:
    # Untracked data: `data add` has a target and `commit` a dirty tree to look at.
    repo.write("extra.txt", "rows\n")


@pytest.mark.slow
def test_lock_takers_accept_wait_and_wait(trained: Repo, tmp_path: Path) -> None:
    _prepare(trained)
    out = tmp_path / "outputs"
    out.mkdir()
    fresh = _copy(trained.root, tmp_path / "fresh", trained.remote, tmp_path / "fresh-remote")
    takers = _discover(trained, out)
    # The lock takers we know today are among them (more may come: they get checked too).
    assert {"data add", "repro", "commit", "params set", "exp run"} <= set(takers)
    for command, err in takers.items():
        params = {p.name for p in cli_command(command).params}
        assert "wait" in params, f"{command} takes the lock but has no --wait"
        assert "--wait" in err, (command, err)
        assert len(err.strip().splitlines()) == 1, err

    # With --wait, each blocks while the lock is held, then runs, on a fresh copy.
    for command in takers:
        if command == "exp promote":
            # `exp run` left its results in the workspace; promote wants a clean tree.
            fresh.git("checkout", "--", ".")
        if command == "commit":
            # `params set` changed train.max_iter: a commit of it before retraining would
            # pair it with the old dvc.lock, which `commit` refuses (exit 3).
            code, _, err = run_cli("repro", cwd=fresh.root)
            assert code == 0, err
        with holding(fresh.root) as holder:
            waiter = subprocess.Popen(
                [sys.executable, "-m", "mlopskit", *_argv(command, out), "--wait"],
                cwd=fresh.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                _wait_until_polling(waiter, fresh.root / LOCK_FILE)
                assert waiter.poll() is None
                head = fresh.head()
                release(holder)
                stdout, stderr = waiter.communicate(timeout=300)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
                    waiter.communicate()
        assert waiter.returncode == 0, (command, stdout, stderr)
        assert LOCKED not in stderr
        _effect(fresh, command, head, stdout)


def _effect(repo: Repo, command: str, head: str, stdout: str) -> None:
    """What each command did once it had the lock (for the ones this suite knows)."""
    if command == "data add":
        assert repo.log()[0] == "data: version extra.txt"
        assert (repo.root / "extra.txt.dvc").is_file()
    elif command == "params set":
        assert "max_iter: 400" in (repo.root / "params.yaml").read_text()
    elif command == "stage add":
        assert "cat extra.txt" in (repo.root / "dvc.yaml").read_text()
    elif command == "exp run":
        assert repo.git("for-each-ref", "refs/exps").count("/waited") == 1
    elif command == "exp promote":
        assert repo.log()[0] == "exp: promote waited"
    elif command == "commit":
        assert repo.head() != head
    elif command == "gate add":
        assert "accuracy >= 0.1" in (repo.root / "mlopskit.yaml").read_text()
    elif command == "gate remove":
        assert "accuracy >= 0.1" not in (repo.root / "mlopskit.yaml").read_text()
    elif command == "stage remove":
        assert "evaluate:" not in (repo.root / "dvc.yaml").read_text()
    elif command == "recover":
        assert "Nothing to recover" in stdout


def cli_command(command: str) -> click.Command:
    cmd: click.Command = cli
    for part in command.split():
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[part]
    return cmd


def test_lock_message_names_wait_only_where_it_exists(repo: Repo) -> None:
    """A command without --wait (a throwaway one, registered for the test) and the
    library get "wait for it to finish" only; a command with it also "or pass --wait"."""
    from mlopskit import project_lock

    @click.command("lock-probe")
    def probe() -> None:
        with project_lock.held(repo.root / ".dvc" / "tmp" / "mlopskit"):
            pass

    cli.add_command(probe)
    try:
        with holding(repo.root):
            code, _out, err = run_cli("lock-probe", cwd=repo.root)
            assert code == errors.PRECONDITION
            assert LOCKED in err
            assert "wait for it to finish" in err
            assert "--wait" not in err
            with pytest.raises(project_lock.LockedError) as caught:
                with project_lock.held(repo.root / ".dvc" / "tmp" / "mlopskit"):
                    pass
            assert "--wait" not in str(caught.value)
            code, _out, err = run_cli("recover", cwd=repo.root)
            assert code == errors.PRECONDITION
            assert "or pass --wait" in err
    finally:
        cli.commands.pop("lock-probe")
