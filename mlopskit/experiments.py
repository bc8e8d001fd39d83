"""Experiments: one run, parallel sweeps, comparison, promotion, all as DVC experiments.

A sweep runs each point in its own temporary ``git clone --shared`` of HEAD (plus the
workspace's uncommitted changes), whose DVC cache is the project's own: points do
not fight over the workspace or DVC's repo lock, and nothing is copied twice. Each
point is an ordinary ``dvc exp run``; its experiment ref is then fetched into the
project, so ``dvc exp show`` lists it. The user's workspace and stash are never
touched; on Ctrl-C every point's process group is stopped and the clones removed.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _dvc, flat, params, scm
from .errors import OperationFailed, PreconditionError, UsageError
from .project import Project

# --------------------------------------------------------------------------- planning


def _split_values(text: str) -> list[str]:
    """``0.1,1,[2,3]`` -> ['0.1', '1', '[2,3]'] (commas inside brackets or quotes stay)."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    out.append(cur)
    return [v.strip() for v in out if v.strip() != ""]


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for spec in specs:
        if "=" not in spec:
            raise UsageError(f"'{spec}': expected KEY=V1,V2,...", "for example train.C=0.1,1,10")
        key, values = spec.split("=", 1)
        key = key.strip()
        vals = _split_values(values)
        if not key or not vals:
            raise UsageError(f"'{spec}': needs a key and at least one value")
        if key in grid:
            raise UsageError(f"'{key}' is given twice")
        grid[key] = vals
    if not grid:
        raise UsageError("no parameters to sweep", "give -S KEY=V1,V2,...")
    return grid


def check_keys(project: Project, keys: Sequence[str], *, allow_new: bool = False) -> None:
    """Unknown params are exit 2 (dvc#6282: `dvc exp run -S` adds a typo silently)."""
    import difflib

    known = params.read(project.root)
    for key in keys:
        if key not in known and not allow_new:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(f"params: unknown key '{key}'", f"{hint}use --allow-new to add it")


@dataclass(frozen=True)
class Point:
    name: str
    assignments: tuple[str, ...]  # "key=value", as `dvc exp run -S` takes them

    @property
    def values(self) -> dict[str, str]:
        return dict(a.split("=", 1) for a in self.assignments)


def plan(
    project: Project,
    specs: Sequence[str],
    *,
    random_k: int | None = None,
    prefix: str | None = None,
    seed: int = 0,
) -> list[Point]:
    grid = parse_grid(specs)
    check_keys(project, list(grid))
    combos = list(itertools.product(*grid.values()))
    if random_k is not None:
        if random_k < 1:
            raise UsageError("--random takes a positive number of points")
        combos = random.Random(seed).sample(combos, min(random_k, len(combos)))
    prefix = prefix or f"sweep-{uuid.uuid4().hex[:6]}"
    from gto.constants import name_re  # experiment names: letters, digits, - and _

    if not name_re.match(prefix) or "/" in prefix:
        raise UsageError(f"--name {prefix!r}: use letters, digits, '-' and '_'")
    keys = list(grid)
    return [
        Point(f"{prefix}-{i + 1}", tuple(f"{k}={v}" for k, v in zip(keys, combo, strict=True)))
        for i, combo in enumerate(combos)
    ]


def parse_point(text: str) -> Point:
    """A point from a matrix job (JSON ``{"name": ..., "set": ["k=v", ...]}``), validated."""
    import json

    try:
        data = json.loads(text)
        name, sets = data["name"], data["set"]
    except (ValueError, KeyError, TypeError):
        raise UsageError('--point: expected JSON {"name": ..., "set": ["k=v", ...]}') from None
    from gto.constants import name_re

    if not isinstance(name, str) or not name_re.match(name) or "/" in name:
        raise UsageError(f"--point: name {str(name)[:40]!r} is not valid")
    if not isinstance(sets, list) or not all(isinstance(a, str) and "=" in a for a in sets):
        raise UsageError("--point: 'set' must be a list of KEY=VALUE strings")
    return Point(name, tuple(sets))


