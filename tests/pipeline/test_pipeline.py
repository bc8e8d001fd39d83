"""stage add / list and repro, with DVC's real semantics and mlopskit's checks first."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlopskit import data, errors, yamlio
from mlopskit.pipeline import run as pipeline
from mlopskit.pipeline import stages

from ..conftest import Repo, dvc, git, run_cli

PY = sys.executable


def two_stages(repo: Repo) -> None:
    """A tiny two-stage pipeline: prepare copies the input, score writes metrics."""
    repo.write("in.txt", "1\n2\n3\n")
    data.add(repo.project(), ["in.txt"])
    repo.write(
        "prep.py",
        "import sys, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))['train']\n"
        "open('out.txt', 'w').write(open('in.txt').read() * p['epochs'])\n",
    )
    repo.write(
        "score.py",
        "import json\n"
        "n = len(open('out.txt').read().split())\n"
        "json.dump({'count': n, 'acc': n / 100}, open('metrics.json', 'w'))\n",
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "code")
    stages.stage_add(
        repo.project(),
        "prepare",
        cmd=["python", "prep.py"],
        deps=["in.txt", "prep.py"],
        outs=["out.txt"],
        params_=["train.epochs"],
    )
    stages.stage_add(
        repo.project(),
        "score",
        cmd="python score.py",
        deps=["out.txt", "score.py"],
        metrics=["metrics.json"],
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")


def test_stage_add_writes_plain_dvc_yaml(repo: Repo) -> None:
    two_stages(repo)
    doc = yamlio.load(repo.root / "dvc.yaml")
    assert doc["stages"]["prepare"]["cmd"] == "python prep.py"
    assert list(doc["stages"]["prepare"]["params"]) == ["train.epochs"]
    assert doc["stages"]["score"]["metrics"] == [{"metrics.json": {"cache": False}}]
    # DVC itself reads it
    assert "prepare" in dvc(repo.root, "stage", "list").stdout


def test_stage_list_in_dag_order_with_status(repo: Repo) -> None:
    two_stages(repo)
    # Put score first in the file: the listing must still put prepare (its upstream) first.
    import yaml

    doc = yaml.safe_load((repo.root / "dvc.yaml").read_text())
    doc["stages"] = dict(reversed(list(doc["stages"].items())))
    (repo.root / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert list(yamlio.load(repo.root / "dvc.yaml")["stages"]) == ["score", "prepare"]
    repo.git("commit", "-qam", "score first in the file")
    st = stages.stage_list(repo.project())
    assert [(s.name, s.changed) for s in st] == [("prepare", True), ("score", True)]
    pipeline.repro(repo.project())
    st = stages.stage_list(repo.project())
    assert [(s.name, s.changed) for s in st] == [("prepare", False), ("score", False)]
    code, out, _ = run_cli("stage", "list", cwd=repo.root)
    rows = out.splitlines()[2:]
    assert code == 0 and [r.split()[0] for r in rows] == ["prepare", "score"], out
    assert all("up to date" in r for r in rows), out


@pytest.mark.parametrize("name", ["a;b", "$(touch pwned)", "x\ny", "it's", "-rf", "a b"])
def test_hostile_stage_names_refused(repo: Repo, name: str) -> None:
    """C4.31: hostile names never reach dvc.yaml or a shell."""
    code, _, err = run_cli("stage", "add", name, "--cmd", "echo hi", cwd=repo.root)
    assert code == errors.USAGE, err
    assert not (repo.root / "dvc.yaml").exists()
    assert not (repo.root / "pwned").exists()


def test_command_arguments_are_quoted_and_round_trip(repo: Repo) -> None:
    """C4.31: a command given as arguments is shlex-quoted; the YAML round-trips."""
    code, _, err = run_cli(
        "stage",
        "add",
        "weird",
        "-o",
        "o.txt",
        "--",
        PY,
        "-c",
        "import sys; open('o.txt','w').write(sys.argv[1])",
        "$(touch pwned); 'x'",
        cwd=repo.root,
    )
    assert code == 0, err
    pipeline.repro(repo.project())
    assert (repo.root / "o.txt").read_text() == "$(touch pwned); 'x'"
    assert not (repo.root / "pwned").exists()
    doc = yamlio.load(repo.root / "dvc.yaml")
    assert yamlio.loads(yamlio.dumps(doc), display="x") == doc


def test_repro_runs_then_skips_unchanged(repo: Repo) -> None:
    two_stages(repo)
    res = pipeline.repro(repo.project())
    assert res.ran == ["prepare", "score"]
    assert json.loads((repo.root / "metrics.json").read_text())["count"] == 9
    again = pipeline.repro(repo.project())
    assert again.ran == []
    code, out, _ = run_cli("repro", "--dry", "--force", cwd=repo.root)
    assert code == 0 and "prepare" in out


def test_missing_param_fails_before_anything_runs(repo: Repo) -> None:
    """C4.26 / dvc#3707: checked first, not after training."""
    repo.write("slow.py", "open('ran', 'w').write('yes')\n")
    # Written by hand (or by `dvc stage add`, which does not check): `stage add` refuses it.
    repo.write(
        "dvc.yaml",
        "stages:\n  slow:\n    cmd: python slow.py\n    deps:\n      - slow.py\n"
        "    params:\n      - train.missing_key\n",
    )
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == errors.USAGE
    assert "train.missing_key" in err and "slow" in err
    assert not (repo.root / "ran").exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("stages:\n  a:\n    cmd: [unclosed\n", "dvc.yaml:"),
        ("stages:\n  a:\n    cmd: echo\n    bogus_key: 1\n", "dvc.yaml"),
        ("stages:\n<<<<<<< HEAD\n  a:\n    cmd: echo 1\n=======\n", "dvc.yaml:2"),
        ("stages:\n  a:\n    cmd: echo\n  a:\n    cmd: echo\n", "dvc.yaml:4"),
    ],
)
def test_malformed_dvc_yaml(repo: Repo, text: str, where: str) -> None:
    """C4.24: exit 2 with file:line, before any stage runs."""
    repo.write("dvc.yaml", text)
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == errors.USAGE, err
    assert where in err
    assert err.count("\n") == 1


