"""metrics show / diff, strict about what a number is."""

from __future__ import annotations

import json
import re

import pytest

from mlopskit import errors, metrics

from ..conftest import Repo, run_cli


def with_metrics(repo: Repo, values: dict[str, object], *, commit: bool = True) -> None:
    repo.write("dvc.yaml", "metrics:\n  - metrics.json\n")
    repo.write("metrics.json", json.dumps(values))
    if commit:
        repo.git("add", "-A")
        repo.git("commit", "-qm", "metrics")


def test_show_and_nested(repo: Repo) -> None:
    with_metrics(repo, {"acc": 0.9, "eval": {"loss": 0.3}})
    assert metrics.show(repo.project()) == {"metrics.json": {"acc": 0.9, "eval.loss": 0.3}}
    code, out, _ = run_cli("metrics", "show", "--json", cwd=repo.root)
    assert code == 0 and json.loads(out) == {"metrics.json": {"acc": 0.9, "eval.loss": 0.3}}


def test_diff_base_head_abs_rel_direction(repo: Repo) -> None:
    with_metrics(repo, {"accuracy": 0.8, "rmse": 2.0, "n": 10})
    repo.write("metrics.json", json.dumps({"accuracy": 0.88, "rmse": 2.5, "n": 10}))
    res = {c.key: c for c in metrics.diff(repo.project())}
    acc, rmse = res["accuracy"], res["rmse"]
    assert acc.old == 0.8 and acc.new == 0.88
    assert acc.change == pytest.approx(0.08) and acc.rel == pytest.approx(0.1)
    assert acc.better is True
    assert rmse.better is False  # lower is better for rmse
    assert res["n"].status == "unchanged" and res["n"].better is None
    code, out, _ = run_cli("metrics", "diff", "--md", cwd=repo.root)
    assert code == 0
    assert "| metrics.json | accuracy | 0.8 | 0.88 | +0.08 | +10.00% | better |" in out
    assert "| metrics.json | rmse | 2 | 2.5 | +0.5 | +25.00% | worse |" in out
    code, out, _ = run_cli("metrics", "diff", "--json", "--changed-only", cwd=repo.root)
    rows = json.loads(out)
    assert {r["key"] for r in rows} == {"accuracy", "rmse"}


def test_direction_from_config(repo: Repo) -> None:
    repo.write("mlopskit.yaml", "metrics:\n  directions:\n    latency: lower\n")
    with_metrics(repo, {"latency": 10})
    repo.write("metrics.json", json.dumps({"latency": 12}))
    (c,) = metrics.diff(repo.project())
    assert c.direction == "lower" and c.better is False


