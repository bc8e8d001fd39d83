"""A project of your own: `init --template none`, then a regression pipeline built with
mlopskit's commands only (no hand edits), committed, pushed, gated and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlopskit import errors, scaffold, yamlio

from ..conftest import dvc, git, porcelain, run_cli

NONE_FILES = {
    ".gitignore",
    "README.md",
    "deploy/deploy.sh",
    "dvc.yaml",
    "mlopskit.yaml",
    "requirements.txt",
}

# A small, deterministic regression: ridge on fixed synthetic data. Larger alpha, worse fit.
TRAIN = '''"""Ridge regression on a fixed synthetic data set."""
import csv
import json
import pickle

import numpy as np
import yaml
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

alpha = yaml.safe_load(open("params.yaml"))["train"]["alpha"]
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.3, size=200)
model = Ridge(alpha=alpha).fit(X[:150], y[:150])
pred = model.predict(X[150:])
with open("model.pkl", "wb") as fh:
    pickle.dump(model, fh)
with open("metrics.json", "w") as fh:
    json.dump(
        {
            "rmse": float(mean_squared_error(y[150:], pred) ** 0.5),
            "mae": float(mean_absolute_error(y[150:], pred)),
            "r2": float(r2_score(y[150:], pred)),
        },
        fh,
    )
with open("predictions.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["actual", "predicted"])
    w.writerows(zip(y[150:].round(4), pred.round(4)))
'''


def cli(root: Path, *args: str, code: int = 0) -> str:
    got, out, err = run_cli(*args, cwd=root)
    assert got == code, f"mlopskit {' '.join(args)} -> {got}\n{out}\n{err}"
    return out + err


def test_template_none_renders_no_pipeline() -> None:
    files = scaffold.render("demo", None, "none")
    assert set(files) == NONE_FILES
    assert yamlio.loads(files["dvc.yaml"], display="dvc.yaml") == {"stages": {}}
    config = yamlio.loads(files["mlopskit.yaml"], display="mlopskit.yaml")
    assert config["gates"] == [] and config["metrics"]["directions"] == {}
    assert "reference" not in (config.get("monitor") or {})
    assert "accuracy" not in files["mlopskit.yaml"].split("directions:")[1]
    assert "stage add" in files["README.md"] and "validate" not in files["README.md"]
    # The classification template's README describes the pipeline it generates.
    readme = scaffold.render("demo")["README.md"]
    assert "`validate` -> `prepare` -> `train` -> `evaluate`" in readme


def test_unknown_template_is_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli("init", "p", "--template", "regression")
    assert code == errors.USAGE and "classification" in err and "none" in err
    assert not (tmp_path / "p").exists()


def test_empty_project_commands_say_so(tmp_path: Path) -> None:
    out = cli(tmp_path, "init", "p", "--template", "none", "--remote", str(tmp_path / "r"))
    root = tmp_path / "p"
    assert "stage add" in out
    assert porcelain(root) == ""
    committed = set(git(root, "ls-files").split())
    assert committed >= NONE_FILES | {".github/workflows/ci.yml", ".github/workflows/ct.yml"}
    assert not (root / "params.yaml").exists()
    # DVC itself: no stages, nothing to do, exit 0.
    assert dvc(root, "stage", "list").stdout.strip() == ""
    assert "up to date" in dvc(root, "repro").stdout
    assert "No stages in dvc.yaml" in cli(root, "stage", "list")
    assert "up to date" in cli(root, "repro", "--commit")
    assert "No metrics" in cli(root, "metrics", "show")
    assert "0 stage(s)" in cli(root, "validate")
    assert "gate add" in cli(root, "check", code=errors.USAGE)
    assert "nothing to check" in cli(root, "check", "--allow-no-rules")
    assert "No gate rules" in cli(root, "gate", "list")
    assert porcelain(root) == ""
    assert len(git(root, "log", "--format=%H").split()) == 1


def _rows(md: str) -> dict[str, str]:
    """Metric rows of a report's markdown table, by metric name."""
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in ("rmse", "mae", "r2"):
            out[cells[0]] = line
    return out


