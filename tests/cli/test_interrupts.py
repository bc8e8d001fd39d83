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

from mlopskit import _proc, errors, scm

from .._wait import wait_for
from ..conftest import Repo, git, run_cli, run_subprocess
from ..core.test_project_lock import _wait_until_lock_opened

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


# ------------------------------------------------ issue 11 item 5: signals during a stage

# A stage that starts a child, records both pids, and writes its output (and the child
# its own file) only after a delay: written after mlopskit exited means not stopped.
SLOW_STAGE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pathlib import Path

    if sys.argv[1:] == ["child"]:
        time.sleep(1.5)
        Path("late-child.txt").write_text("child")
        sys.exit(0)
    child = subprocess.Popen([sys.executable, "slow.py", "child"])
    Path("pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(1.5)
    Path("out.txt").write_text("late")
    child.wait()
    """
)


def pgid(pid: int) -> int | None:
    """The process group of a live process (from /proc: "pid (comm) state ppid pgrp ...")."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[2])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint", "ctrl-c-to-the-group"],
)
def test_signal_during_a_stage_stops_it_and_waits(repo: Repo, sig: int, to_group: bool) -> None:
    """Item 5: SIGTERM (what CI sends) or SIGINT to mlopskit, or a terminal's Ctrl-C to its
    whole process group: exit 130, every process of the stage is gone when mlopskit has
    exited, and nothing is written afterwards."""
    repo.write("slow.py", SLOW_STAGE)
    repo.write(
        "dvc.yaml",
        "stages:\n  slow:\n    cmd: python slow.py\n    deps: [slow.py]\n    outs: [out.txt]\n",
    )
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Its own process group, as a shell's foreground job: the group can get Ctrl-C.
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlopskit", "repro"],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    pids_file = repo.root / "pids"
    deadline = time.monotonic() + 60
    while not (pids_file.exists() and len(pids_file.read_text().split()) == 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the stage never started"
        time.sleep(0.02)
    pids = [int(p) for p in pids_file.read_text().split()]
    group = pgid(pids[0])  # the stage's own process group (mlopskit's is proc.pid)
    assert group not in (None, proc.pid)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == errors.INTERRUPTED, err
    assert "Interrupted." in err
    assert [p for p in pids if alive(p)] == []
    # No process of the stage's group is left, so none can write after mlopskit exited
    # (the stage and its child write only after 1.5 s): nothing was written before.
    assert not _proc.group_alive(group)
    assert not (repo.root / "out.txt").exists()
    assert not (repo.root / "late-child.txt").exists()
    assert not (repo.root / "dvc.lock").exists()
    # The project is not stuck: the next run completes.
    pids_file.unlink()
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == 0, err
    assert (repo.root / "out.txt").read_text() == "late"


# ------------------------------------------------ issue 11 item 7: the journal is a barrier


@pytest.mark.parametrize(
    "args",
    [
        ("commit", "-m", "half"),
        ("data", "add", "other"),
        ("data", "push"),
        ("data", "pull"),
        ("params", "set", "train.lr=0.5"),
        ("stage", "add", "s", "--cmd", "echo hi"),
        ("repro",),
        ("remote", "add", "r2", "../r2"),
        ("model", "register", "m", "--version", "v1.0.0"),
        ("model", "promote", "m", "v1.0.0", "--stage", "prod"),
        ("model", "unpromote", "m", "--stage", "prod"),
        ("model", "deprecate", "m"),
        ("exp", "run", "-S", "train.lr=0.2"),
        ("exp", "sweep", "-S", "train.lr=0.2,0.3"),
        ("exp", "promote", "e1"),
        ("data", "update"),
        ("ci", "generate"),
        ("stage", "remove", "s"),
        ("gate", "add", "accuracy >= 0.5", "--force"),
        ("gc", "--yes"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_every_mutating_command_refuses_while_a_journal_waits(
    repo: Repo, args: tuple[str, ...]
) -> None:
    """Item 7: after a kill in the middle of `data add`, the half-done pointer must not be
    committed, pushed or built on: every command that changes the repository or the
    remote exits 3 naming `mlopskit recover`, and changes nothing."""
    d = repo.write("d.txt", "data\n")
    repo.write("other", "other\n")
    kill_during_add(repo, "commit_paths")
    head, status = repo.head(), repo.status()
    params, config = read(repo.root / "params.yaml"), read(repo.root / ".dvc" / "config")

    code, _, err = run_cli(*args, cwd=repo.root)

    assert code == errors.PRECONDITION, err
    assert "interrupted 'data add' of d.txt left a journal" in err
    assert "mlopskit recover" in err
    assert (repo.head(), repo.status()) == (head, status)
    assert read(repo.root / "params.yaml") == params
    assert read(repo.root / ".dvc" / "config") == config
    assert not (repo.root / "dvc.yaml").exists()
    assert not (repo.root / "other.dvc").exists()
    assert objects(repo.remote) == []
    # Read-only commands still work, and recover gets the project going again.
    assert run_cli("data", "status", "--no-remote", cwd=repo.root)[0] == 0
    code, out, err = run_cli("recover", cwd=repo.root)
    assert code == 0, err
    assert "Completed the interrupted 'data add'" in out
    assert md5(d) == hashlib.md5(b"data\n").hexdigest()
    assert run_cli("data", "add", "other", cwd=repo.root)[0] == 0


def test_exp_fetch_refuses_while_a_journal_waits(repo: Repo, origin: Path) -> None:
    """Item 7: `exp fetch` writes experiment refs into the repository, so it is a barrier
    like every other command that changes it: exit 3, no ref fetched."""
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "HEAD:refs/exps/ab/cdef/e1")
    repo.write("d.txt", "data\n")
    kill_during_add(repo, "commit_paths")

    code, _, err = run_cli("exp", "fetch", cwd=repo.root)

    assert code == errors.PRECONDITION, err
    assert "interrupted 'data add' of d.txt left a journal" in err
    assert repo.git("for-each-ref", "refs/exps") == ""
    assert run_cli("recover", cwd=repo.root)[0] == 0
    code, out, err = run_cli("exp", "fetch", cwd=repo.root)
    assert code == 0 and "Fetched 1 experiment ref(s)." in out, err


def test_init_force_refuses_a_journal_before_writing_anything(tmp_path: Path) -> None:
    """Item 7: `init --force` on a project with a journal waiting exits 3 before it
    rewrites mlopskit.yaml, the DVC config or the workflows. (Run without --remote again,
    init would write `ci.remote.kind: none` over `local`.)"""
    root = tmp_path / "p"
    (tmp_path / "store").mkdir()
    assert run_cli("init", "p", "--remote", "../store", cwd=tmp_path)[0] == 0
    assert "kind: local" in (root / "mlopskit.yaml").read_text()
    j = write_journal(Repo(root, tmp_path / "unused"))
    mine = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }
    head, status = git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain")

    code, _, err = run_cli("init", "p", "--force", cwd=tmp_path)

    assert code == errors.PRECONDITION, err
    assert "left a journal" in err and "mlopskit recover" in err
    now = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }
    assert now == mine  # mlopskit.yaml, .dvc/config, workflows: byte for byte
    assert (git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain")) == (head, status)
    assert j.is_file()


def write_journal(repo: Repo, **doc: object) -> Path:
    import json

    j = repo.root / JOURNAL
    j.parent.mkdir(parents=True, exist_ok=True)
    base = {"op": "data add", "message": "m", "targets": ["d.txt"], "before": {}, "index": {}}
    j.write_text(json.dumps({**base, **doc}))
    return j


@pytest.mark.parametrize(
    "where",
    ["dotdot", "absolute", "link-out", "git-dir", "dvc-dir", "not-a-pointer", "data-dotdot"],
)
def test_recover_refuses_a_journal_that_points_outside(
    repo: Repo, tmp_path: Path, where: str
) -> None:
    """Item 7: a hand-written journal must not make recover write outside the project
    (or into .git): exit 2, and nothing written anywhere."""
    import base64

    outside = tmp_path / "outside"
    outside.mkdir()
    evil = base64.b64encode(b"pwned\n").decode()
    if where == "dotdot":
        doc: dict[str, object] = {"before": {"../outside/evil.txt": evil}}
    elif where == "absolute":
        doc = {"before": {str(outside / "evil.txt"): evil}}
    elif where == "link-out":
        (repo.root / "link").symlink_to(outside)
        doc = {"before": {"link/evil.txt": evil}}
    elif where == "git-dir":
        doc = {"before": {".git/hooks/post-commit": evil}}
    elif where == "dvc-dir":
        doc = {"before": {".dvc/config": evil}}
    elif where == "not-a-pointer":
        doc = {"before": {"src/evil.py": evil}}
    else:
        doc = {"data": {"../outside/evil.txt": {"md5": "0" * 32, "size": 1}}}
    j = write_journal(repo, **doc)
    head, status, staged = repo.head(), repo.status(), index(repo)

    code, _, err = run_cli("recover", cwd=repo.root)

    assert code == errors.USAGE, err
    assert "mlopskit did not write this journal; nothing was changed" in err
    assert list(outside.iterdir()) == []
    assert not (repo.root / ".git" / "hooks" / "post-commit").exists()
    assert "pwned" not in (repo.root / ".dvc" / "config").read_text()
    assert not (repo.root / "src").exists()
    assert (repo.head(), repo.status(), index(repo)) == (head, status, staged)
    assert j.is_file()  # left for the user to inspect


def test_ctrl_c_right_after_git_commit_keeps_the_whole_commit(
    repo: Repo, mocker: MockerFixture
) -> None:
    """No half commit: an interrupt that lands once `git commit` has gone through must not
    roll the work tree back under the new commit (HEAD with the pointer, the file deleted)."""
    d = repo.write("d.txt", "data\n")
    head = repo.head()
    real_git = scm.git

    def git(root: Path, *args: str, **kwargs: object) -> object:
        res = real_git(root, *args, **kwargs)  # type: ignore[arg-type]
        if args and args[0] == "commit":
            raise KeyboardInterrupt
        return res

    mocker.patch("mlopskit.scm.git", side_effect=git)

    code, _, err = run_cli("data", "add", "d.txt", cwd=repo.root)

    assert code == errors.INTERRUPTED, err
    assert repo.git("rev-parse", "HEAD~1").strip() == head
    assert sorted(repo.git("show", "--name-only", "--format=", "HEAD").split()) == [
        ".gitignore",
        "d.txt.dvc",
    ]
    assert repo.status() == ""
    assert (repo.root / "d.txt.dvc").is_file()
    assert not (repo.root / JOURNAL).exists()
    assert md5(d) == hashlib.md5(b"data\n").hexdigest()


def paused_add(
    repo: Repo, step: str, target: str = "d.txt"
) -> tuple[subprocess.Popen[bytes], Path]:
    """``data add target`` stopped at ``step`` (the test-only fault hook), still alive."""
    err = repo.root.parent / "paused-add.err"
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlopskit", "data", "add", target],
            cwd=repo.root,
            env={**os.environ, "MLOPSKIT_TEST_FAULT": step},
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
    deadline = time.monotonic() + 60
    while f"paused at {step}" not in err.read_text():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc, err


def test_a_running_add_is_waited_for_and_its_journal_checked_after(repo: Repo) -> None:
    """Item 7, the race: `commit --wait` while an add runs waits for the project lock; when
    the add is killed and the lock comes free, the journal it left still refuses the
    commit. Without --wait, the message says the add is in progress, not interrupted."""
    repo.write("d.txt", "data\n")
    head = repo.head()
    adder, _ = paused_add(repo, "add:pointer")
    try:
        code, _, err = run_cli("commit", "-m", "now", cwd=repo.root)
        assert code == errors.PRECONDITION, err
        assert "a 'data add' of d.txt is in progress (pid" in err
        assert "or pass --wait" in err

        waiter = subprocess.Popen(
            [sys.executable, "-m", "mlopskit", "commit", "-m", "waited", "--wait"],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_lock_opened(waiter, repo.root / ".dvc" / "tmp" / "mlopskit" / "lock")
            assert waiter.poll() is None, waiter.communicate()  # it waits for the lock
            adder.kill()
            adder.wait()
            _, werr = waiter.communicate(timeout=60)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
    finally:
        if adder.poll() is None:
            adder.kill()
            adder.wait()

    assert waiter.returncode == errors.PRECONDITION, werr
    assert "an interrupted 'data add' of d.txt left a journal" in werr
    assert repo.head() == head
    code, out, err = run_cli("recover", cwd=repo.root)
    assert code == 0, err
    assert "Completed the interrupted 'data add'" in out


# Ignores SIGTERM and SIGINT and never ends by itself (gone means killed). It records, on
# its own clock, when SIGTERM came and, every 50 ms, that it is still running.
STUBBORN_STAGE = textwrap.dedent(
    """
    import os, signal, time
    from pathlib import Path

    def on_term(signum, frame):
        Path("term.new").write_text(repr(time.time()))
        os.replace("term.new", "term")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Path("pids").write_text(str(os.getpid()))
    while True:
        Path("beat.new").write_text(repr(time.time()))
        os.replace("beat.new", "beat")
        time.sleep(0.05)
    """
)


def stamp(p: Path) -> float | None:
    return float(p.read_text()) if p.exists() else None


def start_stubborn(repo: Repo) -> tuple[subprocess.Popen[str], int]:
    """`mlopskit repro` running STUBBORN_STAGE; returns it and the stage's pid."""
    repo.write("stubborn.py", STUBBORN_STAGE)
    repo.write(
        "dvc.yaml",
        "stages:\n  s:\n    cmd: python stubborn.py\n    deps: [stubborn.py]\n"
        "    outs: [out.txt]\n",
    )
    proc = start_cli("repro", cwd=repo.root)
    pids = repo.root / "pids"

    def started() -> str | None:
        assert proc.poll() is None, proc.communicate()
        return pids.read_text() if pids.exists() else None

    return proc, int(wait_for(started, 60, "the stage to start"))


def stopped_stubborn(
    repo: Repo, proc: subprocess.Popen[str], pid: int, *, again: bool
) -> tuple[float, float]:
    """Signal mlopskit once (``again``: twice, the second once the stage got SIGTERM).
    Checks the order of events: the stage gets SIGTERM while mlopskit waits for it, then
    it is gone, then mlopskit exits 130 with the lock released. Returns when the stage got
    SIGTERM and when it last ran, on the stage's own clock."""
    from mlopskit import project_lock

    try:
        proc.send_signal(signal.SIGINT if again else signal.SIGTERM)
        term = wait_for(lambda: stamp(repo.root / "term"), 30, "the stage to get SIGTERM")
        # The stage ignored it: mlopskit is in the grace period, waiting for its group.
        assert proc.poll() is None and alive(pid)
        if again:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == errors.INTERRUPTED, err
    assert not alive(pid)  # it never ends by itself: it was killed before mlopskit exited
    assert project_lock.holder(repo.project().tmp_dir) is None
    assert not (repo.root / "dvc.lock").exists()
    last = stamp(repo.root / "beat")
    assert last is not None
    return term, last


@pytest.mark.slow
def test_a_stage_that_ignores_sigterm_is_killed_when_the_grace_period_ends(repo: Repo) -> None:
    """C3.23: one SIGTERM (a CI cancel) to mlopskit: the stage gets SIGTERM, ignores it,
    runs on through the grace period (5 s) and is then killed (SIGKILL to the group);
    mlopskit exits 130 only after that."""
    proc, pid = start_stubborn(repo)
    term, last = stopped_stubborn(repo, proc, pid, again=False)
    # On the stage's own clock: it was still running most of the grace period later.
    assert last - term >= _proc.STOP_GRACE - 1, (term, last)


@pytest.mark.slow
def test_double_ctrl_c_kills_a_stage_that_ignores_sigterm(repo: Repo) -> None:
    """C3.23: a stage that ignores SIGTERM gets the grace period; a second Ctrl-C ends it
    at once (SIGKILL to the group). Exit 130, the stage gone, the lock released."""
    proc, pid = start_stubborn(repo)
    term, last = stopped_stubborn(repo, proc, pid, again=True)
    # Killed well inside the grace period (which, run out, lasts at least STOP_GRACE - 1 s
    # on this clock: the test above): the second Ctrl-C cut it short.
    assert last - term < _proc.STOP_GRACE - 1, (term, last)
