"""C3.19-21: Ctrl-C, SIGTERM and SIGKILL against real git, real DVC and a local remote.

The commands run as ``python -m mlopskit`` subprocesses and get real signals while
DVC is busy: copying a directory into the cache, or objects into the remote.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from mlopskit import errors, scm

from .conftest import Repo, run_cli, run_subprocess

JOURNAL = Path(".dvc/tmp/mlopskit/txn.json")
# Enough small files that DVC spends a second or more copying them.
N_FILES = 3000


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def md5_tree(top: Path) -> dict[str, str]:
    return {p.relative_to(top).as_posix(): md5(p) for p in sorted(top.rglob("*")) if p.is_file()}


def make_files(top: Path, n: int, start: int = 0) -> None:
    top.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (top / f"f{i:05d}.bin").write_bytes(os.urandom(512) + str(i).encode())


def tmp_files(*tops: Path) -> list[Path]:
    return [p for top in tops if top.exists() for p in top.rglob("*.tmp")]


def objects(top: Path) -> list[Path]:
    """Objects stored under their final names in a DVC cache or remote."""
    odb = top / "files" / "md5"
    return [p for p in odb.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]


def index(repo: Repo) -> str:
    return repo.git("ls-files", "--stage")


def read(p: Path) -> str | None:
    return p.read_text() if p.exists() else None


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    # A shell that runs the tests in the background ignores SIGINT for them, children
    # inherit an ignored signal, and Python then installs no Ctrl-C handler. A handled
    # signal is reset to the default on exec, so handle it while the child starts.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "mlopskit", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def signal_when_busy(
    proc: subprocess.Popen[str], odb: Path, sig: int, *, at: int = 50
) -> tuple[str, str]:
    """Send ``sig`` once DVC has written ``at`` new objects into ``odb``; return the output."""
    before = len(objects(odb))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"finished before the signal: {out}{err}")
        if len(objects(odb)) >= before + at:
            break
        time.sleep(0.01)
    else:
        proc.kill()
        raise AssertionError(f"DVC wrote nothing into {odb} in time: {proc.communicate()}")
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def assert_interrupted(code: int | None, err: str) -> None:
    """Exit 130 with one line, and no traceback but the rare "Exception ignored in" report
    of an fsspec progress callback whose ``__del__`` fails while the interpreter exits."""
    assert code == errors.INTERRUPTED, err
    assert "Aborted." in err or "Interrupted." in err
    assert err.count("Traceback (most recent call last)") == err.count("Exception ignored in"), err


def assert_remote_consistent(remote: Path) -> int:
    """Every object in the remote hashes to its name; returns how many there are."""
    found = objects(remote)
    for p in found:
        name = p.parent.name + p.name.removesuffix(".dir")
        assert md5(p) == name, f"{p} does not match its name"
    return len(found)


# --------------------------------------------------------------------------- C3.19


@pytest.mark.parametrize(
    ("sig", "existing"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigint", "sigterm", "sigint-re-add"],
)
def test_signal_during_add_of_a_large_directory(repo: Repo, sig: int, existing: bool) -> None:
    """C3.19: exit 130, sources intact, pointer and .gitignore as before, no journal."""
    big = repo.root / "big"
    if existing:
        make_files(big, 10)
        assert run_cli("data", "add", "big", cwd=repo.root)[0] == 0
        make_files(big, N_FILES, start=10)
    else:
        make_files(big, N_FILES)
    sources = md5_tree(big)
    pointer, gitignore = read(repo.root / "big.dvc"), read(repo.root / ".gitignore")
    status, head, staged = repo.status(), repo.head(), index(repo)
    cache = repo.root / ".dvc" / "cache"

    proc = start_cli("data", "add", "big", cwd=repo.root)
    _, err = signal_when_busy(proc, cache, sig)

    assert_interrupted(proc.returncode, err)
    assert md5_tree(big) == sources
    assert read(repo.root / "big.dvc") == pointer
    assert read(repo.root / ".gitignore") == gitignore
    assert not (repo.root / JOURNAL).exists()
    assert (repo.status(), repo.head(), index(repo)) == (status, head, staged)
    assert tmp_files(cache, repo.root / ".dvc" / "tmp") == []
    if existing:
        # The interrupted add did not leave the project stuck: the next one works.
        res = run_subprocess("data", "add", "big", cwd=repo.root, timeout=120)
        assert res.returncode == 0, res.stderr
        assert repo.status() == ""
        assert read(repo.root / "big.dvc") != pointer


# --------------------------------------------------------------------------- C3.20


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_push_then_rerun(repo: Repo, sig: int) -> None:
    """C3.20: the rerun uploads only what is missing; no wrong or partial object remains."""
    make_files(repo.root / "big", N_FILES)
    assert run_cli("data", "add", "big", cwd=repo.root)[0] == 0
    cache = repo.root / ".dvc" / "cache"
    total = len(objects(cache))
    assert total == N_FILES + 1  # the files and the .dir manifest
    status, head = repo.status(), repo.head()

    proc = start_cli("data", "push", cwd=repo.root)
    _, err = signal_when_busy(proc, repo.remote, sig)

    assert_interrupted(proc.returncode, err)
    assert (repo.status(), repo.head()) == (status, head)
    assert tmp_files(repo.remote, cache) == []
    there = assert_remote_consistent(repo.remote)
    assert 0 < there < total

    res = run_subprocess("data", "push", cwd=repo.root, timeout=120)
    assert res.returncode == 0, res.stderr
    pushed = re.search(r"(\d+) file\(s\) pushed", res.stdout)
    assert pushed, res.stdout
    assert int(pushed.group(1)) == total - there
    assert assert_remote_consistent(repo.remote) == total
    assert tmp_files(repo.remote, cache) == []
    assert repo.status() == status


# --------------------------------------------------------------------------- C3.21

# Dies by SIGKILL once the pointer is written but before git has committed it: either
# instead of mlopskit's commit step, or after `git add`, at the `git commit` call itself.
KILLED_ADD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from unittest import mock

    from mlopskit import data, scm
    from mlopskit.project import Project

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    real_git = scm.git

    def git(root, *args, **kwargs):
        if args and args[0] == "commit":
            die()
        return real_git(root, *args, **kwargs)

    where = sys.argv[1]
    if where == "commit_paths":
        patch = mock.patch("mlopskit.scm.commit_paths", side_effect=die)
    else:
        patch = mock.patch("mlopskit.scm.git", side_effect=git)
    with patch:
        data.add(Project(root=Path.cwd()), ["d.txt"])
    print("not killed")
    """
)


