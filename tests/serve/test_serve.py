"""``mlopskit serve`` end to end: a real uvicorn on 127.0.0.1 serving the quickstart
model from the Git registry, driven over HTTP with the standard library's client.

The oracle for predictions is the model file itself, loaded from DVC's cache with skops
and scikit-learn; for hashes, dvc.lock at the registered commit; for drift, the CLI's
``monitor drift`` on the prediction log the server wrote.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlopskit import at_revision, errors
from mlopskit.registry import tags as registry

from .._wait import wait_for
from ..conftest import Repo, _copy, git, run_cli

TOKEN = "s3cret-token-for-tests"
MODEL = "models/model.skops"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    root: Path
    log_dir: Path
    proc: subprocess.Popen[str]
    token: str | None = TOKEN

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None | bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"content-type": "application/json", **(headers or {})}
        use = self.token if token is True else (token or None)
        if use:
            hdrs["authorization"] = f"Bearer {use}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, _, data = self.call(method, path, body, **kw)
        return code, json.loads(data)

    def metrics(self) -> str:
        return self.call("GET", "/metrics")[2].decode()


def start(
    root: Path,
    spec: str,
    *extra: str,
    log_dir: Path | None = None,
    token: str | None = TOKEN,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Server:
    """``started(proc)`` runs as soon as the process exists, before it can open its log."""
    port = free_port()
    log_dir = log_dir or root.parent / "predlog"
    env = {k: v for k, v in os.environ.items() if k != "MLOPSKIT_SERVE_TOKEN"}
    if token:
        env["MLOPSKIT_SERVE_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlopskit", "serve", spec, "--port", str(port)]
        + ["--log-dir", str(log_dir), *extra],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if started is not None:
        started(proc)
    server = Server(f"http://127.0.0.1:{port}", root, log_dir, proc, token)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.communicate()[0]}")
        try:
            if server.call("GET", "/health/ready", token=False)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"serve never became ready: {proc.communicate()[0]}")


def stop(server: Server) -> str:
    if server.proc.poll() is None:
        server.proc.terminate()
    return server.proc.communicate(timeout=60)[0]


def features(root: Path) -> Any:
    import pandas as pd

    return pd.read_csv(root / "data/raw/data.csv").drop(columns=["target"])


def oracle(root: Path, commit: str, frame: Any) -> list[Any]:
    """Predictions of the registered model file, loaded from DVC's cache by hand."""
    import skops.io as sio

    md5 = at_revision.lock_md5s(root, commit)[MODEL]
    data = at_revision.cache_path(root, md5).read_bytes()
    model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    return list(model.predict(frame).tolist())


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(_trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Repo:
    src, remote = _trained
    base = tmp_path_factory.mktemp("serve")
    repo = _copy(src, base / "project", remote, base / "remote")
    registry.register(repo.project(), "model", version="v1.0.0")
    registry.promote(repo.project(), "model", "v1.0.0", "prod")
    return repo


@pytest.fixture(scope="module")
def server(project: Repo) -> Iterator[Server]:
    before = snapshot(project.root)
    srv = start(project.root, "model#prod")
    srv.before = before  # type: ignore[attr-defined]
    yield srv
    stop(srv)


def test_endpoints(server: Server, project: Repo) -> None:
    commit = project.head()
    md5 = at_revision.lock_md5s(project.root, commit)[MODEL]
    assert server.json("GET", "/health/live", token=False) == (200, {"status": "live"})
    code, ready = server.json("GET", "/health/ready", token=False)
    assert code == 200 and ready["version"] == "v1.0.0"
    code, meta = server.json("GET", "/metadata")
    assert code == 200
    assert (meta["artifact"], meta["version"], meta["stage"]) == ("model", "v1.0.0", "prod")
    assert meta["commit"] == commit and meta["md5"] == md5
    assert meta["md5_recorded_in"] == "the outs of stage 'train' in dvc.lock"
    cols = meta["input_schema"]["columns"]
    assert [c["name"] for c in cols] == list(features(project.root).columns)
    assert cols[0]["type"] == "float" and "min" in cols[0] and "max" in cols[0]
    assert meta["trusted_types"] == ["numpy.dtype"]
    # Open Inference Protocol v2, as KServe calls it.
    assert server.json("GET", "/v2/health/live", token=False) == (200, {"live": True})
    assert server.json("GET", "/v2/health/ready", token=False) == (200, {"ready": True})
    code, v2 = server.json("GET", "/v2/models/model")
    assert code == 200 and v2["name"] == "model" and v2["versions"] == ["v1.0.0"]
    assert len(v2["inputs"]) == 30 and v2["inputs"][0]["datatype"] == "FP64"
    assert server.json("GET", "/v2/models/model/ready") == (200, {"ready": True})
    assert server.json("GET", "/v2/models/model/versions/v1.0.0/ready")[0] == 200
    assert server.json("GET", "/v2")[1]["name"] == "mlopskit"
    text = server.metrics()
    assert 'mlopskit_serve_model_info{artifact="model",md5="' + md5 in text
    assert 'stage="prod",version="v1.0.0"} 1.0' in text
    assert 'mlopskit_serve_requests_total{code="200",endpoint="metadata"}' in text
    assert "mlopskit_serve_request_duration_seconds_bucket" in text
    assert "mlopskit_serve_predlog_dropped_total 0.0" in text


def test_mlflow_and_v2_formats_predict_what_the_model_predicts(
    server: Server, project: Repo
) -> None:
    frame = features(project.root).iloc[[0, 1, 19, 200, 400]]
    want = oracle(project.root, project.head(), frame)
    assert len(set(want)) == 2  # both classes among the rows
    split = json.loads(frame.to_json(orient="split", index=False))
    shuffled = frame[list(reversed(frame.columns))]
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_split (other column order)": {
            "dataframe_split": json.loads(shuffled.to_json(orient="split", index=False))
        },
        "dataframe_split (no columns: the model's order)": {
            "dataframe_split": {"data": frame.to_numpy().tolist()}
        },
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances (rows)": {"instances": frame.to_numpy().tolist()},
        "instances (records)": {"instances": frame.to_dict(orient="records")},
        "inputs (columns)": {"inputs": frame.to_dict(orient="list")},
        "inputs (rows)": {"inputs": frame.to_numpy().tolist()},
    }
    for what, body in bodies.items():
        assert server.json("POST", "/invocations", body) == (200, {"predictions": want}), what
    per_column = {"id": "req-1", **_v2_columns(frame)}
    code, out = server.json("POST", "/v2/models/model/infer", per_column)
    assert code == 200
    assert (out["model_name"], out["model_version"], out["id"]) == ("model", "v1.0.0", "req-1")
    assert out["outputs"] == [{"name": "predict", "shape": [5], "datatype": "INT64", "data": want}]
    tensor = _v2_tensor(frame)
    code, out = server.json("POST", "/v2/models/model/versions/v1.0.0/infer", tensor)
    assert code == 200 and out["outputs"][0]["data"] == want


