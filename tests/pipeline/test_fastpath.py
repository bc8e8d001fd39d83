"""The CI shortcut of ``repro --pull`` (pipeline.fresh_clone_up_to_date) against DVC.

A differential test: a history built with DVC and plain git to break a shortcut (a
dependency edited in the commit another stage's run wrote dvc.lock in, a params change,
a stage only partly re-run, a pointer update, an edited git-tracked output, a changed
command, an always_changed stage), and at each commit a fresh clone in which the
shortcut's answer must equal DVC's own ``repro --allow-missing --dry``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopskit import pipeline

from ..conftest import Repo, dvc, git, run_cli

PIPELINE = """\
stages:
  prep:
    cmd: python prep.py
    deps:
      - in.txt
      - prep.py
    params:
      - train.epochs
    outs:
      - prep.txt
  train:
    cmd: python train.py
    deps:
      - prep.txt
      - train.py
    params:
      - train.lr
    outs:
      - model.txt
    metrics:
      - metrics.json:
          cache: false
"""

PREP = "import yaml\np = yaml.safe_load(open('params.yaml'))['train']\n" + (
    "open('prep.txt', 'w').write(open('in.txt').read() * p['epochs'])\n"
)
TRAIN = (
    "import json, yaml\np = yaml.safe_load(open('params.yaml'))['train']\n"
    "n = len(open('prep.txt').read().split())\n"
    "open('model.txt', 'w').write(f'{n} {p[\"lr\"]}')\n"
    "json.dump({'n': n}, open('metrics.json', 'w'))\n"
)
STAMP = """\
  stamp:
    cmd: python -c "open('stamp.txt', 'w').write('x')"
    always_changed: true
    outs:
      - stamp.txt
"""


def _dvc_runs_nothing(root: Path) -> bool:
    """The oracle: DVC's own `repro --allow-missing --dry` in the fresh clone."""
    res = dvc(root, "repro", "--allow-missing", "--dry", check=False)
    return res.returncode == 0 and "Running stage" not in res.stdout


def _commit(repo: Repo, message: str) -> str:
    repo.git("add", "-A")
    repo.git("commit", "-qm", message)
    dvc(repo.root, "push", "-q")
    return repo.head()


def _edit(repo: Repo, rel: str, tail: str) -> None:
    repo.write(rel, (repo.root / rel).read_text() + tail)


