"""Issue 11 item 6: file names a .gitignore line must match exactly.

A name git cannot ignore exactly is refused (exit 2) before anything changes; trailing
spaces are escaped as gitignore(5) documents; what mlopskit writes is checked by asking
git itself (``git check-ignore``).
"""

from __future__ import annotations

import json
import os

import pytest

from mlopskit import errors

from ..conftest import Repo, dvc, run_cli


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


# --------------------------------------------------------------------------- issue 14
# mlopskit/names.py owns every name rule; each is checked here through the command a
# user types (exit 2, the name and what is allowed, nothing changed).


@pytest.mark.parametrize("name", ["a/b", ".hidden", "x y", "a:b", "tr@in"])
def test_stage_add_refuses_a_bad_stage_name(repo: Repo, name: str) -> None:
    code, _, err = run_cli("stage", "add", name, "--cmd", "echo hi", cwd=repo.root)
    assert code == errors.USAGE, err
    assert repr(name) in err and "letters, digits, '-', '_' and '.'" in err
    assert not (repo.root / "dvc.yaml").exists()


@pytest.mark.parametrize("assignment", ["train.=1", ".lr=1", "train..lr=1", "=1"])
def test_params_set_refuses_an_empty_key_part(repo: Repo, assignment: str) -> None:
    before = (repo.root / "params.yaml").read_text()
    code, _, err = run_cli("params", "set", assignment, cwd=repo.root)
    assert code == errors.USAGE, err
    assert "empty key" in err and assignment in err
    assert (repo.root / "params.yaml").read_text() == before


def test_experiment_names_follow_gtos_rule_in_one_component(repo: Repo) -> None:
    code, out, err = run_cli(
        "exp", "plan", "--grid", "train.lr=1,2", "--name", "a/b", cwd=repo.root
    )
    assert code == errors.USAGE and "--name 'a/b'" in err, (out, err)
    code, out, err = run_cli(
        "exp", "plan", "--grid", "train.lr=1,2", "--name", "lr-sweep", cwd=repo.root
    )
    assert code == 0, err
    assert [p["name"] for p in json.loads(out)] == ["lr-sweep-1", "lr-sweep-2"]
    bad = json.dumps({"name": "-x", "set": ["train.lr=1"]})
    code, _, err = run_cli("exp", "run", "--point", bad, cwd=repo.root)
    assert code == errors.USAGE and "--point: name '-x' is not valid" in err


def test_registry_stage_names_in_the_config_follow_gtos_rule(repo: Repo) -> None:
    repo.write("mlopskit.yaml", "registry:\n  stages: [dev, 'pr/od/']\n")
    code, _, err = run_cli("validate", cwd=repo.root)
    assert code == errors.USAGE, err
    assert "registry.stages: 'pr/od/' is not a valid stage name" in err


@pytest.mark.parametrize(
    ("name", "known", "words"),
    [
        ("a//b", [], "not a valid git tag name"),
        ("-rf", [], "is not valid"),
        ("x" * 201, [], "longer than 200 bytes"),
        ("Model", ["model"], "differs only in case from 'model'"),
    ],
    ids=["git-ref", "gto", "length", "case"],
)
def test_artifact_names(repo: Repo, name: str, known: list[str], words: str) -> None:
    from mlopskit import names

    with pytest.raises(errors.UsageError, match=words):
        names.check_artifact_name(repo.root, name, known=known)
    names.check_artifact_name(repo.root, "models/churn", known=["model"])  # fine


# ------------------------------------------- issue 11 item 6: stage outputs (stage add, repro)
# DVC writes a .gitignore line for every cached stage output, at `stage add` and again
# when the stage runs: the same rules hold there as for `data add`.

WRITE_OUT = "python -c \"open('out ','w').write('x')\""


@pytest.mark.parametrize("how", ["stage-add", "hand-written"])
def test_stage_output_with_a_trailing_space_is_ignored_exactly_after_repro(
    repo: Repo, how: str
) -> None:
    repo.write("out", "another file, to stay visible to git\n")
    if how == "stage-add":
        code, _, err = run_cli("stage", "add", "s", "--cmd", WRITE_OUT, "-o", "out ", cwd=repo.root)
        assert code == 0, err
        assert (repo.root / ".gitignore").read_text() == "/out\\ \n"
    else:
        # The line an earlier run (or `dvc repro`) wrote, which git reads as `/out`.
        repo.write(
            "dvc.yaml", f"stages:\n  s:\n    cmd: {json.dumps(WRITE_OUT)}\n    outs: ['out ']\n"
        )
        repo.write(".gitignore", "/out \n")

    code, _, err = run_cli("repro", cwd=repo.root)

    assert code == 0, err
    assert (repo.root / "out ").read_text() == "x"
    assert (repo.root / ".gitignore").read_text() == "/out\\ \n"
    assert ignored(repo, "out ", "out") == {"out "}
    assert repo.status() == "?? .gitignore\n?? dvc.lock\n?? dvc.yaml\n?? out\n"
    # Run again (DVC checks its line once more): still one line, still exact.
    code, _, err = run_cli("repro", "--force", cwd=repo.root)
    assert code == 0, err
    assert (repo.root / ".gitignore").read_text() == "/out\\ \n"
    assert "Data and pipelines are up to date" in dvc(repo.root, "status").stdout


