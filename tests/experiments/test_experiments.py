"""Experiments: parallel sweeps as real DVC experiments, comparison, promotion, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlopskit import errors
from mlopskit.experiments import runs as experiments

from .._wait import processes as _processes
from .._wait import wait_for
from ..conftest import Repo, dvc, git, run_cli

pytestmark = pytest.mark.slow


def dvc_exps(root: Path, *args: str) -> dict[str, dict[str, float]]:
    """name -> metrics, as `dvc exp show --json` reports them."""
    shown = json.loads(dvc(root, "exp", "show", "--json", *args).stdout)
    out: dict[str, dict[str, float]] = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                out[rev["name"]] = data["metrics"]["reports/metrics.json"]["data"]
    return out


def test_sweep_points_are_dvc_experiments_with_sequential_metrics(trained: Repo) -> None:
    status_before = trained.status()
    code, out, err = run_cli(
        "exp",
        "sweep",
        "-S",
        "train.C=0.05,2",
        "-S",
        "train.max_iter=150,300",
        "-j",
        "2",
        "-n",
        "g",
        cwd=trained.root,
    )
    assert code == 0, err
    assert "[4 done, 0 running, 0 failed of 4]" in err
    shown = dvc_exps(trained.root)
    assert set(shown) == {"g-1", "g-2", "g-3", "g-4"}
    assert trained.status() == status_before  # the workspace was never touched
    # The same point run the plain way, one after another, gives the same metrics.
    res = dvc(
        trained.root, "exp", "run", "-S", "train.C=2", "-S", "train.max_iter=300", "-n", "seq"
    )
    assert res.returncode == 0
    assert dvc_exps(trained.root)["seq"] == shown["g-4"]
    code, out, _ = run_cli("exp", "show", "--sort-by", "accuracy", "--json", cwd=trained.root)
    rows = json.loads(out)
    assert [r["kind"] for r in rows] == ["baseline"] + ["experiment"] * 5
    accs = [r["metrics"]["accuracy"] for r in rows[1:]]
    assert accs == sorted(accs, reverse=True)


def test_failing_point_does_not_stop_the_others(trained: Repo) -> None:
    code, out, err = run_cli(
        "exp",
        "sweep",
        "-S",
        "train.model=logistic_regression,bogus,random_forest",
        "-j",
        "2",
        "-n",
        "f",
        cwd=trained.root,
    )
    assert code == errors.FAILED
    assert "1 of 3 point(s) failed: f-2" in err
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert lines == {"f-1": "done", "f-2": "failed", "f-3": "done"}
    assert set(dvc_exps(trained.root)) == {"f-1", "f-3"}


def test_unknown_param_and_bad_grid(trained: Repo) -> None:
    code, _, err = run_cli("exp", "sweep", "-S", "train.CC=1,2", cwd=trained.root)
    assert code == errors.USAGE and "did you mean 'train.C'" in err
    code, _, err = run_cli("exp", "run", "-S", "trian.C=1", cwd=trained.root)
    assert code == errors.USAGE
    code, _, err = run_cli("exp", "sweep", "-S", "train.C", cwd=trained.root)
    assert code == errors.USAGE
    assert experiments.parse_grid(["a=[1,2],[3,4]", "b='x,y',z"]) == {
        "a": ["[1,2]", "[3,4]"],
        "b": ["'x,y'", "z"],
    }
    points = experiments.plan(
        Repo(trained.root, trained.remote).project(),
        ["train.C=1,2,3", "train.max_iter=1,2"],
        random_k=3,
        prefix="r",
    )
    assert len(points) == 3 and len(set(points)) == 3


def test_exp_plan_caps_at_githubs_matrix_limit(trained: Repo) -> None:
    """sweep.yml's matrix: GitHub runs at most 256 jobs of one matrix, so `exp plan`
    refuses a bigger grid (exit 2, naming the count and the cap) before any job starts."""
    cs = ",".join(str(i) for i in range(1, 18))  # 17 x 16 = 272 points
    iters = ",".join(str(100 + i) for i in range(16))
    grid = f"train.C={cs} train.max_iter={iters}"
    code, out, err = run_cli("exp", "plan", "--grid", grid, cwd=trained.root)
    assert code == errors.USAGE, err
    assert "272 points" in err and "at most 256 jobs" in err and "--random 256" in err
    assert out == ""
    code, _, err = run_cli("exp", "plan", "--grid", grid, "--random", "257", cwd=trained.root)
    assert code == errors.USAGE and "257 points" in err
    code, out, err = run_cli("exp", "plan", "--grid", grid, "--random", "256", cwd=trained.root)
    assert code == 0, err
    assert len(json.loads(out)) == 256
    exact = f"train.C={','.join(str(i) for i in range(1, 17))} train.max_iter={iters}"
    code, out, err = run_cli("exp", "plan", "--grid", exact, "-n", "g", cwd=trained.root)
    assert code == 0, err
    points = json.loads(out)
    assert len(points) == 256 and points[-1]["name"] == "g-256"
    # local sweeps have no such cap: the library plans any size when not asked to cap
    big = experiments.plan(trained.project(), grid.split(), prefix="big")
    assert len(big) == 272


def test_exp_run_and_promote(trained: Repo) -> None:
    code, out, err = run_cli("exp", "run", "-S", "train.C=0.2", "-n", "one", cwd=trained.root)
    assert code == 0, err
    assert "one" in dvc_exps(trained.root)
    trained.git("checkout", "-q", "--", ".")
    dvc(trained.root, "checkout", "-q")
    # into a new branch
    code, out, err = run_cli("exp", "promote", "one", "--branch", "try-c02", cwd=trained.root)
    assert code == 0, err
    assert "train.C: 0.2" in trained.git("show", "try-c02:dvc.lock")
    # into the current branch, as one normal commit
    head = trained.head()
    code, out, err = run_cli("exp", "promote", "one", cwd=trained.root)
    assert code == 0, err
    assert trained.git("rev-parse", "HEAD~1").strip() == head
    assert trained.log()[0] == "exp: promote one"
    files = set(trained.git("show", "--name-only", "--format=", "HEAD").split())
    assert {"dvc.lock", "params.yaml", "reports/metrics.json"} <= files
    assert trained.status() == ""
    # exp show still lists the experiment: HEAD moved past the commit it ran on, where
    # plain `dvc exp show` lists none; `dvc exp show -n 2` is the oracle.
    assert dvc_exps(trained.root) == {}
    theirs = dvc_exps(trained.root, "-n", "2")
    assert set(theirs) == {"one"}
    code, out, err = run_cli("exp", "show", "--json", cwd=trained.root)
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["kind"], r["rev"]) for r in rows] == [
        ("baseline", trained.head()),
        ("baseline", head),
        ("experiment", rows[2]["rev"]),
    ]
    assert rows[2]["name"] == "one" and rows[2]["baseline"] == head
    assert rows[2]["metrics"] == theirs["one"]
    assert rows[0]["metrics"] == rows[2]["metrics"]  # HEAD holds the promoted experiment
    assert rows[0]["params"]["train.C"] == 0.2 and rows[1]["params"]["train.C"] == 1.0
    code, out, err = run_cli("exp", "show", cwd=trained.root)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2].split()[:3] == ["main", trained.head()[:7], "0.2"]
    assert lines[3].split()[:3] == [head[:7], head[:7], "1.0"]
    assert lines[4].split()[:2] == ["└──", "one"]


# Put at the top of the copy's src/train.py: the train stage says it is running (a marker
# named after its pid) and then blocks until it is stopped.
_BLOCKING_TRAIN = """import os as _os, pathlib as _pl, time as _t
if _os.environ.get("SWEEP_MARKERS"):
    _pl.Path(_os.environ["SWEEP_MARKERS"], str(_os.getpid())).write_text(_os.getcwd())
    _t.sleep(600)