@pytest.mark.slow
def test_regression_project_from_empty_to_gated_and_reported(tmp_path: Path, origin: Path) -> None:
    remote = tmp_path / "dvc-remote"
    cli(tmp_path, "init", "reg", "--template", "none", "--remote", str(remote))
    root = tmp_path / "reg"
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "-u", "origin", "main")

    # Params and a stage, with mlopskit's commands.
    (root / "train.py").write_text(TRAIN)
    args = ["stage", "add", "train", "-d", "train.py", "-p", "train.alpha", "-o", "model.pkl"]
    args += ["-M", "metrics.json", "--plots", "predictions.csv", "--", "python", "train.py"]
    assert "params set train.alpha=VALUE --allow-new" in cli(root, *args, code=errors.USAGE)
    cli(root, "params", "set", "--allow-new", "train.alpha=10")
    typo = [a if a != "train.alpha" else "train.alhpa" for a in args]
    assert "did you mean 'train.alpha'" in cli(root, *typo, code=errors.USAGE)
    cli(root, *args)
    assert "train" in dvc(root, "stage", "list").stdout
    git(root, "add", "train.py")
    git(root, "commit", "-qm", "train.py")

    # First model: committed with its lock, params and metrics, data pushed, commit pushed.
    out = cli(root, "repro", "--push", "--commit")
    assert "Ran: train" in out
    assert porcelain(root) == ""
    shown = git(root, "show", "--name-only", "--format=%s", "HEAD").split()
    assert shown[:2] == ["repro:", "train"]
    assert {"dvc.lock", "dvc.yaml", "params.yaml", "metrics.json", "predictions.csv"} <= set(shown)
    assert git(origin, "rev-parse", "main") == git(root, "rev-parse", "HEAD")
    assert any(p.is_file() for p in remote.rglob("*"))
    first = json.loads(cli(root, "metrics", "show", "--json"))
    oracle = json.loads(dvc(root, "metrics", "show", "--json").stdout)
    assert first == {"metrics.json": oracle[""]["data"]["metrics.json"]["data"]}
    assert set(first["metrics.json"]) == {"rmse", "mae", "r2"}

    # The gate, by command: an rmse regression rule and an absolute r2 bound.
    assert "did you mean 'rmse'" in cli(root, "gate", "add", "rmsd <= 1", code=errors.USAGE)
    cli(root, "gate", "add", "rmse: max_increase 5%", "r2 >= 0.9", "--commit")
    assert porcelain(root) == ""
    assert git(root, "log", "-1", "--format=%s").startswith("gate: add")
    listed = cli(root, "gate", "list")
    assert "rmse: max_increase 5%  lower" in listed and "r2 >= 0.9              higher" in listed
    assert "Quality gate passed (2 rule(s))" in cli(root, "check")

    # A better model: both metrics improve, the gate passes, the report says "better".
    cli(root, "params", "set", "train.alpha=0.1")
    cli(root, "repro")
    diff = {c["key"]: c for c in json.loads(cli(root, "metrics", "diff", "--json"))}
    assert diff["rmse"]["direction"] == "lower" and diff["rmse"]["better"] is True
    assert diff["r2"]["direction"] == "higher" and diff["r2"]["better"] is True
    assert diff["mae"]["better"] is True
    cli(root, "check")
    rows = _rows(cli(root, "report", "--base", "HEAD", "--no-plots"))
    assert "🟢 ▼ better" in rows["rmse"] and "🟢 ▲ better" in rows["r2"]
    cli(root, "repro", "--push", "--commit", "-m", "alpha 0.1")

    # A worse model: rmse rises 58% (the regression rule fails), r2 still >= 0.9.
    cli(root, "params", "set", "train.alpha=30")
    cli(root, "repro")
    out = cli(root, "check", code=errors.FAILED)
    assert "1 of 2 rule(s): rmse: max_increase 5%" in out
    table = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()[2:4]}
    assert table["FAIL rmse:"] and table["pass r2"]
    report = cli(root, "report", "--base", "HEAD", "--no-plots")
    assert "Quality gate failed" in report and "rmse: max_increase 5%" in report
    rows = _rows(report)
    assert "🔴 ▲ worse" in rows["rmse"] and "🔴 ▼ worse" in rows["r2"]
    assert "🔴 ▲ worse" in rows["mae"]
    worse = {c["key"]: c for c in json.loads(cli(root, "metrics", "diff", "--json"))}
    assert worse["rmse"]["better"] is False and worse["r2"]["better"] is False
    git(root, "checkout", "-q", "--", "params.yaml")
    cli(root, "repro")
    assert porcelain(root) == ""

    # History: one row per commit, newest first, with the metrics and the param.
    history = json.loads(cli(root, "metrics", "history", "--json"))
    assert [h["subject"] for h in history[:3]] == [
        "alpha 0.1",
        "gate: add rmse: max_increase 5%; r2 >= 0.9",
        "repro: train",
    ]
    by_subject = {h["subject"]: h for h in history}
    assert by_subject["alpha 0.1"]["params"]["train.alpha"] == 0.1
    assert by_subject["repro: train"]["params"]["train.alpha"] == 10
    new, old = by_subject["alpha 0.1"]["metrics"], by_subject["repro: train"]["metrics"]
    assert new["rmse"] < old["rmse"] and new["r2"] > old["r2"]
    text = cli(root, "metrics", "history")
    assert text.splitlines()[0].split()[:5] == ["commit", "date", "rmse", "mae", "r2"]
    # A fresh clone reproduces from the pushed state with plain DVC.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    dvc(clone, "pull")
    assert "up to date" in dvc(clone, "status").stdout


def test_template_none_adopts_an_existing_dvc_pipeline(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    mine = "# my pipeline\nstages:\n  train:\n    cmd: echo hi\n"
    (root / "dvc.yaml").write_text(mine)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "mine")
    cli(tmp_path, "init", str(root), "--template", "none")
    assert (root / "dvc.yaml").read_text() == mine
    assert "dvc.yaml" not in git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert "mlopskit.yaml" in git(root, "show", "--name-only", "--format=", "HEAD").split()
    # The classification template would replace it: refused without --force.
    assert "dvc.yaml" in cli(tmp_path, "init", str(root), code=errors.PRECONDITION)