@pytest.mark.slow
def test_fresh_clone_shortcut_equals_dvc_at_every_commit(repo: Repo, tmp_path: Path) -> None:
    """At each commit of the history, a fresh clone: the shortcut says "up to date"
    exactly when DVC would run nothing, and it is taken where DVC agrees (a shortcut
    that always asks DVC would fail the expected column)."""
    repo.write("in.txt", "a b c\n")
    dvc(repo.root, "add", "-q", "in.txt")
    repo.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 2\n  unused: 1\n")
    repo.write("prep.py", PREP)
    repo.write("train.py", TRAIN)
    repo.write("dvc.yaml", PIPELINE)
    dvc(repo.root, "repro", "-q")
    history: list[tuple[str, str, bool]] = []  # (what, commit, DVC runs nothing)
    history.append(("trained", _commit(repo, "trained"), True))
    repo.write("README.md", "docs\n")
    history.append(("docs only", _commit(repo, "docs"), True))
    # The reviewer's case: both scripts edited, only train re-run, all committed.
    _edit(repo, "prep.py", "# prep v2\n")
    _edit(repo, "train.py", "# train v2\n")
    dvc(repo.root, "repro", "-q", "-s", "train")
    history.append(("dep edited in the lock's commit", _commit(repo, "train only"), False))
    dvc(repo.root, "repro", "-q")
    history.append(("retrained", _commit(repo, "retrained"), True))
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 2\n  unused: 1\n")
    history.append(("params changed, no run", _commit(repo, "lr"), False))
    dvc(repo.root, "repro", "-q")
    history.append(("params run", _commit(repo, "lr run"), True))
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 2\n  unused: 2\n")
    history.append(("untracked params key", _commit(repo, "unused"), True))
    # prep re-run alone: its new output is not what train recorded (DVC's upstream rule)
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 3\n  unused: 2\n")
    dvc(repo.root, "repro", "-q", "-s", "prep")
    history.append(("only prep re-run", _commit(repo, "prep only"), False))
    dvc(repo.root, "repro", "-q")
    history.append(("both run", _commit(repo, "both"), True))
    repo.write("in.txt", "a b c d\n")
    dvc(repo.root, "add", "-q", "in.txt")
    history.append(("pointer updated, no run", _commit(repo, "data v2"), False))
    dvc(repo.root, "repro", "-q")
    history.append(("data run", _commit(repo, "data run"), True))
    repo.write("metrics.json", '{"n": 0}')
    history.append(("git-tracked output edited", _commit(repo, "metrics"), False))
    dvc(repo.root, "repro", "-q")
    history.append(("output restored", _commit(repo, "restored"), True))
    repo.write("dvc.yaml", PIPELINE.replace("python train.py", "python ./train.py"))
    history.append(("command changed", _commit(repo, "cmd"), False))
    dvc(repo.root, "repro", "-q")
    repo.write("dvc.yaml", (repo.root / "dvc.yaml").read_text() + STAMP)
    dvc(repo.root, "repro", "-q")
    history.append(("always_changed stage", _commit(repo, "stamp"), False))

    config = (repo.root / ".dvc" / "config.local").read_text()
    rows = []
    for what, sha, _ in history:
        clone = tmp_path / f"clone-{sha[:8]}"
        git(tmp_path, "clone", "-q", str(repo.root), str(clone))
        git(clone, "checkout", "-q", "--detach", sha)
        (clone / ".dvc" / "config.local").write_text(config)
        rows.append((what, pipeline.fresh_clone_up_to_date(clone), _dvc_runs_nothing(clone)))
    assert [r[2] for r in rows] == [h[2] for h in history], rows  # the oracle as built
    assert [r[1] for r in rows] == [r[2] for r in rows], rows  # the shortcut equals DVC


def test_repro_pull_runs_a_stage_whose_dep_changed_in_the_lock_commit(
    repo: Repo, tmp_path: Path
) -> None:
    """The reviewer's reproduction end to end: `repro --pull` on a fresh clone of a
    commit whose dvc.lock came from `dvc repro -s train` after prep.py was edited runs
    prep (as DVC does), never "Pipeline is up to date."."""
    repo.write("in.txt", "a b c\n")
    dvc(repo.root, "add", "-q", "in.txt")
    repo.write("prep.py", PREP)
    repo.write("train.py", TRAIN)
    repo.write("dvc.yaml", PIPELINE)
    dvc(repo.root, "repro", "-q")
    _commit(repo, "trained")
    _edit(repo, "prep.py", "open('prep.txt', 'a').write(' z')\n")
    _edit(repo, "train.py", "# v2\n")
    dvc(repo.root, "repro", "-q", "-s", "train")
    _commit(repo, "train only")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.root), str(clone))
    (clone / ".dvc" / "config.local").write_text((repo.root / ".dvc" / "config.local").read_text())
    # DVC would run prep (its input in.txt not pulled, the dry run stops there)
    dry = dvc(clone, "repro", "--allow-missing", "--dry", check=False)
    assert "failed to reproduce 'prep'" in dry.stderr, dry.stdout + dry.stderr
    assert pipeline.fresh_clone_up_to_date(clone) is False
    code, out, err = run_cli("repro", "--pull", cwd=clone)
    assert code == 0, out + err
    assert "Pipeline is up to date" not in out and "prep" in out, out
    assert (clone / "prep.txt").read_text().endswith(" z")
