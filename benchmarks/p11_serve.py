"""P11: serving. ``mlopskit serve`` against ``mlflow models serve`` on the quickstart model.

The quickstart project is built and its model registered; the same model is saved in
MLflow's format (``mlflow.sklearn.save_model`` with a signature inferred from the training
data, so MLflow checks the input columns too) by an MLflow installed from the package
index into the benchmark's own virtual environment (``--mlflow-venv``, made on first use
with the same scikit-learn, pandas and numpy versions as this one). Both servers run with
the same number of uvicorn workers on 127.0.0.1 and are driven by the same load
generator (wrk, from Debian) with the same bodies: MLflow's ``dataframe_split`` with one
row and with 100 rows. Before timing, both answer the same body and must agree.

Target: mlopskit >= 2x MLflow's requests/s, at a p99 latency no worse than MLflow's.
Then a soak: mlopskit alone at a fixed rate (``--soak-rate``, open loop: see ``fixed_rate``)
for ``--soak`` seconds, with the prediction log on: 0 errors, and memory flat (the
server's resident memory over the last tenth of the soak within 5 % of the first tenth).

    python benchmarks/p11_serve.py [--duration S] [--soak S] [--workers N] [--quick]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET_RPS = 2.0
SAVE_MLFLOW = """
import sys
import mlflow.sklearn
import pandas as pd
import skops.io as sio
from mlflow.models import infer_signature

model_file, data_file, out = sys.argv[1:4]
types = sio.get_untrusted_types(file=model_file)
model = sio.load(model_file, trusted=types)
X = pd.read_csv(data_file).drop(columns=["target"])
# MLflow 3 saves scikit-learn models with skops by default: both sides are pickle-free.
mlflow.sklearn.save_model(
    model, out, signature=infer_signature(X, model.predict(X)), skops_trusted_types=types
)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_venv(path: Path) -> Path:
    """The benchmark's own environment with MLflow from the package index."""
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import mlflow"]).returncode == 0:
        return python
    print(f"installing MLflow into {path} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    same = [f"{p}=={metadata.version(p)}" for p in ("scikit-learn", "pandas", "numpy", "skops")]
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "mlflow", *same],
        check=True,
    )
    return python


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def lua_script(path: Path, body: str) -> Path:
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )
    path.write_text(script)
    return path


def wrk(url: str, script: Path, seconds: int, connections: int) -> Load:
    res = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = res.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return Load(rps, p50, p99, total, errors)


