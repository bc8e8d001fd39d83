"""P1: start-up cost. ``mlopskit --help`` vs ``dvc --version``; target ratio <= 1.2.

``mlopskit --help`` must not import DVC, pandas or scikit-learn; ``dvc --version`` is
the cheapest thing the dvc CLI does, so the ratio is mlopskit's start-up overhead
against DVC's own.

    python benchmarks/p1_help.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 1.2


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=20).parse_args()
    runs = min(args.runs, 5) if args.quick else args.runs
    with c.Sandbox("p1", keep=args.keep) as box:
        work = box.path("work")
        work.mkdir()
        info = c.machine_info(box.env, work)
        c.print_header(f"P1 mlopskit --help vs dvc --version ({runs} runs each)", info)
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
        comp = c.Comparison(
            "help",
            TARGET,
            c.commands("mlopskit --help", [[mlopskit, "--help"]], cwd=work, env=box.env),
            c.commands("dvc --version", [[dvc, "--version"]], cwd=work, env=box.env),
        )
        c.interleave(comp, runs, warmup=2)
        print()
        c.print_table([comp])
        c.dump_json(args.json, "P1", info, [comp])
    return 0 if comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
