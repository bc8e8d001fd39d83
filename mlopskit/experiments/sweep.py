"""Parallel sweeps: each point is `dvc exp run` in its own `git clone --shared` of HEAD
(plus the workspace's uncommitted changes) whose DVC cache is the project's; the
experiment ref is fetched back. Ctrl-C stops every point's process group and removes the
clones; the user's workspace and stash are never touched.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .. import _dvc, _proc, scm
from ..errors import PreconditionError, UsageError
from ..journal import barrier
from ..project import Project
from .runs import ExpResult, Point, _read_metrics


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0


@dataclass(frozen=True)
class SweepResult:
    points: list[ExpResult]
    baseline: str

    @property
    def failed(self) -> list[ExpResult]:
        return [p for p in self.points if p.status != "done"]


class _Workers:
    """The running point processes, so Ctrl-C can stop every one of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: dict[int, _proc.Popen[bytes]] = {}
        self.stopping = False

    def start(self, args: list[str], cwd: Path, log: Path) -> _proc.Popen[bytes]:
        with self.lock:
            if self.stopping:
                raise KeyboardInterrupt
            proc = _proc.spawn_session(args, cwd=cwd, log=log)
            self.procs[proc.pid] = proc
            return proc

    def finish(self, proc: _proc.Popen[bytes]) -> None:
        with self.lock:
            self.procs.pop(proc.pid, None)

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            procs = list(self.procs.values())
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except _proc.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()


def _signal_group(p: _proc.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def _prepare_clone(root: Path, base: str, clone: Path, diff: bytes) -> Path:
    """A clone of the repository at ``base`` plus ``diff``; returns the project in it
    (a sub-folder of the clone when the project is one of its repository's)."""
    top, prefix = scm.layout(root) or (root, "")
    scm.git(root, "clone", "--quiet", "--shared", "--no-checkout", str(top), str(clone))
    scm.git(clone, "checkout", "--quiet", "--detach", base)
    if diff:
        scm.git(clone, "apply", "--whitespace=nowarn", "--binary", "-", input=diff)
    here = clone / prefix
    local = root / ".dvc" / "config.local"
    text = local.read_text() if local.is_file() else ""
    (here / ".dvc" / "config.local").write_text(text)
    # Share the project's DVC cache (wherever DVC's configuration puts it): nothing is
    # copied twice, outputs restore from it. Set through DVC's config, so a
    # config.local that already has a [cache] section keeps one.
    _dvc.set_local_cache_dir(here / ".dvc", _dvc.cache_dir(root))
    return here


def _point(
    root: Path,
    base: str,
    diff: bytes,
    tmp: Path,
    point: Point,
    workers: _Workers,
    fetch_lock: threading.Lock,
) -> ExpResult:
    start = time.monotonic()
    clone = tmp / point.name
    log = tmp / f"{point.name}.log"
    py = sys.executable
    try:
        work = _prepare_clone(root, base, clone, diff)
        steps = [
            [py, "-m", "dvc", "checkout", "--quiet"],
            [
                py,
                "-m",
                "dvc",
                "exp",
                "run",
                "--quiet",
                "-n",
                point.name,
                *itertools.chain.from_iterable(("-S", a) for a in point.assignments),
            ],
        ]
        for i, args in enumerate(steps):
            proc = workers.start(args, work, log)
            try:
                code = proc.wait()
            finally:
                workers.finish(proc)
            if code != 0 and i > 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                return ExpResult(
                    point.name,
                    "stopped" if workers.stopping else "failed",
                    point.values,
                    seconds=time.monotonic() - start,
                    error=" ".join(tail)[-400:],
                )
        ref = scm.git(
            clone, "for-each-ref", "--format=%(refname)", f"refs/exps/*/*/{point.name}"
        ).out.split()
        if not ref:
            ref = [
                r
                for r in scm.git(
                    clone, "for-each-ref", "--format=%(refname)", "refs/exps"
                ).out.split()
                if r.endswith("/" + point.name)
            ]
        with fetch_lock:
            for r in ref:
                scm.git(root, "fetch", "--quiet", str(clone), f"+{r}:{r}")
        rev = scm.git(clone, "rev-parse", ref[0]).out.strip() if ref else None
        return ExpResult(
            point.name, "done", point.values, _read_metrics(work), rev, time.monotonic() - start
        )
    except KeyboardInterrupt:
        return ExpResult(point.name, "stopped", point.values, seconds=time.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - one failing point must not stop the others
        return ExpResult(
            point.name,
            "failed",
            point.values,
            seconds=time.monotonic() - start,
            error=f"{type(exc).__name__}: {exc}"[:400],
        )
    finally:
        shutil.rmtree(clone, ignore_errors=True)


@barrier
def sweep(
    project: Project,
    points: Sequence[Point],
    *,
    jobs: int = 2,
    on_progress: Callable[[Progress, ExpResult | None], None] | None = None,
) -> SweepResult:
    """Run ``points`` ``jobs`` at a time; every finished point is a DVC experiment."""
    root = project.root
    base = scm.head(root)
    if base is None:
        raise PreconditionError("the repository has no commit yet", "commit the project first")
    if jobs < 1:
        raise UsageError("-j takes a positive number")
    names = [p.name for p in points]
    existing = set(
        scm.git(root, "for-each-ref", "--format=%(refname:lstrip=-1)", "refs/exps").out.split()
    )
    clash = sorted(set(names) & existing)
    if clash:
        raise PreconditionError(
            f"experiment(s) {', '.join(clash)} already exist", "choose another --name prefix"
        )
    diff = scm.git(root, "diff", "--binary", "HEAD").stdout
    tmp = Path(tempfile.mkdtemp(prefix="mlopskit-sweep-"))
    workers = _Workers()
    fetch_lock = threading.Lock()
    progress = Progress(total=len(points))
    results: dict[str, ExpResult] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep")
    try:
        pending: dict[Future[ExpResult], Point] = {}
        queue = list(points)
        while queue or pending:
            while queue and len(pending) < jobs:
                pt = queue.pop(0)
                pending[pool.submit(_point, root, base, diff, tmp, pt, workers, fetch_lock)] = pt
            progress.running = len(pending)
            if on_progress:
                on_progress(progress, None)
            done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                pt = pending.pop(fut)
                res = fut.result()
                results[pt.name] = res
                progress.done += res.status == "done"
                progress.failed += res.status != "done"
                progress.running = len(pending)
                if on_progress:
                    on_progress(progress, res)
    except KeyboardInterrupt:
        workers.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return SweepResult([results[p.name] for p in points if p.name in results], base)