def fixed_rate(url: str, body: str, rate: float, seconds: int, connections: int) -> Load:
    """An open-loop load at ``rate`` requests/s for ``seconds``: request i is due at
    ``i / rate``, whatever the answers before it took (a slow answer does not slow the load
    down, unlike wrk's closed loop); ``connections`` keep-alive clients take the due
    requests in turn. A latency counts from the request's due time, so time spent waiting
    for a free client is counted too (no coordinated omission)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    total = int(rate * seconds)
    lock = threading.Lock()
    next_i = [0]
    latencies: list[float] = []
    errors = [0]
    start = time.monotonic() + 0.2

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= total:
                break
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(
                    parts.hostname or "127.0.0.1", parts.port, timeout=10
                )
            took = time.monotonic() - due
            with lock:
                latencies.append(took * 1000)
                if not ok:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return Load(len(latencies) / elapsed, pct(0.50), pct(0.99), len(latencies), errors[0])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode} before it was ready ({url})")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} never became ready")


def post(url: str, body: str) -> Any:
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def predlog_counts(port: int) -> tuple[int, int]:
    """(rows written, requests dropped) by the prediction log, from /metrics (the files
    rotate, so counting their lines would undercount)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = {}
    for name in ("written", "dropped"):
        m = re.search(rf"^mlopskit_serve_predlog_{name}_total (\S+)$", text, re.M)
        found[name] = int(float(m.group(1))) if m else 0
    return found["written"], found["dropped"]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (uvicorn workers), in MB."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    total = 0
    for p in family:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    p = c.parser(__doc__ or "", default_runs=2)
    p.add_argument("--duration", type=int, default=15, help="seconds of load per case and run")
    p.add_argument("--soak", type=int, default=60, help="seconds of the fixed-rate soak")
    p.add_argument("--soak-rate", type=float, default=300, help="requests/s of the soak")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers")
    p.add_argument("--connections", type=int, default=8)
    default_venv = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "mlopskit-bench"
        / "p10-mlflow"  # the name this benchmark had first: a venv made then is reused
    )
    p.add_argument("--mlflow-venv", type=Path, default=default_venv)
    args = p.parse_args()
    if args.quick:
        args.duration, args.soak, args.runs = 3, 10, 1
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    mlflow_python = mlflow_venv(args.mlflow_venv.expanduser())
    results: dict[str, Any] = {"cases": {}, "workers": args.workers}
    with c.Sandbox("p11", keep=args.keep) as box:
        env = box.env
        print("building the quickstart project ...", file=sys.stderr, flush=True)
        project = c.quickstart_project(box.path("demo"), env)
        c.run(
            ["mlopskit", "model", "register", "model", "--version", "v1.0.0"], cwd=project, env=env
        )
        mlflow_model = box.path("mlflow-model")
        c.run(
            [
                str(mlflow_python),
                "-c",
                SAVE_MLFLOW,
                str(project / "models/model.skops"),
                str(project / "data/raw/data.csv"),
                str(mlflow_model),
            ],
            cwd=box.root,
            env={**env, "MLFLOW_TRACKING_URI": (box.path("mlruns")).as_uri()},
        )
        ours_port, theirs_port = free_port(), free_port()
        log_dir = box.path("predlog")
        ours = subprocess.Popen(
            ["mlopskit", "serve", "model@v1.0.0", "--port", str(ours_port)]
            + ["--workers", str(args.workers), "--log-dir", str(log_dir)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        mlflow_bin = str(Path(mlflow_python).parent / "mlflow")
        theirs = subprocess.Popen(
            [mlflow_bin, "models", "serve", "-m", str(mlflow_model), "--env-manager", "local"]
            + ["--host", "127.0.0.1", "-p", str(theirs_port), "-w", str(args.workers)],
            cwd=box.root,
            env={**env, "PATH": f"{Path(mlflow_python).parent}{os.pathsep}{env['PATH']}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{ours_port}/health/ready", ours)
            wait_ready(f"http://127.0.0.1:{theirs_port}/ping", theirs)
            import csv

            with (project / "data/raw/data.csv").open() as fh:
                reader = csv.reader(fh)
                header = next(reader)
                rows = [[float(v) for v in r] for r in reader]
            target = header.index("target")
            cols = [h for i, h in enumerate(header) if i != target]
            feats = [[v for i, v in enumerate(r) if i != target] for r in rows]
            urls = {
                "mlopskit": f"http://127.0.0.1:{ours_port}/invocations",
                "mlflow": f"http://127.0.0.1:{theirs_port}/invocations",
            }
            for n in (1, 100):
                body = json.dumps({"dataframe_split": {"columns": cols, "data": feats[:n]}})
                got = {side: post(url, body)["predictions"] for side, url in urls.items()}
                if got["mlopskit"] != got["mlflow"]:
                    raise SystemExit(f"the servers disagree on {n} rows: {got}")
                script = lua_script(box.path(f"body{n}.lua"), body)
                for url in urls.values():  # warm-up
                    wrk(url, script, 2, args.connections)
                runs: dict[str, list[Load]] = {"mlopskit": [], "mlflow": []}
                for i in range(args.runs):
                    order = list(urls) if i % 2 == 0 else list(reversed(urls))
                    for side in order:
                        runs[side].append(wrk(urls[side], script, args.duration, args.connections))
                case = {}
                for side, loads in runs.items():
                    case[side] = {
                        "rps": statistics.median(x.rps for x in loads),
                        "p50_ms": statistics.median(x.p50_ms for x in loads),
                        "p99_ms": statistics.median(x.p99_ms for x in loads),
                        "errors": sum(x.errors for x in loads),
                        "runs": [asdict(x) for x in loads],
                    }
                results["cases"][f"{n} row{'s' if n > 1 else ''}"] = case
            stop(theirs)
            # The soak: an open-loop fixed rate, 1-row requests.
            body = json.dumps({"dataframe_split": {"columns": cols, "data": feats[:1]}})
            samples: list[tuple[float, float]] = []
            done = threading.Event()

            def sample() -> None:
                t0 = time.monotonic()
                while not done.wait(1.0):
                    samples.append((time.monotonic() - t0, tree_rss_mb(ours.pid)))

            logged_before = predlog_counts(ours_port)
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                soak = fixed_rate(urls["mlopskit"], body, args.soak_rate, args.soak, 8)
            finally:
                done.set()
                sampler.join()
            tenth = max(1, len(samples) // 10)
            first = statistics.mean(m for _, m in samples[:tenth])
            last = statistics.mean(m for _, m in samples[-tenth:])
            after = predlog_counts(ours_port)
            logged = after[0] - logged_before[0]
            dropped = after[1] - logged_before[1]
            results["soak"] = {
                "seconds": args.soak,
                "rate": args.soak_rate,
                "rps": soak.rps,
                "requests": soak.requests,
                "errors": soak.errors,
                "p50_ms": soak.p50_ms,
                "p99_ms": soak.p99_ms,
                "rss_first_mb": round(first, 1),
                "rss_last_mb": round(last, 1),
                "rss_max_mb": round(max(m for _, m in samples), 1),
                "logged_rows": logged,
                "log_dropped": dropped,
            }
        finally:
            stop(ours)
            stop(theirs)
    c.print_header(
        "P11 serve: mlopskit serve vs mlflow models serve (quickstart model)",
        {
            "workers": str(args.workers),
            "load": f"wrk -t1 -c{args.connections} -d{args.duration}s x {args.runs} runs",
            "mlflow": subprocess.run(
                [str(mlflow_python), "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
        },
    )
    ok = True
    print(f"{'case':<9} {'side':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, case in results["cases"].items():
        for side in ("mlopskit", "mlflow"):
            s = case[side]
            print(
                f"{name:<9} {side:<9} {s['rps']:>9.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
                f"{s['errors']:>7}"
            )
        ratio = case["mlopskit"]["rps"] / case["mlflow"]["rps"]
        p99_ok = case["mlopskit"]["p99_ms"] <= case["mlflow"]["p99_ms"]
        passed = ratio >= TARGET_RPS and p99_ok and case["mlopskit"]["errors"] == 0
        ok &= passed
        case["ratio"] = ratio
        print(
            f"{name:<9} ratio {ratio:.2f}x req/s (target >= {TARGET_RPS}x), p99 "
            f"{'no worse' if p99_ok else 'WORSE'}: {'PASS' if passed else 'MISS'}"
        )
    s = results["soak"]
    flat = s["rss_last_mb"] <= s["rss_first_mb"] * 1.05
    soak_ok = s["errors"] == 0 and flat
    ok &= soak_ok
    print(
        f"\nsoak {s['seconds']} s at a fixed {s['rate']:.0f} req/s (served {s['rps']:.0f}/s): "
        f"{s['requests']} requests, "
        f"{s['errors']} errors, p99 {s['p99_ms']:.2f} ms, RSS {s['rss_first_mb']} -> "
        f"{s['rss_last_mb']} MB (max {s['rss_max_mb']}), {s['logged_rows']} rows logged "
        f"({s['log_dropped']} dropped): "
        f"{'PASS' if soak_ok else 'MISS'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