def points_json(points: Sequence[Point]) -> str:
    import json

    return json.dumps(
        [{"name": p.name, "set": list(p.assignments)} for p in points], separators=(",", ":")
    )


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class ExpResult:
    name: str
    status: str  # "done", "failed", "stopped"
    params: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    rev: str | None = None
    seconds: float = 0.0
    error: str = ""


def _read_metrics(root: Path) -> dict[str, Any]:
    from . import metrics

    out: dict[str, Any] = {}
    for values in metrics.read(root, None, required=False).values():
        out.update(values)
    return out


def run(
    project: Project,
    assignments: Sequence[str],
    *,
    name: str | None = None,
    allow_new: bool = False,
) -> ExpResult:
    """One experiment in the workspace, as `dvc exp run -S ... -n NAME` does."""
    keys = [a.split("=", 1)[0] for a in assignments if "=" in a]
    if len(keys) != len(assignments):
        raise UsageError("-S takes KEY=VALUE")
    check_keys(project, keys, allow_new=allow_new)
    start = time.monotonic()
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        revs = repo.experiments.run(params=list(assignments), name=name)
    rev = next(iter(revs), None) if revs else None
    return ExpResult(
        name or (rev or "")[:7],
        "done",
        dict(a.split("=", 1) for a in assignments),
        _read_metrics(project.root),
        rev,
        time.monotonic() - start,
    )


def exp_ref(root: Path, name: str) -> str | None:
    refs = [
        r
        for r in scm.git(root, "for-each-ref", "--format=%(refname)", "refs/exps").out.split()
        if r.endswith("/" + name) and "/exec/" not in r
    ]
    return refs[0] if refs else None


def push_experiment(
    project: Project, name: str, *, git_remote: str = "origin", dvc_remote: str | None = None
) -> str:
    """Publish an experiment as `dvc exp push` does: its outputs to the DVC remote, then its
    ref to the git remote (with GITHUB_TOKEN as a header over https, never --force)."""
    from . import data

    ref = exp_ref(project.root, name)
    if ref is None:
        raise UsageError(f"no experiment named '{name}'")
    data.push(project, remote=dvc_remote)
    auth = scm.auth_args(project.root, git_remote)
    res = scm.git(
        project.root, *auth, "push", "--porcelain", "--", git_remote, f"{ref}:{ref}", check=False
    )
    if res.returncode != 0:
        from .errors import RemoteError

        raise RemoteError(f"git push of {ref} failed: {(res.err or res.out).strip()[-200:]}")
    return ref


def fetch_experiments(project: Project, *, git_remote: str = "origin") -> list[str]:
    auth = scm.auth_args(project.root, git_remote)
    before = set(
        scm.git(project.root, "for-each-ref", "--format=%(refname)", "refs/exps").out.split()
    )
    res = scm.git(
        project.root,
        *auth,
        "fetch",
        "--quiet",
        "--",
        git_remote,
        "+refs/exps/*:refs/exps/*",
        check=False,
    )
    if res.returncode != 0:
        from .errors import RemoteError

        raise RemoteError(f"git fetch of experiments failed: {res.err.strip()[-200:]}")
    after = set(
        scm.git(project.root, "for-each-ref", "--format=%(refname)", "refs/exps").out.split()
    )
    return sorted(after - before)


# --------------------------------------------------------------------------- sweeps


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
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with self.lock:
            if self.stopping:
                raise KeyboardInterrupt
            fh = log.open("ab")
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            fh.close()
            self.procs[proc.pid] = proc
            return proc

    def finish(self, proc: subprocess.Popen[bytes]) -> None:
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
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()


