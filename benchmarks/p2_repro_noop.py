"""P2: no-op repro. ``mlopskit repro`` vs ``dvc repro`` on an up-to-date quickstart
project; target ratio <= 1.05.

The project is built once with ``mlopskit quickstart`` (about 10 s); both commands then
find nothing to run. The ratio is what mlopskit adds around DVC's repro (param checks,
git status, its lock) when there is nothing to do.

    python benchmarks/p2_repro_noop.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 1.05


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=10).parse_args()
    runs = min(args.runs, 3) if args.quick else args.runs
    with c.Sandbox("p2", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(f"P2 mlopskit repro vs dvc repro, no-op ({runs} runs each)", info)
        print("building the quickstart project ...", file=sys.stderr, flush=True)
        project = c.quickstart_project(box.path("demo"), box.env)
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
        comp = c.Comparison(
            "repro no-op",
            TARGET,
            c.commands("mlopskit repro", [[mlopskit, "repro"]], cwd=project, env=box.env),
            c.commands("dvc repro", [[dvc, "repro"]], cwd=project, env=box.env),
        )
        c.interleave(comp, runs, warmup=1)
        # Both really were no-ops: nothing to commit, nothing re-ran.
        out = c.run([mlopskit, "repro"], cwd=project, env=box.env).stdout.decode()
        if "up to date" not in out:
            raise SystemExit(f"mlopskit repro was not a no-op: {out}")
        dirty = c.run(["git", "status", "--porcelain"], cwd=project, env=box.env).stdout
        if dirty.strip():
            raise SystemExit(f"the project changed during the benchmark:\n{dirty.decode()}")
        print()
        c.print_table([comp])
        c.dump_json(args.json, "P2", info, [comp])
    return 0 if comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