"""


def _started(proc: subprocess.Popen[str], markers: Path) -> list[int]:
    assert proc.poll() is None, f"the sweep ended before Ctrl-C: {proc.communicate()}"
    found = [int(m.name) for m in markers.iterdir()]
    return found if len(found) >= 2 else []


def test_ctrl_c_stops_every_point_and_leaves_nothing_behind(trained: Repo, tmp_path: Path) -> None:
    """dvc#10655: Ctrl-C while two points' `dvc exp run` are inside their train stage
    stops them all; the workspace and stash are exactly as they were."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    trained.git("stash", "list")
    (trained.root / "params.yaml").write_text(
        (trained.root / "params.yaml").read_text().replace("max_iter: 500", "max_iter: 400")
    )
    train = trained.root / "src" / "train.py"
    future = "from __future__ import annotations\n"
    train.write_text(train.read_text().replace(future, future + _BLOCKING_TRAIN, 1))
    assert "SWEEP_MARKERS" in train.read_text()
    status = trained.status()
    params_text = (trained.root / "params.yaml").read_text()
    env = dict(os.environ, TMPDIR=str(tmpdir), SWEEP_MARKERS=str(markers))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlopskit",
            "exp",
            "sweep",
            "-S",
            "train.C=0.1,0.2,0.3,0.4",
            "-j",
            "2",
            "-n",
            "cc",
        ],
        cwd=trained.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stages = wait_for(
            lambda: _started(proc, markers),
            120,
            "two points' train stages to start",
        )
        # Evidence that `dvc exp run` was running when the signal came: two of them,
        # each in its own clone under the sweep's temp dir, whose stages wrote markers.
        runs = _processes("exp", "run")
        named = {p: a for p, a in runs.items() if any(x.startswith("cc-") for x in a)}
        assert len(named) == 2, runs
        assert all(str(tmpdir) in (markers / str(pid)).read_text() for pid in stages)
        assert all(Path(f"/proc/{pid}").exists() for pid in stages)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in _processes("exp", "run"):  # a failed run leaves no process behind
            if any(x.startswith("cc-") for x in _processes("exp", "run").get(pid, [])):
                os.killpg(pid, signal.SIGKILL)
    assert proc.returncode == errors.INTERRUPTED, err
    assert list(tmpdir.iterdir()) == []  # every clone removed
    assert trained.status() == status
    assert (trained.root / "params.yaml").read_text() == params_text
    assert trained.git("stash", "list") == ""
    # The dvc exp run processes and the stages they ran are gone.
    assert not set(named) & set(_processes("exp", "run")), _processes("exp", "run")
    assert not [pid for pid in stages if pid in _processes()], "a train stage outlived Ctrl-C"


def test_exp_run_push_sends_the_ref_to_the_branchs_remote(trained: Repo, origin: Path) -> None:
    """Issue 14: `exp run --push` pushes through scm.push, like commit and the registry: the
    experiment's ref reaches the remote `git push` would use (here `upstream`)."""
    trained.git("remote", "add", "upstream", str(origin))
    trained.git("push", "-q", "-u", "upstream", "main")
    code, out, err = run_cli(
        "exp", "run", "-S", "train.C=0.3", "-n", "pushed", "--push", cwd=trained.root
    )
    assert code == 0, err
    refs = git(origin, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    assert len(refs) == 1 and refs[0].endswith("/pushed"), refs
    assert f"Pushed {refs[0]} and its outputs." in out