def kill_during_add(repo: Repo, where: str) -> None:
    res = subprocess.run(
        [sys.executable, "-c", KILLED_ADD, where],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    assert tmp_files(repo.root / ".dvc" / "cache") == []
    assert (repo.root / JOURNAL).is_file()
    assert (repo.root / "d.txt.dvc").is_file()
    assert read(repo.root / ".gitignore") == "/d.txt\n"


@pytest.mark.parametrize("where", ["commit_paths", "git-commit"])
def test_sigkill_before_commit_then_recover_completes(repo: Repo, where: str) -> None:
    """C3.21: the journal survives a kill -9; other commands refuse; recover commits."""
    d = repo.write("d.txt", "data\n")
    want, head = md5(d), repo.head()
    kill_during_add(repo, where)

    repo.write("other", "other\n")
    res = run_subprocess("data", "add", "other", cwd=repo.root, timeout=120)
    assert res.returncode == errors.PRECONDITION, res.stderr
    assert "mlopskit recover" in res.stderr
    assert not (repo.root / "other.dvc").exists()

    res = run_subprocess("recover", cwd=repo.root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Completed the interrupted 'data add': committed .gitignore, d.txt.dvc" in res.stdout
    assert repo.git("rev-parse", "HEAD~1").strip() == head
    assert repo.log()[0] == "data: version d.txt"
    files = repo.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == [".gitignore", "d.txt.dvc"]
    assert repo.status() == "?? other\n"
    assert not (repo.root / JOURNAL).exists()
    assert md5(d) == want
    # Nothing left to do, and the refused command now works.
    res = run_subprocess("recover", cwd=repo.root, timeout=120)
    assert res.returncode == 0 and "Nothing to recover" in res.stdout
    assert run_subprocess("data", "add", "other", cwd=repo.root, timeout=120).returncode == 0


def test_sigkill_then_data_edited_recover_reverts(repo: Repo) -> None:
    """C3.21: if the data changed since, the pointer is stale: recover puts files back."""
    repo.write("d.txt", "data\n")
    head, staged = repo.head(), index(repo)
    kill_during_add(repo, "git-commit")
    d = repo.write("d.txt", "edited after the crash\n")

    res = run_subprocess("recover", cwd=repo.root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Undid the interrupted 'data add': restored .gitignore, d.txt.dvc" in res.stdout
    assert not (repo.root / "d.txt.dvc").exists()
    assert not (repo.root / ".gitignore").exists()
    assert d.read_text() == "edited after the crash\n"
    assert not (repo.root / JOURNAL).exists()
    assert (repo.head(), index(repo)) == (head, staged)
    assert repo.status() == "?? d.txt\n"


@pytest.mark.parametrize("where", ["commit_paths", "git-commit"])
def test_ctrl_c_before_commit_rolls_back_at_once(
    repo: Repo, mocker: MockerFixture, where: str
) -> None:
    """C3.21: an in-process KeyboardInterrupt undoes the add: exit 130, no journal."""
    repo.write(".gitignore", "*.log\n")
    repo.git("add", ".gitignore")
    repo.git("commit", "-qm", "ignore logs")
    repo.write("d.txt", "data\n")
    # What the user staged stays staged, even in the .gitignore the add also writes.
    repo.write(".gitignore", "*.log\n*.bak\n")
    repo.write("notes.txt", "mine\n")
    repo.git("add", ".gitignore", "notes.txt")
    head, staged = repo.head(), index(repo)
    if where == "commit_paths":
        mocker.patch("mlopskit.scm.commit_paths", side_effect=KeyboardInterrupt)
    else:
        real_git = scm.git

        def git(root: Path, *args: str, **kwargs: object) -> object:
            if args and args[0] == "commit":
                raise KeyboardInterrupt
            return real_git(root, *args, **kwargs)  # type: ignore[arg-type]

        mocker.patch("mlopskit.scm.git", side_effect=git)

    code, _, err = run_cli("data", "add", "d.txt", cwd=repo.root)

    assert code == errors.INTERRUPTED, err
    assert not (repo.root / JOURNAL).exists()
    assert not (repo.root / "d.txt.dvc").exists()
    assert read(repo.root / ".gitignore") == "*.log\n*.bak\n"
    assert (repo.head(), index(repo)) == (head, staged)
    assert repo.status() == "M  .gitignore\nA  notes.txt\n?? d.txt\n"
    assert (repo.root / "d.txt").read_text() == "data\n"
