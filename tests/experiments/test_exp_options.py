"""`exp sweep --seed` and `exp show -A`, on a one-stage pipeline that runs in a blink."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlopskit.pipeline import stages

from ..conftest import Repo, dvc, run_cli

LRS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]


@pytest.fixture
def tiny(repo: Repo) -> Repo:
    """A stage that writes m.json from train.lr: an experiment takes well under a second."""
    repo.write(
        "m.py",
        "import json, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))['train']\n"
        "json.dump({'score': p['lr'] * 10}, open('m.json', 'w'))\n",
    )
    stages.stage_add(
        repo.project(),
        "fit",
        cmd="python m.py",
        deps=["m.py"],
        params_=["train.lr"],
        metrics=["m.json"],
    )
    dvc(repo.root, "repro", "-q")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "tiny pipeline")
    return repo


def _swept(repo: Repo, seed: str, prefix: str) -> list[float]:
    code, out, err = run_cli(
        "exp",
        "sweep",
        "-S",
        f"train.lr={','.join(LRS)}",
        "--random",
        "2",
        "--seed",
        seed,
        "-n",
        prefix,
        "--json",
        cwd=repo.root,
    )
    assert code == 0, err
    points = json.loads(out)
    assert [p["status"] for p in points] == ["done", "done"], points
    return sorted(float(p["params"]["train.lr"]) for p in points)


def test_sweep_seed_chooses_which_random_points_run(tiny: Repo) -> None:
    # The seeds are chosen so that they draw different points of the 6-point grid.
    draw = {s: sorted(random.Random(s).sample([float(v) for v in LRS], 2)) for s in (1, 2)}
    assert draw[1] != draw[2]
    first = _swept(tiny, "1", "a")
    assert _swept(tiny, "1", "b") == first  # the same seed, the same points
    other = _swept(tiny, "2", "c")
    assert other != first
    # They ran as DVC experiments with those params (DVC is the oracle).
    shown = json.loads(dvc(tiny.root, "exp", "show", "--json").stdout)
    ran = {
        rev["name"]: rev["data"]["params"]["params.yaml"]["data"]["train"]["lr"]
        for base in shown
        for exp in base.get("experiments") or []
        for rev in exp["revs"]
    }
    assert sorted(v for k, v in ran.items() if k.startswith("a-")) == first
    assert sorted(v for k, v in ran.items() if k.startswith("c-")) == other
    assert len(ran) == 6


def test_exp_show_all_lists_the_experiments_of_every_branch(tiny: Repo) -> None:
    def run_exp(name: str, lr: str) -> None:
        code, _, err = run_cli("exp", "run", "-S", f"train.lr={lr}", "-n", name, cwd=tiny.root)
        assert code == 0, err
        tiny.git("checkout", "-q", "--", ".")

    run_exp("on-main", "0.3")
    tiny.git("checkout", "-q", "-b", "other")
    tiny.write("notes.txt", "a commit of its own\n")
    tiny.git("add", "notes.txt")
    tiny.git("commit", "-qm", "other branch")
    run_exp("on-other", "0.5")
    tiny.git("checkout", "-q", "main")

    def names(*flags: str) -> set[str]:
        code, out, err = run_cli("exp", "show", "--json", *flags, cwd=tiny.root)
        assert code == 0, err
        return {r["name"] for r in json.loads(out) if r["kind"] == "experiment"}

    def dvc_names(*flags: str) -> set[str]:
        shown = json.loads(dvc(tiny.root, "exp", "show", "--json", *flags).stdout)
        return {
            rev["name"]
            for base in shown
            for exp in base.get("experiments") or []
            for rev in exp["revs"]
        }

    assert names() == {"on-main"} == dvc_names()
    assert names("-A") == {"on-main", "on-other"} == dvc_names("-A")
    assert names("--all") == names("-A")


def test_exp_fetch_reads_the_remote_exp_run_push_writes_to(
    tiny: Repo, origin: Path, tmp_path: Path
) -> None:
    """`exp fetch` with no --remote fetches from the branch's remote (here `upstream`, the
    one `exp run --push` pushes to), not a hard-coded origin; --remote names another."""
    from ..conftest import git

    tiny.git("remote", "add", "upstream", str(origin))
    tiny.git("push", "-q", "-u", "upstream", "main")
    code, _, err = run_cli("exp", "run", "-S", "train.lr=0.3", "-n", "far", "--push", cwd=tiny.root)
    assert code == 0, err
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-o", "upstream", str(origin), str(other))
    git(other, "remote", "add", "origin", str(tmp_path / "nowhere.git"))  # would fail
    code, out, err = run_cli("exp", "fetch", cwd=other)
    assert code == 0, err
    assert "Fetched 1 experiment ref(s)." in out
    refs = git(other, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    assert len(refs) == 1 and refs[0].endswith("/far"), refs
    code, _, err = run_cli("exp", "fetch", "--remote", "origin", cwd=other)
    assert code == 4 and "git fetch of experiments failed" in err, err