def test_first_pr_base_without_metrics(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - metrics.json\n")
    repo.git("add", "dvc.yaml")
    repo.git("commit", "-qm", "no metrics yet")
    repo.write("metrics.json", json.dumps({"acc": 0.5}))
    (c,) = metrics.diff(repo.project())
    assert c.status == "added" and c.old is None and c.change is None


@pytest.mark.parametrize(
    "value",
    ["0.9", None, [1, 2], float("nan"), float("inf"), True],
)
def test_non_numeric_values_never_get_a_delta(repo: Repo, value: object) -> None:
    """C4.42: strings, null, lists, NaN, Infinity, bools are not numbers. DVC does not
    read null or a list as a metric at all (``dvc metrics diff``: new is null): removed."""
    with_metrics(repo, {"acc": 0.5})
    repo.write("metrics.json", json.dumps({"acc": value}))
    (c,) = metrics.diff(repo.project())
    assert c.change is None and c.better is None
    assert c.status == ("removed" if value is None or isinstance(value, list) else "not numeric")
    code, _, _ = run_cli("metrics", "diff", cwd=repo.root)
    assert code == 0


@pytest.mark.parametrize("text", ['{"m":1', "[1, 2]"])
def test_malformed_metrics_file(repo: Repo, text: str) -> None:
    """C4.43: exit 1 naming the file."""
    with_metrics(repo, {"m": 1})
    repo.write("metrics.json", text)
    code, _, err = run_cli("metrics", "show", cwd=repo.root)
    assert code == errors.FAILED
    assert "metrics.json" in err and err.count("\n") == 1


def test_missing_metrics_file(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - metrics.json\n")
    code, _, err = run_cli("metrics", "show", cwd=repo.root)
    assert code == errors.FAILED and "metrics.json: declared but not in the workspace" in err
    assert "repro" in err


def test_stage_metrics_with_wdir_and_cached_metrics(repo: Repo) -> None:
    """Metrics declared on a stage (with wdir), and a DVC-cached one read through dvc.lock."""
    from mlopskit.pipeline import run as pipeline

    repo.write("sub/mk.py", "import json; json.dump({'a': 1}, open('m.json', 'w'))\n")
    repo.write("ck.py", "import json; json.dump({'b': 2}, open('c.json', 'w'))\n")
    repo.write(
        "dvc.yaml",
        "stages:\n"
        "  m:\n"
        "    wdir: sub\n"
        "    cmd: python mk.py\n"
        "    metrics:\n"
        "      - m.json:\n"
        "          cache: false\n"
        "  c:\n"
        "    cmd: python ck.py\n"
        "    metrics:\n"
        "      - c.json\n",
    )
    pipeline.repro(repo.project(), commit=True, allow_dirty=True)
    want = {"sub/m.json": {"a": 1}, "c.json": {"b": 2}}
    assert metrics.show(repo.project()) == want
    # c.json is in DVC's cache, not in git: read at HEAD through dvc.lock
    assert "c.json" not in repo.git("ls-files")
    assert metrics.show(repo.project(), rev="HEAD") == want


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("r2", "higher"),
        ("test.r2", "higher"),
        ("r2_score", "higher"),
        ("accuracy", "higher"),
        ("balanced_accuracy", "higher"),
        ("f1_macro", "higher"),
        ("roc_auc", "higher"),
        ("precision", "higher"),
        ("recall", "higher"),
        ("rmse", "lower"),
        ("test.rmse", "lower"),
        ("metrics.json:mae", "lower"),
        ("mse", "lower"),
        ("val_loss", "lower"),
        ("log_loss", "lower"),
        ("mean_absolute_error", "lower"),
        ("error_rate", "lower"),
        ("neg_mean_squared_error", "higher"),  # scikit-learn's scorer name
        ("layer2", None),  # no longer 'higher' because it contains "r2"
        ("count", None),
        ("n_rows", None),
    ],
)
def test_known_directions_by_leaf_name(name: str, direction: str | None) -> None:
    from mlopskit.config import MetricsConfig

    assert MetricsConfig().direction(name) == direction


def test_regression_metrics_diff_without_configuration(repo: Repo) -> None:
    """No mlopskit.yaml at all: rmse/mae lower, r2 higher is better."""
    with_metrics(repo, {"test": {"rmse": 2.0, "mae": 1.5, "r2": 0.7}})
    repo.write("metrics.json", json.dumps({"test": {"rmse": 1.5, "mae": 1.6, "r2": 0.8}}))
    res = {c.key: c for c in metrics.diff(repo.project())}
    assert (res["test.rmse"].better, res["test.mae"].better, res["test.r2"].better) == (
        True,
        False,
        True,
    )


def test_diff_labels_every_column(repo: Repo) -> None:
    """The last column (better / worse / status) had an empty header."""
    with_metrics(repo, {"accuracy": 0.8})
    repo.write("metrics.json", json.dumps({"accuracy": 0.9}))
    for fmt_args in ([], ["--md"]):
        code, out, err = run_cli("metrics", "diff", *fmt_args, cwd=repo.root)
        assert code == 0, err
        header = out.splitlines()[0]
        cells = (
            [c.strip() for c in header.strip("|").split("|")]
            if fmt_args
            else re.split(r"\s{2,}", header.strip())
        )
        assert cells == ["file", "metric", "HEAD", "workspace", "change", "change %", "verdict"]
        assert all(cells)
