"""Every failure gets its own exit code and a one-line message; 70 is kept for bugs.

The disk failures are real: a read-only bind mount or a small tmpfs over the DVC remote
or the DVC cache (root may write through a chmod'ed directory, not through a read-only
mount). They need the privilege to mount, which the test environment has; where it is
missing they are skipped, saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlopskit import errors

from ..conftest import Repo, dvc, run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def _mount(*args: str) -> None:
    res = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount here ({res.stderr.strip() or res.returncode}): needs root")


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=True)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for everyone, root included (a read-only bind mount)."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        _umount(path)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted over ``path`` (its content is hidden meanwhile)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield
    finally:
        _umount(path)


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Nothing may be created in ``path``, root included (``chattr +i``: EPERM)."""
    res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot chattr +i here ({res.stderr.strip()}): needs root on ext4/xfs")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=True)


def _files(top: Path) -> list[str]:
    return sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())


# -- 70: an internal bug ---------------------------------------------------------------


def test_internal_bug_exits_70_with_report_hint_and_crash_log(repo: Repo) -> None:
    """A library function that raises a plain RuntimeError (not an MlopskitError) is a bug:
    exit 70 in a real process, never 3 (precondition refused), with "please report" and
    the crash log's path; the log holds the stack."""
    script = (
        "import sys\n"
        "from mlopskit import params\n"
        "def boom(*a, **k):\n"
        "    raise RuntimeError('kaput: an impossible state')\n"
        "params.show = boom\n"
        "from mlopskit.cli import main\n"
        "sys.exit(main(['params', 'show']))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=repo.root, capture_output=True, text=True, check=False
    )
    assert res.returncode == errors.INTERNAL == 70
    assert errors.INTERNAL != errors.PRECONDITION
    err = res.stderr
    assert "unexpected RuntimeError: kaput" in err and "please report" in err
    assert "Traceback" not in err and err.count("\n") == 1
    log = Path(err.split(" with ", 1)[1].split(" (--traceback", 1)[0])
    assert log.is_file() and log.name == "crash.log"
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: kaput: an impossible state" in text


def test_exit_codes_are_documented() -> None:
    """README's Exit codes table has a row for 70 (bugs) and 3 no longer mentions them."""
    table = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {r.split("|")[1].strip(): r for r in table.splitlines() if r.startswith("| ")}
    assert "please report" in rows["70"] and "crash log" in rows["70"]
    assert "please report" not in rows["3"] and "internal" not in rows["3"]


def test_git_error_lives_in_errors() -> None:
    from mlopskit import scm

    assert scm.GitError is errors.GitError
    assert issubclass(errors.GitError, errors.MlopskitError)
    with pytest.raises(errors.GitError, match="git rev-parse failed"):
        scm.git(Path.cwd(), "rev-parse", "--verify", "no-such-rev")


# -- data status after `dvc move` --------------------------------------------------------


def test_data_status_after_dvc_move_shows_the_rename(repo: Repo) -> None:
    repo.write("data/a.csv", "x,y\n1,2\n")
    assert run_cli("data", "add", "data/a.csv", cwd=repo.root)[0] == 0
    dvc(repo.root, "move", "data/a.csv", "data/b.csv")
    code, out, err = run_cli("data", "status", "--no-remote", cwd=repo.root)
    assert code == 0, err
    assert "data/b.csv" in out and "renamed from data/a.csv (needs git commit)" in out
    code, out, err = run_cli("data", "status", "--json", cwd=repo.root)
    assert code == 0, err
    entries = json.loads(out)["entries"]
    assert "renamed from data/a.csv (needs git commit)" in entries["data/b.csv"]
    assert "data/a.csv" not in entries


# -- a read-only or full remote: 4 ------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "reason"),
    [(read_only, "read-only file system"), (immutable, "operation not permitted")],
)
def test_push_to_read_only_remote_is_exit_4_naming_it(
    repo: Repo, guard: object, reason: str
) -> None:
    """A read-only mount (EROFS) and a folder nobody may write in (EPERM; what a chmod'ed
    folder gives a user who is not root, as EACCES) are both the remote's fault."""
    repo.write("data/a.csv", "x,y\n1,2\n")
    assert run_cli("data", "add", "data/a.csv", cwd=repo.root)[0] == 0
    head = repo.head()
    assert callable(guard)
    with guard(repo.remote):
        code, _, err = run_cli("data", "push", cwd=repo.root)
        assert code == errors.REMOTE, err
        assert f"DVC remote 'local' ({repo.remote.as_posix()}) refused the upload" in err
        assert reason in err and "nothing local was changed" in err
        assert "please report" not in err and err.count("\n") == 1
        assert _files(repo.remote) == []
    assert repo.head() == head and repo.status() == ""
    code, out, err = run_cli("data", "push", cwd=repo.root)  # writable again: it goes up
    assert code == 0 and "1 file(s) pushed" in out, err


def test_repro_push_to_read_only_remote_is_exit_4(repo: Repo) -> None:
    cmd = "python -c \"open('out.txt', 'w').write('made')\""
    assert run_cli("stage", "add", "make", "--cmd", cmd, "-o", "out.txt", cwd=repo.root)[0] == 0
    with read_only(repo.remote):
        code, _, err = run_cli("repro", "--push", cwd=repo.root)
        assert code == errors.REMOTE, err
        assert "DVC remote 'local'" in err and "refused the upload" in err
        assert _files(repo.remote) == []
    assert (repo.root / "out.txt").read_text() == "made"  # the run is kept for a retry