def test_failing_stage_is_exit_1(repo: Repo) -> None:
    stages.stage_add(repo.project(), "boom", cmd=f'{PY} -c "raise SystemExit(3)"')
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == errors.FAILED
    assert "boom" in err


def test_repro_commit_makes_one_commit(repo: Repo) -> None:
    two_stages(repo)
    repo.write("notes.txt", "unrelated\n")  # untracked, not a dependency: left alone
    params_before = repo.head()
    code, out, err = run_cli("repro", "--commit", "-m", "train it", cwd=repo.root)
    assert code == 0, err
    assert repo.git("rev-parse", "HEAD~1").strip() == params_before
    files = sorted(repo.git("show", "--name-only", "--format=", "HEAD").split())
    assert files == ["dvc.lock", "metrics.json"]
    assert repo.status() == "?? notes.txt\n"
    # Nothing to commit the second time: exit 0, no empty commit (C4.38)
    head = repo.head()
    code, out, _ = run_cli("repro", "--commit", cwd=repo.root)
    assert code == 0 and "No changes to commit" in out and repo.head() == head


def test_repro_commit_includes_params_change(repo: Repo) -> None:
    two_stages(repo)
    pipeline.repro(repo.project(), commit=True)
    code, _, _ = run_cli("params", "set", "train.epochs=5", cwd=repo.root)
    assert code == 0
    res = pipeline.repro(repo.project(), commit=True)
    assert res.ran == ["prepare", "score"]
    assert sorted(res.committed) == ["dvc.lock", "metrics.json", "params.yaml"]
    assert repo.status() == ""


def test_dirty_code_refused_unless_allowed(repo: Repo) -> None:
    """C4.36: uncommitted code the pipeline depends on: exit 3, nothing run."""
    two_stages(repo)
    repo.write("prep.py", (repo.root / "prep.py").read_text() + "# edit\n")
    code, _, err = run_cli("repro", "--commit", cwd=repo.root)
    assert code == errors.PRECONDITION
    assert "prep.py" in err and "--allow-dirty" in err
    assert not (repo.root / "out.txt").exists()
    code, _, err = run_cli("repro", "--commit", "--allow-dirty", cwd=repo.root)
    assert code == 0, err
    assert "dirty work tree (prep.py)" in repo.git("log", "-1", "--format=%B")
    assert repo.status() == " M prep.py\n"


def test_detached_head_commit_refused_but_repro_works(repo: Repo) -> None:
    """C4.37."""
    two_stages(repo)
    repo.git("checkout", "-q", "--detach")
    code, _, err = run_cli("repro", "--commit", cwd=repo.root)
    assert code == errors.PRECONDITION and "detached" in err
    code, _, _ = run_cli("repro", cwd=repo.root)
    assert code == 0


