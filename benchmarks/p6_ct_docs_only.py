"""P6: continuous training on a docs-only commit. The CT job's own steps,
``mlopskit repro --pull --push && mlopskit check --base HEAD --allow-no-rules &&
mlopskit commit --push``, vs the naive ``dvc pull && dvc repro && dvc push``, each on
a fresh clone, with a 1 GiB dataset in the DVC remote; targets: mlopskit's time
<= 5 % of the naive time, and 0 bytes transferred.

Setup (untimed, once): a bare ``origin``; ``mlopskit init`` (its default local DVC
remote, in ``.dvc/config.local``); a pipeline of one cheap stage that depends on
``data/raw/big.bin`` (1 GiB of random bytes, 64 MiB with --quick, versioned with
``mlopskit data add``) and writes ``out.txt`` (DVC-cached) and ``metrics.json``;
``mlopskit repro --commit --push``, so data, output and run-cache are in the remote;
then a docs-only commit (README), pushed to ``origin`` with its upstream set.

Every run (either side) starts the way a CI runner does, untimed: ``git clone`` of
``origin`` into a new directory, the remote's ``.dvc/config.local`` copied in, an
empty DVC cache, dirty pages flushed (``sync``). ``commit --push`` finds nothing to
commit, so pushes nothing. After each run the script counts the bytes transferred:
the files that appeared in the clone's ``.dvc/cache`` (downloaded) plus the files that
appeared in the remote (uploaded); and checks that the naive side did fetch the
dataset, that mlopskit did not, and that neither changed git (HEAD, origin, work tree).

    python benchmarks/p6_ct_docs_only.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 0.05
CHUNK = 16 * 1024 * 1024
DATA = "data/raw/big.bin"

SIZE_PY = """\
import json
import os

size = os.path.getsize("data/raw/big.bin")
with open("out.txt", "w") as f:
    f.write(f"{size}\\n")
with open("metrics.json", "w") as f:
    json.dump({"accuracy": 1.0, "size_mib": size / 2**20}, f)
"""


def files(root: Path) -> dict[str, int]:
    """Relative path -> size of every file under ``root`` (empty when it does not exist)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath, n)
            out[p.relative_to(root).as_posix()] = p.lstat().st_size
    return out


def setup(box: c.Sandbox, size: int) -> tuple[Path, Path, Path]:
    """origin.git, the DVC remote, and the project's .dvc/config.local."""
    env = box.env
    origin = box.path("origin.git")
    c.run(["git", "init", "-q", "--bare", str(origin)], cwd=box.root, env=env)
    project = box.path("project")
    c.run(["mlopskit", "init", str(project)], cwd=box.root, env=env)
    (project / "dvc.yaml").unlink()  # the template's pipeline: replaced by one cheap stage
    (project / "src" / "size.py").write_text(SIZE_PY)
    c.run(
        ["mlopskit", "stage", "add", "size", "-d", DATA, "-d", "src/size.py"]
        + ["-o", "out.txt", "-M", "metrics.json", "--", "python", "src/size.py"],
        cwd=project,
        env=env,
    )
    c.run(["git", "add", "-A"], cwd=project, env=env)
    c.run(["git", "commit", "-q", "-m", "pipeline: one cheap stage"], cwd=project, env=env)
    # repro --push --commit pushes the commit too: origin is needed from here on.
    c.run(["git", "remote", "add", "origin", str(origin)], cwd=project, env=env)
    c.run(["git", "push", "-q", "-u", "origin", "main"], cwd=project, env=env)
    print(f"writing {size / 2**20:.0f} MiB of random bytes ...", file=sys.stderr, flush=True)
    with (project / DATA).open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            f.write(block)
            left -= len(block)
    c.run(["mlopskit", "data", "add", DATA], cwd=project, env=env)
    c.run(["mlopskit", "repro", "--commit", "--push"], cwd=project, env=env)
    with (project / "README.md").open("a") as f:
        f.write("\nA docs-only change: nothing the pipeline depends on.\n")
    c.run(["git", "commit", "-q", "-am", "docs: README"], cwd=project, env=env)
    c.run(["git", "push", "-q", "origin", "main"], cwd=project, env=env)
    dirty = c.run(["git", "status", "--porcelain"], cwd=project, env=env).stdout
    if dirty.strip():
        raise SystemExit(f"setup left changes in the project:\n{dirty.decode()}")
    config_local = box.path("config.local")
    shutil.copy(project / ".dvc" / "config.local", config_local)
    remote = Path(
        c.run(["dvc", "remote", "list", "--local"], cwd=project, env=env).stdout.decode().split()[1]
    )
    stored = files(remote)
    if sum(stored.values()) < size:
        raise SystemExit(f"the remote {remote} does not hold the dataset: {stored}")
    if not box.keep:
        shutil.rmtree(project)  # its workspace and cache: 2x the dataset on disk
    return origin, remote, config_local


