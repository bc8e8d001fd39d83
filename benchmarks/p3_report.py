"""P3: the pull-request report. ``mlopskit report --base main --out DIR/report.md``
(tables and PNG plots) vs ``dvc metrics diff main --md && dvc params diff main --md &&
dvc plots diff main -o DIR``; target ratio <= 0.5.

The project is built once with ``mlopskit quickstart`` (about 10 s), then a params
change is trained and committed on a branch, as a pull request would be:
``git checkout -b exp && mlopskit params set train.C=0.1 && mlopskit repro --commit``.
Both sides then compare that branch with ``main``. The plain side is three processes
run one after another (timed together as one run); ``dvc plots diff`` writes its HTML
into a temporary directory (``-o``), not into the project. Each side's output
directory is emptied before every run (untimed). Afterwards the script checks that
mlopskit wrote the Markdown and one PNG per plot and side, that DVC wrote its HTML,
and that the project was left untouched.

    python benchmarks/p3_report.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 0.5


def emptied(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)

    return prepare


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=10).parse_args()
    runs = min(args.runs, 3) if args.quick else args.runs
    with c.Sandbox("p3", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(
            f"P3 mlopskit report vs dvc metrics/params/plots diff ({runs} runs each)", info
        )
        print("building the quickstart project ...", file=sys.stderr, flush=True)
        project = c.quickstart_project(box.path("demo"), box.env)
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
        print("training C=0.1 on branch exp ...", file=sys.stderr, flush=True)
        for cmd in (
            ["git", "checkout", "-q", "-b", "exp"],
            [mlopskit, "params", "set", "train.C=0.1"],
            [mlopskit, "repro", "--commit"],
        ):
            c.run(cmd, cwd=project, env=box.env)
        head = c.run(["git", "rev-parse", "HEAD"], cwd=project, env=box.env).stdout.strip()

        ours_out, dvc_out = box.path("out", "mlopskit"), box.path("out", "dvc")
        report = ours_out / "report.md"
        comp = c.Comparison(
            "report",
            TARGET,
            c.commands(
                "mlopskit report --base main --out DIR/report.md",
                [[mlopskit, "report", "--base", "main", "--out", str(report)]],
                cwd=project,
                env=box.env,
                prepare=emptied(ours_out),
            ),
            c.commands(
                "dvc metrics diff + params diff + plots diff",
                [
                    [dvc, "metrics", "diff", "main", "--md"],
                    [dvc, "params", "diff", "main", "--md"],
                    [dvc, "plots", "diff", "main", "-o", str(dvc_out)],
                ],
                cwd=project,
                env=box.env,
                prepare=emptied(dvc_out),
            ),
            note="on branch exp (train.C 1 -> 0.1, retrained and committed) against main",
        )
        c.interleave(comp, runs, warmup=1)

        # Both sides really produced their output (of the last run).
        text = report.read_text()
        pngs = sorted(p.name for p in (ours_out / "report_assets").glob("*.png"))
        if "train.C" not in text or len(pngs) != 4:
            raise SystemExit(f"mlopskit's report is incomplete: {pngs}\n{text}")
        if not (dvc_out / "index.html").is_file():
            raise SystemExit(f"dvc plots diff wrote no {dvc_out / 'index.html'}")
        now = c.run(["git", "rev-parse", "HEAD"], cwd=project, env=box.env).stdout.strip()
        dirty = c.run(["git", "status", "--porcelain"], cwd=project, env=box.env).stdout
        if now != head or dirty.strip():
            raise SystemExit(f"the project changed during the benchmark:\n{dirty.decode()}")
        comp.note += f"; mlopskit wrote report.md and {len(pngs)} PNGs ({', '.join(pngs)})"
        print()
        c.print_table([comp])
        c.dump_json(args.json, "P3", info, [comp])
    return 0 if comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