def test_push_to_full_remote_is_exit_4_and_leaves_no_partial_file(repo: Repo) -> None:
    (repo.root / "data").mkdir()
    (repo.root / "data" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    assert run_cli("data", "add", "data/big.bin", cwd=repo.root)[0] == 0
    with small_disk(repo.remote, "1m"):
        code, _, err = run_cli("data", "push", cwd=repo.root)
        assert code == errors.REMOTE, err
        assert "DVC remote 'local'" in err and "is full: no space left on device" in err
        assert _files(repo.remote) == []  # no half-written .tmp object


# -- a full local disk during `data add`: 1, cleaned up ---------------------------------


def test_data_add_on_full_disk_is_exit_1_and_changes_nothing(repo: Repo) -> None:
    big = repo.root / "data" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    md5 = _md5(big)
    head, index = repo.head(), repo.git("ls-files", "-s")
    cache = repo.root / ".dvc" / "cache"
    with small_disk(cache, "2m"):
        code, _, err = run_cli("data", "add", "data/big.bin", cwd=repo.root)
        assert code == errors.FAILED, err
        assert err.splitlines()[-1].startswith("error: .dvc/cache: no space left on device")
        assert "free space on that disk" in err and "please report" not in err
        assert _files(cache) == []  # no partial object, no .tmp
    assert big.is_file() and _md5(big) == md5
    assert not (repo.root / "data" / "big.bin.dvc").exists()
    assert not (repo.root / "data" / ".gitignore").exists()
    assert repo.head() == head and repo.git("ls-files", "-s") == index
    assert repo.status() == "?? data/big.bin\n"
    assert not (repo.root / ".dvc" / "tmp" / "mlopskit" / "txn.json").exists()


# -- a stage whose wdir leaves the project: 2 everywhere -------------------------------

WDIR_COMMANDS = [
    ("stage", "list"),
    ("repro",),
    ("repro", "--dry"),
    ("validate",),
    ("stage", "add", "other", "--cmd", "true"),
    ("stage", "remove", "up"),
    ("metrics", "show"),
    ("metrics", "diff"),
    ("params", "show"),
    ("report",),
    ("exp", "run"),
    ("exp", "show"),
    ("commit",),
    ("data", "status"),
    ("data", "push"),
]


def test_wdir_outside_the_project_is_exit_2_for_every_command(repo: Repo) -> None:
    """Its output exists up there: DVC's status then failed with an AssertionError."""
    repo.write(
        "dvc.yaml",
        "stages:\n  up:\n    wdir: ..\n    cmd: echo hi > out.txt\n    outs:\n      - out.txt\n",
    )
    (repo.root.parent / "out.txt").write_text("hi\n")
    head, text = repo.head(), (repo.root / "dvc.yaml").read_text()
    for args in WDIR_COMMANDS:
        code, _, err = run_cli(*args, cwd=repo.root)
        assert code == errors.USAGE, (args, err)
        assert err == (
            "error: dvc.yaml: stage 'up' has wdir '..' outside the project root (edit "
            "dvc.yaml: wdir is relative to the folder dvc.yaml is in and must stay inside "
            "the repository)\n"
        ), args
    assert (repo.root / "dvc.yaml").read_text() == text and repo.head() == head
    assert repo.status() == "?? dvc.yaml\n"
    assert (repo.root.parent / "out.txt").read_text() == "hi\n"


def test_wdir_outside_through_a_template_is_caught_on_dvc_stages(repo: Repo) -> None:
    """A wdir only DVC can expand (``${...}``) is checked on the stages DVC builds."""
    repo.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nup: ..\n")
    repo.write(
        "dvc.yaml",
        "stages:\n  up:\n    wdir: ${up}\n    cmd: echo hi > out.txt\n    outs:\n      - out.txt\n",
    )
    (repo.root.parent / "out.txt").write_text("hi\n")
    for args in [("stage", "list"), ("repro", "--dry"), ("validate",)]:
        code, _, err = run_cli(*args, cwd=repo.root)
        assert code == errors.USAGE, (args, err)
        assert "dvc.yaml: stage 'up' has wdir '..' outside the project root" in err, args


# -- `data add .`: 2 --------------------------------------------------------------------


@pytest.mark.parametrize(("where", "target"), [(".", "."), ("data", ".."), (".", "./")])
def test_data_add_project_root_is_exit_2_naming_what_to_add(
    repo: Repo, where: str, target: str
) -> None:
    repo.write("data/a.csv", "x,y\n1,2\n")
    repo.write("top.csv", "1\n")
    head = repo.head()
    code, _, err = run_cli("data", "add", target, cwd=repo.root / where)
    assert code == errors.USAGE, err
    line = err.splitlines()[-1]
    assert line.startswith(f"error: {repo.root.name}: the project root cannot be one DVC output")
    assert "name the files or folders to add, e.g. 'mlopskit data add data top.csv'" in line
    assert repo.head() == head and repo.status() == "?? data/a.csv\n?? top.csv\n"
    assert [p for p in repo.root.rglob("*.dvc") if p.is_file()] == []
