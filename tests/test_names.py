"""Issue 11 item 6: file names a .gitignore line must match exactly.

A name git cannot ignore exactly is refused (exit 2) before anything changes; trailing
spaces are escaped as gitignore(5) documents; what mlopskit writes is checked by asking
git itself (``git check-ignore``).
"""

from __future__ import annotations

import os

import pytest

from mlopskit import errors

from .conftest import Repo, dvc, run_cli


def ignored(repo: Repo, *names: str) -> set[str]:
    """What git ignores among ``names`` (its own answer, NUL-separated)."""
    import subprocess

    res = subprocess.run(
        ["git", "check-ignore", "--no-index", "-z", "--stdin"],
        cwd=repo.root,
        input="".join(f"{n}\0" for n in names).encode(),
        capture_output=True,
        check=False,
    )
    return {p for p in res.stdout.decode().split("\0") if p}


def cache_objects(repo: Repo) -> list[str]:
    odb = repo.root / ".dvc" / "cache"
    return [str(p) for p in odb.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "name",
    ["a\nb.bin", "a.bin\n", "\nb", "trail\r"],
    ids=["newline", "trailing-newline", "leading-newline", "trailing-cr"],
)
def test_name_git_cannot_ignore_is_refused_before_anything_changes(repo: Repo, name: str) -> None:
    (repo.root / name).write_bytes(b"data\n")
    repo.write("b", "unrelated\n")  # `a\nb` would have written a line `/b` too
    head, status = repo.head(), repo.status()

    code, _, err = run_cli("data", "add", name, cwd=repo.root)

    assert code == errors.USAGE, err
    assert repr(name) in err
    assert "rename" in err
    assert (repo.head(), repo.status()) == (head, status)
    assert not (repo.root / ".gitignore").exists()
    assert not (repo.root / f"{name}.dvc").exists()
    assert cache_objects(repo) == []
    assert ignored(repo, "b") == set()
    assert not (repo.root / ".dvc/tmp/mlopskit/txn.json").exists()


def test_trailing_spaces_are_escaped_and_only_that_name_is_ignored(repo: Repo) -> None:
    name = "t.bin  "
    data = repo.root / name
    data.write_bytes(os.urandom(1000))
    repo.write("t.bin", "another file, to stay visible to git\n")

    code, _, err = run_cli("data", "add", name, cwd=repo.root)

    assert code == 0, err
    assert (repo.root / ".gitignore").read_text() == "/t.bin\\ \\ \n"
    assert ignored(repo, name, "t.bin", "t.bin ") == {name}
    assert repo.status() == "?? t.bin\n"
    files = repo.git("show", "--name-only", "-z", "--format=", "HEAD").split("\0")
    assert sorted(f for f in files if f) == [".gitignore", f"{name}.dvc"]
    assert "Data and pipelines are up to date" in dvc(repo.root, "status").stdout

    # A re-add after a change keeps one correct line (DVC's own would come back).
    data.write_bytes(os.urandom(1000))
    code, _, err = run_cli("data", "add", name, cwd=repo.root)
    assert code == 0, err
    assert (repo.root / ".gitignore").read_text() == "/t.bin\\ \\ \n"
    assert repo.status() == "?? t.bin\n"


def test_trailing_space_in_a_subfolder_beside_existing_rules(repo: Repo) -> None:
    repo.write("data/.gitignore", "*.log\n")
    repo.git("add", "data/.gitignore")
    repo.git("commit", "-qm", "ignore logs")
    (repo.root / "data" / "x ").write_bytes(b"x")

    code, _, err = run_cli("data", "add", "data/x ", cwd=repo.root)

    assert code == 0, err
    assert (repo.root / "data/.gitignore").read_text() == "*.log\n/x\\ \n"
    assert ignored(repo, "data/x ", "data/x") == {"data/x "}
    assert repo.status() == ""


@pytest.mark.parametrize("name", ["#hash.bin", "!bang.bin", "a[1]*?.bin", "back\\slash", "tab\t"])
def test_other_awkward_names_are_ignored_exactly(repo: Repo, name: str) -> None:
    (repo.root / name).write_bytes(b"x")
    code, _, err = run_cli("data", "add", name, cwd=repo.root)
    assert code == 0, err
    assert ignored(repo, name) == {name}
    assert repo.status() == ""