def test_push_before_commit_and_git_push(repo: Repo, origin) -> None:  # type: ignore[no-untyped-def]
    """Data reaches the DVC remote before the commit that points at it reaches origin."""
    two_stages(repo)
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")
    res = pipeline.repro(repo.project(), push=True, commit=True)
    assert res.pushed and res.pushed >= 2
    assert res.git_pushed == "origin"
    assert git(origin, "rev-parse", "main").strip() == repo.head()
    assert dvc(repo.root, "status", "-c").returncode == 0
    assert "new" not in dvc(repo.root, "status", "-c").stdout


def test_push_without_remote_fails_before_running(repo: Repo) -> None:
    """C4.39: no remote with --push: exit 2 before any stage runs and before any commit."""
    two_stages(repo)
    (repo.root / ".dvc" / "config.local").unlink()
    head = repo.head()
    code, _, err = run_cli("repro", "--push", "--commit", cwd=repo.root)
    assert code == errors.USAGE and "remote add" in err
    assert not (repo.root / "out.txt").exists()
    assert repo.head() == head


def test_failed_data_push_means_no_commit(repo: Repo, origin: Path) -> None:
    """C1.4 / dvc#1362: never commit a dvc.lock whose objects did not reach the remote."""
    two_stages(repo)
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "main")
    # A remote that cannot be written: a path under a regular file.
    (repo.root.parent / "blocker").write_text("not a directory\n")
    repo.write(
        ".dvc/config.local",
        f"[core]\n    remote = bad\n['remote \"bad\"']\n    url = {repo.root.parent}/blocker/sub\n",
    )
    head = repo.head()
    code, _, err = run_cli("repro", "--push", "--commit", cwd=repo.root)
    assert code != 0, err
    assert repo.head() == head
    assert "dvc.lock" in repo.status()


def test_git_remote_missing_keeps_local_commit(repo: Repo) -> None:
    """C4.41: the git push fails with exit 4, the local commit is kept and reported."""
    two_stages(repo)
    repo.git("remote", "add", "origin", str(repo.root.parent / "does-not-exist.git"))
    repo.git("config", "branch.main.remote", "origin")
    repo.git("config", "branch.main.merge", "refs/heads/main")
    code, out, err = run_cli("repro", "--push", "--commit", cwd=repo.root)
    assert code == errors.REMOTE, err
    assert "local commit is kept" in err
    assert repo.log()[0].startswith("repro:")


def test_large_file_refused_from_git(repo: Repo) -> None:
    """C4.34: an output headed for git above git.max_file_mb is refused (exit 3)."""
    repo.write("mlopskit.yaml", "git:\n  max_file_mb: 0.001\n")
    repo.git("add", "mlopskit.yaml")
    repo.git("commit", "-qm", "tiny limit")
    stages.stage_add(
        repo.project(),
        "big",
        cmd=f"{PY} -c \"open('m.json','w').write('1'*5000)\"",
        metrics=["m.json"],
    )
    repo.git("add", "-A")
    repo.git("commit", "-qm", "stage")
    code, _, err = run_cli("repro", "--commit", cwd=repo.root)
    assert code == errors.PRECONDITION
    assert "m.json" in err and "mlopskit data add" in err


@pytest.mark.parametrize("args", [["-o", "../out.txt"], ["-d", "/etc/passwd"]])
def test_stage_paths_outside_repo_refused(repo: Repo, args: list[str]) -> None:
    """C4.29: outputs and deps outside the root: exit 2 before DVC is called."""
    code, _, err = run_cli("stage", "add", "s", *args, "--cmd", "echo", cwd=repo.root)
    assert code == errors.USAGE
    assert "outside the project root" in err
    assert not (repo.root / "dvc.yaml").exists()


def test_wdir_outside_repo_refused(repo: Repo) -> None:
    """C4.29: `wdir: ..` is refused with exit 2 and nothing runs."""
    repo.write(
        "dvc.yaml", "stages:\n  s:\n    wdir: ..\n    cmd: touch escaped\n    outs:\n      - o\n"
    )
    code, _, err = run_cli("repro", cwd=repo.root)
    assert code == errors.USAGE, err
    assert not (repo.root.parent / "escaped").exists()


def _dvc_runs_nothing(root: Path) -> bool:
    """The oracle: DVC's own `repro --allow-missing --dry` would run no stage (a stage it
    would run but cannot, its input not pulled, is a failure: it would run)."""
    res = dvc(root, "repro", "--allow-missing", "--dry", check=False)
    return res.returncode == 0 and "Running stage" not in res.stdout


