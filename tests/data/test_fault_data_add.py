"""Issue 11 item 1: ``data add`` interrupted at each of its steps loses nothing.

Every step of ``mlopskit data add`` is reached deterministically through the test-only
hook ``MLOPSKIT_TEST_FAULT=<step>`` (the process announces the step on stderr and waits)
and then gets a real SIGKILL, SIGINT or SIGTERM. One more test times real signals on
what DVC visibly does (its temporary files) with a large file, as a user's Ctrl-C would
land. After each: the data file's md5 is intact, or ``recover`` restores it; HEAD is the
old commit or one new commit holding exactly the pointer files (no half commit); ``git
status`` and ``dvc status`` say what the outcome says; and the next ``data add`` works.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlopskit import errors, journal

from ..conftest import Repo, dvc, run_cli

JOURNAL = Path(".dvc/tmp/mlopskit/txn.json")
SIGNALS = {"kill": signal.SIGKILL, "int": signal.SIGINT, "term": signal.SIGTERM}
# The steps of `data add`, in order (see mlopskit/data.py and _dvc.py).
STEPS = ["add:journal", "add:hashed", "add:cache", "add:cached", "add:pointer", "add:committed"]
# After a SIGKILL at these steps the pointer is whole: recover completes the commit.
COMPLETES = {"add:pointer", "add:committed"}


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def read(p: Path) -> str | None:
    return p.read_text() if p.exists() else None


def tmp_files(repo: Repo) -> list[Path]:
    """DVC's and mlopskit's temporary files, anywhere in the project (cache included)."""
    return [p for p in repo.root.rglob("*.tmp") if ".git" not in p.parts]


def pointer_md5(p: Path) -> str:
    for line in p.read_text().splitlines():
        if line.strip().startswith("- md5:") or line.strip().startswith("md5:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no md5 in {p}")


def start(repo: Repo, *args: str, env: dict[str, str], err: Path) -> subprocess.Popen[bytes]:
    # A shell that runs tests in the background ignores SIGINT for its children, and
    # Python then installs no Ctrl-C handler: handle it while the child starts.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "mlopskit", *args],
            cwd=repo.root,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err.open("wb"),
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupt_at(repo: Repo, step: str, sig: int, target: str = "d.bin") -> tuple[int, str]:
    """Run ``data add target`` until it pauses at ``step``, send ``sig``; (exit, stderr)."""
    return interrupt_command(repo, ["data", "add", target], step, sig, repo.root.parent / "add.err")


def interrupt_command(
    repo: Repo, args: list[str], step: str, sig: int, err: Path
) -> tuple[int, str]:
    """Run ``mlopskit ARGS`` until it pauses at fault point ``step``, send ``sig``;
    (exit code, stderr)."""
    proc = start(repo, *args, env={journal.FAULT_ENV: step}, err=err)
    marker = f"mlopskit-fault: paused at {step}"
    deadline = time.monotonic() + 90
    try:
        while marker not in err.read_text(errors="replace"):
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode} before {step}: {err.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never reached {step}: {err.read_text()}")
            time.sleep(0.01)
        proc.send_signal(sig)
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, err.read_text()


@dataclass
class Before:
    head: str
    status: str
    pointer: str | None
    gitignore: str | None
    md5: str


def snapshot(repo: Repo, data: Path) -> Before:
    return Before(
        repo.head(),
        repo.status(),
        read(repo.root / "d.bin.dvc"),
        read(repo.root / ".gitignore"),
        md5(data),
    )


def assert_sane(repo: Repo, data: Path, before: Before) -> str:
    """The invariants after an interruption (and recover); returns "reverted"/"completed"."""
    assert not (repo.root / JOURNAL).exists()
    assert data.is_file() and not data.is_symlink()
    assert md5(data) == before.md5, "the data file lost its contents"
    assert os.access(data, os.W_OK), "the data file was left read-only (a cache link)"
    assert tmp_files(repo) == []
    pointer = repo.root / "d.bin.dvc"
    if repo.head() == before.head:
        assert read(pointer) == before.pointer
        assert read(repo.root / ".gitignore") == before.gitignore
        assert repo.status() == before.status
        outcome = "reverted"
    else:
        # One whole commit on top of the old one, with exactly the pointer files in it.
        assert repo.git("rev-parse", "HEAD~1").strip() == before.head
        files = sorted(repo.git("show", "--name-only", "--format=", "HEAD").split())
        assert set(files) <= {".gitignore", "d.bin.dvc"} and "d.bin.dvc" in files
        assert pointer_md5(pointer) == before.md5
        assert repo.status() == ""
        outcome = "completed"
    if pointer.exists():  # (with no pointer DVC has nothing to say about d.bin)
        st = dvc(repo.root, "status", "--json", "d.bin.dvc").stdout
        if pointer_md5(pointer) == before.md5:
            assert st.strip() in ("{}", ""), st
        else:
            assert "modified" in st, st  # the old pointer, the new data: DVC says so
    return outcome


def assert_next_add_completes(repo: Repo, data: Path, before: Before) -> None:
    code, out, err = run_cli("data", "add", "d.bin", cwd=repo.root)
    assert code == 0, err
    assert pointer_md5(repo.root / "d.bin.dvc") == before.md5 == md5(data)
    obj = repo.root / ".dvc/cache/files/md5" / before.md5[:2] / before.md5[2:]
    assert md5(obj) == before.md5
    assert repo.status() == ""
    assert not (repo.root / JOURNAL).exists()


def finish(repo: Repo, step: str, sig: int, code: int, err: str) -> str:
    """Check the interrupted process's exit, run recover after a SIGKILL; the outcome."""
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL, err
        assert (repo.root / JOURNAL).is_file()
        rc, out, rerr = run_cli("recover", cwd=repo.root)
        assert rc == 0, rerr
        return "completed" if "Completed" in out else "reverted"
    assert code == errors.INTERRUPTED, err
    assert "Interrupted." in err and "Traceback" not in err, err
    return "completed" if step == "add:committed" else "reverted"


