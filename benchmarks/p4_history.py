"""P4: metrics over history. ``mlopskit metrics history -n 200 --json`` vs
``dvc exp show --all-commits --json`` on a repository of 200 commits, each changing
params and metrics; target ratio <= 0.1.

The repository is built in seconds, without training 200 times: ``git init``,
``dvc init``, a ``train`` stage (``python train.py``: metrics.json computed from
``train.lr`` and ``train.epochs`` in params.yaml, ``metrics.json`` with
``cache: false``), and one real ``dvc repro``, which makes the first commit. The 199
other commits each write params.yaml, the metrics.json the stage would compute from
it and the dvc.lock DVC would write (the script checks its dvc.lock writer against
the one ``dvc repro`` wrote, byte for byte, and at the end that ``dvc status`` finds
the pipeline up to date and that running the stage reproduces metrics.json).

``dvc exp show`` keeps what it read for each commit in ``.dvc/tmp/exps/cache``; mlopskit
keeps nothing. So there are two cases:

* cold: DVC's cache is deleted before each of its runs (untimed), as on a fresh clone
  or CI runner, and for every commit DVC has not seen yet;
* warm: DVC's cache is left filled by the previous run, as on a laptop where nothing
  was committed since the last ``dvc exp show``.

Afterwards, for three commits (newest, middle, oldest) the metrics and params that
mlopskit reports are compared with DVC's and with what was committed: OK or
MISMATCH (a mismatch fails the script).

    python benchmarks/p4_history.py [--runs N] [--quick] [--case cold|warm|both] [--json FILE]
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

TRAIN_PY = """\
import json

import yaml

with open("params.yaml") as f:
    p = yaml.safe_load(f)["train"]
x = p["lr"] * p["epochs"]
metrics = {"loss": round(1 / (1 + x), 6), "accuracy": round(1 - 0.5 / (1 + x), 6)}
with open("metrics.json", "w") as f:
    f.write(json.dumps(metrics))
"""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps:
      - train.py
    params:
      - train.lr
      - train.epochs
    metrics:
      - metrics.json:
          cache: false
"""


