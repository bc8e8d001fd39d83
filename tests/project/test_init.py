"""mlopskit init: new directories, adopted repositories, conflicts, remotes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlopskit import errors, scaffold, templating, yamlio

from ..conftest import dvc, git, porcelain, run_cli

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
    # --force overwrites only what git can give back: here nothing is committed.
    code, _, err = run_cli("init", str(root), "--force")
    assert code == errors.PRECONDITION, err
    assert "uncommitted" in err and "dvc.yaml" in err and "params.yaml" in err
    assert sorted(p.name for p in root.iterdir()) == ["dvc.yaml", "params.yaml"]
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "mine")
    code, _, err = run_cli("init", str(root), "--force")
    assert code == 0, err
    assert "prepare" in (root / "params.yaml").read_text()
    assert git(root, "show", "HEAD~1:params.yaml") == "my: params\n"  # still in history


def test_force_refuses_uncommitted_changes_to_what_it_overwrites(tmp_path: Path) -> None:
    """8b: modified, staged or untracked files init --force would overwrite: exit 3, named."""
    root = tmp_path / "p"
    assert run_cli("init", "p")[0] == 0
    head = git(root, "rev-parse", "HEAD")
    (root / "params.yaml").write_text("mine: 1\n")  # modified, tracked
    (root / "dvc.yaml").write_text("stages: {}\n")
    git(root, "add", "dvc.yaml")  # staged
    (root / "src" / "train.py").unlink()
    (root / "src" / "train.py").write_text("print('mine')\n")  # modified
    (root / "notes.txt").write_text("unrelated\n")  # not ours: never blocks
    code, _, err = run_cli("init", "p", "--force")
    assert code == errors.PRECONDITION, err
    assert "dvc.yaml" in err and "params.yaml" in err and "src/train.py" in err
    assert "notes.txt" not in err
    assert (root / "params.yaml").read_text() == "mine: 1\n"
    assert git(root, "rev-parse", "HEAD") == head
    # Committed, they may be overwritten.
    git(root, "commit", "-qam", "my edits")
    code, _, err = run_cli("init", "p", "--force")
    assert code == 0, err
    assert "prepare" in (root / "params.yaml").read_text()
    assert (root / "notes.txt").read_text() == "unrelated\n"
    assert "notes.txt" not in git(root, "show", "--name-only", "--format=", "HEAD").split()


def test_force_refuses_an_untracked_or_hand_edited_workflow(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert run_cli("init", "p")[0] == 0
    ct = root / ".github" / "workflows" / "ct.yml"
    ct.write_text(ct.read_text() + "# my tweak\n")
    code, _, err = run_cli("init", "p", "--force")
    assert code == errors.PRECONDITION, err
    assert ".github/workflows/ct.yml" in err
    assert ct.read_text().endswith("# my tweak\n")
    (root / "README.md").write_text("my own readme\n")
    git(root, "rm", "-q", "--cached", "README.md")  # untracked now
    git(root, "commit", "-qam", "tweak ct, untrack README")
    code, _, err = run_cli("init", "p", "--force")
    assert code == errors.PRECONDITION, err
    assert "README.md" in err and "ct.yml" not in err


def test_init_twice_is_idempotent(tmp_path: Path) -> None:
    assert run_cli("init", "p")[0] == 0
    head = git(tmp_path / "p", "rev-parse", "HEAD")
    code, _, err = run_cli("init", "p")
    assert code == 0, err
    assert git(tmp_path / "p", "rev-parse", "HEAD") == head


def test_init_inside_another_repository_makes_its_own(tmp_path: Path) -> None:
    """Item 1: DIR inside an existing repository gets a repository of its own by default;
    the enclosing one (its history, index and files) is not touched."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("outer\n")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-qm", "outer")
    outer_head = git(tmp_path, "rev-parse", "HEAD")
    code, out, err = run_cli("init", "ml")
    assert code == 0, err
    root = tmp_path / "ml"
    assert f"inside the git repository {tmp_path}" in out and "own" in out
    assert git(tmp_path, "rev-parse", "HEAD") == outer_head
    assert git(tmp_path, "log", "--format=%s").splitlines() == ["outer"]
    assert porcelain(tmp_path) == "?? ml/\n"
    assert git(root, "rev-parse", "--show-toplevel").strip() == str(root)
    assert git(root, "log", "--format=%s").splitlines() == ["mlopskit init: ml"]
    assert porcelain(root) == ""
    committed = set(git(root, "ls-files").split())
    assert committed >= EXPECTED and ".github/workflows/ct.yml" in committed
    assert "prepare" in dvc(root, "stage", "list").stdout
    # Running init again keeps it as it is.
    head = git(root, "rev-parse", "HEAD")
    assert run_cli("init", "ml")[0] == 0
    assert git(root, "rev-parse", "HEAD") == head


