"""No commit that lies (issue 11 items 2-4, issue 13 item 3): the lock covers the whole
commit/push flow, a moved branch with pipeline changes is never rebased onto, and a
commit is never pushed with outputs only this machine has. Real processes, a bare
origin, real DVC as the oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlopskit import errors
from mlopskit.pipeline import run as pipeline
from mlopskit.pipeline import stages

from .._wait import wait_for
from ..cli.test_wait import LOCK_FILE, _wait_until_polling
from ..conftest import Repo, dvc, git, porcelain, run_cli, run_subprocess
from .test_commit import metrics_pipeline, other_clone


def _mlopskit(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlopskit", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _hold_pushes(origin: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A pre-receive hook on origin that says when a push reached it and holds the push
    until told to go: a known point inside mlopskit's git push."""
    started, release = tmp_path / "push-started", tmp_path / "push-release"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"touch '{started}'\n"
        "i=0\n"
        f"while [ ! -e '{release}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
    )
    hook.chmod(0o755)
    return started, release


def _until(path: Path, proc: subprocess.Popen[str], what: str) -> None:

    def happened() -> bool:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"{what}: exited {proc.returncode} first: {out}{err}")
        return path.exists()

    wait_for(happened, 120, what)


def _at(origin: Path, rev: str, path: str) -> str:
    return git(origin, "show", f"{rev}:{path}")


def _lock_lr(text: str) -> object:
    doc = yaml.safe_load(text)
    return doc["stages"]["m"]["params"]["params.yaml"]["train.lr"]


def _fresh_clone(origin: Path, tmp_path: Path, name: str, remote: Path) -> Path:
    clone = other_clone(origin, tmp_path, name)
    (clone / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n"
    )
    return clone


# ------------------------------------------------------------------ item 2: the lock


@pytest.mark.parametrize(
    "command", [["repro", "--push", "--commit"], ["commit", "--push"]], ids=["repro", "commit"]
)
def test_params_set_during_the_push_phase_waits_for_the_lock(
    repo: Repo, origin: Path, tmp_path: Path, command: list[str]
) -> None:
    """A `params set` started while the commit is being pushed cannot get in: without
    --wait it exits 3 naming the holder; with --wait it runs after, and origin's tip
    pairs the old params with the old dvc.lock. (Before: the lock was free during the
    push, so the first `params set` went through.)"""
    metrics_pipeline(repo, origin)
    if command[0] == "commit":
        pipeline.repro(repo.project())
    started, release = _hold_pushes(origin, tmp_path)
    first = _mlopskit(*command, "-m", "train", cwd=repo.root)
    waiter = None
    try:
        _until(started, first, "the git push")
        refused = run_subprocess("params", "set", "train.lr=0.7", cwd=repo.root)
        assert refused.returncode == errors.PRECONDITION, refused.stdout + refused.stderr
        assert "locked by pid" in refused.stderr and "--wait" in refused.stderr
        assert "lr: 0.1" in (repo.root / "params.yaml").read_text()
        waiter = _mlopskit("params", "set", "train.lr=0.7", "--wait", cwd=repo.root)
        _wait_until_polling(waiter, repo.root / LOCK_FILE)  # it reached the lock...
        assert waiter.poll() is None  # ...and cannot finish while the push holds it
    finally:
        release.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert waiter is not None
    w_out, w_err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, w_out + w_err
    tip = git(origin, "rev-parse", "main").strip()
    assert tip == repo.head() and repo.log()[0] == "train"
    assert yaml.safe_load(_at(origin, tip, "params.yaml"))["train"]["lr"] == 0.1
    assert _lock_lr(_at(origin, tip, "dvc.lock")) == 0.1
    # The later params set changed the workspace only, after the commit.
    assert "lr: 0.7" in (repo.root / "params.yaml").read_text()
    assert porcelain(repo.root).splitlines() == [" M params.yaml"]


# ------------------------------------------------------------------ item 3: stale rebase