def test_fresh_clone_fast_path_matches_dvc(repo: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """repro --pull on an unchanged fresh clone answers without DVC, exactly when DVC's
    --allow-missing would run nothing; any input change sends it to DVC."""
    two_stages(repo)
    pipeline.repro(repo.project(), commit=True)
    data.push(repo.project())
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.root), str(clone))
    (clone / ".dvc" / "config.local").write_text((repo.root / ".dvc/config.local").read_text())
    assert pipeline.fresh_clone_up_to_date(clone) and _dvc_runs_nothing(clone)
    res = pipeline.repro(Repo(clone, repo.remote).project(), pull=True, push=True)
    assert res.ran == [] and not (clone / "out.txt").exists()  # nothing pulled
    (clone / "README.md").write_text("docs\n")
    git(clone, "add", "README.md")
    git(clone, "commit", "-qm", "docs")
    assert pipeline.fresh_clone_up_to_date(clone) and _dvc_runs_nothing(clone)
    (clone / "prep.py").write_text((clone / "prep.py").read_text() + "# change\n")
    git(clone, "commit", "-qam", "code")
    assert not pipeline.fresh_clone_up_to_date(clone) and not _dvc_runs_nothing(clone)
    res = pipeline.repro(Repo(clone, repo.remote).project(), pull=True)
    assert res.ran == ["prepare"]  # same output, so DVC skips score
    # data in the workspace: always DVC's call
    assert not pipeline.fresh_clone_up_to_date(repo.root)


COMMENTED = """\
# The pipeline (comments, blank lines and DVC's list style are kept)
stages:
  # copies the input
  prepare:
    cmd: python prep.py   # inline comment
    deps:
    - in.txt
    params:
    - train.epochs

  # scores it
  score:
    cmd: python score.py
    deps:
    - out.txt

# plots section
plots:
- metrics.json
"""

NEW_STAGE = """\
  report:
    cmd: echo done
    deps:
    - metrics.json
    params:
    - train.lr
    outs:
    - report.txt
"""


def test_stage_add_keeps_comments_and_layout(repo: Repo) -> None:
    repo.write("dvc.yaml", COMMENTED)
    code, _, err = run_cli(
        "stage", "add", "report", "-d", "metrics.json", "-p", "train.lr", "-o", "report.txt",
        "--cmd", "echo done", cwd=repo.root,
    )  # fmt: skip
    assert code == 0, err
    text = (repo.root / "dvc.yaml").read_text()
    # Inserted after the last stage, before the comment that introduces `plots:`, with
    # the blank line the other stages have; everything else byte for byte.
    head, tail = COMMENTED.split("\n# plots section\n")
    assert text == head + "\n" + NEW_STAGE + "\n# plots section\n" + tail
    assert "report" in dvc(repo.root, "stage", "list").stdout
    assert (repo.root / ".gitignore").read_text().split() == ["/report.txt"]
    # --force replaces it in place; the comments around it stay.
    code, _, err = run_cli(
        "stage", "add", "-f", "prepare", "-d", "in.txt", "--cmd", "python prep2.py", cwd=repo.root
    )
    assert code == 0, err
    doc = yamlio.load(repo.root / "dvc.yaml")
    assert doc["stages"]["prepare"] == {"cmd": "python prep2.py", "deps": ["in.txt"]}
    text = (repo.root / "dvc.yaml").read_text()
    assert "# copies the input\n  prepare:\n    cmd: python prep2.py  # inline comment\n" in text
    assert "\n  # scores it\n  score:\n" in text and text.endswith("plots:\n- metrics.json\n")


def test_stage_add_into_the_none_templates_empty_dvc_yaml(repo: Repo) -> None:
    from mlopskit import scaffold

    empty = scaffold.render("x", None, "none")["dvc.yaml"]
    repo.write("dvc.yaml", empty + "\n# after\nplots:\n  - p.csv\n")
    code, _, err = run_cli("stage", "add", "a", "-o", "a.txt", "--cmd", "echo a", cwd=repo.root)
    assert code == 0, err
    text = (repo.root / "dvc.yaml").read_text()
    assert text.startswith(empty.replace("stages: {}\n", "stages:\n  a:\n    cmd: echo a\n"))
    assert text.endswith("      - a.txt\n\n# after\nplots:\n  - p.csv\n")


