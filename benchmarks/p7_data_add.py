"""P7: versioning data. ``mlopskit data add PATH`` vs
``dvc add PATH && git add PATH.dvc .gitignore && git commit``; target ratio <= 1.05.

Two cases, each in its own pair of repositories (one per tool, both made with
``git init -b main``, ``dvc init`` and a commit, holding identical data):

* file: one large file of random bytes (1 GiB; 20 MiB with --quick);
* dir:  a directory of many small files (10,000; 500 with --quick).

An untimed warm-up round adds the data once with each tool. Before every timed run
the data is changed the same way in both repositories (the first 4 KiB of the file
overwritten with new random bytes, or one file of the directory rewritten) and dirty
pages are flushed (``sync``), so each add hashes, caches and commits for real.

    python benchmarks/p7_data_add.py [--runs N] [--quick] [--case file|dir] [--json FILE]
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 1.05
CHUNK = 16 * 1024 * 1024


def write_random_file(paths: list[Path], size: int) -> None:
    """The same ``size`` random bytes into every path, generated once."""
    handles = [p.open("wb") for p in paths]
    try:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            for h in handles:
                h.write(block)
            left -= len(block)
    finally:
        for h in handles:
            h.close()


def write_small_files(dirs: list[Path], count: int) -> None:
    """``count`` small files (100 B to 4 KiB, in 100 sub-folders) into every dir."""
    for i in range(count):
        rel = f"part-{i % 100:03d}/item-{i:05d}.bin"
        body = os.urandom(100 + (i * 37) % 4000)
        for d in dirs:
            f = d / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(body)


def file_case(repos: list[Path], size: int) -> tuple[str, Callable[[Path], None], str]:
    print(f"writing {size / 2**20:.0f} MiB of random bytes twice ...", file=sys.stderr)
    write_random_file([r / "big.bin" for r in repos], size)

    def modify(repo: Path) -> None:
        with (repo / "big.bin").open("r+b") as f:
            f.write(os.urandom(4096))

    return "big.bin", modify, f"one file of {size / 2**20:.0f} MiB, first 4 KiB changed per run"


def dir_case(repos: list[Path], count: int) -> tuple[str, Callable[[Path], None], str]:
    print(f"writing {count} small files twice ...", file=sys.stderr)
    write_small_files([r / "many" for r in repos], count)
    done: dict[Path, int] = {}

    def modify(repo: Path) -> None:
        n = done[repo] = done.get(repo, 0) + 1
        i = (n * 7919) % count  # the same file in both repos in the same round
        rel = f"part-{i % 100:03d}/item-{i:05d}.bin"
        (repo / "many" / rel).write_bytes(os.urandom(100 + (i * 37) % 4000))

    return "many", modify, f"a directory of {count} files, one file rewritten per run"


def bench(
    box: c.Sandbox,
    name: str,
    make: Callable[[list[Path]], tuple[str, Callable[[Path], None], str]],
    runs: int,
) -> c.Comparison:
    base = box.path(name)
    ours_repo = c.plain_repo(base / "mlopskit", box.env)
    plain_repo = c.plain_repo(base / "plain", box.env)
    target, modify, note = make([ours_repo, plain_repo])
    mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
    warm = {"done": False}

    def preparer(repo: Path) -> Callable[[], None]:
        def prepare() -> None:
            if warm["done"]:  # the warm-up round adds the data as written
                modify(repo)
            os.sync()  # no write-back of the previous run inside the next timing

        return prepare

    commits = {"n": 0}

    def plain_add() -> c.Sample:
        commits["n"] += 1
        return c.timed(
            [
                [dvc, "add", target],
                ["git", "add", f"{target}.dvc", ".gitignore"],
                ["git", "commit", "-q", "-m", f"data: version {target} ({commits['n']})"],
            ],
            cwd=plain_repo,
            env=box.env,
        )

    comp = c.Comparison(
        name,
        TARGET,
        c.commands(
            f"mlopskit data add {target}",
            [[mlopskit, "data", "add", target]],
            cwd=ours_repo,
            env=box.env,
            prepare=preparer(ours_repo),
        ),
        c.Side(f"dvc add {target} + git add + git commit", plain_add, preparer(plain_repo)),
        note=note,
    )
    print(f"[{name}] warm-up: first add of the data with each tool ...", file=sys.stderr)
    c.interleave(comp, 0, warmup=1)
    warm["done"] = True
    c.interleave(comp, runs, warmup=0)
    for repo in (ours_repo, plain_repo):
        count = c.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, env=box.env).stdout
        dirty = c.run(["git", "status", "--porcelain"], cwd=repo, env=box.env).stdout
        if int(count) != runs + 2 or dirty.strip():
            raise SystemExit(f"{repo}: expected {runs + 2} commits and a clean work tree")
    if not box.keep:
        shutil.rmtree(base, ignore_errors=True)  # free the disk before the next case
    return comp


def main() -> int:
    p = c.parser(__doc__ or "", default_runs=3)
    p.add_argument("--case", choices=["file", "dir", "both"], default="both")
    args = p.parse_args()
    size = 20 * 2**20 if args.quick else 2**30
    count = 500 if args.quick else 10_000
    comps = []
    with c.Sandbox("p7", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(f"P7 mlopskit data add vs dvc add + git ({args.runs} runs each)", info)
        if args.case in ("file", "both"):
            comps.append(bench(box, "file", lambda r: file_case(r, size), args.runs))
        if args.case in ("dir", "both"):
            comps.append(bench(box, "dir", lambda r: dir_case(r, count), args.runs))
        print()
        c.print_table(comps)
        c.dump_json(args.json, "P7", info, comps)
    return 0 if all(x.passed for x in comps) else 1


if __name__ == "__main__":
    sys.exit(main())
