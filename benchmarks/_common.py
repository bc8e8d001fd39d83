"""Shared helpers for the benchmark scripts (standard library only).

Every script:

* isolates itself in a temporary directory (HOME, XDG dirs, DVC's global/system/site
  dirs, a throw-away git identity) that is deleted at exit;
* times mlopskit and the plain dvc/git equivalent in the same run, interleaved
  (A B, B A, A B, ...) so that drift (page cache, CPU frequency, other load) hits
  both sides alike;
* prints the median and min of each side, the ratio mlopskit/plain and PASS/MISS
  against the target (the median ratio decides).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN_DIR = str(Path(sys.executable).parent)

# --------------------------------------------------------------------------- arguments


def parser(description: str, *, default_runs: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--runs",
        type=int,
        default=default_runs,
        help=f"timed runs of each side (default: {default_runs})",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and few runs: a smoke test")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (prints its path)"
    )
    return p


# --------------------------------------------------------------------------- isolation


class Sandbox:
    """A temporary directory with an isolated environment for git, DVC and mlopskit."""

    def __init__(self, prefix: str, *, keep: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"mlopskit-bench-{prefix}-"))
        self.keep = keep
        iso = self.root / "_env"
        subs = ("home", "xdg-data", "xdg-cache", "xdg-config", "dvc-global", "dvc-system")
        for sub in (*subs, "dvc-site", "pycache"):
            (iso / sub).mkdir(parents=True)
        gitconfig = iso / "gitconfig"
        gitconfig.write_text(
            "[user]\n\tname = mlopskit bench\n\temail = bench@mlopskit.invalid\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
            "[gc]\n\tauto = 0\n"
        )
        env = dict(os.environ)
        # Anything that could point at the user's own state goes.
        for var in list(env):
            if var.startswith(("DVC_", "GIT_", "MLOPSKIT_")):
                del env[var]
        env.update(
            {
                "HOME": str(iso / "home"),
                "XDG_DATA_HOME": str(iso / "xdg-data"),
                "XDG_CACHE_HOME": str(iso / "xdg-cache"),
                "XDG_CONFIG_HOME": str(iso / "xdg-config"),
                "DVC_GLOBAL_CONFIG_DIR": str(iso / "dvc-global"),
                "DVC_SYSTEM_CONFIG_DIR": str(iso / "dvc-system"),
                "DVC_SITE_CACHE_DIR": str(iso / "dvc-site"),
                "DVC_NO_ANALYTICS": "1",
                "DVC_STUDIO_OFFLINE": "1",
                "GIT_CONFIG_GLOBAL": str(gitconfig),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_TERMINAL_PROMPT": "0",
                "PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""),
            }
        )
        env.pop("VIRTUAL_ENV", None)
        # Byte-code: with PYTHONDONTWRITEBYTECODE set (as in some CI images) the editable
        # mlopskit would be recompiled on every start while DVC's wheels ship .pyc files.
        # A private pycache prefix puts both sides on the same footing (the warm-up runs
        # fill it) and writes nothing into the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(iso / "pycache")
        self.env: dict[str, str] = env
        atexit.register(self.cleanup)
        # SIGTERM (and SIGHUP) must clean up too: turn them into a normal exit.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)

    def which(self, name: str) -> str:
        found = shutil.which(name, path=self.env["PATH"])
        if found is None:
            raise SystemExit(f"{name}: not found on PATH ({self.env['PATH']})")
        return found

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def cleanup(self) -> None:
        if not self.root.exists():
            return
        if self.keep:
            print(f"kept {self.root}", file=sys.stderr)
            return
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- running


class CommandFailed(RuntimeError):
    pass


def run(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` with stdout/stderr captured (both sides pay for the same pipes)."""
    res = subprocess.run(
        list(cmd), cwd=cwd, env=dict(env), capture_output=True, stdin=subprocess.DEVNULL
    )
    if check and res.returncode != 0:
        out = (res.stdout + res.stderr).decode("utf-8", "replace").strip()
        raise CommandFailed(f"{' '.join(cmd)} (in {cwd}) exited {res.returncode}:\n{out}")
    return res


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds, and CPU seconds (user + system) of the
    processes it started, which other load on the machine disturbs much less."""

    wall: float
    cpu: float


def timed(
    cmds: Sequence[Sequence[str]], *, cwd: Path, env: Mapping[str, str], check: bool = True
) -> Sample:
    """Run ``cmds`` one after another (stopping at the first failure) and time them."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for cmd in cmds:
        run(cmd, cwd=cwd, env=env, check=check)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