class Runner:
    """One side: a fresh clone per run (untimed), the commands (timed), then the bytes."""

    def __init__(
        self,
        box: c.Sandbox,
        name: str,
        cmds: list[list[str]],
        origin: Path,
        remote: Path,
        config_local: Path,
        check: Callable[[Path], None],
    ) -> None:
        self.box, self.name, self.cmds = box, name, cmds
        self.origin, self.remote, self.config_local = origin, remote, config_local
        self.check = check
        self.n = 0
        self.clone: Path | None = None
        self.before: dict[str, int] = {}
        self.head = b""
        self.bytes: list[dict[str, int]] = []  # timed runs only
        self.record = False

    def prepare(self) -> None:
        env = self.box.env
        self.n += 1
        self.clone = self.box.path("runner", f"{self.name}-{self.n}")
        c.run(["git", "clone", "-q", str(self.origin), str(self.clone)], cwd=self.box.root, env=env)
        shutil.copy(self.config_local, self.clone / ".dvc" / "config.local")
        self.head = c.run(["git", "rev-parse", "HEAD"], cwd=self.clone, env=env).stdout
        self.before = files(self.remote)
        os.sync()

    def measure(self) -> c.Sample:
        assert self.clone is not None
        env = self.box.env
        sample = c.timed(self.cmds, cwd=self.clone, env=env)
        down = sum(files(self.clone / ".dvc" / "cache").values())
        after = files(self.remote)
        up = sum(s for p, s in after.items() if self.before.get(p) != s)
        if self.record:
            self.bytes.append({"downloaded": down, "uploaded": up})
        # Nothing committed or pushed, nothing left in the work tree.
        for rev in ("HEAD", "origin/main"):
            now = c.run(["git", "rev-parse", rev], cwd=self.clone, env=env).stdout
            if now != self.head:
                raise SystemExit(f"{self.name}: {rev} moved during the run")
        dirty = c.run(["git", "status", "--porcelain"], cwd=self.clone, env=env).stdout
        if dirty.strip():
            raise SystemExit(f"{self.name}: the run left changes:\n{dirty.decode()}")
        self.check(self.clone)
        shutil.rmtree(self.clone)
        return sample


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=3).parse_args()
    size = 64 * 2**20 if args.quick else 2**30
    with c.Sandbox("p6", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(
            f"P6 CT steps vs dvc pull/repro/push on a docs-only commit, "
            f"{size / 2**20:.0f} MiB dataset ({args.runs} runs each)",
            info,
        )
        print("building the project, its DVC remote and origin ...", file=sys.stderr, flush=True)
        origin, remote, config_local = setup(box, size)
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")

        def not_fetched(clone: Path) -> None:
            if (clone / DATA).exists():
                raise SystemExit(f"mlopskit fetched {DATA} for an unchanged pipeline")

        def fetched(clone: Path) -> None:
            if (clone / DATA).stat().st_size != size:
                raise SystemExit(f"dvc pull did not fetch {DATA}")

        ours = Runner(
            box,
            "mlopskit",
            [
                [mlopskit, "repro", "--pull", "--push"],
                [mlopskit, "check", "--base", "HEAD", "--allow-no-rules"],
                [mlopskit, "commit", "--push"],
            ],
            origin,
            remote,
            config_local,
            not_fetched,
        )
        naive = Runner(
            box,
            "dvc",
            [[dvc, "pull"], [dvc, "repro"], [dvc, "push"]],
            origin,
            remote,
            config_local,
            fetched,
        )
        comp = c.Comparison(
            "ct docs-only",
            TARGET,
            c.Side(
                "mlopskit repro --pull --push + check + commit --push", ours.measure, ours.prepare
            ),
            c.Side("dvc pull + dvc repro + dvc push", naive.measure, naive.prepare),
            note=f"fresh clone per run; {size / 2**20:.0f} MiB dataset in the DVC remote",
        )
        c.interleave(comp, 0, warmup=1)
        ours.record = naive.record = True
        c.interleave(comp, args.runs, warmup=0)
        print()
        c.print_table([comp])
        print()
        print("bytes transferred per run (downloaded into .dvc/cache + uploaded to the remote):")
        totals = {}
        for side, runner in ((comp.ours, ours), (comp.plain, naive)):
            per_run = [b["downloaded"] + b["uploaded"] for b in runner.bytes]
            totals[runner.name] = max(per_run)
            detail = ", ".join(
                f"{fmt_bytes(b['downloaded'])} down + {fmt_bytes(b['uploaded'])} up"
                for b in runner.bytes
            )
            print(f"   {side.label}: {detail}")
        bytes_ok = totals["mlopskit"] == 0
        print(
            f"{comp.name}: bytes transferred by mlopskit = {totals['mlopskit']} "
            f"(max over runs; naive: {fmt_bytes(totals['dvc'])}); target 0: "
            f"{'PASS' if bytes_ok else 'MISS'}"
        )
        share = statistics.median(comp.ours.times) / statistics.median(comp.plain.times)
        print(f"{comp.name}: mlopskit takes {share:.1%} of the naive time (target <= 5%)")
        if args.json:
            data: dict[str, Any] = {
                "benchmark": "P6",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": dict(info),
                "dataset_bytes": size,
                "comparisons": [
                    {
                        **comp.as_dict(),
                        "bytes": {"mlopskit": ours.bytes, "plain": naive.bytes},
                        "bytes_result": "PASS" if bytes_ok else "MISS",
                    }
                ],
            }
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0 if comp.passed and bytes_ok else 1


if __name__ == "__main__":
    sys.exit(main())
