"""Projects inside another git repository (mlopskit#10, item 1).

By default ``init DIR`` / ``quickstart DIR`` inside a repository make DIR a repository of
its own and leave the enclosing one alone. ``--subdir`` makes a DVC project in a
sub-folder of the enclosing repository (``dvc init --subdir``, the monorepo case): every
git operation then takes paths from the git root, which is where git prints them from.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from mlopskit import errors

from ..conftest import dvc, git, porcelain, run_cli


@dataclass
class Mono:
    top: Path  # the enclosing repository
    ml: Path  # the --subdir project inside it
    remote: Path

    def committed(self, rev: str = "HEAD") -> list[str]:
        return sorted(git(self.top, "show", "--name-only", "--format=", rev).split())

    def log(self) -> list[str]:
        return git(self.top, "log", "--format=%s").splitlines()


def _outer_repo(top: Path) -> None:
    top.mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    (top / "README.md").write_text("the monorepo\n")
    (top / "app").mkdir()
    (top / "app" / "main.py").write_text("print('app')\n")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "outer")


@pytest.fixture(scope="session")
def mono_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``quickstart ml --subdir`` in a small repository, once per session."""
    base = tmp_path_factory.mktemp("mono")
    top = base / "mono"
    _outer_repo(top)
    code, out, err = run_cli("quickstart", "ml", "--subdir", cwd=top)
    assert code == 0, err
    local = (top / "ml" / ".dvc" / "config.local").read_text()
    url = next(line.split("=", 1)[1].strip() for line in local.splitlines() if "url" in line)
    remote = base / "remote"
    shutil.copytree(url, remote)
    return top, remote, out


@pytest.fixture
def mono(mono_base: tuple[Path, Path, str], tmp_path: Path) -> Mono:
    src, src_remote, _ = mono_base
    top, remote = tmp_path / "mono", tmp_path / "remote"
    shutil.copytree(src, top, symlinks=True)
    shutil.copytree(src_remote, remote)
    (top / "ml" / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n"
    )
    return Mono(top, top / "ml", remote)


def _params_change(m: Mono, value: str = "0.2") -> None:
    code, _, err = run_cli("params", "set", f"train.C={value}", cwd=m.ml)
    assert code == 0, err


def test_quickstart_subdir_commits_in_the_enclosing_repository(
    mono_base: tuple[Path, Path, str], mono: Mono
) -> None:
    top, _, out = mono_base
    assert f"sub-folder of the git repository {top}" in out
    assert "Metrics (reports/metrics.json): accuracy=" in out
    assert "no git remote yet" in out
    assert not (mono.ml / ".git").exists()
    assert mono.log() == [
        "train: first model from the quickstart",
        "data: schema of the raw data",
        "data: add the breast_cancer data set",
        "mlopskit init: ml",
        "outer",
    ]
    assert porcelain(mono.top) == ""
    for rev in ("HEAD", "HEAD~1", "HEAD~2", "HEAD~3"):
        files = mono.committed(rev)
        assert files and all(f.startswith(("ml/", ".github/")) for f in files), files
    assert "ml/dvc.lock" in mono.committed() and "ml/data/processed/.gitignore" in mono.committed()
    assert "ml/data/raw/data.csv.dvc" in mono.committed("HEAD~2")
    # The enclosing repository's own files are as they were.
    assert git(mono.top, "diff", "--stat", "HEAD~4", "HEAD", "--", "README.md", "app") == ""
    assert dvc(mono.ml, "status").stdout.strip() == "Data and pipelines are up to date."
    assert "new:" not in dvc(mono.ml, "status", "-c").stdout


@pytest.mark.slow
def test_repro_commit_in_subdir_takes_only_the_pipeline_state(mono: Mono) -> None:
    # The user's own changes elsewhere in the repository: never committed, never blocking.
    (mono.top / "README.md").write_text("edited, not committed\n")
    (mono.top / "app" / "main.py").write_text("print('wip')\n")
    (mono.top / "notes.txt").write_text("untracked\n")
    (mono.top / "staged.txt").write_text("staged\n")
    git(mono.top, "add", "staged.txt")
    _params_change(mono)
    head = git(mono.top, "rev-parse", "HEAD").strip()
    code, out, err = run_cli("repro", "--commit", "-m", "C=0.2", cwd=mono.ml)
    assert code == 0, err
    assert "Committed" in out
    assert git(mono.top, "rev-parse", "HEAD~1").strip() == head
    files = mono.committed()
    assert {"ml/dvc.lock", "ml/params.yaml", "ml/reports/metrics.json"} <= set(files)
    assert all(f.startswith("ml/") for f in files), files
    assert set(porcelain(mono.top).splitlines()) == {
        " M README.md",
        "A  staged.txt",
        " M app/main.py",
        "?? notes.txt",
    }
    assert "train.C: 0.2" in git(mono.top, "show", "HEAD:ml/dvc.lock")