def write_data(repo: Repo, size: int = 1 << 20) -> Path:
    data = repo.root / "d.bin"
    data.write_bytes(os.urandom(size))
    return data


def interrupt_and_check(repo: Repo, data: Path, before: Before, step: str, sig: int) -> None:
    """Stop `data add` at ``step`` with ``sig``, then: the outcome is the one the step and
    signal call for, the project is sane, and the next add completes."""
    code, err = interrupt_at(repo, step, sig)
    expected = finish(repo, step, sig, code, err)
    want = "completed" if step in COMPLETES and sig == signal.SIGKILL else expected
    assert assert_sane(repo, data, before) == want
    assert_next_add_completes(repo, data, before)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS.values(), ids=SIGNALS.keys())
@pytest.mark.parametrize("step", STEPS)
def test_new_file_interrupted_at_each_step(repo: Repo, step: str, sig: int) -> None:
    data = write_data(repo)
    before = snapshot(repo, data)

    interrupt_and_check(repo, data, before, step, sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS.values(), ids=SIGNALS.keys())
@pytest.mark.parametrize("step", STEPS)
def test_modified_file_interrupted(repo: Repo, step: str, sig: int) -> None:
    """Re-adding a changed file: the new contents survive (the old pointer must not win)."""
    data = write_data(repo)
    assert run_cli("data", "add", "d.bin", cwd=repo.root)[0] == 0
    write_data(repo)
    before = snapshot(repo, data)
    assert before.status == ""  # the data is git-ignored, the pointer unchanged

    interrupt_and_check(repo, data, before, step, sig)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cache_type", "sig"),
    [
        ("hardlink", signal.SIGKILL),
        ("hardlink", signal.SIGINT),
        ("hardlink", signal.SIGTERM),
        ("symlink", signal.SIGKILL),
    ],
    ids=["hardlink-kill", "hardlink-int", "hardlink-term", "symlink-kill"],
)
def test_link_cache_interrupted_after_relink_removed_the_file(
    repo: Repo, cache_type: str, sig: int
) -> None:
    """Link caches still relink: DVC deletes the file, then links it from the cache. Killed
    in between, the file is gone from the workspace and only the journal names its
    object; recover (or the rollback on Ctrl-C) brings it back as a plain file."""
    with (repo.root / ".dvc/config.local").open("a") as f:
        f.write(f"[cache]\n    type = {cache_type}\n")
    data = write_data(repo)
    before = snapshot(repo, data)

    proc_code, err = interrupt_at(repo, "add:relink", sig)
    if sig == signal.SIGKILL:
        # The window the journal covers: no file under its name, no pointer.
        assert not data.exists() and not data.is_symlink()
        assert not (repo.root / "d.bin.dvc").exists()
    outcome = finish(repo, "add:relink", sig, proc_code, err)
    if sig == signal.SIGKILL:
        rc, out, _ = run_cli("recover", cwd=repo.root)
        assert "Nothing to recover" in out

    assert outcome == "reverted"
    assert assert_sane(repo, data, before) == "reverted"
    assert data.stat().st_nlink == 1
    assert_next_add_completes(repo, data, before)