@dataclass
class Side:
    """One side of a comparison: ``prepare`` (untimed) then ``measure``."""

    label: str
    measure: Callable[[], Sample]
    prepare: Callable[[], None] | None = None
    samples: list[Sample] = field(default_factory=list)

    def once(self) -> Sample:
        if self.prepare is not None:
            self.prepare()
        return self.measure()

    @property
    def times(self) -> list[float]:
        return [s.wall for s in self.samples]

    @property
    def cpu(self) -> list[float]:
        return [s.cpu for s in self.samples]

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wall": self.times,
            "cpu": self.cpu,
            "median": statistics.median(self.times),
            "min": min(self.times),
            "max": max(self.times),
            "cpu_median": statistics.median(self.cpu),
        }


def commands(
    label: str,
    cmds: Sequence[Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    prepare: Callable[[], None] | None = None,
) -> Side:
    """A side that times running ``cmds`` in ``cwd``."""
    frozen = [list(c) for c in cmds]
    return Side(label, lambda: timed(frozen, cwd=cwd, env=env), prepare)


@dataclass
class Comparison:
    name: str
    target: float
    ours: Side
    plain: Side
    note: str = ""
    # An absolute target (seconds, median of mlopskit's side); the ratio is then for
    # information and ``target`` is ignored.
    limit: float | None = None

    @property
    def ratio(self) -> float:
        """The verdict: median wall time of mlopskit over median wall time of plain."""
        return statistics.median(self.ours.times) / statistics.median(self.plain.times)

    @property
    def ratio_min(self) -> float:
        return min(self.ours.times) / min(self.plain.times)

    @property
    def ratio_paired(self) -> float:
        """Median over rounds of mlopskit/plain within the round (drift cancels)."""
        pairs = zip(self.ours.times, self.plain.times, strict=True)
        return statistics.median(a / b for a, b in pairs)

    @property
    def ratio_cpu(self) -> float:
        return statistics.median(self.ours.cpu) / statistics.median(self.plain.cpu)

    @property
    def passed(self) -> bool:
        if self.limit is not None:
            return statistics.median(self.ours.times) <= self.limit
        return self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        side = Side.as_dict

        return {
            "name": self.name,
            "note": self.note,
            "target_ratio": None if self.limit is not None else self.target,
            "target_seconds": self.limit,
            "mlopskit": side(self.ours),
            "plain": side(self.plain),
            "ratio_median": self.ratio,
            "ratio_min": self.ratio_min,
            "ratio_paired_median": self.ratio_paired,
            "ratio_cpu_median": self.ratio_cpu,
            "result": "PASS" if self.passed else "MISS",
        }


def interleave(comp: Comparison, runs: int, *, warmup: int = 1, progress: bool = True) -> None:
    """``warmup`` untimed rounds, then ``runs`` timed rounds alternating the order:
    mlopskit first in even rounds, plain first in odd rounds."""
    for _ in range(warmup):
        comp.ours.once()
        comp.plain.once()
    for i in range(runs):
        order = (comp.ours, comp.plain) if i % 2 == 0 else (comp.plain, comp.ours)
        for side in order:
            side.samples.append(side.once())
        if progress:
            a, b = comp.ours.samples[-1], comp.plain.samples[-1]
            print(
                f"  [{comp.name}] run {i + 1}/{runs}: mlopskit {a.wall:.3f} s "
                f"(cpu {a.cpu:.3f}), plain {b.wall:.3f} s (cpu {b.cpu:.3f})",
                file=sys.stderr,
                flush=True,
            )


# --------------------------------------------------------------------------- reporting


def machine_info(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    def version(cmd: list[str]) -> str:
        try:
            res = run(cmd, cwd=cwd, env=env)
        except (CommandFailed, OSError) as exc:
            return f"? ({exc})"
        return res.stdout.decode().strip().splitlines()[0]

    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "source": _source_revision(env),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "memory": mem,
        "dvc": version([shutil.which("dvc", path=env["PATH"]) or "dvc", "--version"]),
        "git": version(["git", "--version"]),
        "mlopskit": version([shutil.which("mlopskit", path=env["PATH"]) or "mlopskit", "-V"]),
    }


def _source_revision(env: Mapping[str, str]) -> str:
    """Where the mlopskit being measured lives, and its git revision (read-only git calls)."""
    res = subprocess.run(
        [sys.executable, "-c", "import mlopskit, os; print(os.path.dirname(mlopskit.__file__))"],
        env=dict(env),
        capture_output=True,
        text=True,
    )
    pkg = res.stdout.strip()
    if res.returncode != 0 or not pkg:
        return "?"
    git = ["git", "--no-optional-locks", "-C", pkg]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return pkg
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
    ).stdout.strip()
    return f"{pkg} @ {head.stdout.strip()}" + (" (with uncommitted changes)" if dirty else "")


