"""data add / push / pull / status against real git, real DVC and a local remote."""

from __future__ import annotations

import hashlib
import shutil
import unicodedata
from pathlib import Path

import pytest

from mlopskit import data, errors

from ..conftest import Repo, dvc, run_cli


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_add_commits_exactly_the_pointers(repo: Repo) -> None:
    repo.write("data/raw/a.csv", "x,y\n1,2\n")
    # Something the user staged must stay staged and out of our commit.
    repo.write("notes.txt", "mine\n")
    repo.git("add", "notes.txt")
    code, out, err = run_cli("data", "add", "data/raw/a.csv", "-m", "add a", cwd=repo.root)
    assert code == 0, err
    assert "Versioned data/raw/a.csv" in out
    files = repo.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == ["data/raw/.gitignore", "data/raw/a.csv.dvc"]
    assert repo.log()[0] == "add a"
    assert repo.status() == "A  notes.txt\n"
    assert (repo.root / "data/raw/.gitignore").read_text() == "/a.csv\n"


def test_add_unchanged_is_no_commit(repo: Repo) -> None:
    repo.write("d.txt", "hello\n")
    first = data.add(repo.project(), ["d.txt"])
    assert first.commit
    head = repo.head()
    again = data.add(repo.project(), ["d.txt"])
    assert again.commit is None and repo.head() == head
    code, out, _ = run_cli("data", "add", "d.txt", cwd=repo.root)
    assert code == 0 and "No changes" in out


def test_add_directory_and_modify(repo: Repo) -> None:
    for i in range(5):
        repo.write(f"images/{i}.txt", f"img {i}\n")
    res = data.add(repo.project(), ["images"])
    assert res.committed == [".gitignore", "images.dvc"]
    repo.write("images/5.txt", "new\n")
    res2 = data.add(repo.project(), ["images"])
    assert res2.committed == ["images.dvc"]
    assert repo.status() == ""


def test_round_trip_push_delete_pull(repo: Repo) -> None:
    """C1.8: add, push, delete workspace and cache, pull: same bytes, remote in sync."""
    f = repo.write("data/x.bin", "payload" * 1000)
    want = md5(f)
    data.add(repo.project(), ["data/x.bin"])
    pushed = data.push(repo.project())
    assert pushed.count == 1 and pushed.remote == "local"
    f.unlink()
    shutil.rmtree(repo.root / ".dvc" / "cache")
    got = data.pull(repo.project())
    assert got.count == 1
    assert md5(f) == want
    assert "Data and pipelines are up to date" in dvc(repo.root, "status", "-c").stdout or dvc(
        repo.root, "status", "-c"
    ).stdout.strip() in ("", "Cache and remote 'local' are in sync.")
    assert data.status(repo.project()).clean


def test_status_reports_not_in_remote_and_modified(repo: Repo) -> None:
    repo.write("a.txt", "1\n")
    data.add(repo.project(), ["a.txt"])
    st = data.status(repo.project())
    assert st.entries == {"a.txt": ["not in remote"]}
    repo.write("a.txt", "2\n")
    st = data.status(repo.project(), cloud=False)
    assert any("modified" in s for s in st.entries["a.txt"])
    code, out, _ = run_cli("data", "status", "--json", cwd=repo.root)
    assert code == 0 and '"a.txt"' in out


def test_push_with_missing_cache_fails(repo: Repo) -> None:
    """C1.3: DVC only warns; mlopskit exits 1 naming the md5."""
    f = repo.write("a.txt", "hello\n")
    data.add(repo.project(), ["a.txt"])
    shutil.rmtree(repo.root / ".dvc" / "cache")
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == errors.FAILED
    assert md5(f) in err
    assert err.count("\n") == 1


def test_failed_add_leaves_no_trace(repo: Repo) -> None:
    """C1.7: a corrupt foo.dvc: add bar fails with exit 2 and changes nothing."""
    repo.write("foo.dvc", "outs: [[[\n")
    repo.git("add", "foo.dvc")
    repo.git("commit", "-qm", "corrupt pointer")
    repo.write("bar", "bar\n")
    gitignore_before = (repo.root / ".gitignore").exists()
    code, _, err = run_cli("data", "add", "bar", cwd=repo.root)
    assert code == errors.USAGE, err
    assert "foo.dvc" in err
    assert not (repo.root / "bar.dvc").exists()
    assert (repo.root / ".gitignore").exists() == gitignore_before
    assert repo.status() == "?? bar\n"
    assert (repo.root / "bar").read_text() == "bar\n"
    assert not (repo.root / ".dvc/tmp/mlopskit/txn.json").exists()


