"""Finding the project root (C4.44, C4.45)."""

from __future__ import annotations

from pathlib import Path

from mlopskit import errors
from mlopskit.project import Project

from ..conftest import Repo, git, run_cli


def test_not_a_git_repo(tmp_path: Path) -> None:
    code, _, err = run_cli("params", "show", cwd=tmp_path)
    assert code == errors.USAGE and "mlopskit init" in err


def test_git_repo_without_dvc(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    code, _, err = run_cli("data", "status", cwd=tmp_path)
    assert code == errors.USAGE and "not a DVC project" in err and "mlopskit init" in err


def test_subfolder_finds_root_and_prints_it(repo: Repo) -> None:
    sub = repo.root / "a" / "b"
    sub.mkdir(parents=True)
    (sub / "f.txt").write_text("x\n")
    code, out, err = run_cli("data", "add", "f.txt", cwd=sub)
    assert code == 0, err
    assert f"project root {repo.root}" in err
    assert (sub / "f.txt.dvc").is_file()


def test_worktree_is_its_own_root(repo: Repo, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "side", str(wt))
    assert Project.find(wt).root == wt.resolve()
    (wt / "w.txt").write_text("w\n")
    code, _, err = run_cli("data", "add", "w.txt", cwd=wt)
    assert code == 0, err
    assert repo.git("log", "-1", "--format=%s", "side").startswith("data:")
    assert not (repo.root / "w.txt.dvc").exists()


def test_nested_dvc_project_inside_a_repo(tmp_path: Path) -> None:
    """`.dvc` in a sub-folder: that folder is the root, not the git top level."""
    git(tmp_path, "init", "-q", "-b", "main")
    assert run_cli("init", "ml")[0] == 0
    deep = tmp_path / "ml" / "src"
    assert Project.find(deep).root == (tmp_path / "ml").resolve()
    assert Project.find(tmp_path / "ml").cwd is None