@pytest.mark.parametrize("upstream", ["params", "code"])
def test_ct_rebase_onto_a_pipeline_change_exits_4_then_the_rerun_retrains(
    repo: Repo, origin: Path, tmp_path: Path, upstream: str
) -> None:
    """Two CT runs in a row: clone A trains while clone B pushes a params (or code)
    change. A's rebase would be clean as text, but its dvc.lock was computed without
    B's change: exit 4 "main moved with pipeline changes: retrain", nothing pushed. The
    rerun on the new tip trains on B's change and pushes a tip DVC calls up to date."""
    metrics_pipeline(repo, origin)
    code, out, err = run_cli("repro", "--pull", "--push", cwd=repo.root)
    assert code == 0, err
    other = other_clone(origin, tmp_path, "b")
    if upstream == "params":
        (other / "params.yaml").write_text("train:\n  lr: 0.4\n  epochs: 3\n")
        changed = "params.yaml"
    else:
        mk = other / "mk.py"
        mk.write_text(mk.read_text().replace("p['lr']}", "p['lr'] * 2}"))
        changed = "mk.py"
    git(other, "commit", "-qam", f"change {changed}")
    git(other, "push", "-q", "origin", "main")
    moved_to = git(origin, "rev-parse", "main")
    ours = {f: (repo.root / f).read_text() for f in ("params.yaml", "mk.py", "dvc.lock")}
    code, out, err = run_cli("commit", "--push", "-m", "ct: retrain [skip ci]", cwd=repo.root)
    assert code == errors.REMOTE, out + err
    assert "main moved with pipeline changes: retrain" in err
    assert changed in err and "nothing was pushed" in err
    assert git(origin, "rev-parse", "main") == moved_to
    assert repo.log()[0] == "ct: retrain [skip ci]"  # the local commit is kept
    # Never rebased: the workspace is as the run left it, B's change not in it.
    assert porcelain(repo.root) == ""
    assert {f: (repo.root / f).read_text() for f in ours} == ours
    assert not (repo.root / ".git" / "rebase-merge").exists()
    # The rerun: CT checks out the new tip and runs the same two commands.
    rerun = _fresh_clone(origin, tmp_path, "rerun", repo.remote)
    code, out, err = run_cli("repro", "--pull", "--push", cwd=rerun)
    assert code == 0 and "Ran: m" in out, out + err
    code, out, err = run_cli("commit", "--push", "-m", "ct: retrain [skip ci]", cwd=rerun)
    assert code == 0, out + err
    tip = git(origin, "rev-parse", "main").strip()
    assert git(origin, "log", "--format=%s", "-2", "main").splitlines() == [
        "ct: retrain [skip ci]",
        f"change {changed}",
    ]
    acc = json.loads(_at(origin, tip, "m.json"))["acc"]
    assert acc == (0.4 if upstream == "params" else 0.2)
    check = _fresh_clone(origin, tmp_path, "check", repo.remote)
    assert "up to date" in dvc(check, "status").stdout  # DVC: the tip's lock is true