@pytest.mark.parametrize(
    ("param", "words"),
    [
        (
            "train.epoch",
            ["param 'train.epoch' is not in params.yaml", "did you mean 'train.epochs'"],
        ),
        ("trian", ["param 'trian'", "did you mean 'train'"]),
        ("other.yaml:lr", ["params file other.yaml not found", "params set other.yaml:lr=VALUE"]),
    ],
)
def test_stage_add_refuses_unknown_params(repo: Repo, param: str, words: list[str]) -> None:
    code, _, err = run_cli("stage", "add", "s", "-p", param, "--cmd", "echo", cwd=repo.root)
    assert code == errors.USAGE, err
    for w in words:
        assert w in err
    assert not (repo.root / "dvc.yaml").exists()


def test_stage_add_accepts_a_section_and_a_whole_file(repo: Repo) -> None:
    repo.write("other.yaml", "a: 1\n")
    code, _, err = run_cli(
        "stage", "add", "s", "-p", "train", "-p", "other.yaml:", "--cmd", "echo", cwd=repo.root
    )
    assert code == 0, err
    params = yamlio.load(repo.root / "dvc.yaml")["stages"]["s"]["params"]
    assert params == ["train", {"other.yaml": None}]
    assert dvc(repo.root, "stage", "list", "--name-only").stdout.splitlines() == ["s"]


def test_stage_remove_matches_dvc_remove(repo: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As `dvc remove` without --outs: entry out of dvc.yaml and dvc.lock, outputs left on
    disk, their .gitignore entries gone; our dvc.yaml keeps its comments."""
    import shutil

    two_stages(repo)
    text = (repo.root / "dvc.yaml").read_text()
    repo.write("dvc.yaml", "# my pipeline\n" + text.replace("  score:", "  # scoring\n  score:"))
    pipeline.repro(repo.project())
    repo.git("add", "-A")
    repo.git("commit", "-qm", "ran")
    oracle = tmp_path / "oracle"
    shutil.copytree(repo.root, oracle, symlinks=True)
    dvc(oracle, "remove", "prepare")

    code, out, err = run_cli("stage", "remove", "prepare", cwd=repo.root)
    assert code == 0, err
    assert "dvc.yaml and dvc.lock" in out and "out.txt" in out and "stay on disk" in out
    assert (repo.root / "out.txt").exists() and (oracle / "out.txt").exists()
    for f in ("dvc.yaml", "dvc.lock"):
        assert yamlio.load(repo.root / f) == yamlio.load(oracle / f), f
    ignored = (repo.root / ".gitignore").read_text().split()
    assert ignored == (oracle / ".gitignore").read_text().split() == ["/in.txt"]
    assert (repo.root / "dvc.yaml").read_text().startswith("# my pipeline\nstages:\n  # scoring\n")
    assert "prepare" not in dvc(repo.root, "stage", "list").stdout
    # The last stage: dvc.yaml stays (DVC deletes it), with no stages; dvc.lock goes.
    code, _, err = run_cli("stage", "remove", "score", cwd=repo.root)
    assert code == 0, err
    assert (repo.root / "dvc.yaml").read_text() == "# my pipeline\nstages: {}\n"
    assert not (repo.root / "dvc.lock").exists()
    assert "up to date" in dvc(repo.root, "repro").stdout
    code, out, _ = run_cli("repro", "--commit", "-m", "no pipeline", cwd=repo.root)
    assert code == 0
    assert "dvc.lock" not in repo.git("ls-files").split()
    assert "dvc.yaml" in repo.git("show", "--name-only", "--format=", "HEAD").split()


def test_stage_remove_unknown_name(repo: Repo) -> None:
    two_stages(repo)
    before = (repo.root / "dvc.yaml").read_text()
    code, _, err = run_cli("stage", "remove", "prepair", cwd=repo.root)
    assert code == errors.USAGE
    assert "no stage 'prepair'" in err and "did you mean 'prepare'" in err
    assert (repo.root / "dvc.yaml").read_text() == before
    repo.write("dvc.yaml", "stages: {}\n")
    code, _, err = run_cli("stage", "remove", "x", cwd=repo.root)
    assert code == errors.USAGE and "no stages" in err


def test_stage_remove_warns_about_top_level_entries(repo: Repo) -> None:
    repo.write(
        "dvc.yaml",
        "stages:\n  t:\n    cmd: echo\n    outs:\n      - m.pkl\n"
        "artifacts:\n  model:\n    path: m.pkl\n    type: model\n",
    )
    code, _, err = run_cli("stage", "remove", "t", cwd=repo.root)
    assert code == 0
    assert "still names it under artifacts.model: m.pkl" in err
