"""The monitoring loop closed from a real prediction log: `mlopskit serve --log-dir` fed
traffic, the log shipped to a store (a folder here, as `aws s3 sync` or rsync would fill
a bucket or a path), imported once with `dvc import-url`, and the generated monitor.yml
run under act as a fresh runner: it re-imports the newest log, measures drift on it and,
on drift only, dispatches retrain.yml through a local stand-in for GitHub's API."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlopskit import remote
from mlopskit.ci import workflows
from mlopskit.project import Project
from mlopskit.registry import tags as registry

from .. import act
from ..act import runner_image_fixture  # noqa: F401  (the runner_image fixture)
from ..conftest import Repo, dvc
from ..fake_github import State, serve
from ..serve.test_serve import Server, start, stop

pytestmark = pytest.mark.slow

LOG = "data/production/predictions"
TOKEN = "test-token"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with act.wheel_server(tmp_path_factory.mktemp("wheel")) as url:
        yield url


def _rows(log_dir: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in log_dir.glob("predictions-*.jsonl*"))


def _send(server: Server, frame: Any) -> None:
    """POST the rows in batches of 50, and wait until the log has them all."""
    want = _rows(server.log_dir) + len(frame)
    for at in range(0, len(frame), 50):
        chunk = frame.iloc[at : at + 50]
        body = {"dataframe_split": json.loads(chunk.to_json(orient="split", index=False))}
        code, _, data = server.call("POST", "/invocations", body)
        assert code == 200, data
    deadline = time.monotonic() + 30
    while _rows(server.log_dir) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rows(server.log_dir) == want


def _ship(log_dir: Path, store: Path) -> None:
    """What the serving host's cron does: copy the log files to the store."""
    store.mkdir(exist_ok=True)
    for p in log_dir.iterdir():
        shutil.copy2(p, store / p.name)


def _commit_ci_project(trained: Repo, origin: Path, tmp_path: Path, install: str) -> Path:
    """The developer's side: the DVC remote in .dvc/config, ci.install, the workflows,
    committed, pushed to a bare origin and cloned (as GitHub's checkout would)."""
    root = trained.root
    text = (root / "mlopskit.yaml").read_text().replace("kind: none", "kind: local")
    text = text.replace("  # current: data/production/current.csv", f"  current: {LOG}")
    text, n = re.subn(r"^ci:\n", f"ci:\n  install: {install}\n", text, flags=re.M)
    assert n == 1 and f"current: {LOG}" in text, text
    (root / "mlopskit.yaml").write_text(text)
    res = workflows.generate(Project(root=root), force=True)
    assert ".github/workflows/monitor.yml" in res.written
    dvc(root, "push")
    return act.publish(trained.root, origin, tmp_path, "monitor the prediction log")


@pytest.mark.parametrize("drifted", [True, False], ids=["drifted", "same-as-training"])
def test_monitor_yml_on_a_served_prediction_log_dispatches_retrain_only_on_drift(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,
    runner_image: act.RunnerImage,
    drifted: bool,
) -> None:
    import pandas as pd

    root = trained.root
    (root / ".dvc" / "config.local").unlink()
    remote.add(Project(root=root), "storage", str(trained.remote), default=True)
    registry.register(trained.project(), "model", version="v1.0.0")
    registry.promote(trained.project(), "model", "v1.0.0", "prod")
    raw = pd.read_csv(root / "data" / "raw" / "data.csv")
    features = raw.drop(columns=["target"]).sample(frac=1.0, random_state=3)
    first, rest = features.iloc[:60], features.iloc[60:]
    if drifted:  # production now sees only malignant cases: all in range, the mix drifted
        rest = raw[raw["target"] == 0].drop(columns=["target"])

    store = tmp_path / "log-store"
    server = start(root, "model#prod", log_dir=tmp_path / "host-log")
    try:
        # Traffic on day one, shipped; the developer imports the store once.
        _send(server, first)
        _ship(server.log_dir, store)
        (root / "data" / "production").mkdir(parents=True)
        dvc(root, "import-url", str(store), LOG)
        clone = _commit_ci_project(trained, origin, tmp_path, install)
        # More traffic, shipped before the scheduled monitor run.
        _send(server, rest)
    finally:
        out = stop(server)
    assert server.proc.returncode == 0, out
    _ship(server.log_dir, store)
    logged = len(first) + len(rest)
    assert _rows(store) == logged

    state = State(repo=act.REPOSITORY, token=TOKEN)
    with serve(state) as url:
        run = act.run(
            clone,
            "workflow_dispatch",
            "monitor.yml",
            {"inputs": {}},
            artifacts=tmp_path / "art",
            secrets={"GITHUB_TOKEN": TOKEN},
            env={"GITHUB_API_URL": url},
            # the drifted run installs everything as a new runner does
            image=None if drifted else runner_image,
        )
    assert run.returncode == 0, run.output[-6000:]
    if drifted:
        # One new environment (the check job; the dispatch job runs only curl), mlopskit
        # from the wheel, the requirements from the index.
        assert len(re.findall(r"\| fresh virtual environment /", run.output)) == 1
        assert run.output.count(f"Downloading {install.split('#', 1)[0]}") == 1
        assert re.search(r"Successfully installed .*\bdvc-3\.", run.output)
    # The job measured the newest log, not the one the commit recorded.
    assert run.ran(f"Updated {LOG}.dvc")
    report = (tmp_path / "art" / "drift-report" / "drift.md").read_text()
    assert LOG in report
    dispatch_calls = [(m, p) for m, p, _ in state.requests if p.endswith("/dispatches")]
    if drifted:
        assert "mean radius" in report and "DRIFT" in report.upper()
        # The stand-in records a dispatch only after `Authorization: Bearer <token>`
        # matched (401 otherwise): one call, the retrain workflow, on main, no inputs.
        assert dispatch_calls == [
            ("POST", f"/repos/{act.REPOSITORY}/actions/workflows/retrain.yml/dispatches")
        ]
        assert state.dispatches == [("retrain.yml", {"ref": "main"})]
        # Started by drift; the re-imported log did not count as new training data.
        assert run.ran("drift: true, new data: false: starting retrain.yml")
    else:
        assert dispatch_calls == [] and state.dispatches == []
        assert not run.ran("starting retrain.yml")