def print_header(title: str, info: Mapping[str, str]) -> None:
    print(f"== {title}")
    for k, v in info.items():
        print(f"   {k:<9} {v}")
    print()


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def print_table(comps: Sequence[Comparison]) -> None:
    headers = ["case", "side", "runs", "median", "min", "max", "cpu median"]
    rows: list[list[str]] = []
    for c in comps:
        for s in (c.ours, c.plain):
            rows.append(
                [
                    c.name,
                    s.label,
                    str(len(s.times)),
                    _fmt(statistics.median(s.times)),
                    _fmt(min(s.times)),
                    _fmt(max(s.times)),
                    _fmt(statistics.median(s.cpu)),
                ]
            )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print()
    for c in comps:
        verdict = "PASS" if c.passed else "MISS"
        if c.limit is not None:
            print(
                f"{c.name}: mlopskit median {_fmt(statistics.median(c.ours.times))}; "
                f"target <= {_fmt(c.limit)}: {verdict}"
            )
        print(
            f"{c.name}: ratio mlopskit/plain = {c.ratio:.3f} (median), {c.ratio_min:.3f} (min); "
            + (f"target <= {c.target:g}: {verdict}" if c.limit is None else "no ratio target")
        )
        print(
            f"   also: {c.ratio_paired:.3f} (median of per-round ratios), "
            f"{c.ratio_cpu:.3f} (median CPU time)"
        )
        if c.note:
            print(f"   {c.note}")


def dump_json(
    path: str | None, benchmark: str, info: Mapping[str, str], comps: Sequence[Comparison]
) -> None:
    if not path:
        return
    data = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": dict(info),
        "comparisons": [c.as_dict() for c in comps],
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {path}")


# --------------------------------------------------------------------------- projects


def plain_repo(path: Path, env: Mapping[str, str]) -> Path:
    """An empty git + DVC repository with one commit (what `mlopskit init` adopts)."""
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "-b", "main"], cwd=path, env=env)
    run(["dvc", "init", "-q"], cwd=path, env=env)
    run(["git", "commit", "-q", "-m", "init"], cwd=path, env=env)
    return path


def quickstart_project(path: Path, env: Mapping[str, str]) -> Path:
    """``mlopskit quickstart PATH``: a trained, committed pipeline project."""
    run(["mlopskit", "quickstart", str(path)], cwd=path.parent, env=env)
    return path


# --------------------------------------------------------------------------- P4 and P4b


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested metrics/params as dotted keys (``train.lr``), as DVC shows them."""
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def history_comparison(
    case: str, target: float, repo: Path, commits: int, box: Sandbox
) -> Comparison:
    """``mlopskit metrics history -n COMMITS`` against ``dvc exp show --all-commits``; in
    the "cold" case DVC's experiment cache is deleted before each of its runs."""
    mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
    exp_cache = repo / ".dvc" / "tmp" / "exps" / "cache"

    def forget() -> None:
        shutil.rmtree(exp_cache, ignore_errors=True)

    return Comparison(
        case,
        target,
        commands(
            f"mlopskit metrics history -n {commits} --json",
            [[mlopskit, "metrics", "history", "-n", str(commits), "--json"]],
            cwd=repo,
            env=box.env,
        ),
        commands(
            "dvc exp show --all-commits --json",
            [[dvc, "exp", "show", "--all-commits", "--json"]],
            cwd=repo,
            env=box.env,
            prepare=forget if case == "cold" else None,
        ),
        note=(
            "DVC's .dvc/tmp/exps/cache deleted before each dvc run"
            if case == "cold"
            else "DVC's .dvc/tmp/exps/cache filled by the previous run"
        ),
    )


def history_outputs(
    repo: Path, commits: int, env: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """(mlopskit's rows, dvc exp show's rows by commit, the commits oldest first)."""
    ours = json.loads(
        run(
            ["mlopskit", "metrics", "history", "-n", str(commits), "--json"], cwd=repo, env=env
        ).stdout
    )
    theirs = json.loads(
        run(["dvc", "exp", "show", "--all-commits", "--json"], cwd=repo, env=env).stdout
    )
    dvc_rows = {e["rev"]: e for e in theirs if e.get("rev") != "workspace"}
    shas = run(["git", "rev-list", "--reverse", "HEAD"], cwd=repo, env=env).stdout.decode().split()
    return ours, dvc_rows, shas
