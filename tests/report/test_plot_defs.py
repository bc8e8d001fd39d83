"""Plot definitions read as DVC reads them (issue 12, item 5): for every plot id `dvc plots
show --json --split` lists, the same title, x field and y field, from every form
`dvc.yaml` allows: a top-level file (plain, or with x/y/template/title), a named plot
whose x and y name a file's fields (`x: {file: field}`), and a stage's plot output with
and without options."""

from __future__ import annotations

import json
from pathlib import Path

from mlopskit.report import build

from ..conftest import Repo, dvc

DVC_YAML = """\
plots:
- curve.csv:
    x: step
    y: acc
    template: linear
    title: Accuracy
- loss.csv
- acc-vs-loss:
    x: {curve.csv: loss}
    y: {curve.csv: acc}
    template: scatter
stages:
  train:
    cmd: python -c "print('trained')"
    plots:
    - roc.csv:
        x: fpr
        y: tpr
        template: simple
        cache: false
    - prc.csv:
        cache: false
"""


def _write(repo: Repo) -> None:
    repo.write("curve.csv", "step,acc,loss\n0,0.5,1.0\n1,0.7,0.6\n2,0.8,0.4\n")
    repo.write("loss.csv", "epoch,loss\n0,1.0\n1,0.5\n")
    repo.write("roc.csv", "fpr,tpr,threshold\n0,0,1\n0.5,0.8,0.5\n1,1,0\n")
    repo.write("prc.csv", "recall,precision\n0.1,0.9\n0.9,0.4\n")
    repo.write("dvc.yaml", DVC_YAML)


def _theirs(root: Path) -> dict[str, tuple[str, str, str]]:
    data = json.loads(dvc(root, "plots", "show", "--json", "--split").stdout)["data"]
    out = {}
    for plot_id, [entry] in data.items():
        a = entry["anchor_definitions"]
        out[plot_id] = (
            a["<DVC_METRIC_TITLE>"],
            a["<DVC_METRIC_X_LABEL>"],
            a["<DVC_METRIC_Y_LABEL>"],
        )
    return out


def _ours(root: Path) -> dict[str, tuple[str, str, str]]:
    from mlopskit.report import charts

    out = {}
    for d in build._plot_defs(root, None):
        rows = charts.rows_from_bytes(d["file"], (root / d["file"]).read_bytes())
        x, y = d["x"] or "step", d["y"] or list(rows[0])[-1]
        out[d["name"]] = (d["title"] or d["name"], x, y)
    return out


def test_plot_definitions_equal_dvcs(repo: Repo) -> None:
    _write(repo)
    theirs = _theirs(repo.root)
    assert theirs["acc-vs-loss"] == ("acc-vs-loss", "loss", "acc")  # the oracle reads x: {f: x}
    assert theirs["roc.csv"] == ("roc.csv", "fpr", "tpr")
    assert _ours(repo.root) == theirs
