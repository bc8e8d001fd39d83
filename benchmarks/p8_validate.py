"""P8: schema validation throughput and peak memory on a 1 GiB CSV.

``mlopskit data validate big.csv --schema schema.yaml`` (streamed in chunks) against
reading the same file with pandas alone (``pd.read_csv``), in the same run. Validation
does more work than a read (every value is checked, text stays text), so the time target
is loose (at most 4x the read); what matters is that its memory stays bounded (peak under
512 MB and under the read's) while a plain read holds the whole table. Printed: MB/s
of each side and the peak RSS of each process.

    python benchmarks/p8_validate.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

PEAK = (
    "import resource, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "else:\n"
    "    code = 0\n"
    "peak = 0\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmHWM:'):\n"
    "        peak = int(line.split()[1]) // 1024\n"
    "print('PEAK_MB', peak, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
READ = "import pandas as pd, sys\npd.read_csv(sys.argv[1])\n"


def write_csv(path: Path, target_bytes: int) -> int:
    """A table of ints, floats, a category, a string id and a date, about target_bytes."""
    rng = random.Random(42)
    cats = ["alpha", "beta", "gamma", "delta"]
    rows = 0
    with path.open("w") as fh:
        fh.write("id,amount,quantity,segment,code,when\n")
        size = 0
        block: list[str] = []
        while size < target_bytes:
            for _ in range(10_000):
                rows += 1
                line = (
                    f"{rows},{rng.uniform(0, 1000):.4f},{rng.randint(0, 500)},"
                    f"{rng.choice(cats)},C{rng.randint(0, 99999):05d},"
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\n"
                )
                block.append(line)
                size += len(line)
            fh.write("".join(block))
            block.clear()
    return rows


def peak_mb(stderr: str) -> int | None:
    for line in stderr.splitlines():
        if line.startswith("PEAK_MB"):
            return int(line.split()[1])
    return None


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=3).parse_args()
    runs = 1 if args.quick else args.runs
    target = (64 if args.quick else 1024) * 1024 * 1024
    with c.Sandbox("p8", keep=args.keep) as box:
        work = box.path("work")
        work.mkdir()
        info = c.machine_info(box.env, work)
        big = work / "big.csv"
        rows = write_csv(big, target)
        size_mb = big.stat().st_size / 1024 / 1024
        c.print_header(
            f"P8 validate vs pd.read_csv on {size_mb:.0f} MB, {rows} rows ({runs} runs each)", info
        )
        mlopskit = box.which("mlopskit")
        # The schema the generator guarantees (inferring from a sample would bound `id`
        # by the sample's largest value, which the rest of the file then breaks).
        (work / "schema.yaml").write_text(
            "version: 1\nrows:\n  min: 1\ncolumns:\n"
            "  id:\n    type: integer\n    nullable: false\n    min: 1\n    unique: true\n"
            "  amount:\n    type: float\n    nullable: false\n    min: 0\n    max: 1000\n"
            "  quantity:\n    type: integer\n    nullable: false\n    min: 0\n    max: 500\n"
            "  segment:\n    type: category\n    nullable: false\n"
            "    allowed: [alpha, beta, gamma, delta]\n"
            "  code:\n    type: string\n    nullable: false\n"
            "  when:\n    type: datetime\n    nullable: false\n"
        )
        del mlopskit
        peak_file = work / "peak.py"
        peak_file.write_text(PEAK)
        read_file = work / "read.py"
        read_file.write_text(READ)
        py = sys.executable
        validate = [
            py,
            str(peak_file),
            "mlopskit",
            "data",
            "validate",
            str(big),
            "--schema",
            "schema.yaml",
        ]
        read = [py, str(peak_file), "read_csv_only", str(big)]
        (work / "read_csv_only.py").write_text(READ)
        box.env["PYTHONPATH"] = str(work)
        comp = c.Comparison(
            "validate",
            4.0,
            c.commands("mlopskit data validate", [validate], cwd=work, env=box.env),
            c.commands("pd.read_csv", [read], cwd=work, env=box.env),
        )
        c.interleave(comp, runs, warmup=0)
        print()
        c.print_table([comp])
        peaks = {}
        for label, cmd in (("validate", validate), ("read_csv", read)):
            res = c.run(cmd, cwd=work, env=box.env)
            peaks[label] = peak_mb(res.stderr.decode("utf-8", "replace"))
        v = min(comp.ours.times)
        r = min(comp.plain.times)
        print(
            f"throughput: validate {size_mb / v:.0f} MB/s, read_csv {size_mb / r:.0f} MB/s "
            f"(best runs); peak RSS: validate {peaks['validate']} MB, "
            f"read_csv {peaks['read_csv']} MB (file {size_mb:.0f} MB)"
        )
        bounded = (
            peaks["validate"] is not None
            and peaks["read_csv"] is not None
            and peaks["validate"] < min(512, peaks["read_csv"])
        )
        verdict = "PASS" if bounded else "MISS"
        print(f"bounded memory (validate peak < 512 MB and < read_csv's): {verdict}")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "benchmark": "P8",
                        "file_mb": size_mb,
                        "rows": rows,
                        "peaks_mb": peaks,
                        "validate_mb_s": size_mb / v,
                        "read_csv_mb_s": size_mb / r,
                        "comparison": comp.as_dict(),
                        "machine": info,
                    },
                    indent=2,
                )
            )
    return 0 if bounded and comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