def test_dirty_dependency_in_subdir_is_named_with_its_stage(mono: Mono) -> None:
    train = mono.ml / "src" / "train.py"
    train.write_text(train.read_text() + "# wip\n")
    head = git(mono.top, "rev-parse", "HEAD")
    code, _, err = run_cli("repro", "--commit", cwd=mono.ml)
    assert code == errors.PRECONDITION, err
    assert "src/train.py (stage train)" in err
    assert git(mono.top, "rev-parse", "HEAD") == head


def test_data_add_in_subdir_commits_pointer_and_gitignore(mono: Mono) -> None:
    (mono.ml / "data" / "extra.csv").write_text("a,b\n1,2\n")
    code, _, err = run_cli("data", "add", "data/extra.csv", cwd=mono.ml)
    assert code == 0, err
    assert mono.committed() == ["ml/data/.gitignore", "ml/data/extra.csv.dvc"]
    assert porcelain(mono.top) == ""


def test_interrupted_data_add_in_subdir_restores_the_index(
    mono: Mono, mocker: MockerFixture
) -> None:
    """The rollback puts index entries back at the project's paths, not the git root's."""
    from mlopskit import scm

    gi = mono.ml / ".gitignore"
    gi.write_text(gi.read_text() + "*.bak\n")
    git(mono.top, "add", "ml/.gitignore")  # the user's staged edit: stays staged
    (mono.ml / "extra.csv").write_text("a,b\n1,2\n")
    head, staged = git(mono.top, "rev-parse", "HEAD"), git(mono.top, "ls-files", "--stage")
    real_git = scm.git

    def interrupted(root: Path, *args: str, **kwargs: object) -> object:
        if args and args[0] == "commit":  # after `git add` staged the pointer
            raise KeyboardInterrupt
        return real_git(root, *args, **kwargs)  # type: ignore[arg-type]

    mocker.patch("mlopskit.scm.git", side_effect=interrupted)
    code, _, err = run_cli("data", "add", "extra.csv", cwd=mono.ml)
    assert code == errors.INTERRUPTED, err
    assert git(mono.top, "rev-parse", "HEAD") == head
    assert git(mono.top, "ls-files", "--stage") == staged
    assert set(porcelain(mono.top).splitlines()) == {"M  ml/.gitignore", "?? ml/extra.csv"}
    assert not (mono.ml / "extra.csv.dvc").exists()


@pytest.mark.slow
def test_commit_push_in_subdir(mono: Mono, origin: Path) -> None:
    git(mono.top, "remote", "add", "origin", str(origin))
    git(mono.top, "push", "-q", "-u", "origin", "main")
    _params_change(mono, "0.3")
    code, _, err = run_cli("repro", "--push", cwd=mono.ml)
    assert code == 0, err
    code, out, err = run_cli("commit", "--push", "-m", "ct: retrain [skip ci]", cwd=mono.ml)
    assert code == 0, err
    assert "Pushed to 'origin'" in out
    assert git(origin, "rev-parse", "main") == git(mono.top, "rev-parse", "HEAD")
    assert git(origin, "log", "-1", "--format=%s", "main").strip() == "ct: retrain [skip ci]"
    files = set(git(origin, "show", "--name-only", "--format=", "main").split())
    assert {"ml/dvc.lock", "ml/params.yaml", "ml/reports/metrics.json"} <= files
    assert porcelain(mono.top) == ""
    # repro --push --commit with nothing new: nothing to run, commit or push.
    code, out, err = run_cli("repro", "--push", "--commit", cwd=mono.ml)
    assert code == 0, err
    assert "No changes to commit." in out and "Pushed the commit" not in out


@pytest.mark.slow
def test_metrics_diff_and_report_read_revisions_in_subdir(mono: Mono) -> None:
    _params_change(mono, "0.01")
    assert run_cli("repro", "--commit", "-m", "C=0.01", cwd=mono.ml)[0] == 0
    code, out, err = run_cli("params", "diff", "--base", "HEAD~1", "--json", cwd=mono.ml)
    assert code == 0, err
    assert "train.C" in out
    code, out, err = run_cli(
        "report", "--base", "HEAD~1", "--format", "json", "--no-plots", cwd=mono.ml
    )
    assert code == 0, err
    rep = json.loads(out)
    text = json.dumps(rep)
    assert "accuracy" in text and "train.C" in text
    before = json.loads(git(mono.top, "show", "HEAD~1:ml/reports/metrics.json"))
    assert str(before["accuracy"])[:6] in text  # the base values were read from git


