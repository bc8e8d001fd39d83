"""mlopskit commit / validate, and pushing when the remote branch moved (C2.18)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlopskit import errors
from mlopskit.pipeline import run as pipeline
from mlopskit.pipeline import stages

from .._wait import wait_for
from ..conftest import Repo, git, run_cli


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
    # Both changed the pipeline state: caught before any rebase (the workspace untouched).
    assert "main moved with pipeline changes: retrain" in err
    assert "dvc.lock, params.yaml" in err and "local commit is kept" in err
    assert git(origin, "rev-parse", "main") == head_before
    assert repo.log()[0] == "pipeline: update state"
    assert not (repo.root / ".git" / "rebase-merge").exists()
    assert json.loads((repo.root / "m.json").read_text()) == {"acc": 0.1}
    assert "lr: 0.1" in (repo.root / "params.yaml").read_text() and repo.status() == ""


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
    from ..fake_github import State, serve

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


# ---------------------------------------------------------------- what blocks repro --commit


def _unrelated_changes(repo: Repo) -> None:
    """A modified README.md and workflow, and a staged file: nothing the pipeline uses."""
    repo.write("README.md", "v1\n")
    repo.write(".github/workflows/ct.yml", "name: ct\n")
    repo.git("add", "README.md", ".github/workflows/ct.yml")
    repo.git("commit", "-qm", "docs and ct")
    repo.write("README.md", "v2, not committed\n")
    repo.write(".github/workflows/ct.yml", "name: ct, edited\n")
    repo.write("notes.txt", "staged, unrelated\n")
    repo.git("add", "notes.txt")


def test_unrelated_changes_never_block_repro_commit(repo: Repo, origin: Path) -> None:
    """Item 3: only what the pipeline depends on can block; the rest is left as it was."""
    metrics_pipeline(repo, origin)
    _unrelated_changes(repo)
    code, out, err = run_cli("repro", "--commit", "-m", "train", cwd=repo.root)
    assert code == 0, err
    assert repo.log()[0] == "train"
    files = git(repo.root, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == ["dvc.lock", "m.json"]
    assert set(repo.status().splitlines()) == {
        " M README.md",
        " M .github/workflows/ct.yml",
        "A  notes.txt",
    }
    assert json.loads((repo.root / "m.json").read_text()) == {"acc": 0.1}


def test_dirty_dependency_is_named_with_the_stages_using_it(repo: Repo, origin: Path) -> None:
    metrics_pipeline(repo, origin)
    stages.stage_add(
        repo.project(),
        "n",
        cmd="python -c \"open('n.txt', 'w').write('n')\"",
        deps=["mk.py"],
        outs=["n.txt"],
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "stage n")
    _unrelated_changes(repo)
    repo.write("mk.py", (repo.root / "mk.py").read_text() + "# wip\n")
    repo.git("add", "mk.py")  # staged counts as uncommitted too
    repo.write("helper.py", "x = 1\n")  # untracked, no stage uses it: fine
    head = repo.head()
    code, _, err = run_cli("repro", "--commit", cwd=repo.root)
    assert code == errors.PRECONDITION, err
    assert "uncommitted changes the pipeline depends on: mk.py (stages m, n)" in err
    for other in ("README.md", "ct.yml", "notes.txt", "helper.py"):
        assert other not in err
    assert repo.head() == head and not (repo.root / "m.json").exists()
    # A params change is part of the state commit, never a reason to refuse.
    repo.git("commit", "-qm", "wip mk", "--", "mk.py")
    repo.write("params.yaml", "train:\n  lr: 0.3\n  epochs: 3\n")
    code, out, err = run_cli("repro", "--commit", cwd=repo.root)
    assert code == 0, err
    files = git(repo.root, "show", "--name-only", "--format=", "HEAD").split()
    assert "params.yaml" in files and "notes.txt" not in files


# ---------------------------------------------------------------- push means push


def test_push_without_a_git_remote_or_upstream_exits_4_with_the_fix(repo: Repo) -> None:
    """Item 7: --push never skips silently."""
    repo.write("mk.py", "import json\njson.dump({'acc': 1}, open('m.json', 'w'))\n")
    stages.stage_add(repo.project(), "m", cmd="python mk.py", deps=["mk.py"], metrics=["m.json"])
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    head = repo.head()
    code, _, err = run_cli("repro", "--push", "--commit", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "no git remote" in err
    assert "git remote add origin URL && git push -u origin main" in err
    assert not (repo.root / "m.json").exists() and repo.head() == head  # before training
    pipeline.repro(repo.project())
    code, _, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "git remote add origin URL && git push -u origin main" in err
    # A remote, but the branch has no upstream: the fix names it.
    repo.git("remote", "add", "origin", str(repo.root.parent / "origin.git"))
    code, _, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "no upstream" in err and "(git push -u origin main)" in err
    assert repo.head() == head
    git(repo.root.parent, "init", "-q", "--bare", "-b", "main", "origin.git")
    repo.git("push", "-q", "-u", "origin", "main")
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == 0, err
    assert "Pushed to 'origin'" in out
    assert git(repo.root.parent / "origin.git", "rev-parse", "main") == repo.git(
        "rev-parse", "HEAD"
    )


@pytest.mark.parametrize("then", [["commit", "--push"], ["repro", "--push", "--commit"]])
def test_a_killed_push_is_pushed_by_the_next_run(
    repo: Repo, origin: Path, tmp_path: Path, then: list[str]
) -> None:
    """Item 7: the commit was made, the push was killed; the next run sees the branch
    ahead of its remote and pushes, though there is nothing new to commit."""
    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    started = tmp_path / "hook-started"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ntouch '{started}'\nsleep 60\n")
    hook.chmod(0o755)
    before = git(origin, "rev-parse", "main")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlopskit", "commit", "--push", "-m", "ct: retrain"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def reached() -> bool:
            assert proc.poll() is None, "mlopskit exited before its push reached the remote"
            return started.exists()

        wait_for(reached, 60, "the push to reach the remote's hook")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # mlopskit, git push and the remote's hook
        proc.wait()
    assert repo.log()[0] == "ct: retrain"  # committed locally
    assert git(origin, "rev-parse", "main") == before  # never arrived
    hook.unlink()
    code, out, err = run_cli(*then, cwd=repo.root)
    assert code == 0, err
    assert "No changes to commit." in out and "Pushed" in out
    assert git(origin, "rev-parse", "main") == repo.git("rev-parse", "HEAD")
    # Once in sync, nothing is pushed.
    code, out, err = run_cli(*then, cwd=repo.root)
    assert code == 0, err
    assert "Pushed to" not in out and "Pushed the commit" not in out
