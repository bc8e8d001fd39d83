"""Issue 11: ``data push``, ``data pull``, ``repro --push --commit`` and ``commit --push``
interrupted at each of their steps.

Each step is reached through the test-only hook ``MLOPSKIT_TEST_FAULT=<step>`` (the
process says so on stderr and waits), then the real ``python -m mlopskit`` process gets a
SIGKILL, SIGINT or SIGTERM. The project is tiny (one stage copying a DVC-tracked file),
with a local DVC remote and a bare repository as origin, built once and copied per case.
After each interruption: the exit is 130 (-9 for a kill); no commit on origin's main names
data the DVC remote lacks; no half commit (nothing staged, no ``index.lock``, no rebase in
progress, only the expected files changed); no temporary file is left in the project, its
cache or the remote; the data files are intact; ``dvc status`` answers. Then the same
command completes, and origin's main (or the workspace, for a pull) holds the new state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlopskit import errors, journal

from ..conftest import Repo, dvc, git, run_cli
from .test_fault_data_add import interrupt_command, md5, start, wait_for_tmp

SIGNALS = {"kill": signal.SIGKILL, "int": signal.SIGINT, "term": signal.SIGTERM}
STAGE = "python -c \"import shutil; shutil.copy('in.txt', 'out.txt')\""

# The steps of each command, in order (fault points in data.py, pipeline.py, scm.py).
# The git:* steps are reached only when origin moved meanwhile (a rebase before the push).
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "push": (["data", "push"], ["push:start", "push:transferred"]),
    "pull": (["data", "pull"], ["pull:start", "pull:transferred"]),
    "repro": (
        ["repro", "--push", "--commit"],
        [
            "repro:reproduced",
            "repro:pushed",
            "commit:committed",
            "commit:pushing",
            "git:fetched",
            "git:rebased",
            "commit:pushed",
        ],
    ),
    "commit": (
        ["commit", "--push"],
        ["commit:committed", "commit:pushing", "git:fetched", "git:rebased", "commit:pushed"],
    ),
}
CASES = [
    pytest.param(name, step, sig, id=f"{name}-{step}-{sig_id}")
    for name, (_, steps) in COMMANDS.items()
    for step in steps
    for sig_id, sig in SIGNALS.items()
]


@dataclass
class Project:
    repo: Repo
    origin: Path

    @property
    def root(self) -> Path:
        return self.repo.root


def _configure(root: Path, remote: Path, origin: Path) -> None:
    (root / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n"
    )
    git(root, "remote", "set-url", "origin", str(origin))


@pytest.fixture(scope="module")
def _transfer_base(_base_repo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pipeline (in.txt -> out.txt), trained, committed and pushed (git and DVC)."""
    base = tmp_path_factory.mktemp("transfers")
    root, remote, origin = base / "repo", base / "remote", base / "origin.git"
    shutil.copytree(_base_repo[0], root, symlinks=True)
    remote.mkdir()
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(root, "remote", "add", "origin", str(origin))
    _configure(root, remote, origin)
    (root / "in.txt").write_text("v1\n")
    code, _, err = run_cli("data", "add", "in.txt", cwd=root)
    assert code == 0, err
    (root / "dvc.yaml").write_text(
        f"stages:\n  copy:\n    cmd: {json.dumps(STAGE)}\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    git(root, "add", "dvc.yaml")
    git(root, "commit", "-qm", "pipeline")
    git(root, "push", "-q", "-u", "origin", "main")
    code, _, err = run_cli("repro", "--push", "--commit", cwd=root)
    assert code == 0, err
    assert git(origin, "rev-parse", "main") == git(root, "rev-parse", "HEAD")
    return base


@pytest.fixture
def project(_transfer_base: Path, tmp_path: Path) -> Project:
    dst = tmp_path / "case"
    shutil.copytree(_transfer_base, dst, symlinks=True)
    _configure(dst / "repo", dst / "remote", dst / "origin.git")
    return Project(Repo(dst / "repo", dst / "remote"), dst / "origin.git")


# ------------------------------------------------------------------------- oracles


def outputs_at(where: Path, rev: str) -> dict[str, str]:
    """{path: md5} of every output dvc.lock and the .dvc files name at ``rev``."""
    found: dict[str, str] = {}
    for name in git(where, "ls-tree", "-r", "--name-only", rev).split():
        if name != "dvc.lock" and not name.endswith(".dvc"):
            continue
        doc = yaml.safe_load(git(where, "show", f"{rev}:{name}")) or {}
        if name == "dvc.lock":
            outs = [o for st in doc.get("stages", {}).values() for o in st.get("outs", [])]
        else:
            outs = doc.get("outs", [])
        found.update({o["path"]: o["md5"] for o in outs})
    return found


def in_remote(remote: Path, md5sum: str) -> bool:
    return (remote / "files" / "md5" / md5sum[:2] / md5sum[2:]).is_file()


def assert_origin_complete(p: Project) -> None:
    """No commit on origin's main points at data the DVC remote lacks."""
    for rev in git(p.origin, "rev-list", "main").split():
        missing = {
            k: v for k, v in outputs_at(p.origin, rev).items() if not in_remote(p.repo.remote, v)
        }
        assert not missing, f"origin/main commit {rev[:8]} names data not in the remote: {missing}"


def tmp_left(p: Project) -> list[Path]:
    return [
        f
        for where in (p.root, p.repo.remote)
        for f in where.rglob("*.tmp")
        if ".git" not in f.relative_to(where).parts
    ]


def assert_no_half_commit(p: Project, before: str, allowed: set[str]) -> None:
    gitdir = p.root / ".git"
    assert not (gitdir / "index.lock").exists()
    assert not (gitdir / "rebase-merge").exists() and not (gitdir / "rebase-apply").exists()
    assert git(p.root, "diff", "--cached", "--name-only") == "", "something left staged"
    changed = {line[3:] for line in p.repo.status().splitlines()}
    assert changed <= allowed, p.repo.status()
    # Every commit since the case began (rebased ones too) is whole: state files only.
    for rev in git(p.root, "rev-list", f"{before}..HEAD").split():
        files = set(git(p.root, "show", "--name-only", "--format=", rev).split())
        assert files and files <= {"dvc.lock", "in.txt.dvc", "NOTES.md"}, (rev, files)
        if "dvc.lock" in files:
            outs = outputs_at(p.root, rev)
            assert outs["out.txt"] == outs["in.txt"], "a dvc.lock from no run"


def move_origin(p: Project, tmp_path: Path) -> str:
    """Someone else pushes a commit that does not touch the pipeline."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(p.origin), str(other))
    (other / "NOTES.md").write_text("notes\n")
    git(other, "add", "NOTES.md")
    git(other, "commit", "-qm", "notes")
    git(other, "push", "-q", "origin", "main")
    return git(p.origin, "rev-parse", "main").strip()


def change_input(p: Project, text: str) -> str:
    (p.root / "in.txt").write_text(text)
    code, _, err = run_cli("data", "add", "in.txt", cwd=p.root)
    assert code == 0, err
    return md5(p.root / "in.txt")


def interrupt_at(p: Project, args: list[str], step: str, sig: int) -> tuple[int, str]:
    return interrupt_command(p.repo, args, step, sig, p.root.parent / "cmd.err")


def dvc_status(p: Project) -> dict[str, object]:
    res = dvc(p.root, "status", "--json")
    return json.loads(res.stdout or "{}")  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- tests


@pytest.mark.slow
@pytest.mark.parametrize(("name", "step", "sig"), CASES)
def test_interrupted_at_each_step(
    project: Project, tmp_path: Path, name: str, step: str, sig: int
) -> None:
    p = project
    args, _ = COMMANDS[name]
    want: dict[str, str] = {}
    if name == "pull":
        want = {f: md5(p.root / f) for f in ("in.txt", "out.txt")}
        for f in want:
            (p.root / f).unlink()
        shutil.rmtree(p.root / ".dvc" / "cache")
    else:
        new = change_input(p, f"v2 {name} {step} {sig}\n")
        # data push takes in.txt's new version; the pipeline runs also make out.txt.
        want = {"in.txt": new} if name == "push" else {"in.txt": new, "out.txt": new}
    if name == "commit":
        assert run_cli("repro", cwd=p.root)[0] == 0
        assert run_cli("data", "push", cwd=p.root)[0] == 0
    before = p.repo.head()
    if step.startswith("git:"):
        move_origin(p, tmp_path)
    origin_before = git(p.origin, "rev-parse", "main").strip()

    code, err = interrupt_at(p, args, step, sig)

    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL, err
    else:
        assert code == errors.INTERRUPTED, err
        assert "Interrupted." in err and "Traceback" not in err, err
    assert_origin_complete(p)
    tip = git(p.origin, "rev-parse", "main").strip()
    if step != "commit:pushed":
        assert tip == origin_before, "origin moved before the push step"
    else:
        assert tip == p.repo.head(), "the push had completed"
    # dvc.lock may be rewritten but not yet committed when the run ended before the commit.
    uncommitted = {"dvc.lock"} if step in ("repro:reproduced", "repro:pushed") else set()
    assert_no_half_commit(p, before, uncommitted)
    assert tmp_left(p) == []
    assert not (p.root / ".dvc/tmp/mlopskit/txn.json").exists()
    for f, h in want.items():  # each data file is absent (pull not done) or whole
        path = p.root / f
        assert not path.exists() or md5(path) == h, f
    # DVC's own status says what is true: after data push only, the stage is stale.
    status = {"copy": [{"changed deps": {"in.txt": "modified"}}]} if name == "push" else {}
    if name == "pull":
        dvc(p.root, "status", "--json")  # answers (names what is still missing)
    else:
        assert dvc_status(p) == status

    code, out, rerr = run_cli(*args, cwd=p.root)
    assert code == 0, rerr

    assert_origin_complete(p)
    assert_no_half_commit(p, before, set())
    assert tmp_left(p) == []
    assert dvc_status(p) == status
    for f, h in want.items():
        assert md5(p.root / f) == h, f
        assert in_remote(p.repo.remote, h), f
    if name in ("repro", "commit"):
        tip = git(p.origin, "rev-parse", "main").strip()
        assert tip == p.repo.head()
        assert outputs_at(p.origin, tip) == want
        if step.startswith("git:"):  # the other clone's commit is kept (raises if not)
            git(p.origin, "merge-base", "--is-ancestor", origin_before, tip)
    else:
        assert git(p.origin, "rev-parse", "main").strip() == origin_before


def test_fault_points_are_inert_without_the_variable(project: Project) -> None:
    """With MLOPSKIT_TEST_FAULT unset, the commands run straight through (a subprocess)."""
    p = project
    new = change_input(p, "v3\n")
    res = subprocess.run(
        [sys.executable, "-m", "mlopskit", "repro", "--push", "--commit"],
        cwd=p.root,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != journal.FAULT_ENV},
    )
    assert res.returncode == 0, res.stderr
    assert "mlopskit-fault" not in res.stderr
    assert outputs_at(p.origin, "main") == {"in.txt": new, "out.txt": new}
    assert_origin_complete(p)


# ---------------------------------------------------------- real signals, real timing

BIG = 64 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS.values(), ids=SIGNALS.keys())
@pytest.mark.parametrize("name", ["push", "pull"])
def test_real_signal_while_dvc_writes_the_object(project: Project, name: str, sig: int) -> None:
    """A real signal while DVC's copy is half written (timed on its temporary file in the
    remote, for a push, or in the cache, for a pull). On Ctrl-C the temporary file is
    removed; a kill leaves an orphan, which the next transfer sweeps once it is stale. The
    next run completes and the object is whole."""
    p = project
    (p.root / "in.txt").write_bytes(os.urandom(BIG))
    code, _, err = run_cli("data", "add", "in.txt", cwd=p.root)
    assert code == 0, err
    want = md5(p.root / "in.txt")
    cache = p.root / ".dvc" / "cache"
    if name == "pull":
        assert run_cli("data", "push", cwd=p.root)[0] == 0
        (p.root / "in.txt").unlink()
        shutil.rmtree(cache)
        cache.mkdir()
    where = p.repo.remote if name == "push" else cache
    errf = p.root.parent / "cmd.err"
    proc = start(p.repo, "data", name, env={}, err=errf)
    try:
        hit = wait_for_tmp(proc, "files/md5/*/.*.tmp", where, time.monotonic() + 120)
        assert hit, f"the {name} finished before DVC's copy was seen: {errf.read_text()}"
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        for orphan in tmp_left(p):  # what the killed copy was writing: make it stale
            os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    else:
        assert code == errors.INTERRUPTED, errf.read_text()
        assert tmp_left(p) == []
    assert not (p.root / "in.txt").exists() or md5(p.root / "in.txt") == want
    assert_origin_complete(p)

    code, _, err = run_cli("data", name, cwd=p.root)
    assert code == 0, err
    assert tmp_left(p) == []
    assert md5(p.root / "in.txt") == want
    assert md5(p.repo.remote / "files" / "md5" / want[:2] / want[2:]) == want
