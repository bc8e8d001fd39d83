"""The README's Quickstart, parsed out of README.md and run verbatim in a fresh clone.

The command installs mlopskit from the clone into a new virtual environment (with pip's
cache and the configured package indexes), so it exercises the committed HEAD of this
checkout, not the interpreter running the tests. It runs twice: as written, inside the
clone, and its last step again from a directory outside any repository.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import git

CHECKOUT = Path(__file__).resolve().parents[2]


def quickstart_command(readme: Path) -> str:
    """The one command of the ```sh block under '## Quickstart'."""
    text = readme.read_text(encoding="utf-8")
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, f"{readme}: no '## Quickstart' section"
    block = re.search(r"^```sh\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, f"{readme}: no ```sh block under '## Quickstart'"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one command line, got {lines}"
    return lines[0]


def test_the_command_is_parsed_from_the_readme() -> None:
    cmd = quickstart_command(CHECKOUT / "README.md")
    parts = cmd.split(" && ")
    assert parts[-1].startswith("mlopskit quickstart ")
    assert "pip install ." in parts


def _env(home: Path) -> dict[str, str]:
    """The session's isolation (git identity, DVC's dirs), a fresh HOME, and nothing that
    ties the command to the interpreter running the tests."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"):
        env.pop(var, None)
    ours = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != ours)
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    # pip's own cache (downloads and built wheels), not the throw-away HOME's.
    env.setdefault("PIP_CACHE_DIR", str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache/pip"))
    return env


@dataclass
class Run:
    clone: Path
    command: str
    env: dict[str, str]
    log_before: str
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A fresh clone of this checkout, and the Quickstart command run in it as written."""
    top = git(CHECKOUT, "rev-parse", "--show-toplevel").strip()
    assert Path(top).resolve() == CHECKOUT, f"{CHECKOUT} is not the top of a git checkout"
    base = tmp_path_factory.mktemp("readme")
    clone = base / "clone"
    git(base, "clone", "-q", "--", str(CHECKOUT), str(clone))
    home = base / "home"
    home.mkdir()
    env = _env(home)
    command = quickstart_command(clone / "README.md")
    log_before = git(clone, "log", "--format=%H %s")
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    return Run(clone, command, env, log_before, result)


def assert_demo(demo: Path, res: subprocess.CompletedProcess[str], env: dict[str, str]) -> None:
    """demo/ is its own repository, committed and pushed, and the metrics were printed."""
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (demo / ".git").is_dir(), "demo/ has no .git of its own"
    assert Path(git(demo, "rev-parse", "--show-toplevel").strip()).resolve() == demo.resolve()
    assert git(demo, "status", "--porcelain", "--untracked-files=all") == ""
    log = git(demo, "log", "--format=%s").splitlines()
    assert log[0] == "train: first model from the quickstart", log
    assert len(log) == 4, log
    # Pushed: every object of the workspace is in the default remote (DVC is the oracle).
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "-c"],
        cwd=demo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert re.search(r"Cache and remote '\w+' are in sync", status.stdout), status.stdout
    assert (demo / "models" / "model.skops").is_file()
    # The metrics printed are the ones committed.
    metrics = json.loads(git(demo, "show", "HEAD:reports/metrics.json"))
    m = re.search(r"^Metrics \(reports/metrics\.json\): accuracy=([0-9.]+)", res.stdout, re.M)
    assert m, res.stdout
    assert float(m.group(1)) == pytest.approx(metrics["accuracy"], abs=1e-4)


@pytest.mark.slow
def test_quickstart_verbatim_in_a_fresh_clone(readme_run: Run) -> None:
    clone = readme_run.clone
    assert_demo(clone / "demo", readme_run.result, readme_run.env)
    # The clone's own history and tree are untouched: demo/ is not part of it.
    assert git(clone, "log", "--format=%H %s") == readme_run.log_before
    left = set(git(clone, "status", "--porcelain").splitlines())
    assert left <= {"?? demo/", "?? .venv/"}, left


@pytest.mark.slow
def test_quickstart_outside_any_repository(
    readme_run: Run, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The environment the command made in the clone, then its last step somewhere else."""
    venv_bin = readme_run.clone / ".venv" / "bin"
    assert (venv_bin / "mlopskit").is_file(), readme_run.result.stderr[-3000:]
    outside = tmp_path_factory.mktemp("outside")
    not_a_repo = subprocess.run(
        ["git", "rev-parse", "--git-dir"], cwd=outside, capture_output=True, check=False
    )
    assert not_a_repo.returncode != 0, f"{outside} is inside a git repository"
    last = readme_run.command.split(" && ")[-1]
    env = dict(readme_run.env)
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PATH"] = str(venv_bin) + os.pathsep + env["PATH"]
    res = subprocess.run(
        ["bash", "-c", last],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    demo = outside / last.split()[-1]
    assert_demo(demo, res, readme_run.env)
    assert [p.name for p in outside.iterdir()] == [demo.name]