@pytest.mark.parametrize("target", ["../outside.txt", "/tmp/mlopskit-abs.txt"])
def test_path_outside_repo_refused(repo: Repo, target: str) -> None:
    """C4.29: anything outside the root is exit 2 before DVC is called."""
    outside = (repo.root / target).resolve() if not target.startswith("/") else Path(target)
    outside.write_text("secret\n")
    try:
        code, _, err = run_cli("data", "add", target, cwd=repo.root)
        assert code == errors.USAGE
        assert "outside the project root" in err
        assert repo.status() == ""
    finally:
        outside.unlink()


def test_symlink_escaping_repo_refused(repo: Repo, tmp_path: Path) -> None:
    """C4.30: a link to a secret outside the repo is refused, nothing reaches the cache."""
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = abc\n")
    (repo.root / "data").mkdir()
    (repo.root / "data" / "creds").symlink_to(secret)
    code, _, err = run_cli("data", "add", "data/creds", cwd=repo.root)
    assert code == errors.USAGE
    assert "outside the project" in err
    cache = repo.root / ".dvc" / "cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
    # A link hidden inside a directory is refused too.
    (repo.root / "data" / "creds").unlink()
    (repo.root / "data" / "sub").mkdir()
    (repo.root / "data" / "sub" / "k").symlink_to(secret)
    (repo.root / "data" / "ok.txt").write_text("fine\n")
    code, _, err = run_cli("data", "add", "data", cwd=repo.root)
    assert code == errors.USAGE and "data/sub/k" in err


def test_symlink_inside_repo_is_fine(repo: Repo) -> None:
    repo.write("real/a.txt", "a\n")
    (repo.root / "link.txt").symlink_to(repo.root / "real" / "a.txt")
    res = data.add(repo.project(), ["link.txt"])
    assert res.commit


@pytest.mark.parametrize(
    "name",
    [
        "with space.csv",
        "hash#bang!.csv",
        "brack[et].csv",
        "colon:name.csv",
        unicodedata.normalize("NFC", "café.csv"),
        unicodedata.normalize("NFD", "naïve.csv"),
        "日本語.csv",
    ],
)
def test_hostile_and_unicode_paths(repo: Repo, name: str) -> None:
    """C4.32: add, commit, push, pull and checkout work; .gitignore entries are escaped."""
    f = repo.write(f"data/{name}", "v\n")
    res = data.add(repo.project(), [f"data/{name}"])
    assert res.commit
    assert repo.status() == ""
    data.push(repo.project())
    f.unlink()
    shutil.rmtree(repo.root / ".dvc" / "cache")
    data.pull(repo.project())
    assert f.read_text() == "v\n"
    # git ignores the file (escaped entry works) and the tree is clean
    assert repo.status() == ""


def test_long_file_name_is_explained(repo: Repo) -> None:
    """C4.33: ENAMETOOLONG is a one-line exit 2, not a traceback."""
    code, _, err = run_cli("data", "add", "x" * 300, cwd=repo.root)
    assert code == errors.USAGE
    assert "too long" in err and "Traceback" not in err
    # A name the file system takes, but whose .dvc pointer it would not.
    repo.write("y" * 253, "data\n")
    code, _, err = run_cli("data", "add", "y" * 253, cwd=repo.root)
    assert code == errors.USAGE
    assert "too long" in err and err.count("\n") == 1
    assert repo.status() == "?? " + "y" * 253 + "\n"


def test_missing_path(repo: Repo) -> None:
    code, _, err = run_cli("data", "add", "nope.csv", cwd=repo.root)
    assert code == errors.USAGE and "nope.csv: no such file" in err


def test_detached_head_refuses_add(repo: Repo) -> None:
    """C4.37: commands that commit refuse a detached HEAD; read-only ones work."""
    repo.git("checkout", "-q", "--detach")
    repo.write("a.txt", "a\n")
    code, _, err = run_cli("data", "add", "a.txt", cwd=repo.root)
    assert code == errors.PRECONDITION and "detached" in err
    assert not (repo.root / "a.txt.dvc").exists()
    code, _, _ = run_cli("params", "show", cwd=repo.root)
    assert code == 0


def test_no_remote_is_usage_error(repo: Repo) -> None:
    """C4.39: no remote: exit 2 with DVC's hint."""
    (repo.root / ".dvc" / "config.local").unlink()
    repo.write("a.txt", "a\n")
    data.add(repo.project(), ["a.txt"])
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == errors.USAGE
    assert "remote add" in err
