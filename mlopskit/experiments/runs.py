"""Experiments as ordinary DVC experiments: planning a grid, one run, publishing and
fetching experiment refs, comparison and promotion. Running a grid in parallel is
``sweep.py``.
"""

from __future__ import annotations

import itertools
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _dvc, at_revision, dotted, params, project_lock, scm
from ..errors import OperationFailed, PreconditionError, UsageError
from ..journal import barrier
from ..project import Project

# GitHub Actions runs at most 256 jobs from one matrix per workflow run: the cap of
# `exp plan` (sweep.yml's matrix); local sweeps (`exp sweep`) have none.
MATRIX_LIMIT = 256


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
    max_points: int | None = None,
) -> list[Point]:
    """The points of a grid (or ``random_k`` of them); more than ``max_points`` (the
    matrix limit of ``exp plan``) is a UsageError naming the count and the cap."""
    grid = parse_grid(specs)
    check_keys(project, list(grid))
    if random_k is not None and random_k < 1:
        raise UsageError("--random takes a positive number of points")
    total = math.prod(len(v) for v in grid.values())
    count = min(total, random_k) if random_k is not None else total
    if max_points is not None and count > max_points:
        raise UsageError(
            f"--grid makes {count} points; a GitHub Actions matrix runs at most {max_points} "
            "jobs per workflow run",
            f"narrow the grid, or sample it with --random {max_points}",
        )
    combos = list(itertools.product(*grid.values()))
    if random_k is not None:
        combos = random.Random(seed).sample(combos, min(random_k, len(combos)))
    prefix = prefix or f"sweep-{uuid.uuid4().hex[:6]}"
    from ..names import is_experiment_name

    if not is_experiment_name(prefix):
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
    from ..names import is_experiment_name

    if not is_experiment_name(name):
        raise UsageError(f"--point: name {str(name)[:40]!r} is not valid")
    if not isinstance(sets, list) or not all(isinstance(a, str) and "=" in a for a in sets):
        raise UsageError("--point: 'set' must be a list of KEY=VALUE strings")
    return Point(name, tuple(sets))


def points_json(points: Sequence[Point]) -> str:
    import json

    return json.dumps(
        [{"name": p.name, "set": list(p.assignments)} for p in points], separators=(",", ":")
    )


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
    from .. import metrics

    out: dict[str, Any] = {}
    for values in metrics.read(root, None, required=False).values():
        out.update(values)
    return out


@barrier
def run(
    project: Project,
    assignments: Sequence[str],
    *,
    name: str | None = None,
    allow_new: bool = False,
    wait: bool = False,
) -> ExpResult:
    """One experiment in the workspace, as `dvc exp run -S ... -n NAME` does (holding the
    project lock: it rewrites params, dvc.lock and outputs as repro does)."""
    keys = [a.split("=", 1)[0] for a in assignments if "=" in a]
    if len(keys) != len(assignments):
        raise UsageError("-S takes KEY=VALUE")
    at_revision.check_workspace(project.root)
    check_keys(project, keys, allow_new=allow_new)
    start = time.monotonic()
    with (
        project_lock.held(project.tmp_dir, wait=wait),
        _dvc.open_repo(project.root) as repo,
        _dvc.translated(),
    ):
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


@barrier
def push_experiment(
    project: Project,
    name: str,
    *,
    git_remote: str | None = None,
    dvc_remote: str | None = None,
    wait: bool = False,
) -> str:
    """Publish an experiment as `dvc exp push` does: its outputs to the DVC remote, then its
    ref to the git remote (scm.push: GITHUB_TOKEN over https, retries, never --force;
    by default the remote `git push` would use for the current branch)."""
    from .. import data

    ref = exp_ref(project.root, name)
    if ref is None:
        raise UsageError(f"no experiment named '{name}'")
    data.push(project, remote=dvc_remote, wait=wait)
    git_remote = git_remote or scm.default_remote(project.root)
    rejected = scm.push(
        project.root,
        git_remote,
        f"{ref}:{ref}",
        kept=f"the experiment {ref} is kept locally",
        hint=f"retry with 'mlopskit exp push {name}'",
    )
    if rejected is not None:
        from ..errors import RemoteError

        raise RemoteError(f"git push of {ref} was rejected: {rejected.strip()[-200:]}")
    return ref


@barrier
def fetch_experiments(project: Project, *, git_remote: str | None = None) -> list[str]:
    """Fetch every experiment ref from ``git_remote`` (default: the remote ``git push``
    would use for the current branch, as ``exp run --push`` sends them, else origin).
    It writes refs into the repository: a barrier while a journal waits."""
    git_remote = git_remote or scm.default_remote(project.root)
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
        from ..errors import RemoteError

        raise RemoteError(f"git fetch of experiments failed: {res.err.strip()[-200:]}")
    after = set(
        scm.git(project.root, "for-each-ref", "--format=%(refname)", "refs/exps").out.split()
    )
    return sorted(after - before)