def test_init_subdir_in_a_repository(tmp_path: Path) -> None:
    """--subdir: a DVC project in a sub-folder of a bigger repository (dvc init --subdir),
    committed there; nothing the user had changed in that repository is committed."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("mono\n")
    (tmp_path / "app.py").write_text("v1\n")
    git(tmp_path, "add", "README", "app.py")
    git(tmp_path, "commit", "-qm", "mono")
    (tmp_path / "app.py").write_text("v2, not committed\n")
    (tmp_path / "staged.txt").write_text("staged\n")
    git(tmp_path, "add", "staged.txt")
    code, out, err = run_cli("init", "ml", "--subdir")
    assert code == 0, err
    assert "sub-folder of the git repository" in out
    assert not (tmp_path / "ml" / ".git").exists()
    files = git(tmp_path, "show", "--name-only", "--format=", "HEAD").split()
    assert "ml/dvc.yaml" in files and "ml/.dvc/config" in files
    assert "app.py" not in files and "staged.txt" not in files
    assert git(tmp_path, "log", "--format=%s").splitlines() == ["mlopskit init: ml", "mono"]
    assert porcelain(tmp_path) == " M app.py\nA  staged.txt\n"
    assert (tmp_path / "ml" / ".dvc").is_dir()
    assert dvc(tmp_path / "ml", "root").stdout.strip() == "."
    assert dvc(tmp_path, "root", check=False).returncode != 0  # DVC's project is ml/ only
    # Run again (without --subdir) it stays a sub-folder project, nothing new.
    head = git(tmp_path, "rev-parse", "HEAD")
    code, _, err = run_cli("init", "ml")
    assert code == 0, err
    assert git(tmp_path, "rev-parse", "HEAD") == head
    assert not (tmp_path / "ml" / ".git").exists()


def test_subdir_outside_a_repository_is_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli("init", "ml", "--subdir")
    assert code == errors.USAGE
    assert "not inside a git repository" in err
    assert not (tmp_path / "ml").exists()


def test_init_on_a_file_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli("init", "f")
    assert code == errors.USAGE
    assert "Directory 'f' is a file" in err
    assert (tmp_path / "f").read_text() == "x"  # left as it was
    assert not (tmp_path / ".git").exists()


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


def test_folder_holding_files_of_the_enclosing_repository_needs_subdir(tmp_path: Path) -> None:
    """Making such a folder its own repository would hide its files from the outer one."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "train.py").write_text("print('mine')\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "outer")
    code, _, err = run_cli("init", "ml")
    assert code == errors.PRECONDITION, err
    assert "train.py" in err
    assert "--subdir" in err
    assert sorted(p.name for p in (tmp_path / "ml").iterdir()) == ["train.py"]
    code, _, err = run_cli("init", "ml", "--subdir")
    assert code == 0, err
    assert "ml/dvc.yaml" in git(tmp_path, "show", "--name-only", "--format=", "HEAD").split()


def test_new_repository_commits_only_what_init_wrote(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "app.py").write_text("print('mine')\n")
    code, _, err = run_cli("init", "p")
    assert code == 0, err
    assert "app.py" not in git(tmp_path / "p", "ls-files").split()
    assert porcelain(tmp_path / "p") == "?? app.py\n"


def test_init_in_a_subfolder_commits_workflows_at_the_git_root(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    code, _, err = run_cli("init", "--subdir", "models/churn", cwd=tmp_path)
    assert code == 0, err
    committed = set(git(tmp_path, "ls-files").split())
    assert ".github/workflows/ct-models-churn.yml" in committed
    assert ".github/dependabot.yml" in committed
    assert "models/churn/dvc.yaml" in committed
    assert not (tmp_path / "models/churn/.github").exists()
    assert git(tmp_path, "status", "--porcelain") == ""
