"""`commit --push` checks every commit it would push, not only the work tree: no commit
reaches the git remote pointing at data the DVC remote lacks."""

from __future__ import annotations

from pathlib import Path

from mlopskit import errors

from ..conftest import Repo, git, run_cli


def _two_versions(repo: Repo, origin: Path) -> tuple[str, str]:
    """x.txt v1 and v2, each versioned in its own commit; only v2's data pushed."""
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")
    repo.write("x.txt", "version one\n")
    code, _, err = run_cli("data", "add", "x.txt", cwd=repo.root)
    assert code == 0, err
    v1 = repo.head()
    repo.write("x.txt", "version two\n")
    code, _, err = run_cli("data", "add", "x.txt", cwd=repo.root)
    assert code == 0, err
    v2 = repo.head()
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    return v1, v2


def _in_remote(remote: Path, text: str) -> bool:
    return any(p.is_file() and p.read_text() == text for p in remote.rglob("*"))


def test_commit_push_refuses_an_earlier_commit_whose_data_is_not_in_the_remote(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """v1's commit points at data only this machine has: exit 3 naming x.txt, that
    commit and the fix; origin unchanged. After the fix it names (`data push --rev`)
    the push goes through and a fresh clone of v1 can pull its data."""
    v1, v2 = _two_versions(repo, origin)
    before = git(origin, "rev-parse", "main").strip()
    assert not _in_remote(repo.remote, "version one\n")
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == errors.PRECONDITION, out + err
    assert "x.txt (commit " + v1[:8] + ")" in err and "DVC remote 'local'" in err
    assert f"mlopskit data push --rev {v1[:8]}" in err and "--allow-missing-remote" in err
    assert git(origin, "rev-parse", "main").strip() == before
    assert repo.head() == v2
    code, out, err = run_cli("data", "push", "--rev", v1[:8], cwd=repo.root)
    assert code == 0, out + err
    assert _in_remote(repo.remote, "version one\n")
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == 0 and "Pushed to 'origin'" in out, out + err
    assert git(origin, "rev-parse", "main").strip() == v2
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "--detach", v1)
    (clone / ".dvc" / "config.local").write_text((repo.root / ".dvc" / "config.local").read_text())
    code, _, err = run_cli("data", "pull", cwd=clone)
    assert code == 0, err
    assert (clone / "x.txt").read_text() == "version one\n"


def test_commit_push_allow_missing_remote_pushes_the_earlier_commit_anyway(
    repo: Repo, origin: Path
) -> None:
    v1, v2 = _two_versions(repo, origin)
    code, out, err = run_cli("commit", "--push", "--allow-missing-remote", cwd=repo.root)
    assert code == 0, out + err
    assert git(origin, "rev-parse", "main").strip() == v2
    assert git(origin, "rev-parse", "main~1").strip() == v1
    assert not _in_remote(repo.remote, "version one\n")


def test_repro_push_commit_checks_the_earlier_commits_it_pushes(repo: Repo, origin: Path) -> None:
    """`repro --push --commit` pushes the work tree's data, so its own commit is fine, but
    the earlier local `data add` commit of v1 is not: exit 3 naming it, origin unchanged,
    the new commit kept locally; after `data push --rev` the next `commit --push` pushes."""
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")
    before = git(origin, "rev-parse", "main").strip()
    repo.write("x.txt", "version one\n")
    assert run_cli("data", "add", "x.txt", cwd=repo.root)[0] == 0
    v1 = repo.head()
    repo.write("x.txt", "version two\n")
    repo.write(
        "dvc.yaml",
        "stages:\n  count:\n    cmd: wc -c x.txt > n.txt\n    deps:\n      - x.txt\n"
        "    outs:\n      - n.txt\n",
    )
    code, out, err = run_cli("data", "add", "x.txt", cwd=repo.root)
    assert code == 0, out + err
    code, out, err = run_cli("repro", "--push", "--commit", "-m", "count", cwd=repo.root)
    assert code == errors.PRECONDITION, out + err
    assert f"x.txt (commit {v1[:8]})" in err and f"--rev {v1[:8]}" in err
    assert git(origin, "rev-parse", "main").strip() == before
    assert repo.log()[0] == "count" and _in_remote(repo.remote, "version two\n")
    assert run_cli("data", "push", "--rev", v1[:8], cwd=repo.root)[0] == 0
    code, out, err = run_cli("commit", "--push", cwd=repo.root)
    assert code == 0, out + err
    assert git(origin, "rev-parse", "main").strip() == repo.head()