def test_contract_rules_on_every_column_type() -> None:
    """The data contract's rules on a table of every type (no server needed)."""
    from mlopskit.quality.schema import Column
    from mlopskit.serve.inputs import BadRequest, Contract

    contract = Contract(
        (
            Column("n", "integer", min=0, max=10),
            Column("x", "float", nullable=True),
            Column("c", "category", allowed=("a", "b")),
            Column("b", "boolean"),
            Column("when", "datetime"),
            Column("note", "string", required=False),
        ),
        max_rows=3,
    )
    names = ["n", "x", "c", "b", "when"]
    good = [[3, None, "a", True, "2024-01-02"], [10, 1.5, "b", "false", "2024-01-02T10:00Z"]]
    frame = contract.table(names, good)
    assert list(frame.columns) == ["n", "x", "c", "b", "when", "note"]
    assert frame["b"].tolist() == [True, False] and frame["note"].isna().all()
    assert str(frame["when"].dtype).startswith("datetime64")
    bad = {
        "integer": ([1.5, 1.0, "a", True, "2024-01-02"], "n", "type"),
        "range": ([11, 1.0, "a", True, "2024-01-02"], "n", "max"),
        "allowed": ([1, 1.0, "z", True, "2024-01-02"], "c", "allowed"),
        "boolean": ([1, 1.0, "a", "maybe", "2024-01-02"], "b", "type"),
        "datetime": ([1, 1.0, "a", True, "soon"], "when", "type"),
        "null": ([None, 1.0, "a", True, "2024-01-02"], "n", "nullable"),
    }
    for what, (row, field, rule) in bad.items():
        with pytest.raises(BadRequest) as info:
            contract.table(names, [good[0], row])
        err = info.value
        assert err.status == 422, what
        assert err.errors[0]["row"] == 1 and err.errors[0]["field"] == field, what
        assert err.errors[0]["rule"] == rule, what
        assert f"row 1, field '{field}'" in err.message, what
    with pytest.raises(BadRequest) as info:
        contract.table(names, good * 2)
    assert info.value.status == 413
    with pytest.raises(BadRequest) as info:
        contract.table(["n", "x", "c", "b"], [r[:4] for r in good])
    assert info.value.errors[0]["rule"] == "missing_column"


def _records(project: Repo, n: int = 2) -> list[dict[str, Any]]:
    return list(features(project.root).head(n).to_dict(orient="records"))