def test_rebase_onto_an_unrelated_change_still_pushes(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """The check costs nothing to the common case: a docs change upstream is rebased on."""
    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    other = other_clone(origin, tmp_path, "b")
    (other / "README.md").write_text("docs\n")
    (other / "notes.py").write_text("# not used by any stage\n")
    git(other, "add", "-A")
    git(other, "commit", "-qm", "docs")
    git(other, "push", "-q", "origin", "main")
    code, out, err = run_cli("commit", "--push", "-m", "ct", cwd=repo.root)
    assert code == 0, err
    assert git(origin, "log", "--format=%s", "-2", "main").splitlines() == ["ct", "docs"]
    check = _fresh_clone(origin, tmp_path, "check", repo.remote)
    assert "up to date" in dvc(check, "status").stdout


def test_a_rebased_tip_that_fails_its_check_is_put_back_and_not_pushed(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """The check after a rebase (DVC's status of the rebased tip) refusing: the branch
    goes back to the commit it had, upstream's files leave the workspace, nothing is
    pushed."""
    from mlopskit import scm

    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    repo.git("add", "dvc.lock", "m.json")
    repo.git("commit", "-qm", "ours")
    ours = repo.head()
    other = other_clone(origin, tmp_path, "b")
    (other / "README.md").write_text("docs\n")
    git(other, "add", "README.md")
    git(other, "commit", "-qm", "docs")
    git(other, "push", "-q", "origin", "main")
    moved_to = git(origin, "rev-parse", "main")
    seen: list[str] = []

    def refuse() -> None:
        seen.append(repo.head())
        raise errors.RemoteError("stale after rebase")

    with pytest.raises(errors.RemoteError, match="stale after rebase"):
        scm.push_rebasing(repo.root, "origin", "main", after_rebase=refuse)
    assert seen and seen[0] != ours  # it ran on the rebased commit
    assert repo.head() == ours and not (repo.root / "README.md").exists()
    assert porcelain(repo.root) == ""
    assert git(origin, "rev-parse", "main") == moved_to


# ------------------------------------------------------------------ before any commit


def test_commit_refuses_a_lock_that_does_not_match_the_params(repo: Repo, origin: Path) -> None:
    """`params set` then `commit` without `repro`: the commit would lie; exit 3."""
    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    code, _, err = run_cli("params", "set", "train.lr=0.9", cwd=repo.root)
    assert code == 0, err
    head = repo.head()
    code, _, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.PRECONDITION, err
    assert "dvc.lock does not match" in err and "stage(s) m" in err and "mlopskit repro" in err
    assert repo.head() == head and git(origin, "rev-parse", "main").strip() == head
    assert "lr: 0.9" in (repo.root / "params.yaml").read_text()


# ------------------------------------------------------------------ item 4: data first


def _cached_pipeline(repo: Repo, origin: Path) -> None:
    repo.write(
        "make.py",
        "import json, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))['train']\n"
        "open('model.bin', 'w').write('model %s' % p['lr'])\n"
        "json.dump({'acc': p['lr']}, open('m.json', 'w'))\n",
    )
    stages.stage_add(
        repo.project(),
        "m",
        cmd="python make.py",
        deps=["make.py"],
        params_=["train.lr"],
        outs=["model.bin"],
        metrics=["m.json"],
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")


def test_commit_push_after_plain_repro_refuses_outputs_not_in_the_remote(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """After a plain `repro` the model is only in the local cache: `commit --push` exits
    3 naming it and --allow-missing-remote, nothing committed or pushed. With the flag it
    pushes, and a fresh clone's `data pull` then fails, which is why it is refused."""
    _cached_pipeline(repo, origin)
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == 0, err
    head = repo.head()
    code, out, err = run_cli("commit", "--push", "-m", "train", cwd=repo.root)
    assert code == errors.PRECONDITION, out + err
    assert "not in DVC remote 'local': model.bin" in err
    assert "--allow-missing-remote" in err and "mlopskit data push" in err
    assert repo.head() == head and git(origin, "rev-parse", "main").strip() == head
    assert not any(p.is_file() for p in repo.remote.rglob("*"))
    code, out, err = run_cli(
        "commit", "--push", "--allow-missing-remote", "-m", "train", cwd=repo.root
    )
    assert code == 0, out + err
    assert git(origin, "rev-parse", "main").strip() == repo.head() != head
    clone = _fresh_clone(origin, tmp_path, "clone", repo.remote)
    code, _, err = run_cli("data", "pull", cwd=clone)
    assert code != 0 and "model.bin" in err
    # Pushing the data makes the same clone whole.
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    code, _, err = run_cli("data", "pull", cwd=clone)
    assert code == 0, err
    assert (clone / "model.bin").read_text() == "model 0.1"


def test_commit_push_of_an_earlier_local_commit_checks_the_remote_too(
    repo: Repo, origin: Path
) -> None:
    """Nothing new to commit, but the branch is ahead (a plain `repro --commit`): the
    push of that commit is refused just the same while its model is only local."""
    _cached_pipeline(repo, origin)
    code, _, err = run_cli("repro", "--commit", "-m", "train", cwd=repo.root)
    assert code == 0, err
    before = git(origin, "rev-parse", "main")
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.PRECONDITION, out + err
    assert "model.bin" in err and "--allow-missing-remote" in err
    assert git(origin, "rev-parse", "main") == before
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == 0 and "Pushed to 'origin'" in out, out + err
    assert git(origin, "rev-parse", "main").strip() == repo.head()


def test_commit_retries_bounds_the_rebase_and_push_attempts(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """`--retries 0`: the push the moved branch rejects is the last attempt (exit 4, the
    local commit kept, origin untouched); `--retries 1` rebases once and pushes."""
    metrics_pipeline(repo, origin)
    pipeline.repro(repo.project())
    other = other_clone(origin, tmp_path, "b")
    (other / "README.md").write_text("docs\n")
    git(other, "add", "-A")
    git(other, "commit", "-qm", "docs")
    git(other, "push", "-q", "origin", "main")
    tip = git(origin, "rev-parse", "main").strip()
    code, _, err = run_cli("commit", "--push", "--retries", "0", "-m", "ct", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "failed after 1 attempts" in err and "the local commit is kept" in err
    assert git(origin, "rev-parse", "main").strip() == tip
    assert repo.log()[0] == "ct"
    code, _, err = run_cli("commit", "--push", "--retries", "1", cwd=repo.root)
    assert code == 0, err
    assert git(origin, "log", "--format=%s", "-2", "main").splitlines() == ["ct", "docs"]