@pytest.mark.slow
def test_model_register_in_subdir(mono: Mono) -> None:
    code, out, err = run_cli("model", "register", "model", "--version", "v1.0.0", cwd=mono.ml)
    assert code == 0, err
    tag_commit = git(mono.top, "rev-list", "-n1", "model@v1.0.0").strip()
    assert tag_commit == git(mono.top, "rev-parse", "HEAD").strip()
    code, out, err = run_cli("model", "show", "model@v1.0.0", "--json", cwd=mono.ml)
    assert code == 0, err
    lock = git(mono.top, "show", "HEAD:ml/dvc.lock")
    assert json.loads(out)["model_md5"] in lock
    # A later, changed commit: registering it checks dvc.lock at that revision, in a
    # temporary worktree of the enclosing repository (the project is its ml/ folder).
    _params_change(mono, "0.5")
    assert run_cli("repro", "--commit", cwd=mono.ml)[0] == 0
    assert run_cli("data", "push", cwd=mono.ml)[0] == 0
    code, _, err = run_cli("model", "register", "model", "--bump", "minor", cwd=mono.ml)
    assert code == 0, err
    assert git(mono.top, "tag", "--list", "model@*").split() == ["model@v1.0.0", "model@v1.1.0"]
    out_dir = mono.top.parent / "fetched"
    code, out, err = run_cli("model", "get", "model@v1.0.0", "-o", str(out_dir), cwd=mono.ml)
    assert code == 0, err
    assert (out_dir / "model.skops").is_file() and "verified" in out


def test_two_projects_in_one_repository(mono: Mono) -> None:
    ml_tree = git(mono.top, "rev-parse", "HEAD:ml").strip()
    code, out, err = run_cli("init", "ml2", "--subdir", cwd=mono.top)
    assert code == 0, err
    files = mono.committed()
    assert "ml2/dvc.yaml" in files and "ml2/.dvc/config" in files
    assert not any(f.startswith("ml/") for f in files)
    assert git(mono.top, "rev-parse", "HEAD:ml").strip() == ml_tree
    assert porcelain(mono.top) == ""
    assert dvc(mono.top / "ml2", "root").stdout.strip() == "."
    # Each project's commands act on its own folder.
    code, _, err = run_cli("params", "set", "train.C=0.7", cwd=mono.top / "ml2")
    assert code == 0, err
    assert "C: 0.7" in (mono.top / "ml2" / "params.yaml").read_text()
    assert "C: 0.7" not in (mono.ml / "params.yaml").read_text()


@pytest.mark.slow
def test_quickstart_inside_an_existing_repository_makes_its_own(tmp_path: Path) -> None:
    """The README's Quickstart run from inside a clone: demo/ gets its own repository."""
    top = tmp_path / "clone"
    _outer_repo(top)
    outer = git(top, "rev-parse", "HEAD")
    code, out, err = run_cli("quickstart", "demo", cwd=top)
    assert code == 0, err
    demo = top / "demo"
    assert f"inside the git repository {top}" in out and "own" in out
    assert "Metrics (reports/metrics.json): accuracy=" in out
    assert "no git remote yet" in out and "git push -u origin main" in out
    assert git(top, "rev-parse", "HEAD") == outer
    assert git(top, "log", "--format=%s").splitlines() == ["outer"]
    assert porcelain(top) == "?? demo/\n"
    assert git(demo, "rev-parse", "--show-toplevel").strip() == str(demo)
    assert git(demo, "log", "--format=%s").splitlines() == [
        "train: first model from the quickstart",
        "data: schema of the raw data",
        "data: add the breast_cancer data set",
        "mlopskit init: demo",
    ]
    assert porcelain(demo) == ""
    assert ".github/workflows/ct.yml" in git(demo, "ls-files").split()
    m = json.loads((demo / "reports" / "metrics.json").read_text())
    assert 0.5 < m["accuracy"] <= 1.0


@pytest.mark.slow
def test_sweep_in_subdir_runs_each_point_in_the_project_folder(mono: Mono) -> None:
    before = porcelain(mono.top)
    code, _, err = run_cli(
        "exp", "sweep", "-S", "train.C=0.05,2", "-j", "2", "-n", "s", cwd=mono.ml
    )
    assert code == 0, err
    assert "[2 done, 0 running, 0 failed of 2]" in err
    refs = git(mono.top, "for-each-ref", "--format=%(refname:lstrip=-1)", "refs/exps").split()
    assert sorted(refs) == ["s-1", "s-2"]
    shown = json.loads(dvc(mono.ml, "exp", "show", "--json").stdout)
    names = {e.get("name") for rev in shown for e in rev.get("experiments") or []}
    assert {"s-1", "s-2"} <= names
    assert porcelain(mono.top) == before
