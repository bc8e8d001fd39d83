"""mlopskit init: new directories, adopted repositories, conflicts, remotes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlopskit import errors, scaffold, templating, yamlio

from .conftest import dvc, git, porcelain, run_cli

EXPECTED = {
    ".gitignore",
    "deploy/deploy.sh",
    "README.md",
    "dvc.yaml",
    "mlopskit.yaml",
    "params.yaml",
    "requirements.txt",
    "data/raw/.gitkeep",
    "models/.gitkeep",
    "reports/.gitkeep",
    "src/__init__.py",
    "src/params.py",
    "src/prepare.py",
    "src/train.py",
    "src/evaluate.py",
}


def test_template_renders_exactly_the_expected_files() -> None:
    files = scaffold.render("demo")
    assert set(files) == EXPECTED
    for rel, text in files.items():
        assert "{{" not in text and "{%" not in text, rel
        if rel.endswith(".py"):
            ast.parse(text, filename=rel)
        if rel.endswith((".yaml", ".yml")):
            assert yamlio.loads(text, display=rel) is not None
    assert "name: demo" in files["mlopskit.yaml"]
    pins = files["requirements.txt"].splitlines()
    assert any(p.startswith("dvc==3.") for p in pins)
    # the workflows install mlopskit from ci.install: the name on PyPI is someone else's
    assert not any(p.startswith("mlopskit") for p in pins)


def test_templates_dir_is_found() -> None:
    assert (templating.templates_dir() / "project" / "dvc.yaml").is_file()


def test_init_new_directory(tmp_path: Path) -> None:
    code, out, err = run_cli("init", "proj")
    assert code == 0, err
    root = tmp_path / "proj"
    assert (root / ".git").is_dir() and (root / ".dvc").is_dir()
    assert git(root, "branch", "--show-current").strip() == "main"
    assert porcelain(root) == ""
    committed = set(git(root, "ls-files").split())
    assert committed >= EXPECTED
    assert {".dvc/config", ".dvc/.gitignore", ".dvcignore"} <= committed
    # The default remote is per user, in config.local, never committed.
    assert "remote" not in (root / ".dvc" / "config").read_text()
    local = (root / ".dvc" / "config.local").read_text()
    assert "remote = local" in local
    assert str(tmp_path / "_home") in local
    assert "config.local" in (root / ".dvc" / ".gitignore").read_text()
    # DVC itself accepts the project
    assert "prepare" in dvc(root, "stage", "list").stdout
    assert "Default DVC remote 'local'" in out


def test_init_with_remote_url(tmp_path: Path) -> None:
    code, _, err = run_cli("init", "p", "--remote", "s3://bucket/path", "--name", "churn")
    assert code == 0, err
    root = tmp_path / "p"
    conf = git(root, "show", "HEAD:.dvc/config")
    assert "s3://bucket/path" in conf and "remote = storage" in conf
    assert "name: churn" in (root / "mlopskit.yaml").read_text()


def test_adopt_existing_repo_keeps_history_and_gitignore(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("secret.env\n")
    (root / "app.py").write_text("print('hi')\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "mine")
    code, _, err = run_cli("init", str(root))
    assert code == 0, err
    log = git(root, "log", "--format=%s").splitlines()
    assert log == ["mlopskit init: existing", "mine"]
    gi = (root / ".gitignore").read_text()
    assert gi.startswith("secret.env\n") and "__pycache__/" in gi
    assert (root / "app.py").read_text() == "print('hi')\n"


def test_adopt_conflict_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "params.yaml").write_text("my: params\n")
    (root / "dvc.yaml").write_text("stages: {}\n")
    code, _, err = run_cli("init", str(root))
    assert code == errors.PRECONDITION
    assert "dvc.yaml" in err and "params.yaml" in err and "--force" in err
    assert sorted(p.name for p in root.iterdir()) == ["dvc.yaml", "params.yaml"]
    assert (root / "params.yaml").read_text() == "my: params\n"
    code, _, err = run_cli("init", str(root), "--force")
    assert code == 0, err
    assert "prepare" in (root / "params.yaml").read_text()


def test_init_twice_is_idempotent(tmp_path: Path) -> None:
    assert run_cli("init", "p")[0] == 0
    head = git(tmp_path / "p", "rev-parse", "HEAD")
    code, _, err = run_cli("init", "p")
    assert code == 0, err
    assert git(tmp_path / "p", "rev-parse", "HEAD") == head


def test_init_in_subdirectory_of_a_repo(tmp_path: Path) -> None:
    """A DVC project in a sub-folder of a bigger repository (dvc init --subdir)."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("mono\n")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-qm", "mono")
    code, _, err = run_cli("init", "ml")
    assert code == 0, err
    files = git(tmp_path, "show", "--name-only", "--format=", "HEAD").split()
    assert "ml/dvc.yaml" in files and "ml/.dvc/config" in files
    assert (tmp_path / "ml" / ".dvc").is_dir()


def test_init_on_a_file_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli("init", "f")
    assert code == errors.USAGE
    assert "f" in err


@pytest.mark.parametrize("url", ["ftp://x/y", "ssh://user:hunter2@host/path"])
def test_init_bad_remote_urls(tmp_path: Path, url: str) -> None:
    code, _, err = run_cli("init", "p", "--remote", url)
    assert code == errors.USAGE, err
    assert "hunter2" not in err
    assert not (tmp_path / "p").exists()


def test_deploy_script_is_executable_and_committed_so(tmp_path: Path) -> None:
    assert run_cli("init", "p")[0] == 0
    mode = git(tmp_path / "p", "ls-files", "-s", "deploy/deploy.sh").split()[0]
    assert mode == "100755"
