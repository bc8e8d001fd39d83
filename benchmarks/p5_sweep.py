"""P5: a 4-point sweep. ``mlopskit exp sweep -j 2`` vs four sequential ``dvc exp run``
vs DVC's own queue with two workers, on a quickstart project; target: mlopskit's time
<= 0.65 x the sequential time.

The project is built once with ``mlopskit quickstart``. The grid is
train.C in {0.05, 0.5} x train.max_iter in {200, 400}; each side runs its four points
as DVC experiments named after the round (``r<round>...``):

* mlopskit: ``mlopskit exp sweep -S train.C=0.05,0.5 -S train.max_iter=200,400
  -j 2 -n r<round>m`` (points ``r<round>m-1`` .. ``-4``);
* sequential: ``dvc exp run -S train.C=.. -S train.max_iter=.. -n r<round>s<i>``,
  four times, one after another;
* queue: ``dvc exp run --queue -S .. -S .. -n r<round>q<i>`` four times, then
  ``dvc queue start -j 2``; the side is done when the four experiments exist (their
  refs, polled with ``git for-each-ref`` every 0.2 s: what ``dvc exp show`` lists).
  Afterwards (untimed) the script waits for the workers to exit (they do after 10 s
  without a task), so none lingers into the next side, and ``dvc queue status`` must
  show the four tasks succeeded; at the end ``dvc queue stop --kill``. The workers run
  detached; the script makes itself their sub-reaper (PR_SET_CHILD_SUBREAPER) and
  reaps them, so their CPU time counts for the queue side.

Before every side (untimed) the workspace is reset to HEAD (``git reset --hard``,
``dvc checkout --force``) and DVC's run-cache (``.dvc/cache/runs``) is deleted: the
same four points run in every round and on every side, and with the run-cache each
run after the first would restore the outputs instead of training. Rounds are
interleaved (the order of the three sides rotates every round) after one untimed,
lighter warm-up round (one point per side). After each round the metrics and params
of every point are read with ``dvc exp show --json``: each mlopskit point and each
queue point must have the metrics of the matching sequential point, and the params of
its grid point (OK or MISMATCH per point; a mismatch fails the script). Then all
experiments and queue entries are removed (``dvc exp remove --all``,
``dvc queue remove --all``), untimed.

    python benchmarks/p5_sweep.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 0.65
GRID = {"train.C": ["0.05", "0.5"], "train.max_iter": ["200", "400"]}
POINTS = [
    (("train.C", C), ("train.max_iter", m)) for C in GRID["train.C"] for m in GRID["train.max_iter"]
]  # the order of mlopskit's points (the product of the grid, first key outermost)
JOBS = 2
QUEUE_TIMEOUT = 1800.0  # seconds; a queue that never finishes fails the script


# --------------------------------------------------------------------------- processes


def _cpu(r: resource.struct_rusage) -> float:
    return r.ru_utime + r.ru_stime


def _children() -> list[int]:
    """PIDs of this process's children (including orphans reparented to it)."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def become_subreaper() -> bool:
    """Orphaned descendants (DVC's detached queue workers) become our children, so we can
    see when they end and their CPU time lands in RUSAGE_CHILDREN once reaped."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(timeout: float) -> bool:
    """Reap children that have ended, until none is left (True) or ``timeout`` (False).
    Only called between commands: no subprocess.run is waiting for a child then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def kill_children() -> None:
    for pid in _children():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap(10)


# --------------------------------------------------------------------------- the sides


def point_args(point: Sequence[tuple[str, str]]) -> list[str]:
    return [a for k, v in point for a in ("-S", f"{k}={v}")]