@pytest.mark.parametrize(
    ("flag", "name"),
    [("-o", "a\nb"), ("-o", "sub/x\r"), ("-M", "m\n.json"), ("--plots", "p\n.csv")],
    ids=["out-newline", "out-trailing-cr", "metrics-newline", "plots-newline"],
)
def test_stage_add_refuses_an_output_git_cannot_ignore(repo: Repo, flag: str, name: str) -> None:
    repo.write("b", "unrelated\n")  # `a\nb` would have written a line `/b` too
    head, status = repo.head(), repo.status()

    code, _, err = run_cli("stage", "add", "n", "--cmd", "true", flag, name, cwd=repo.root)

    assert code == errors.USAGE, err
    assert f"stage 'n': output {name!r}" in err and "rename" in err
    assert not (repo.root / "dvc.yaml").exists()
    assert not (repo.root / ".gitignore").exists()
    assert not (repo.root / "sub").exists()
    assert (repo.head(), repo.status()) == (head, status)
    assert ignored(repo, "b") == set()


def test_repro_refuses_a_hand_written_output_git_cannot_ignore_before_running(
    repo: Repo,
) -> None:
    text = (
        "stages:\n"
        "  first:\n    cmd: python -c \"open('ran','w').write('x')\"\n    outs: [ran]\n"
        "  n:\n    cmd: python -c \"open('a\\nb','w')\"\n    deps: [ran]\n"
        '    outs: ["a\\nb"]\n'
    )
    repo.write("dvc.yaml", text)
    repo.write("b", "unrelated\n")

    code, _, err = run_cli("repro", cwd=repo.root)

    assert code == errors.USAGE, err
    assert "dvc.yaml: stage 'n': output 'a\\nb': a newline in a file name" in err, err
    assert (repo.root / "dvc.yaml").read_text() == text
    assert not (repo.root / "ran").exists()  # nothing ran, not even the stage before it
    assert not (repo.root / "dvc.lock").exists()
    assert not (repo.root / ".gitignore").exists()
    assert repo.status() == "?? b\n?? dvc.yaml\n"
    # `validate` and `stage list` say the same, changing nothing.
    for args in (("validate",), ("stage", "list")):
        code, _, err = run_cli(*args, cwd=repo.root)
        assert code == errors.USAGE and "stage 'n': output 'a\\nb'" in err, (args, err)
    assert repo.status() == "?? b\n?? dvc.yaml\n"


def git_would_not_ignore(repo: Repo, name: str) -> None:
    """A file DVC believes ignored and git does not: DVC asks dulwich, which lets
    core.excludesFile win over a `!` rule in .git/info/exclude (git reads it the other way
    round), so DVC writes no .gitignore line for it."""
    line = name.replace(" ", "\\ ")  # trailing spaces escaped, as gitignore(5) says
    excludes = repo.root.parent / "excludes"
    excludes.write_text(f"{line}\n")
    repo.git("config", "core.excludesFile", str(excludes))
    (repo.root / ".git" / "info" / "exclude").write_text(f"!{line}\n")
    (repo.root / name).write_text("x")
    assert ignored(repo, name) == set()
    (repo.root / name).unlink()


def test_an_add_git_would_not_ignore_is_undone(repo: Repo) -> None:
    git_would_not_ignore(repo, "d.bin")
    data = repo.root / "d.bin"
    data.write_bytes(b"data\n")
    head, status = repo.head(), repo.status()

    code, _, err = run_cli("data", "add", "d.bin", cwd=repo.root)

    assert code == errors.FAILED, err
    assert "git would not ignore 'd.bin'" in err
    assert (repo.head(), repo.status()) == (head, status)
    assert not (repo.root / "d.bin.dvc").exists()
    assert not (repo.root / ".gitignore").exists()
    assert data.read_bytes() == b"data\n"
    assert not (repo.root / ".dvc/tmp/mlopskit/txn.json").exists()


def test_stage_add_names_an_output_git_would_not_ignore(repo: Repo) -> None:
    git_would_not_ignore(repo, "out")

    code, _, err = run_cli("stage", "add", "s", "--cmd", "true", "-o", "out", cwd=repo.root)

    assert code == errors.FAILED, err
    assert "git would not ignore 'out'" in err
    assert not (repo.root / "dvc.yaml").exists()
    assert not (repo.root / ".gitignore").exists()
    assert repo.status() == ""


def test_repro_names_an_output_git_would_not_ignore(repo: Repo) -> None:
    git_would_not_ignore(repo, "out ")
    repo.write("dvc.yaml", f"stages:\n  s:\n    cmd: {json.dumps(WRITE_OUT)}\n    outs: ['out ']\n")

    code, _, err = run_cli("repro", cwd=repo.root)

    assert code == errors.FAILED, err
    assert "git would not ignore 'out '" in err
    assert ignored(repo, "out ") == set()