def test_bad_requests(server: Server, project: Repo) -> None:
    recs = _records(project)

    def with_(i: int, key: str, value: Any) -> dict[str, Any]:
        body = [dict(r) for r in recs]
        body[i][key] = value
        return {"dataframe_records": body}

    missing = [dict(r) for r in recs]
    del missing[0]["mean area"], missing[1]["mean area"]
    cases: list[tuple[str, dict[str, Any], int, list[str]]] = [
        ("out of range", {"body": with_(1, "mean radius", 1000.0)}, 422, ["row 1", "mean radius"]),
        ("wrong type", {"body": with_(0, "mean texture", "ten")}, 422, ["row 0", "mean texture"]),
        ("null", {"body": with_(1, "worst area", None)}, 422, ["row 1", "worst area"]),
        ("boolean", {"body": with_(0, "mean area", True)}, 422, ["row 0", "mean area"]),
        ("extra column", {"body": with_(0, "target", 1)}, 422, ["target", "extra"]),
        ("missing column", {"body": {"dataframe_records": missing}}, 422, ["mean area"]),
        ("malformed JSON", {"raw": b'{"dataframe_records": [{'}, 400, ["not valid JSON"]),
        ("NaN literal", {"raw": b'{"inputs": [[NaN]]}'}, 400, ["not valid JSON"]),
        ("empty body", {"raw": b""}, 400, ["empty"]),
        ("unknown format", {"body": {"rows": []}}, 400, ["dataframe_split"]),
        ("two formats", {"body": {"inputs": [], "instances": []}}, 400, ["exactly one"]),
        ("short row", {"body": {"instances": [[1.0, 2.0]]}}, 422, ["2 values", "30"]),
        ("too many rows", {"body": {"dataframe_records": recs * 501}}, 413, ["max_rows"]),
        ("too large", {"raw": b"[" + b"1," * 600_000 + b"1]"}, 413, ["max_body_bytes"]),
        (
            "csv body",
            {"raw": b"a,b\n1,2\n", "headers": {"content-type": "text/csv"}},
            415,
            ["application/json"],
        ),
        ("no token", {"body": {"dataframe_records": recs}, "token": False}, 401, ["bearer"]),
        ("wrong token", {"body": {"dataframe_records": recs}, "token": "nope"}, 401, ["bearer"]),
    ]
    for what, kw, status, words in cases:
        code, headers, data = server.call("POST", "/invocations", **kw)
        assert code == status, (what, data)
        assert b"Traceback" not in data and b'File "' not in data, what
        body = json.loads(data)
        assert set(body) >= {"error_code", "message"}, what
        for word in words:
            assert word.lower() in body["message"].lower(), (what, body)
        if status == 422 and body.get("errors") and body["errors"][0]["row"] is not None:
            first = body["errors"][0]
            assert {"row", "field", "rule", "expected", "found"} <= set(first), what
        if status == 401:
            assert headers.get("www-authenticate") == "Bearer"
    # v2 errors in the protocol's shape, and unknown routes and models as JSON.
    code, body = server.json(
        "POST",
        "/v2/models/other/infer",
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]},
    )
    assert code == 404 and "other" in body["error"]
    code, body = server.json("POST", "/v2/models/model/infer", {"inputs": "x"})
    assert code == 400 and "inputs" in body["error"]
    assert server.json("GET", "/no/such/route")[0] == 404
    assert server.json("GET", "/invocations")[0] == 405
    assert server.call("GET", "/metadata", token=False)[0] == 401
    assert server.call("GET", "/metrics", token=False)[0] == 401
    text = server.metrics()
    assert 'mlopskit_serve_errors_total{endpoint="invocations",kind="contract"}' in text
    assert 'mlopskit_serve_errors_total{endpoint="invocations",kind="too_large"} 2.0' in text
    assert 'mlopskit_serve_errors_total{endpoint="invocations",kind="unauthorized"} 2.0' in text
    # The server is still up after all that.
    assert server.call("POST", "/invocations", {"dataframe_records": recs})[0] == 200


def _logged_rows(log_dir: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in log_dir.glob("predictions-*.jsonl*"))