@dataclass(frozen=True)
class ExpRow:
    name: str
    rev: str
    baseline: str
    created: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    kind: str = "experiment"  # or "baseline": the commit the experiments ran on


def _flatten_files(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for file, body in (data or {}).items():
        values = (body or {}).get("data") if isinstance(body, dict) else None
        for k, v in dotted.flatten(values or {}).items():
            out[k if file in ("params.yaml",) or len(data) == 1 else f"{file}:{k}"] = v
    return out


# How far back `exp show` looks for the commit experiments ran on: `exp promote` (and
# any commit after running experiments) moves HEAD past it, and DVC's own `exp show`
# then lists none until given `--rev` or `-n`.
BASELINE_DEPTH = 20


def experiment_baseline(root: Path) -> str | None:
    """The nearest first-parent ancestor of HEAD (HEAD included) that has experiments:
    their refs are ``refs/exps/<sha[:2]>/<sha[2:]>/<name>``. None when none has."""
    refs = scm.git(root, "for-each-ref", "--format=%(refname)", "refs/exps").out.split()
    shas = {
        parts[2] + parts[3]
        for parts in (r.split("/") for r in refs)
        if len(parts) >= 5 and parts[2] != "exec" and len(parts[2] + parts[3]) == 40
    }
    if not shas:
        return None
    chain = scm.git(
        root, "rev-list", "--first-parent", f"--max-count={BASELINE_DEPTH}", "HEAD", check=False
    ).out.split()
    return next((sha for sha in chain if sha in shas), None)


def show(
    project: Project, *, sort_by: str | None = None, all_baselines: bool = False
) -> list[ExpRow]:
    """The experiments of HEAD's baseline (or of every branch), each baseline's row first,
    as `dvc exp show` lists them; experiments best first by ``sort_by``. After `exp
    promote` (or any later commit) HEAD has none: the nearest ancestor that has them is
    shown too, under HEAD's row."""
    revs: list[str] | None = None
    if not all_baselines:
        # HEAD's row, then (when HEAD moved past it) the commit the experiments ran on.
        tip, base = scm.head(project.root), experiment_baseline(project.root)
        revs = list(dict.fromkeys(r for r in (tip or "HEAD", base) if r))
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        states = repo.experiments.show(revs=revs, all_branches=all_baselines)
    groups: list[tuple[ExpRow | None, list[ExpRow]]] = []
    for baseline in states:
        if baseline.rev == "workspace":
            continue
        head: ExpRow | None = None
        if baseline.data is not None:
            head = ExpRow(
                name=str(baseline.name or baseline.rev[:7]),
                rev=baseline.rev,
                baseline=str(baseline.rev),
                created=str(baseline.data.timestamp or ""),
                params=_flatten_files(baseline.data.params),
                metrics=_flatten_files(baseline.data.metrics),
                kind="baseline",
            )
        exps: list[ExpRow] = []
        for exp in baseline.experiments or []:
            for state in exp.revs:
                d = state.data
                if d is None:
                    continue
                exps.append(
                    ExpRow(
                        name=str(state.name or exp.name or state.rev[:7]),
                        rev=state.rev,
                        baseline=str(baseline.rev),
                        created=str(d.timestamp or ""),
                        params=_flatten_files(d.params),
                        metrics=_flatten_files(d.metrics),
                    )
                )
        groups.append((head, exps))
    if sort_by:
        direction = project.config.metrics.direction(sort_by) or "higher"
        every = [r for _, exps in groups for r in exps]
        if every and not any(sort_by in r.metrics for r in every):
            raise UsageError(
                f"--sort-by: no experiment has a metric '{sort_by}'",
                f"metrics: {', '.join(sorted({k for r in every for k in r.metrics}))}",
            )

        def key(r: ExpRow) -> tuple[int, float]:
            v = dotted.number(r.metrics.get(sort_by))
            if v is None:
                return (1, 0.0)
            return (0, -v if direction == "higher" else v)

        for _, exps in groups:
            exps.sort(key=key)
    return [r for head, exps in groups for r in ([head] if head else []) + exps]


@dataclass(frozen=True)
class Promoted:
    name: str
    branch: str | None
    commit: str | None
    committed: list[str]


@barrier
def promote(
    project: Project, name: str, *, branch: str | None = None, wait: bool = False
) -> Promoted:
    """Bring experiment NAME's params, lock and outputs into the workspace (and one commit),
    or into a new BRANCH whose tip is the experiment's commit, ready for a pull request.
    The project lock is held throughout: the workspace is never left half-applied."""
    with project_lock.held(project.tmp_dir, wait=wait):
        return _promote(project, name, branch=branch)


def _promote(project: Project, name: str, *, branch: str | None) -> Promoted:
    from ..pipeline import run as pipeline

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
