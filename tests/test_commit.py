"""mlopskit commit / validate, and pushing when the remote branch moved (C2.18)."""

from __future__ import annotations

import json
from pathlib import Path

from mlopskit import errors, pipeline, stages

from .conftest import Repo, git, run_cli


def metrics_pipeline(repo: Repo, origin: Path) -> None:
    repo.write(
        "mk.py",
        "import json, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))['train']\n"
        "json.dump({'acc': p['lr']}, open('m.json', 'w'))\n",
    )
    stages.stage_add(
        repo.project(),
        "m",
        cmd="python mk.py",
        deps=["mk.py"],
        params_=["train.lr"],
        metrics=["m.json"],
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")


def other_clone(origin: Path, tmp_path: Path, name: str = "other") -> Path:
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


def test_commit_and_push_rebases_when_main_moved(repo: Repo, origin: Path, tmp_path: Path) -> None:
    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    # Meanwhile someone pushes an unrelated change to main.
    other = other_clone(origin, tmp_path)
    (other / "README").write_text("docs\n")
    git(other, "add", "README")
    git(other, "commit", "-qm", "docs")
    git(other, "push", "-q", "origin", "main")
    code, out, err = run_cli("commit", "--push", "-m", "ct: retrain [skip ci]", cwd=repo.root)
    assert code == 0, err
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert log[:2] == ["ct: retrain [skip ci]", "docs"]
    files = git(origin, "show", "--name-only", "--format=", "main").split()
    assert sorted(files) == ["dvc.lock", "m.json"]


def test_conflicting_move_exits_4_and_keeps_local_commit(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    metrics_pipeline(repo, origin)
    other = other_clone(origin, tmp_path)
    pipeline.repro(repo.project())
    # The other clone trains with another lr and pushes its own dvc.lock first.
    (other / "params.yaml").write_text("train:\n  lr: 0.5\n  epochs: 3\n")
    assert run_cli("repro", "--commit", cwd=other)[0] == 0
    git(other, "push", "-q", "origin", "main")
    head_before = git(origin, "rev-parse", "main")
    code, _, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "conflict" in err and "local commit is kept" in err
    assert git(origin, "rev-parse", "main") == head_before
    assert repo.log()[0] == "pipeline: update state"
    assert not (repo.root / ".git" / "rebase-merge").exists()
    assert json.loads((repo.root / "m.json").read_text()) == {"acc": 0.1}


def test_commit_nothing_is_exit_0(repo: Repo) -> None:
    code, out, _ = run_cli("commit", cwd=repo.root)
    assert code == 0 and "No changes" in out


def test_validate(repo: Repo) -> None:
    repo.write("s.py", "")
    stages.stage_add(repo.project(), "s", cmd="python s.py", deps=["s.py"], params_=["train.lr"])
    code, out, err = run_cli("validate", cwd=repo.root)
    assert code == 0 and "1 stage(s)" in out, err
    repo.write("params.yaml", "train:\n  epochs: 3\n")
    code, _, err = run_cli("validate", cwd=repo.root)
    assert code == errors.USAGE and "train.lr" in err
    repo.write("mlopskit.yaml", "projekt: {}\n")
    code, _, err = run_cli("validate", cwd=repo.root)
    assert code == errors.USAGE and "did you mean 'project'" in err


def test_commit_pull_request_mode(repo: Repo, origin: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """ct_mode: pull-request: the state goes to a new branch and a pull request opens."""
    from .fake_github import State, serve

    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    state = State()
    with serve(state) as url:
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", state.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", state.repo)
        code, out, err = run_cli(
            "commit", "--push", "--pull-request", "-m", "ct: retrain [skip ci]", cwd=repo.root
        )
    assert code == 0, err
    sha = repo.head()
    branch = f"mlopskit/ct-{sha[:12]}"
    assert git(origin, "rev-parse", branch).strip() == sha
    assert git(origin, "rev-parse", "main").strip() != sha  # main untouched
    (pr,) = state.pulls
    assert pr["head"] == branch and pr["base"] == "main" and pr["title"] == "ct: retrain"
    assert "Opened https://github.test/acme/churn/pull/1" in out
    code, _, err = run_cli("commit", "--pull-request", cwd=repo.root)
    assert code == errors.USAGE
