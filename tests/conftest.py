"""Shared fixtures: real git, real DVC, a local DVC remote, a bare repository as origin.

Expensive bases (a git + DVC repo; a quickstart project that has trained once) are
built once per session and copied per test, as DVC's own tests do.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .s3 import S3Server

# Isolate everything before DVC is imported: DVC reads these at import time.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlopskit-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
for sub in ("home", "dvc-global", "dvc-system", "dvc-site", "xdg-data", "xdg-cache"):
    (_SESSION_HOME / sub).mkdir()
_GITCONFIG = _SESSION_HOME / "gitconfig"
_GITCONFIG.write_text(
    "[user]\n\tname = mlopskit tests\n\temail = tests@mlopskit.invalid\n"
    "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    '[protocol "file"]\n\tallow = always\n'
)
# libgit2 (DVC's `exp run` commits through it) ignores GIT_CONFIG_GLOBAL: it finds the
# same identity as git's XDG config (git itself reads only GIT_CONFIG_GLOBAL when set).
(_SESSION_HOME / "xdg-config" / "git").mkdir(parents=True)
shutil.copy(_GITCONFIG, _SESSION_HOME / "xdg-config" / "git" / "config")
os.environ.update(
    {
        "HOME": str(_SESSION_HOME / "home"),
        "XDG_CONFIG_HOME": str(_SESSION_HOME / "xdg-config"),
        "GIT_CONFIG_GLOBAL": str(_GITCONFIG),
        "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(_SESSION_HOME / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(_SESSION_HOME / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(_SESSION_HOME / "dvc-site"),
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "XDG_DATA_HOME": str(_SESSION_HOME / "xdg-data"),
        "XDG_CACHE_HOME": str(_SESSION_HOME / "xdg-cache"),
        "GIT_TERMINAL_PROMPT": "0",
    }
)
# Stages call `python`: make it the interpreter running the tests.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


def git(cwd: Path, *args: str, check: bool = True) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr}")
    return res.stdout


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if check and res.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed: {res.stdout}\n{res.stderr}")
    return res


def porcelain(cwd: Path) -> str:
    return git(cwd, "status", "--porcelain", "--untracked-files=all")


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run mlopskit's CLI in-process; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from mlopskit import cli

    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        code = 0
        with runner.isolation() as (out, err, _):
            code = cli.main(list(args))
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        os.chdir(old)
    return code, stdout, stderr


def run_subprocess(*args: str, cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlopskit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class Repo:
    root: Path
    remote: Path

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.root, *args, check=check)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def log(self) -> list[str]:
        return self.git("log", "--format=%s").splitlines()

    def status(self) -> str:
        return porcelain(self.root)

    def project(self):  # type: ignore[no-untyped-def]
        from mlopskit.project import Project

        return Project(root=self.root)


def _copy(src: Path, dst: Path, remote_src: Path, remote_dst: Path) -> Repo:
    shutil.copytree(src, dst, symlinks=True)
    if remote_src.exists():
        shutil.copytree(remote_src, remote_dst, symlinks=True)
    else:
        remote_dst.mkdir(parents=True)
    local = dst / ".dvc" / "config.local"
    local.write_text(f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote_dst}\n")
    return Repo(dst, remote_dst)


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the developer's files: HOME and XDG dirs live in tmp."""
    home = tmp_path / "_home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def _base_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """git init + dvc init + a first commit with a tiny params.yaml."""
    from mlopskit import _dvc

    root = tmp_path_factory.mktemp("base") / "repo"
    remote = root.parent / "remote"
    root.mkdir()
    remote.mkdir()
    git(root, "init", "-q", "-b", "main")
    _dvc.init(root)
    (root / "params.yaml").write_text("train:\n  lr: 0.1\n  epochs: 3\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root, remote


@pytest.fixture
def repo(_base_repo: tuple[Path, Path], tmp_path: Path) -> Repo:
    """A fresh git + DVC repository with a local DVC remote configured (in config.local)."""
    src, remote = _base_repo
    return _copy(src, tmp_path / "repo", remote, tmp_path / "remote")


@pytest.fixture(scope="session")
def _trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A quickstart project that has trained, committed and pushed once."""
    from mlopskit import quickstart

    base = tmp_path_factory.mktemp("qs")
    remote = base / "remote"
    res = quickstart.quickstart(base / "project", remote_url=None)
    # Move the default remote next to the project so copies can take it along.
    src_remote = Path(res.remote_url)
    shutil.copytree(src_remote, remote)
    local = base / "project" / ".dvc" / "config.local"
    local.write_text(f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n")
    return base / "project", remote


@pytest.fixture
def trained(_trained: tuple[Path, Path], tmp_path: Path) -> Repo:
    """A copy of the trained quickstart project with its own copy of the remote."""
    src, remote = _trained
    return _copy(src, tmp_path / "project", remote, tmp_path / "remote")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository to use as `origin`."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    return bare


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (any key pair is accepted)."""
    from .s3 import start_server

    server = start_server()
    yield server
    server.stop()
