"""quickstart: init, version a bundled data set, train, commit and push, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlopskit import data, metrics, params
from mlopskit.pipeline import run as pipeline

from ..conftest import Repo, dvc, git, porcelain, run_cli

pytestmark = pytest.mark.slow


def test_quickstart_cli_end_to_end(tmp_path: Path) -> None:
    code, out, err = run_cli("quickstart", "demo", "--dataset", "wine")
    assert code == 0, err
    root = tmp_path / "demo"
    assert "Trained a model on the wine data set (178 rows)" in out
    assert "Next, try:" in out
    assert porcelain(root) == ""
    log = git(root, "log", "--format=%s").splitlines()
    assert log == [
        "train: first model from the quickstart",
        "data: schema of the raw data",
        "data: add the wine data set",
        "mlopskit init: demo",
    ]
    m = json.loads((root / "reports" / "metrics.json").read_text())
    assert set(m) == {"accuracy", "f1", "precision", "recall"}  # multiclass: no roc_auc
    assert 0.5 < m["accuracy"] <= 1.0
    # Everything is in the remote: DVC agrees.
    st = dvc(root, "status", "-c")
    assert "new:" not in st.stdout and "missing:" not in st.stdout
    assert dvc(root, "status").stdout.strip() == "Data and pipelines are up to date."


def test_trained_project_lineage(trained: Repo) -> None:
    """dvc.lock at HEAD pins the data, params and model; the model loads with skops."""
    import skops.io as sio

    lock = (trained.root / "dvc.lock").read_text()
    pointer = (trained.root / "data/raw/data.csv.dvc").read_text()
    data_md5 = pointer.split("md5: ")[1].split()[0]
    assert data_md5 in lock
    assert "train.C: 1.0" in lock
    model = trained.root / "models" / "model.skops"
    untrusted = sio.get_untrusted_types(file=model)
    assert all(t.startswith(("sklearn.", "numpy.", "scipy.", "builtins.")) for t in untrusted)
    clf = sio.load(model, trusted=untrusted)
    assert hasattr(clf, "predict_proba")


def test_param_change_retrains_and_diffs(trained: Repo) -> None:
    params.set_params(trained.project(), ["train.C=0.01"])
    # --push stores the data; the project has no git remote, so git is not pushed.
    res = pipeline.repro(trained.project(), commit=True, message="C=0.01")
    data.push(trained.project())
    assert res.ran == ["train", "evaluate"]
    assert {"dvc.lock", "params.yaml", "reports/metrics.json"} <= set(res.committed)
    assert set(res.committed) <= {
        "dvc.lock",
        "params.yaml",
        "reports/metrics.json",
        "reports/plots/confusion.csv",
        "reports/plots/roc.csv",
    }
    changes = {c.key: c for c in metrics.diff(trained.project(), base="HEAD~1", head="HEAD")}
    assert set(changes) >= {"accuracy", "f1", "roc_auc"}
    assert params.diff(trained.project(), base="HEAD~1", head="HEAD")[0].key == "train.C"
    assert trained.status() == ""
    assert data.status(trained.project()).clean


def test_pull_on_fresh_clone(trained: Repo, tmp_path: Path) -> None:
    """A colleague clones, points at the same remote, pulls, and repro is a no-op."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    (clone / ".dvc" / "config.local").write_text(
        (trained.root / ".dvc" / "config.local").read_text()
    )
    code, out, err = run_cli("data", "pull", cwd=clone)
    assert code == 0, err
    assert (clone / "models" / "model.skops").is_file()
    res = pipeline.repro(Repo(clone, trained.remote).project())
    assert res.ran == []