def _signal_group(p: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def _prepare_clone(root: Path, base: str, clone: Path, diff: bytes) -> None:
    scm.git(root, "clone", "--quiet", "--shared", "--no-checkout", str(root), str(clone))
    scm.git(clone, "checkout", "--quiet", "--detach", base)
    if diff:
        scm.git(clone, "apply", "--whitespace=nowarn", "--binary", "-", input=diff)
    local = root / ".dvc" / "config.local"
    text = local.read_text() if local.is_file() else ""
    # Share the project's DVC cache: nothing is copied twice, outputs restore from it.
    cache = root / ".dvc" / "cache"
    (clone / ".dvc" / "config.local").write_text(text + f"\n[cache]\n    dir = {cache}\n")


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
        _prepare_clone(root, base, clone, diff)
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
            proc = workers.start(args, clone, log)
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
            point.name, "done", point.values, _read_metrics(clone), rev, time.monotonic() - start
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


# --------------------------------------------------------------------------- show & promote


@dataclass(frozen=True)
class ExpRow:
    name: str
    rev: str
    baseline: str
    created: str
    params: dict[str, Any]
    metrics: dict[str, Any]


def _flatten_files(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for file, body in (data or {}).items():
        values = (body or {}).get("data") if isinstance(body, dict) else None
        for k, v in flat.flatten(values or {}).items():
            out[k if file in ("params.yaml",) or len(data) == 1 else f"{file}:{k}"] = v
    return out


def show(
    project: Project, *, sort_by: str | None = None, all_baselines: bool = False
) -> list[ExpRow]:
    """The experiments of HEAD's baseline (or all), best first by ``sort_by``."""
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        states = repo.experiments.show(all_branches=all_baselines)
    rows: list[ExpRow] = []
    for baseline in states:
        if baseline.rev == "workspace":
            continue
        for exp in baseline.experiments or []:
            for state in exp.revs:
                d = state.data
                if d is None:
                    continue
                rows.append(
                    ExpRow(
                        name=str(state.name or exp.name or state.rev[:7]),
                        rev=state.rev,
                        baseline=str(baseline.rev),
                        created=str(d.timestamp or ""),
                        params=_flatten_files(d.params),
                        metrics=_flatten_files(d.metrics),
                    )
                )
    if sort_by:
        direction = project.config.metrics.direction(sort_by) or "higher"
        if rows and not any(sort_by in r.metrics for r in rows):
            raise UsageError(
                f"--sort-by: no experiment has a metric '{sort_by}'",
                f"metrics: {', '.join(sorted({k for r in rows for k in r.metrics}))}",
            )

        def key(r: ExpRow) -> tuple[int, float]:
            v = flat.number(r.metrics.get(sort_by))
            if v is None:
                return (1, 0.0)
            return (0, -v if direction == "higher" else v)

        rows.sort(key=key)
    return rows


@dataclass(frozen=True)
class Promoted:
    name: str
    branch: str | None
    commit: str | None
    committed: list[str]


def promote(project: Project, name: str, *, branch: str | None = None) -> Promoted:
    """Bring experiment NAME's params, lock and outputs into the workspace (and one commit),
    or into a new BRANCH whose tip is the experiment's commit, ready for a pull request."""
    from . import pipeline

    root = project.root
    if branch is not None:
        if scm.git(root, "check-ref-format", "--branch", branch, check=False).returncode != 0:
            raise UsageError(f"branch name {branch!r} is not valid")
        if scm.resolve(root, f"refs/heads/{branch}"):
            raise PreconditionError(f"branch '{branch}' already exists")
        with _dvc.open_repo(root) as repo, _dvc.translated():
            repo.experiments.branch(name, branch)
        return Promoted(name, branch, scm.resolve(root, f"refs/heads/{branch}"), [])
    project.require_branch("exp promote")
    dirty = scm.dirty_tracked(root)
    if dirty:
        raise PreconditionError(
            "uncommitted changes: " + ", ".join(dirty[:8]),
            "commit or stash them first (exp promote makes one commit)",
        )
    with _dvc.open_repo(root) as repo, _dvc.translated():
        repo.experiments.apply(name)
    res = pipeline.commit_state(project, message=f"exp: promote {name}")
    if res.commit is None:
        raise OperationFailed(f"experiment '{name}' changes nothing in this branch")
    return Promoted(name, None, res.commit, res.committed)