def test_drifted_traffic_shows_in_the_log_and_monitor_drift_fails(
    server: Server, project: Repo, tmp_path: Path
) -> None:
    import pandas as pd

    raw = pd.read_csv(project.root / "data/raw/data.csv")
    # Production sees only malignant cases: every input in range, the mix drifted.
    drifted = raw[raw["target"] == 0].drop(columns=["target"]).head(200)
    logs = sorted(server.log_dir.glob("predictions-*.jsonl"))
    offsets = {p: p.stat().st_size for p in logs}  # what earlier tests logged
    before = _logged_rows(server.log_dir)
    sent: list[dict[str, Any]] = []
    for start_at in range(0, len(drifted), 50):
        chunk = drifted.iloc[start_at : start_at + 50]
        split = json.loads(chunk.to_json(orient="split", index=False))
        assert server.call("POST", "/invocations", {"dataframe_split": split})[0] == 200
        sent += [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    wait_for(
        lambda: _logged_rows(server.log_dir) >= before + 200, 30, "the 200 drifted rows logged"
    )
    assert sorted(server.log_dir.glob("predictions-*.jsonl")) == logs  # one worker, no rotation
    lines = []
    for p in logs:
        with p.open("rb") as fh:
            fh.seek(offsets[p])
            lines += fh.read().decode().splitlines()
    assert len(lines) == 200
    first = json.loads(lines[0])
    assert set(first) == {"time", "artifact", "version", "inputs", "output"}
    assert first["version"] == "v1.0.0" and len(first["inputs"]) == 30
    # Exactly this test's rows, in the order sent.
    assert [json.loads(line)["inputs"] for line in lines] == sent
    only_drift = tmp_path / "log"
    only_drift.mkdir()
    (only_drift / "predictions-1.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(
        "monitor",
        "drift",
        "--reference",
        "data/raw/data.csv",
        "--current",
        str(only_drift),
        cwd=project.root,
    )
    assert code == errors.FAILED, err
    assert "DRIFT" in out and "mean radius" in out
    assert "target" not in out  # the label is not an input: not compared


def test_prediction_log_of_undrifted_traffic_passes(project: Repo, tmp_path: Path) -> None:
    """The same read path on traffic like the training data: no drift (exit 0)."""
    import pandas as pd

    from mlopskit.serve.predlog import Entry, PredictionLog

    frame = pd.read_csv(project.root / "data/raw/data.csv").drop(columns=["target"])
    log = PredictionLog(tmp_path / "log", max_bytes=50_000, backups=50)
    log.start()
    cols = list(frame.columns)
    for i in range(0, len(frame), 25):
        rows = frame.iloc[i : i + 25].to_numpy().tolist()
        log.submit(Entry("model", "v1.0.0", cols, rows, [0] * len(rows)))
    log.close()
    assert log.written == len(frame) and log.dropped == 0
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert len(files) > 2 and all(p.stat().st_size <= 50_000 for p in (tmp_path / "log").iterdir())
    code, out, err = run_cli(
        "monitor",
        "drift",
        "--reference",
        "data/raw/data.csv",
        "--current",
        str(tmp_path / "log"),
        cwd=project.root,
    )
    assert code == 0, out + err


def test_access_log_is_off_by_default_and_on_with_the_flag(
    server: Server, project: Repo, tmp_path: Path
) -> None:
    """`--access-log` turns on uvicorn's per-request lines; without it (the module's
    server) a request leaves no line naming its path in the server's output."""
    srv = start(project.root, "model#prod", "--access-log", log_dir=tmp_path / "log")
    try:
        assert srv.call("GET", "/v2/health/live", token=False)[0] == 200
    finally:
        out = stop(srv)
    assert re.search(r'"GET /v2/health/live HTTP/1\.1" 200', out), out
    quiet = start(project.root, "model#prod", log_dir=tmp_path / "quiet")
    try:
        assert quiet.call("GET", "/v2/health/live", token=False)[0] == 200
    finally:
        out = stop(quiet)
    assert "/v2/health/live" not in out, out


def test_serving_writes_nothing_but_the_log(server: Server, project: Repo) -> None:
    assert server.call("POST", "/invocations", {"dataframe_records": _records(project)})[0] == 200
    assert snapshot(project.root) == server.before  # type: ignore[attr-defined]
    assert any(server.log_dir.iterdir())


def test_binds_loopback_by_default(server: Server) -> None:
    """The listening socket (from /proc/net/tcp) is on 127.0.0.1 only."""
    port = int(server.url.rsplit(":", 1)[1])
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        addr, hexport = fields[1].split(":")
        if int(hexport, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            listening.append(addr)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian


def _sample(text: str, name: str, labels: str = "") -> float:
    found = re.findall(rf"^{re.escape(name + labels)} (\S+)$", text, flags=re.M)
    assert len(found) == 1, (name, labels, text[-2000:])
    return float(found[0])


def test_two_workers_log_add_up_their_metrics_and_sigterm_stops_cleanly(
    project: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers 2: each worker logs to its own file; /metrics, whichever worker answers,
    counts the requests of both (prometheus-client's multiprocess mode, in a directory
    of serve's own that is gone after it stops)."""
    import threading

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    log_dir = tmp_path / "log"
    srv = start(project.root, "model@v1.0.0", "--workers", "2", log_dir=log_dir)
    body = {"dataframe_records": _records(project)}
    sent = 0
    lock = threading.Lock()

    def both_served() -> bool:
        return sum(1 for p in log_dir.glob("predictions-*.jsonl") if p.stat().st_size) == 2

    def traffic() -> None:
        nonlocal sent
        for _ in range(25):
            assert srv.call("POST", "/invocations", body)[0] == 200
            with lock:
                sent += 1

    try:
        for _ in range(20):  # until both workers have answered some
            threads = [threading.Thread(target=traffic) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wait_for(lambda: _logged_rows(log_dir) == 2 * sent, 30, f"{2 * sent} rows logged")
            if both_served():
                break
        assert both_served()
        (metrics_dir,) = scratch.glob("mlopskit-serve-metrics-*")
        assert any(metrics_dir.glob("counter_*.db"))
        for _ in range(6):  # several scrapes: whichever worker answers, the same sums
            text = srv.metrics()
            code200 = '{code="200",endpoint="invocations"}'
            assert _sample(text, "mlopskit_serve_requests_total", code200) == sent
            assert _sample(text, "mlopskit_serve_predicted_rows_total") == 2 * sent
            assert _sample(text, "mlopskit_serve_predlog_written_total") == 2 * sent
            assert _sample(text, "mlopskit_serve_predlog_dropped_total") == 0
            hist = '{endpoint="invocations"}'
            assert _sample(text, "mlopskit_serve_request_duration_seconds_count", hist) == sent
            assert 'stage="",version="v1.0.0"} 1.0' in text
        assert srv.json("GET", "/metadata")[1]["version"] == "v1.0.0"
    finally:
        out = stop(srv)
    assert srv.proc.returncode == 0, out
    assert out.count("Application startup complete") == 2
    assert out.count("Application shutdown complete") == 2
    assert _logged_rows(log_dir) == 2 * sent  # flushed on shutdown
    assert not any(scratch.iterdir())  # the metrics directory is removed


def _v2_tensor(frame: Any) -> dict[str, Any]:
    """An Open Inference Protocol v2 request: the whole frame as one FP64 tensor."""
    shape = [len(frame), frame.shape[1]]
    data = frame.to_numpy().tolist()
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP64", "data": data}]}


def _v2_columns(frame: Any) -> dict[str, Any]:
    """A v2 request with one tensor per column, named after it."""
    return {
        "inputs": [
            {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
            for c in frame.columns
        ]
    }


def test_v2_infer_checks_the_contract_and_limits(server: Server, project: Repo) -> None:
    """/v2/models/NAME/infer answers 422 and 413 as /invocations does, in the v2 shape."""
    frame = features(project.root).head(2)
    out_of_range = frame.copy()
    out_of_range.loc[out_of_range.index[1], "mean radius"] = 1000.0
    missing = _v2_columns(frame.drop(columns=["mean area"]))
    many = features(project.root).head(1).sample(n=1001, replace=True, random_state=0)
    tensor = _v2_tensor(many)
    cases: list[tuple[str, dict[str, Any], int, list[str]]] = [
        ("out of range", {"body": _v2_columns(out_of_range)}, 422, ["row 1", "mean radius"]),
        ("missing column", {"body": missing}, 422, ["mean area"]),
        ("too many rows", {"body": tensor}, 413, ["max_rows"]),
        ("too large", {"raw": b"[" + b"1," * 600_000 + b"1]"}, 413, ["max_body_bytes"]),
    ]
    before = server.metrics()
    for what, kw, status, words in cases:
        code, _, data = server.call("POST", "/v2/models/model/infer", **kw)
        assert code == status, (what, data)
        assert b"Traceback" not in data and b'File "' not in data, what
        body = json.loads(data)
        for word in words:
            assert word.lower() in body["error"].lower(), (what, body)
        if what == "out of range":
            first = body["errors"][0]
            assert (first["row"], first["field"], first["rule"]) == (1, "mean radius", "max")
    after = server.metrics()
    for kind, n in (("contract", 2), ("too_large", 2)):
        label = f'{{endpoint="v2_infer",kind="{kind}"}}'
        was = _sample(before, "mlopskit_serve_errors_total", label) if label in before else 0
        assert _sample(after, "mlopskit_serve_errors_total", label) == was + n, kind
    # Still answering.
    code, out = server.json("POST", "/v2/models/model/infer", _v2_columns(frame))
    assert code == 200 and len(out["outputs"][0]["data"]) == 2


def _raising_model(root: Path) -> list[str]:
    """Put in front of the trained model a step calling numpy.linalg.inv: a valid request
    of 2 rows (a 2 x 30 table, not square) makes predict raise LinAlgError. Its types
    beyond skops's defaults."""
    import numpy as np
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    data = (root / MODEL).read_bytes()
    good = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    hook = FunctionTransformer(func=np.linalg.inv).fit(features(root))
    (root / MODEL).unlink()
    sio.dump(Pipeline([("inv", hook), ("model", good)]), root / MODEL)
    return list(sio.get_untrusted_types(file=root / MODEL))


def test_a_model_that_raises_answers_500_without_a_traceback(trained: Repo, tmp_path: Path) -> None:
    from ..conftest import dvc

    types = _raising_model(trained.root)
    cfg = trained.root / "mlopskit.yaml"
    extra = "".join(f"    - {t}\n" for t in types)
    cfg.write_text(cfg.read_text().replace("  trusted_types:\n", "  trusted_types:\n" + extra, 1))
    dvc(trained.root, "commit", "-f")
    dvc(trained.root, "push")
    git(trained.root, "commit", "-qam", "a model whose predict raises")
    registry.register(trained.project(), "model", version="v1.0.0")
    srv = start(trained.root, "model@v1.0.0", log_dir=tmp_path / "log", token=None)
    frame = features(trained.root).head(2)
    try:
        code, _, data = srv.call(
            "POST", "/invocations", {"dataframe_records": frame.to_dict(orient="records")}
        )
        assert code == 500, data
        assert b"Traceback" not in data and b'File "' not in data and b"linalg" not in data
        body = json.loads(data)
        assert body["error_code"] == "INTERNAL_ERROR"
        assert body["message"] == "the model failed on this input (LinAlgError)"
        code, _, data = srv.call("POST", "/v2/models/model/infer", _v2_columns(frame))
        assert code == 500, data
        assert b"Traceback" not in data and b'File "' not in data and b"linalg" not in data
        assert json.loads(data) == {"error": "the model failed on this input (LinAlgError)"}
        text = srv.metrics()
        for endpoint in ("invocations", "v2_infer"):
            labels = f'{{endpoint="{endpoint}",kind="internal"}}'
            assert _sample(text, "mlopskit_serve_errors_total", labels) == 1
        assert srv.json("GET", "/health/ready", token=False)[0] == 200
    finally:
        out = stop(srv)
    assert out.count("predict failed") == 2 and "Traceback" in out  # in the server's log
    assert "LinAlgError" in out


def test_prediction_log_drops_samples_and_write_failures_never_fail_a_request(
    trained: Repo, tmp_path: Path
) -> None:
    """serve.log_queue: 1 and serve.log_sample: 0.5, and the log file is a named pipe that
    nobody reads yet (a stalled log shipper): the writer is stuck, one request waits in
    the queue and every other sampled one is dropped and counted, while all answer 200.
    Then a reader takes the queued rows, and goes away: writes fail (EPIPE), counted in
    predlog_failed_total, and requests still answer 200."""
    import stat

    registry.register(trained.project(), "model", version="v1.0.0")
    cfg = trained.root / "mlopskit.yaml"
    text = cfg.read_text().replace("\nserve:\n", "\nserve:\n  log_queue: 1\n  log_sample: 0.5\n")
    cfg.write_text(text)
    log_dir = tmp_path / "log"
    log_dir.mkdir()

    def pipe(proc: subprocess.Popen[str]) -> None:
        os.mkfifo(log_dir / f"predictions-{proc.pid}.jsonl")

    srv = start(trained.root, "model@v1.0.0", log_dir=log_dir, token=None, started=pipe)
    path = log_dir / f"predictions-{srv.proc.pid}.jsonl"
    assert stat.S_ISFIFO(path.stat().st_mode)
    frame = features(trained.root).head(2)
    body = {"dataframe_records": frame.to_dict(orient="records")}
    n = 60
    ok = '{code="200",endpoint="invocations"}'
    try:
        for _ in range(n):
            assert srv.call("POST", "/invocations", body)[0] == 200
        text = srv.metrics()
        assert _sample(text, "mlopskit_serve_requests_total", ok) == n
        dropped = _sample(text, "mlopskit_serve_predlog_dropped_total")
        # Sampled out: neither queued nor dropped; of the sampled ones, one is queued.
        assert 0 < dropped < n - 1
        assert _sample(text, "mlopskit_serve_predlog_written_total") == 0
        with path.open("rb") as reader:  # the shipper comes: the queued request's 2 rows
            logged = [json.loads(reader.readline()) for _ in range(2)]
            wait_for(
                lambda: _sample(srv.metrics(), "mlopskit_serve_predlog_written_total") == 2,
                30,
                "the queued rows written",
            )
        assert [r["inputs"] for r in logged] == body["dataframe_records"]
        assert {r["version"] for r in logged} == {"v1.0.0"}
        sent = n

        def failed() -> bool:
            nonlocal sent
            assert srv.call("POST", "/invocations", body)[0] == 200
            sent += 1
            return _sample(srv.metrics(), "mlopskit_serve_predlog_failed_total") >= 1

        wait_for(failed, 60, "a failed log write counted", interval=0.05)
        text = srv.metrics()
        assert _sample(text, "mlopskit_serve_requests_total", ok) == sent
        assert _sample(text, "mlopskit_serve_predlog_written_total") == 2
        assert srv.json("GET", "/health/ready", token=False)[0] == 200
    finally:
        out = stop(srv)
    assert srv.proc.returncode == 0, out
    assert "Traceback" not in out, out


# --- refusals at start --------------------------------------------------------------------


def test_tampered_model_is_refused_at_start(trained: Repo, tmp_path: Path) -> None:
    registry.register(trained.project(), "model", version="v1.0.0")
    md5 = at_revision.lock_md5s(trained.root, trained.head())[MODEL]
    for obj in (
        at_revision.cache_path(trained.root, md5),
        trained.remote / "files" / "md5" / md5[:2] / md5[2:],
    ):
        obj.chmod(0o644)
        data = bytearray(obj.read_bytes())
        data[200] ^= 0xFF
        obj.write_bytes(bytes(data))
    code, out, err = run_cli("serve", "model@v1.0.0", "--port", str(free_port()), cwd=trained.root)
    assert code == errors.INTEGRITY, out + err
    assert md5 in err and "refusing to load" in err
    assert "Serving" not in out


def _evil_model(root: Path) -> None:
    """Replace the trained model by one whose FunctionTransformer holds builtins.eval, and
    record it as the train stage's output (as a retrain with that code would)."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    data = (root / MODEL).read_bytes()
    good = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    evil = Pipeline([("hook", FunctionTransformer(func=eval)), ("model", good)])
    (root / MODEL).unlink()
    sio.dump(evil, root / MODEL)


def test_untrusted_type_is_refused_everywhere(trained: Repo, tmp_path: Path) -> None:
    from ..conftest import dvc

    _evil_model(trained.root)
    dvc(trained.root, "commit", "-f")
    dvc(trained.root, "push")
    git(trained.root, "commit", "-qam", "a model with eval inside")
    registry.register(trained.project(), "model", version="v2.0.0")
    code, out, err = run_cli("serve", "model@v2.0.0", "--port", str(free_port()), cwd=trained.root)
    assert code == errors.INTEGRITY, out + err
    assert "builtins.eval" in err and "serve.trusted_types" in err
    assert "- builtins.eval" in err  # the line to add, if a review accepts it
    assert "Serving" not in out
    dest = tmp_path / "got"
    code, out, err = run_cli(
        "model", "get", "model@v2.0.0", "-o", str(dest), "--load-check", cwd=trained.root
    )
    assert code == errors.INTEGRITY and "builtins.eval" in err
    assert not dest.exists() or not any(dest.iterdir())
    # The evaluate stage of the template reads the same list.
    res = subprocess.run(
        [sys.executable, "-m", "src.evaluate"],
        cwd=trained.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0 and "builtins.eval" in res.stderr
    # The model before it still loads.
    registry.register(trained.project(), "model", version="v1.0.0", rev="HEAD~1")
    code, out, err = run_cli(
        "model", "get", "model@v1.0.0", "-o", str(dest), "--load-check", cwd=trained.root
    )
    assert code == 0, err
    assert "loads with the trusted types" in out and (dest / "model.skops").is_file()


# --- following the registry ---------------------------------------------------------------


@pytest.mark.slow
def test_follow_swaps_a_promotion_and_refuses_an_untrusted_one(
    trained: Repo, origin: Path, tmp_path: Path
) -> None:
    import threading

    from mlopskit import params
    from mlopskit.pipeline import run as pipeline

    from ..conftest import dvc

    dev = trained
    dev.git("remote", "add", "origin", str(origin))
    dev.git("push", "-q", "-u", "origin", "main")
    registry.register(dev.project(), "model", version="v1.0.0", push=True)
    registry.promote(dev.project(), "model", "v1.0.0", "prod", push=True)
    ops = tmp_path / "ops"
    git(tmp_path, "clone", "-q", str(origin), str(ops))
    (ops / ".dvc" / "config.local").write_text((dev.root / ".dvc/config.local").read_text())
    cfg = (ops / "mlopskit.yaml").read_text().replace("serve:\n", "serve:\n  follow_seconds: 0.5\n")
    (ops / "mlopskit.yaml").write_text(cfg)
    server = start(ops, "model#prod", "--follow", log_dir=tmp_path / "log", token=None)
    body = {"dataframe_records": features(dev.root).head(3).to_dict(orient="records")}
    failures: list[Any] = []
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            code, _, data = server.call("POST", "/invocations", body)
            if code != 200:
                failures.append((code, data))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        assert server.json("GET", "/metadata")[1]["version"] == "v1.0.0"
        # A retrained model reaches prod: the server swaps it in.
        params.set_params(dev.project(), ["train.C=0.05"])
        pipeline.repro(dev.project(), commit=True, message="C=0.05", push=True)
        new_md5 = at_revision.lock_md5s(dev.root, dev.head())[MODEL]
        registry.register(dev.project(), "model", version="v1.1.0", push=True)
        registry.promote(dev.project(), "model", "v1.1.0", "prod", push=True)
        meta = wait_for(
            lambda: (m := server.json("GET", "/metadata")[1])["version"] == "v1.1.0" and m,
            60,
            "v1.1.0 swapped in",
        )
        assert meta["md5"] == new_md5 and meta["commit"] == dev.head()
        assert "mlopskit_serve_model_swaps_total 1.0" in server.metrics()
        # A model with an untrusted type reaches prod: refused, the old one keeps serving.
        _evil_model(dev.root)
        dvc(dev.root, "commit", "-f")
        dvc(dev.root, "push")
        dev.git("commit", "-qam", "a model with eval inside")
        dev.git("push", "-q", "origin", "main")
        registry.register(dev.project(), "model", version="v1.2.0", push=True)
        registry.promote(dev.project(), "model", "v1.2.0", "prod", push=True)
        wait_for(
            lambda: "mlopskit_serve_follow_failures_total 1.0" in server.metrics(),
            60,
            "the untrusted v1.2.0 refused",
        )
        assert server.json("GET", "/metadata")[1]["version"] == "v1.1.0"
        assert server.call("POST", "/invocations", body)[0] == 200
    finally:
        done.set()
        sender.join(timeout=30)
        out = stop(server)
    assert failures == []  # requests in flight during the swap all succeeded
    assert "follow: model v1.0.0 -> v1.1.0" in out
    assert "refused model v1.2.0" in out and "builtins.eval" in out


@pytest.mark.slow
def test_follow_fetches_from_the_branch_remote_one_worker_fetching_for_two(
    trained: Repo, tmp_path: Path
) -> None:
    """The serving clone's only remote is `upstream` (no origin): --follow fetches the
    tags from it, as `git push` and `exp fetch` pick the remote. With --workers 2 one
    worker (the follow lock's holder) fetches; both swap in the promotion."""
    dev = trained
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(upstream))
    dev.git("remote", "add", "upstream", str(upstream))
    dev.git("push", "-q", "-u", "upstream", "main")
    registry.register(dev.project(), "model", version="v1.0.0", push=True)
    registry.promote(dev.project(), "model", "v1.0.0", "prod", push=True)
    ops = tmp_path / "ops"
    git(tmp_path, "clone", "-q", "--origin", "upstream", str(upstream), str(ops))
    assert git(ops, "remote").split() == ["upstream"]
    (ops / ".dvc" / "config.local").write_text((dev.root / ".dvc/config.local").read_text())
    cfg = (ops / "mlopskit.yaml").read_text().replace("serve:\n", "serve:\n  follow_seconds: 0.3\n")
    (ops / "mlopskit.yaml").write_text(cfg)
    server = start(
        ops, "model#prod", "--follow", "--workers", "2", log_dir=tmp_path / "log", token=None
    )
    try:
        assert server.json("GET", "/metadata")[1]["version"] == "v1.0.0"
        dev.git("commit", "-q", "--allow-empty", "-m", "a second commit for v1.1.0")
        dev.git("push", "-q", "upstream", "main")
        registry.register(dev.project(), "model", version="v1.1.0", push=True)
        registry.promote(dev.project(), "model", "v1.1.0", "prod", push=True)
        wait_for(
            lambda: "mlopskit_serve_model_swaps_total 2.0" in server.metrics(),
            60,
            "both workers swapping in v1.1.0",
        )
        for _ in range(6):  # whichever worker answers
            meta = server.json("GET", "/metadata")[1]
            assert (meta["version"], meta["commit"]) == ("v1.1.0", dev.head())
        assert "mlopskit_serve_follow_failures_total 0.0" in server.metrics()
    finally:
        out = stop(server)
    assert server.proc.returncode == 0, out
    assert out.count("fetches the tags for all workers") == 1, out
    assert out.count("follow: model v1.0.0 -> v1.1.0") == 2, out
    assert "git fetch" not in out  # no fetch failed


def test_dockerfile_passes_hadolint(project: Repo, tmp_path: Path) -> None:
    import shutil

    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = tmp_path / "Dockerfile"
    # Without a known source of mlopskit the build fails with the fix, never installing
    # the unrelated `mlopskit` from PyPI.
    code, stdout, err = run_cli(
        "serve", "model#prod", "--dockerfile", str(out), "--workers", "2", cwd=project.root
    )
    assert code == 0, err
    assert "set ci.install" in out.read_text() and "mlopskit[serve]==" not in out.read_text()
    (project.root / ".dockerignore").unlink()
    source = "git+https://github.com/example/mlopskit@" + "a" * 40
    cfg = project.root / "mlopskit.yaml"
    cfg.write_text(re.sub(r"^ci:\n", f"ci:\n  install: {source}\n", cfg.read_text(), flags=re.M))
    code, stdout, err = run_cli(
        "serve", "model#prod", "--dockerfile", str(out), "--workers", "2", cwd=project.root
    )
    assert code == 0, err
    text = out.read_text()
    assert "\nUSER 10001\n" in text and "useradd --create-home --uid 10001" in text
    assert "HEALTHCHECK" in text and "/health/ready" in text
    assert '"model#prod", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"' in text
    assert f'pip install -r /tmp/requirements.txt "mlopskit[serve] @ {source}"' in text
    from mlopskit.serve.container import BASES

    tag, digest, when = BASES["3.11"]  # ci.python of the quickstart project
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", tag)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert f"\nFROM {tag}@{digest}\n" in text
    assert f"# Base: {tag} (ci.python 3.11), pinned by the digest published {when}." in text
    ignore = (project.root / ".dockerignore").read_text()
    assert ".dvc/cache" in ignore and ".dvc/config.local" in ignore
    res = subprocess.run([hadolint, str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    # Another base (a mirror, a newer digest) by --base-image; a bad reference is exit 2.
    other = "registry.example/python:3.12-slim@sha256:" + "b" * 64
    code, stdout, err = run_cli(
        "serve", "model#prod", "--dockerfile", str(out), "--base-image", other, cwd=project.root
    )
    assert code == 0, err
    assert f"\nFROM {other}\n" in out.read_text() and digest not in out.read_text()
    res = subprocess.run([hadolint, str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    code, stdout, err = run_cli(
        "serve", "model#prod", "--dockerfile", str(out), "--base-image", "x; rm -rf /",
        cwd=project.root,
    )  # fmt: skip
    assert code == errors.USAGE and "--base-image" in err and "NAME:TAG" in err
    # A ci.python without a known digest: the unpinned tag and how to pin it.
    cfg.write_text(cfg.read_text().replace('python: "3.11"', 'python: "3.13"'))
    code, stdout, err = run_cli("serve", "model#prod", "--dockerfile", str(out), cwd=project.root)
    assert code == 0, err
    text = out.read_text()
    assert "\nFROM python:3.13-slim-bookworm\n" in text and "@sha256:<digest>" in text
    cfg.write_text(cfg.read_text().replace('python: "3.13"', 'python: "3.11"'))
    (project.root / ".dockerignore").unlink()