class Project:
    """The quickstart project and what every side does to it."""

    def __init__(self, box: c.Sandbox, path: Path, *, subreaper: bool) -> None:
        self.box, self.path, self.subreaper = box, path, subreaper
        self.env = box.env
        self.mlopskit, self.dvc = box.which("mlopskit"), box.which("dvc")
        self.round = 0
        self.points = POINTS
        cache = c.run([self.dvc, "cache", "dir"], cwd=path, env=self.env).stdout.decode().strip()
        self.run_cache = Path(cache) / "runs"

    def run(self, *cmd: str, check: bool = True) -> str:
        return c.run(cmd, cwd=self.path, env=self.env, check=check).stdout.decode()

    # -- untimed, before every side
    def reset(self) -> None:
        self.run("git", "reset", "-q", "--hard", "HEAD")
        self.run(self.dvc, "checkout", "-q", "--force")
        shutil.rmtree(self.run_cache, ignore_errors=True)
        dirty = self.run("git", "status", "--porcelain")
        if dirty.strip():
            raise SystemExit(f"the workspace is not clean before a side:\n{dirty}")

    # -- names
    def names(self, side: str) -> list[str]:
        r = self.round
        if side == "m":
            return [f"r{r}m-{i + 1}" for i in range(len(self.points))]
        return [f"r{r}{side}{i + 1}" for i in range(len(self.points))]

    # -- the three sides (timed)
    def sweep(self) -> c.Sample:
        grid: dict[str, list[str]] = {}
        for point in self.points:
            for k, v in point:
                grid.setdefault(k, [])
                if v not in grid[k]:
                    grid[k].append(v)
        specs = [a for k, vs in grid.items() for a in ("-S", f"{k}={','.join(vs)}")]
        cmd = [self.mlopskit, "exp", "sweep", *specs, "-j", str(JOBS), "-n", f"r{self.round}m"]
        return c.timed([cmd], cwd=self.path, env=self.env)

    def sequential(self) -> c.Sample:
        cmds = [
            [self.dvc, "exp", "run", *point_args(p), "-n", name]
            for p, name in zip(self.points, self.names("s"), strict=True)
        ]
        return c.timed(cmds, cwd=self.path, env=self.env)

    def exp_refs(self) -> set[str]:
        """Names of the experiments (refs/exps/<baseline>/<name>; not DVC's exec/ refs)."""
        out = self.run("git", "for-each-ref", "--format=%(refname)", "refs/exps")
        parts = [ref.split("/") for ref in out.split()]
        return {p[-1] for p in parts if len(p) == 5 and len(p[2]) == 2}

    def queue(self) -> c.Sample:
        names = self.names("q")
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for p, name in zip(self.points, names, strict=True):
            self.run(self.dvc, "exp", "run", "--queue", *point_args(p), "-n", name)
        self.run(self.dvc, "queue", "start", "-j", str(JOBS))
        deadline = time.monotonic() + QUEUE_TIMEOUT
        while not set(names) <= self.exp_refs():
            # With the sub-reaper, the workers are our children: none left means they
            # gave up (a failed task) instead of finishing.
            if (self.subreaper and reap(0) and not set(names) <= self.exp_refs()) or (
                time.monotonic() > deadline
            ):
                raise SystemExit(f"the DVC queue did not finish:\n{self.queue_report()}")
            time.sleep(0.2)
        wall = time.perf_counter() - start
        # Untimed: wait for the workers to exit and collect their CPU time.
        self.wait_workers()
        cpu = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(r0)
        status = self.queue_status()
        bad = {n: s for n, s in status.items() if n in names and s != "Success"}
        missing = set(names) - set(status)
        if bad or missing:
            raise SystemExit(f"DVC queue tasks did not succeed:\n{self.queue_report()}")
        return c.Sample(wall, cpu)

    def wait_workers(self) -> None:
        """DVC's queue workers exit by themselves after 10 s without a task: wait for
        that (reaping them), so none lingers into the next side. Not `dvc queue stop`:
        with DVC's file-system broker its shutdown broadcast stays queued for worker
        names that are not running, and stops the next workers after their first task."""
        if not self.subreaper:
            time.sleep(15)
        elif not reap(120):
            self.stop_workers()

    def stop_workers(self) -> None:
        """`dvc queue stop --kill`, then make sure no worker is left."""
        self.run(self.dvc, "queue", "stop", "--kill", check=False)
        if self.subreaper and not reap(30):
            kill_children()

    def queue_status(self) -> dict[str, str]:
        out = self.run(self.dvc, "queue", "status", check=False)
        status = {}
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 4 and cols[0] != "Task":
                status[cols[1]] = cols[-1]
        return status

    def queue_report(self) -> str:
        report = self.run(self.dvc, "queue", "status", check=False)
        for name, state in self.queue_status().items():
            if state == "Failed":
                log = self.run(self.dvc, "queue", "logs", name, check=False)
                report += f"\n--- dvc queue logs {name}:\n" + "\n".join(log.splitlines()[-15:])
        return report

    # -- untimed, after a round
    def experiments(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Experiment name -> (params.yaml's train params, metrics) from dvc exp show."""
        rows: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for baseline in json.loads(self.run(self.dvc, "exp", "show", "--json")):
            for exp in baseline.get("experiments") or []:
                for rev in exp.get("revs") or []:
                    data = rev.get("data") or {}
                    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
                    metrics = (data.get("metrics") or {}).get("reports/metrics.json") or {}
                    rows[str(rev.get("name"))] = (
                        (params or {}).get("train", {}),
                        metrics.get("data") or {},
                    )
        return rows

    def forget(self) -> None:
        self.run(self.dvc, "exp", "remove", "--all", "-q")
        self.run(self.dvc, "queue", "remove", "--all", check=False)
        left = self.exp_refs()
        if left:
            raise SystemExit(f"experiments left after dvc exp remove --all: {sorted(left)}")


def check_round(proj: Project) -> list[dict[str, Any]]:
    """Every mlopskit and queue point has the metrics of the matching sequential point."""
    rows = proj.experiments()
    out = []
    names = {side: proj.names(side) for side in ("m", "s", "q")}
    for i, point in enumerate(proj.points):
        want = {k.split(".", 1)[1]: float(v) for k, v in point}
        got = {side: rows.get(names[side][i]) for side in names}
        seq = got["s"]
        entry: dict[str, Any] = {
            "round": proj.round,
            "point": dict(point),
            "sequential": seq[1] if seq else None,
        }
        verdicts = []
        for side, label in (("m", "mlopskit"), ("q", "queue")):
            row = got[side]
            ok = (
                row is not None
                and seq is not None
                and bool(seq[1])
                and row[1] == seq[1]
                and all(float(row[0].get(k, "nan")) == v for k, v in want.items())
                and all(float(seq[0].get(k, "nan")) == v for k, v in want.items())
            )
            entry[label] = row[1] if row else None
            entry[f"{label}_ok"] = ok
            verdicts.append(f"{label} {names[side][i]} {'OK' if ok else 'MISMATCH'}")
            if not ok:
                verdicts[-1] += f" ({row[1] if row else 'missing'})"
        pt = ", ".join(f"{k}={v}" for k, v in point)
        print(
            f"  round {proj.round} point {i + 1} ({pt}): sequential {names['s'][i]} "
            f"{seq[1] if seq else 'missing'}; " + "; ".join(verdicts)
        )
        out.append(entry)
    return out


# --------------------------------------------------------------------------- reporting


def print_sides(case: str, sides: Sequence[c.Side]) -> None:
    """The table of _common.print_table, for any number of sides."""
    headers = ["case", "side", "runs", "median", "min", "max", "cpu median"]
    rows = [
        [
            case,
            s.label,
            str(len(s.times)),
            c._fmt(statistics.median(s.times)),
            c._fmt(min(s.times)),
            c._fmt(max(s.times)),
            c._fmt(statistics.median(s.cpu)),
        ]
        for s in sides
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print()


def ratio_lines(comp: c.Comparison, what: str, verdict: str) -> None:
    print(
        f"{comp.name}: ratio {what} = {comp.ratio:.3f} (median), "
        f"{comp.ratio_min:.3f} (min); {verdict}"
    )
    print(
        f"   also: {comp.ratio_paired:.3f} (median of per-round ratios), "
        f"{comp.ratio_cpu:.3f} (median CPU time)"
    )
    if comp.note:
        print(f"   {comp.note}")


# --------------------------------------------------------------------------- main


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=3).parse_args()
    runs = min(args.runs, 1) if args.quick else args.runs
    subreaper = become_subreaper()
    with c.Sandbox("p5", keep=args.keep) as box:
        # `dvc exp run` commits through libgit2 (pygit2), which ignores GIT_CONFIG_GLOBAL:
        # give it the sandbox's identity where it looks, the XDG git config.
        xdg_git = Path(box.env["XDG_CONFIG_HOME"]) / "git"
        xdg_git.mkdir(parents=True, exist_ok=True)
        shutil.copy(box.env["GIT_CONFIG_GLOBAL"], xdg_git / "config")
        info = c.machine_info(box.env, box.root)
        c.print_header(
            f"P5 4-point sweep: mlopskit exp sweep -j {JOBS} vs 4 x dvc exp run vs "
            f"dvc queue -j {JOBS} ({runs} rounds)",
            info,
        )
        print("building the quickstart project ...", file=sys.stderr, flush=True)
        path = c.quickstart_project(box.path("demo"), box.env)
        proj = Project(box, path, subreaper=subreaper)
        try:
            ours = c.Side(f"mlopskit exp sweep -j {JOBS}", proj.sweep, proj.reset)
            seq = c.Side("4 x dvc exp run", proj.sequential, proj.reset)
            queue = c.Side(
                f"dvc exp run --queue x4 + dvc queue start -j {JOBS}", proj.queue, proj.reset
            )
            sides = [ours, seq, queue]
            # Warm-up (untimed): one point per side fills the byte-code caches and the
            # page cache for everything each side runs.
            proj.round, proj.points = 0, POINTS[:1]
            for side in sides:
                side.once()
            proj.forget()
            proj.points = POINTS
            checks: list[dict[str, Any]] = []
            for i in range(runs):
                proj.round = i + 1
                for side in sides[i % 3 :] + sides[: i % 3]:  # rotate the order every round
                    side.samples.append(side.once())
                a, b, q = ours.samples[-1], seq.samples[-1], queue.samples[-1]
                print(
                    f"  [sweep] round {i + 1}/{runs}: mlopskit {a.wall:.3f} s (cpu {a.cpu:.3f}), "
                    f"sequential {b.wall:.3f} s (cpu {b.cpu:.3f}), queue {q.wall:.3f} s "
                    f"(cpu {q.cpu:.3f})",
                    file=sys.stderr,
                    flush=True,
                )
                checks += check_round(proj)
                proj.forget()
            proj.reset()
        finally:
            proj.stop_workers()
        cpu_note = (
            "queue CPU includes its detached workers (reaped as their sub-reaper)"
            if subreaper
            else "queue CPU: foreground commands only (no sub-reaper on this platform)"
        )
        comp = c.Comparison(
            "sweep",
            TARGET,
            ours,
            seq,
            note="run-cache deleted and workspace reset before every side",
        )
        qcomp = c.Comparison("queue", float("nan"), queue, seq, note=cpu_note)
        mq = c.Comparison("sweep vs queue", float("nan"), ours, queue)
        correct = all(e["mlopskit_ok"] and e["queue_ok"] for e in checks)
        print()
        print_sides("sweep 4 points", sides)
        verdict = "PASS" if comp.passed else "MISS"
        ratio_lines(comp, "mlopskit/sequential", f"target <= {TARGET:g}: {verdict}")
        ratio_lines(qcomp, "queue/sequential", "no target")
        ratio_lines(mq, "mlopskit/queue", "no target")
        print(
            f"correctness: {sum(e['mlopskit_ok'] for e in checks)}/{len(checks)} mlopskit "
            f"points and {sum(e['queue_ok'] for e in checks)}/{len(checks)} queue points "
            f"match the sequential metrics: {'OK' if correct else 'MISMATCH'}"
        )
        if args.json:
            qd = qcomp.as_dict()
            data: dict[str, Any] = {
                "benchmark": "P5",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": dict(info),
                "comparisons": [comp.as_dict()],
                "queue": {
                    "side": queue.as_dict(),
                    "note": cpu_note,
                    "ratio_queue_sequential_median": qd["ratio_median"],
                    "ratio_queue_sequential_min": qd["ratio_min"],
                    "ratio_queue_sequential_paired_median": qd["ratio_paired_median"],
                    "ratio_queue_sequential_cpu_median": qd["ratio_cpu_median"],
                    "ratio_mlopskit_queue_median": mq.ratio,
                },
                "correctness": checks,
                "correct": correct,
            }
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0 if comp.passed and correct else 1


if __name__ == "__main__":
    sys.exit(main())
