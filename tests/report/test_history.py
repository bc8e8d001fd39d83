"""metrics history: read from git objects, agrees with `dvc metrics show` per commit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from mlopskit import errors
from mlopskit.report import history

from ..conftest import Repo, dvc, run_cli


def commits(repo: Repo, n: int) -> list[str]:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    shas = []
    for i in range(n):
        repo.write("params.yaml", f"train:\n  lr: {0.1 * (i + 1):.1f}\n  epochs: 3\n")
        repo.write("m.json", json.dumps({"acc": 0.5 + i / 100, "nested": {"loss": 1.0 - i / 10}}))
        repo.git("add", "-A")
        repo.git("commit", "-qm", f"step {i}")
        shas.append(repo.head())
    return shas


def test_history_matches_dvc_metrics_show(repo: Repo) -> None:
    shas = commits(repo, 4)
    rows = history.history(repo.project(), limit=10)
    assert [r.commit for r in rows[:4]] == list(reversed(shas))
    for row in rows[:4]:
        repo.git("checkout", "-q", row.commit)
        dvc_view = json.loads(dvc(repo.root, "metrics", "show", "--json").stdout)
        (only,) = dvc_view.values()
        values = only["data"]["m.json"]["data"]
        assert row.metrics == {"acc": values["acc"], "nested.loss": values["nested"]["loss"]}
    repo.git("checkout", "-q", "main")
    assert rows[0].params["train.lr"] == 0.4
    assert rows[-1].subject == "init" and rows[-1].metrics == {}


def test_history_first_parent_and_range(repo: Repo) -> None:
    shas = commits(repo, 3)
    repo.git("checkout", "-q", "-b", "side", shas[0])
    repo.write("side.txt", "x")
    repo.git("add", "side.txt")
    repo.git("commit", "-qm", "side work")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    rows = history.history(repo.project(), limit=None)
    assert "side work" not in [r.subject for r in rows]
    assert [r.subject for r in rows][:2] == ["merge side", "step 2"]
    ranged = history.history(repo.project(), rev=f"{shas[0]}..{shas[2]}", limit=None)
    assert [r.commit for r in ranged] == [shas[2], shas[1]]


def test_history_cli_formats_and_plot(repo: Repo, tmp_path: Path) -> None:
    commits(repo, 3)
    code, out, err = run_cli("metrics", "history", "-n", "3", cwd=repo.root)
    assert code == 0, err
    assert "acc" in out.splitlines()[0] and "train.lr" in out.splitlines()[0]
    assert "epochs" not in out.splitlines()[0]  # constant params are not shown
    code, out, _ = run_cli("metrics", "history", "-n", "2", "--csv", cwd=repo.root)
    table = list(csv.reader(io.StringIO(out)))
    assert table[0][:5] == ["commit", "date", "subject", "acc", "nested.loss"]
    assert len(table) == 3
    code, out, _ = run_cli("metrics", "history", "--json", "-n", "1", cwd=repo.root)
    assert json.loads(out)[0]["metrics"]["acc"] == 0.52
    png = tmp_path / "h.png"
    code, _, err = run_cli("metrics", "history", "--plot", str(png), cwd=repo.root)
    assert code == 0, err
    assert png.read_bytes().startswith(b"\x89PNG")


def test_history_bad_range(repo: Repo) -> None:
    code, _, err = run_cli("metrics", "history", "--rev", "nope..main", cwd=repo.root)
    assert code == errors.USAGE and "nope..main" in err