def state(i: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Params and metrics of commit ``i`` (what train.py computes from those params)."""
    params = {"lr": round(0.0005 * (1 + (7 * i) % 20), 6), "epochs": 10 + i}
    x = params["lr"] * params["epochs"]
    return params, {"loss": round(1 / (1 + x), 6), "accuracy": round(1 - 0.5 / (1 + x), 6)}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_state(repo: Path, i: int, train_py: bytes) -> None:
    params, metrics = state(i)
    (repo / "params.yaml").write_text(
        f"train:\n  lr: {params['lr']!r}\n  epochs: {params['epochs']}\n"
    )
    m = json.dumps(metrics).encode()
    (repo / "metrics.json").write_bytes(m)
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\n"
        "stages:\n"
        "  train:\n"
        "    cmd: python train.py\n"
        "    deps:\n"
        "    - path: train.py\n"
        "      hash: md5\n"
        f"      md5: {md5(train_py)}\n"
        f"      size: {len(train_py)}\n"
        "    params:\n"
        "      params.yaml:\n"
        f"        train.epochs: {params['epochs']}\n"
        f"        train.lr: {params['lr']!r}\n"
        "    outs:\n"
        "    - path: metrics.json\n"
        "      hash: md5\n"
        f"      md5: {md5(m)}\n"
        f"      size: {len(m)}\n"
    )


def build(repo: Path, commits: int, env: dict[str, str]) -> None:
    for i in range(1, commits):  # consecutive commits really differ
        if state(i) == state(i - 1) or state(i)[1] == state(i - 1)[1]:
            raise SystemExit(f"commits {i - 1} and {i} would have the same metrics")
    c.plain_repo(repo, env)  # git init + dvc init + commit
    (repo / "train.py").write_text(TRAIN_PY)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    train_py = TRAIN_PY.encode()
    params, _ = state(0)
    (repo / "params.yaml").write_text(
        f"train:\n  lr: {params['lr']!r}\n  epochs: {params['epochs']}\n"
    )
    c.run(["dvc", "repro", "-q"], cwd=repo, env=env)
    by_dvc = {n: (repo / n).read_bytes() for n in ("dvc.lock", "metrics.json", "params.yaml")}
    write_state(repo, 0, train_py)
    for name, data in by_dvc.items():
        if (repo / name).read_bytes() != data:
            raise SystemExit(
                f"{name}: the benchmark writes\n{(repo / name).read_text()}\n"
                f"but dvc repro wrote\n{data.decode()}"
            )
    # The first commit replaces the empty init commit, so the history is exactly `commits`.
    c.run(["git", "add", "-A"], cwd=repo, env=env)
    c.run(["git", "commit", "-q", "--amend", "-m", "train: commit 0"], cwd=repo, env=env)
    for i in range(1, commits):
        write_state(repo, i, train_py)
        c.run(["git", "add", "params.yaml", "metrics.json", "dvc.lock"], cwd=repo, env=env)
        c.run(["git", "commit", "-q", "-m", f"train: commit {i}"], cwd=repo, env=env)
    count = c.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, env=env).stdout
    if int(count) != commits:
        raise SystemExit(f"expected {commits} commits, got {int(count)}")
    status = c.run(["dvc", "status"], cwd=repo, env=env).stdout.decode()
    if "up to date" not in status:
        raise SystemExit(f"dvc status at HEAD: the pipeline is not up to date:\n{status}")
    c.run(["python", "train.py"], cwd=repo, env=env)
    if c.run(["git", "status", "--porcelain"], cwd=repo, env=env).stdout.strip():
        raise SystemExit("running the stage at HEAD changed metrics.json")


def agreement(repo: Path, commits: int, env: dict[str, str]) -> bool:
    """Newest, middle and oldest commit: mlopskit == dvc == what was committed."""
    ours, dvc_rows, shas = c.history_outputs(repo, commits, env)  # shas oldest first
    print(
        f"agreement: mlopskit listed {len(ours)} commits, dvc exp show {len(dvc_rows)} "
        f"(+ workspace); the repository has {len(shas)}"
    )
    ok = len(ours) == len(dvc_rows) == len(shas) == commits
    mine = {r["commit"]: r for r in ours}
    for i in (commits - 1, commits // 2, 0):
        sha = shas[i]
        params, metrics = state(i)
        truth_p = {f"train.{k}": v for k, v in params.items()}
        m_row, d_row = mine.get(sha), dvc_rows.get(sha)
        m_metrics = m_row["metrics"] if m_row else None
        m_params = m_row["params"] if m_row else None
        data = (d_row or {}).get("data") or {}
        d_metrics = c.flatten((data.get("metrics") or {}).get("metrics.json", {}).get("data"))
        d_params = c.flatten((data.get("params") or {}).get("params.yaml", {}).get("data"))
        same = m_metrics == d_metrics == metrics and m_params == d_params == truth_p
        ok = ok and same
        print(
            f"  commit {i:>3} {sha[:8]}: mlopskit {m_metrics} {m_params}; "
            f"dvc {d_metrics} {d_params}: {'OK' if same else 'MISMATCH'}"
        )
    return ok


def main() -> int:
    p = c.parser(__doc__ or "", default_runs=5)
    p.add_argument("--case", choices=["cold", "warm", "both"], default="both")
    args = p.parse_args()
    runs = min(args.runs, 3) if args.quick else args.runs
    commits = 20 if args.quick else 200
    cases = ["cold", "warm"] if args.case == "both" else [args.case]
    with c.Sandbox("p4", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(
            f"P4 mlopskit metrics history vs dvc exp show, {commits} commits ({runs} runs each)",
            info,
        )
        print(f"building a repository of {commits} commits ...", file=sys.stderr, flush=True)
        repo = box.path("history")
        build(repo, commits, box.env)
        comps = []
        for case in cases:
            comp = c.history_comparison(case, TARGET, repo, commits, box)
            c.interleave(comp, runs, warmup=1)
            comps.append(comp)
        if c.run(["git", "status", "--porcelain"], cwd=repo, env=box.env).stdout.strip():
            raise SystemExit("the repository changed during the benchmark")
        print()
        c.print_table(comps)
        print()
        agree = agreement(repo, commits, box.env)
        c.dump_json(args.json, "P4", info, comps)
    return 0 if agree and all(x.passed for x in comps) else 1


if __name__ == "__main__":
    sys.exit(main())
