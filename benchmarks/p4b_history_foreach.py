"""P4b: metrics over history of a templated pipeline. ``mlopskit metrics history -n 200
--json`` vs ``dvc exp show --all-commits --json`` on 200 commits of a ``dvc.yaml``
with ``vars``, a ``foreach`` stage (4 models) and a ``matrix`` stage (2 x 2): eight
generated stages, eight metrics files (``cache: false``), every commit changing
``seed`` and so every metrics file; target ratio <= 0.1 (DVC's cache cold).

As in P4, the history is built without 200 runs: one real ``dvc repro`` makes the
first commit; each other commit writes params.yaml, the metrics each generated stage
would write and that dvc.lock with its params and output hashes updated. At the end
``dvc status`` must find the pipeline up to date, and mlopskit's rows for the newest,
middle and oldest commit must equal DVC's (``exp show``) and what was committed.

    python benchmarks/p4b_history_foreach.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 0.1
MODELS = ["a", "b", "c", "d"]
CELLS = [f"{s}-{k}" for s in ("val", "test") for k in (1, 2)]

TRAIN_PY = """\
import json
import os
import sys

import yaml

name = sys.argv[1]
with open("params.yaml") as f:
    p = yaml.safe_load(f)
os.makedirs("out", exist_ok=True)
score = round(0.5 + p["seed"] / 1000 + len(name) / 100 + p["lr"], 6)
with open(f"out/{name}.json", "w") as f:
    f.write(json.dumps({"score": score, "loss": {"train": round(1 - score, 6)}}))
"""

DVC_YAML = """\
vars:
  - models: [a, b, c, d]
stages:
  train:
    foreach: ${models}
    do:
      cmd: python train.py ${item}
      deps:
        - train.py
      params:
        - seed
        - lr
      metrics:
        - out/${item}.json:
            cache: false
  eval:
    matrix:
      split: [val, test]
      k: [1, 2]
    cmd: python train.py ${item.split}-${item.k}
    deps:
      - train.py
    params:
      - seed
    metrics:
      - out/${item.split}-${item.k}.json:
          cache: false
"""


def params_of(i: int) -> dict[str, Any]:
    return {"seed": i, "lr": 0.01}


def metrics_of(i: int, name: str) -> dict[str, Any]:
    p = params_of(i)
    score = round(0.5 + p["seed"] / 1000 + len(name) / 100 + p["lr"], 6)
    return {"score": score, "loss": {"train": round(1 - score, 6)}}


def write_state(repo: Path, i: int, lock0: dict[str, Any]) -> None:
    """params.yaml, the eight metrics files and dvc.lock of commit ``i``."""
    import yaml

    p = params_of(i)
    (repo / "params.yaml").write_text(f"seed: {p['seed']}\nlr: {p['lr']}\n")
    lock = json.loads(json.dumps(lock0))
    for name, entry in lock["stages"].items():
        file = name.split("@", 1)[1]
        data = json.dumps(metrics_of(i, file)).encode()
        (repo / "out" / f"{file}.json").write_bytes(data)
        values = entry["params"]["params.yaml"]
        for key in values:
            values[key] = p[key]
        (out,) = entry["outs"]
        out["md5"] = hashlib.md5(data).hexdigest()
        out["size"] = len(data)
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def build(repo: Path, commits: int, env: dict[str, str]) -> None:
    import yaml

    c.plain_repo(repo, env)
    (repo / "train.py").write_text(TRAIN_PY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    p = params_of(0)
    (repo / "params.yaml").write_text(f"seed: {p['seed']}\nlr: {p['lr']}\n")
    c.run(["dvc", "repro", "-q"], cwd=repo, env=env)
    lock0 = yaml.safe_load((repo / "dvc.lock").read_text())
    by_dvc = {f: (repo / "out" / f"{f}.json").read_bytes() for f in [*MODELS, *CELLS]}
    for f, data in by_dvc.items():
        if json.loads(data) != metrics_of(0, f):
            raise SystemExit(f"out/{f}.json: the benchmark computes {metrics_of(0, f)}, DVC {data}")
    c.run(["git", "add", "-A"], cwd=repo, env=env)
    c.run(["git", "commit", "-q", "--amend", "-m", "train: commit 0"], cwd=repo, env=env)
    for i in range(1, commits):
        write_state(repo, i, lock0)
        c.run(["git", "add", "-A"], cwd=repo, env=env)
        c.run(["git", "commit", "-q", "-m", f"train: commit {i}"], cwd=repo, env=env)
    status = c.run(["dvc", "status"], cwd=repo, env=env).stdout.decode()
    if "up to date" not in status:
        raise SystemExit(f"dvc status at HEAD: the pipeline is not up to date:\n{status}")


def agreement(repo: Path, commits: int, env: dict[str, str]) -> bool:
    ours, dvc_rows, shas = c.history_outputs(repo, commits, env)  # shas oldest first
    ok = len(ours) == len(dvc_rows) == len(shas) == commits
    mine = {r["commit"]: r for r in ours}
    for i in (commits - 1, commits // 2, 0):
        sha = shas[i]
        truth = {
            f"out/{f}.json:{k}": v
            for f in [*MODELS, *CELLS]
            for k, v in c.flatten(metrics_of(i, f)).items()
        }
        data = (dvc_rows.get(sha) or {}).get("data") or {}
        d_metrics = {
            f"{path}:{k}": v
            for path, entry in (data.get("metrics") or {}).items()
            for k, v in c.flatten(entry.get("data")).items()
        }
        m_metrics = (mine.get(sha) or {}).get("metrics")
        m_params = (mine.get(sha) or {}).get("params")
        same = m_metrics == d_metrics == truth and m_params == params_of(i)
        ok = ok and same
        print(
            f"  commit {i:>3} {sha[:8]}: {len(m_metrics or {})} metrics, params {m_params}: "
            f"{'OK' if same else 'MISMATCH'}"
        )
    return ok


def main() -> int:
    p = c.parser(__doc__ or "", default_runs=5)
    args = p.parse_args()
    runs = min(args.runs, 3) if args.quick else args.runs
    commits = 20 if args.quick else 200
    with c.Sandbox("p4b", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(
            f"P4b mlopskit metrics history vs dvc exp show, foreach/matrix, {commits} commits "
            f"({runs} runs)",
            info,
        )
        print(f"building a repository of {commits} commits ...", file=sys.stderr, flush=True)
        repo = box.path("history")
        build(repo, commits, box.env)
        comp = c.history_comparison("cold", TARGET, repo, commits, box)
        c.interleave(comp, runs, warmup=1)
        print()
        c.print_table([comp])
        print()
        agree = agreement(repo, commits, box.env)
        c.dump_json(args.json, "P4b", info, [comp])
    return 0 if agree and comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