def test_recover_without_the_cache_object_refuses_and_keeps_the_journal(repo: Repo) -> None:
    """If the workspace file is gone and so is its object, recover says so (exit 5) and
    deletes nothing: the journal stays for a second try."""
    with (repo.root / ".dvc/config.local").open("a") as f:
        f.write("[cache]\n    type = hardlink\n")
    data = write_data(repo, 1024)
    want = md5(data)
    code, err = interrupt_at(repo, "add:relink", signal.SIGKILL)
    assert code == -signal.SIGKILL, err
    obj = repo.root / ".dvc/cache/files/md5" / want[:2] / want[2:]
    saved = obj.read_bytes()
    obj.chmod(0o644)
    obj.unlink()

    rc, _, rerr = run_cli("recover", cwd=repo.root)
    assert rc == errors.INTEGRITY, rerr
    assert f"d.bin: missing from the workspace, and its cache object {want} is gone" in rerr
    assert (repo.root / JOURNAL).is_file()

    obj.write_bytes(saved)
    rc, out, rerr = run_cli("recover", cwd=repo.root)
    assert rc == 0, rerr
    assert "Restored from the cache: d.bin" in out
    assert md5(data) == want


# ---------------------------------------------------------- real signals, real timing

BIG = 100 * 1024 * 1024


def wait_for_tmp(proc: subprocess.Popen[bytes], pattern: str, where: Path, deadline: float) -> bool:
    """Poll until a DVC temporary file (``.<token>.tmp``) matches ``pattern`` under
    ``where``; False when the process finished first."""
    while time.monotonic() < deadline:
        if any(where.glob(pattern)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_issue_reproduction_ctrl_c_while_a_copy_is_in_the_workspace(repo: Repo) -> None:
    """The issue's reproduction, verbatim: Ctrl-C as soon as DVC has a temporary file in
    the workspace (the relink that deletes big.bin and copies it back from the cache).
    Now no such copy happens: the add completes and big.bin is there."""
    data = repo.root / "big.bin"
    data.write_bytes(os.urandom(BIG))
    want = md5(data)
    err = repo.root.parent / "add.err"
    proc = start(repo, "data", "add", "big.bin", env={}, err=err)
    try:
        in_workspace = wait_for_tmp(proc, ".*.tmp", repo.root, time.monotonic() + 120)
        if in_workspace:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert data.is_file(), "big.bin is gone"
    assert md5(data) == want
    if not in_workspace:
        assert proc.returncode == 0, err.read_text()
        assert repo.status() == ""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "int"])
def test_real_signal_while_dvc_copies_into_the_cache(repo: Repo, sig: int) -> None:
    """A real signal while DVC's copy into the cache is half written (timed on its
    temporary file): the data is intact, no temporary file is left, the next add works."""
    data = repo.root / "d.bin"
    data.write_bytes(os.urandom(BIG))
    before = snapshot(repo, data)
    err = repo.root.parent / "add.err"
    cache = repo.root / ".dvc" / "cache"
    cache.mkdir(exist_ok=True)
    proc = start(repo, "data", "add", "d.bin", env={}, err=err)
    try:
        hit = wait_for_tmp(proc, "files/md5/*/.*.tmp", cache, time.monotonic() + 120)
        assert hit, f"the add finished before DVC's copy was seen: {err.read_text()}"
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    outcome = finish(repo, "add:cache", sig, code, err.read_text())
    assert outcome == "reverted"
    assert assert_sane(repo, data, before) == "reverted"
    assert_next_add_completes(repo, data, before)


@pytest.mark.slow
def test_link_cache_directory_killed_in_the_middle_of_its_relink(repo: Repo) -> None:
    """A directory on a hardlink cache: DVC relinks it file by file. Killed after the first
    file was deleted, recover brings back every missing file from the directory's manifest
    in the cache, as plain files, and the next add completes."""
    with (repo.root / ".dvc/config.local").open("a") as f:
        f.write("[cache]\n    type = hardlink\n")
    top = repo.root / "dd"
    for i in range(5):
        (top / f"sub{i % 2}").mkdir(parents=True, exist_ok=True)
        (top / f"sub{i % 2}" / f"f{i}.bin").write_bytes(os.urandom(2000 + i))
    want = {p.relative_to(top).as_posix(): md5(p) for p in sorted(top.rglob("*")) if p.is_file()}
    head = repo.head()

    code, err = interrupt_at(repo, "add:relink", signal.SIGKILL, target="dd")
    assert code == -signal.SIGKILL, err
    left = {p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()}
    assert len(left) < len(want)  # the moment the journal covers: files are gone

    rc, out, rerr = run_cli("recover", cwd=repo.root)
    assert rc == 0, rerr
    assert "Restored from the cache: dd/" in out
    got = {p.relative_to(top).as_posix(): md5(p) for p in sorted(top.rglob("*")) if p.is_file()}
    assert got == want
    assert all(p.stat().st_nlink == 1 for p in top.rglob("*") if p.is_file())
    assert repo.head() == head
    assert not (repo.root / "dd.dvc").exists()
    assert sorted(repo.status().splitlines()) == sorted(f"?? dd/{r}" for r in want)
    assert tmp_files(repo) == []
    code, _, err = run_cli("data", "add", "dd", cwd=repo.root)
    assert code == 0, err
    assert repo.status() == ""
