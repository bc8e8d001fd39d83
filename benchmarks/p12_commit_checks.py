"""P12: what ``mlopskit commit --push``'s safety checks cost. ``mlopskit commit --push``
vs the plain ``git add -A && git commit && git push``, and the whole job (``mlopskit
data push && mlopskit commit --push`` vs ``dvc push && git add -A && git commit && git
push``); then each check alone, through the library functions that implement it.

Setup (untimed, once): ``mlopskit quickstart`` (trained, committed, its default local
DVC remote), a bare ``origin`` with ``main`` pushed and its upstream set.

Before every run (either side, untimed): ``train.C`` set to a new value (a text edit of
``params.yaml``) and ``dvc repro``, so every run commits and pushes a new ``dvc.lock``,
params and metrics, and a new model (no value repeats: DVC's run-cache never restores
one). In the ``commit`` case the preparation also runs ``dvc push``: both sides then
only commit and push git, and mlopskit's side adds what it checks first: DVC's status
(dvc.lock must match params, code and data), the remote check (every output dvc.lock
names is in the DVC remote), and its lock. In the ``push+commit`` case each side uploads
the new model itself. ``origin`` never moves under the project, so no rebase (and no
pre-rebase check) happens in these two cases.

The checks alone (one process, in the quickstart project, warm: DVC imported, each
timed after one untimed call, whose time is printed too; the median of ``--check-runs``
calls):

* ``stale work tree``: ``consistency.stale_stages(root, "HEAD")`` on a clean tree:
  opening DVC's repo and its status (what ``commit`` runs before committing, and
  after a rebase);
* ``stale worktree``: ``consistency.stale_stages(root, "HEAD~1")``: the same in a
  temporary git worktree of an older commit (``model register`` of a commit that is
  not the checked-out one);
* ``remote check``: ``data.outputs_not_in_remote`` on an open repo (DVC's
  ``data_status(not_in_remote=True, remote_refresh=True)``);
* ``pre-rebase docs``: ``consistency.upstream_pipeline_changes`` when upstream added a
  docs-only commit (a git diff, then DVC's index for the pipeline inputs);
* ``pre-rebase none``: the same when upstream changed no file (git only).
* ``ssh listing`` (unless ``--no-ssh``; skipped without ``/usr/sbin/sshd``): the
  listing ``gc --cloud`` makes of an SSH remote, and a push does not: 256 prefixes of one
  object each, served by a real sshd on 127.0.0.1 (``tests/sshd.py``), through dvc-ssh.

Afterwards ``origin``'s ``main`` must be the project's HEAD, the work tree clean, and
the history one commit per run.

    python benchmarks/p12_commit_checks.py [--runs N] [--check-runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

# No target: the figures say what the checks cost (README, Reliability). Comparison
# wants one; an infinite target is never missed and is not printed.
NO_TARGET = float("inf")

CHECKS = r"""
import json, statistics, sys, time
from pathlib import Path
from mlopskit import _dvc, data
from mlopskit.pipeline import consistency
from mlopskit.project import Project

runs = int(sys.argv[1])
project = Project.find(Path.cwd())
root = project.root


def stale_here():
    assert consistency.stale_stages(root, "HEAD") == []


def stale_worktree():
    assert consistency.stale_stages(root, "HEAD~1") == []


def remote():
    with _dvc.open_repo(root) as repo:
        list(repo.index.stages)  # commit has read the index already
        t = time.perf_counter()
        name, missing = data.outputs_not_in_remote(project, repo)
        took = time.perf_counter() - t
    assert name and missing == [], (name, missing)
    return took


def pre_rebase_docs():
    assert consistency.upstream_pipeline_changes(project, "main", "docs") == []


def pre_rebase_none():
    assert consistency.upstream_pipeline_changes(project, "main", "main") == []


out = {}
first = {}
for name, fn in [
    ("stale work tree", stale_here),
    ("stale worktree", stale_worktree),
    ("remote check", remote),
    ("pre-rebase docs", pre_rebase_docs),
    ("pre-rebase none", pre_rebase_none),
]:
    t = time.perf_counter()
    inner = fn()  # warm: imports, DVC's caches as a running command has them
    first[name] = inner if inner is not None else time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        inner = fn()
        times.append(inner if inner is not None else time.perf_counter() - t)
    out[name] = times
print(json.dumps({"first": first, "warm": out}))
"""

SSH_LISTING = r"""
import json, sys, time
from pathlib import Path
from mlopskit import _dvc

runs = int(sys.argv[1])
with _dvc.open_repo(Path.cwd()) as repo:
    odb = repo.cloud.get_remote_odb("ssh", "gc", hash_name="md5")
    t = time.perf_counter()
    objects, _ = _dvc._listing(odb, tmp=True, now=time.time())  # connects first
    first = time.perf_counter() - t
    assert len(objects) == 256, len(objects)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        _dvc._listing(odb, tmp=True, now=time.time())
        times.append(time.perf_counter() - t)
print(json.dumps({"first": first, "warm": times}))
"""


def ssh_listing(box: c.Sandbox, project: Path, runs: int) -> tuple[float, list[float]] | None:
    """The listing ``gc --cloud`` makes of an SSH remote (what a push does not make): a
    real sshd on 127.0.0.1 (tests/sshd.py) serving a store with 256 prefixes of one
    object each, listed through dvc-ssh. None when sshd is not installed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import sshd

    if not sshd.SSHD.is_file():
        print(f"ssh listing: skipped ({sshd.SSHD} not found)")
        return None
    store = box.path("ssh-store")
    for i in range(256):
        prefix = store / "files" / "md5" / f"{i:02x}"
        prefix.mkdir(parents=True)
        (prefix / ("0" * 30)).write_bytes(b"x")
    env = box.env
    with sshd.running(box.path("sshd")) as server:
        dvc = ["dvc", "remote"]
        c.run([*dvc, "add", "--local", "ssh", server.url(store)], cwd=project, env=env)
        c.run(
            [*dvc, "modify", "--local", "ssh", "keyfile", str(server.client_key)],
            cwd=project,
            env=env,
        )
        res = c.run([sys.executable, "-c", SSH_LISTING, str(runs)], cwd=project, env=env)
        c.run([*dvc, "remove", "--local", "ssh"], cwd=project, env=env)
    out = json.loads(res.stdout)
    return float(out["first"]), [float(t) for t in out["warm"]]


CHECK_NOTES = {
    "stale work tree": 'consistency.stale_stages(root, "HEAD"): open DVC repo + status',
    "stale worktree": 'consistency.stale_stages(root, "HEAD~1"): in a temporary worktree',
    "remote check": "data.outputs_not_in_remote (DVC data_status, remote refreshed)",
    "pre-rebase docs": "upstream_pipeline_changes, upstream changed README.md",
    "pre-rebase none": "upstream_pipeline_changes, upstream changed nothing",
}


def git_out(args: list[str], project: Path, env: dict[str, str]) -> str:
    return c.run(["git", *args], cwd=project, env=env).stdout.decode().strip()


def report(comps: list[c.Comparison]) -> None:
    """c.print_table's table, and the ratios without a verdict: there is no target."""
    for comp in comps:
        print(f"{comp.name} ({comp.note}):")
        for side in (comp.ours, comp.plain):
            t, cpu = side.times, side.cpu
            print(
                f"   {side.label}: median {c._fmt(statistics.median(t))}, min {c._fmt(min(t))}, "
                f"max {c._fmt(max(t))}, cpu median {c._fmt(statistics.median(cpu))}"
            )
        added = statistics.median(comp.ours.times) - statistics.median(comp.plain.times)
        print(
            f"   ratio mlopskit/plain {comp.ratio:.2f} (median), {comp.ratio_min:.2f} (min), "
            f"{comp.ratio_paired:.2f} (per-round), {comp.ratio_cpu:.2f} (cpu); "
            f"mlopskit adds {c._fmt(added)} (medians)"
        )


def main() -> int:
    p = c.parser(__doc__ or "", default_runs=5)
    p.add_argument(
        "--check-runs",
        type=int,
        default=10,
        help="timed calls of each check in the library (default: 10)",
    )
    p.add_argument("--no-ssh", action="store_true", help="skip the SSH listing (needs sshd)")
    args = p.parse_args()
    runs = 1 if args.quick else args.runs
    check_runs = 2 if args.quick else args.check_runs
    with c.Sandbox("p12", keep=args.keep) as box:
        env = box.env
        info = c.machine_info(env, box.root)
        info["load"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        c.print_header(f"P12 mlopskit commit --push and its checks ({runs} runs each)", info)
        print("building the quickstart project ...", file=sys.stderr, flush=True)
        project = c.quickstart_project(box.path("demo"), env)
        origin = box.path("origin.git")
        c.run(["git", "init", "-q", "--bare", str(origin)], cwd=box.root, env=env)
        c.run(["git", "remote", "add", "origin", str(origin)], cwd=project, env=env)
        c.run(["git", "push", "-q", "-u", "origin", "main"], cwd=project, env=env)
        remotes = c.run(["dvc", "remote", "list"], cwd=project, env=env).stdout.decode()
        if not remotes.strip():
            raise SystemExit("the quickstart project has no DVC remote")
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
        start_head = git_out(["rev-parse", "HEAD"], project, env)
        values = (f"{0.2 + i / 1000:.3f}" for i in itertools.count())

        params = project / "params.yaml"

        def change(push: bool) -> None:
            text, n = re.subn(r"(?m)^  C: .*$", f"  C: {next(values)}", params.read_text())
            if n != 1:
                raise SystemExit(f"{params}: no single train.C to change")
            params.write_text(text)
            c.run([dvc, "repro", "-q"], cwd=project, env=env)
            if push:
                c.run([dvc, "push", "-q"], cwd=project, env=env)

        commit_msg = ["-m", "pipeline: new C"]
        git_commit = [["git", "add", "-A"], ["git", "commit", "-q", *commit_msg]]
        comps = [
            c.Comparison(
                "commit",
                NO_TARGET,
                c.commands(
                    "mlopskit commit --push",
                    [[mlopskit, "commit", "--push", *commit_msg]],
                    cwd=project,
                    env=env,
                    prepare=lambda: change(True),
                ),
                c.commands(
                    "git add -A && git commit && git push",
                    [*git_commit, ["git", "push", "-q"]],
                    cwd=project,
                    env=env,
                    prepare=lambda: change(True),
                ),
                note="data already in the DVC remote (dvc push untimed)",
            ),
            c.Comparison(
                "push+commit",
                NO_TARGET,
                c.commands(
                    "mlopskit data push && mlopskit commit --push",
                    [[mlopskit, "data", "push"], [mlopskit, "commit", "--push", *commit_msg]],
                    cwd=project,
                    env=env,
                    prepare=lambda: change(False),
                ),
                c.commands(
                    "dvc push && git add -A && git commit && git push",
                    [[dvc, "push", "-q"], *git_commit, ["git", "push", "-q"]],
                    cwd=project,
                    env=env,
                    prepare=lambda: change(False),
                ),
                note="each side uploads the new model",
            ),
        ]
        for comp in comps:
            c.interleave(comp, runs, warmup=1)
        # Every run committed and pushed; nothing left behind.
        head = git_out(["rev-parse", "HEAD"], project, env)
        pushed = git_out(["ls-remote", str(origin), "refs/heads/main"], project, env).split()[0]
        count = int(git_out(["rev-list", "--count", f"{start_head}..HEAD"], project, env))
        want = 2 * 2 * (runs + 1)
        dirty = git_out(["status", "--porcelain"], project, env)
        if pushed != head or count != want or dirty:
            raise SystemExit(
                f"after the runs: origin main {pushed}, HEAD {head}, {count} new commits "
                f"(want {want}), work tree changes: {dirty!r}"
            )
        status = c.run([dvc, "status", "-c", "-q"], cwd=project, env=env, check=False)
        if status.returncode != 0:
            raise SystemExit(f"dvc status -c: the remote lacks outputs:\n{status.stdout!r}")

        print("timing the checks alone ...", file=sys.stderr, flush=True)
        c.run(["git", "branch", "docs"], cwd=project, env=env)
        c.run(
            ["git", "worktree", "add", "-q", str(box.path("docs-wt")), "docs"], cwd=project, env=env
        )
        with (box.path("docs-wt") / "README.md").open("a") as f:
            f.write("\nA docs-only change upstream.\n")
        c.run(["git", "commit", "-q", "-am", "docs"], cwd=box.path("docs-wt"), env=env)
        c.run(["git", "worktree", "remove", str(box.path("docs-wt"))], cwd=project, env=env)
        res = c.run([sys.executable, "-c", CHECKS, str(check_runs)], cwd=project, env=env)
        measured = json.loads(res.stdout)
        checks: dict[str, list[float]] = measured["warm"]
        first: dict[str, float] = measured["first"]
        ssh = None if args.no_ssh else ssh_listing(box, project, check_runs)
        load_after = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())

        print()
        report(comps)
        print()
        print(f"the checks alone ({check_runs} calls each, warm, in one process):")
        width = max(map(len, checks))
        for name, times in checks.items():
            print(
                f"   {name:<{width}}  median {c._fmt(statistics.median(times))}, "
                f"min {c._fmt(min(times))}, max {c._fmt(max(times))}, first call "
                f"{c._fmt(first[name])}  ({CHECK_NOTES[name]})"
            )
        print("   (the first call of the first check includes importing DVC)")
        if ssh is not None:
            print(
                f"   ssh listing (256 prefixes, sshd on 127.0.0.1): median "
                f"{c._fmt(statistics.median(ssh[1]))}, min {c._fmt(min(ssh[1]))}, first call "
                f"{c._fmt(ssh[0])} (connecting)  (dvc-ssh's find of the remote, as gc --cloud)"
            )
        print(f"\nload average: {info['load']} before, {load_after} after")
        if args.json:
            data: dict[str, Any] = {
                "benchmark": "P12",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": dict(info),
                "load_after": load_after,
                "comparisons": [
                    {**comp.as_dict(), "target_ratio": None, "result": None} for comp in comps
                ],
                "checks": {
                    name: {
                        "note": CHECK_NOTES[name],
                        "first": first[name],
                        "wall": t,
                        "median": statistics.median(t),
                    }
                    for name, t in checks.items()
                },
                "ssh_listing": None
                if ssh is None
                else {"first": ssh[0], "wall": ssh[1], "median": statistics.median(ssh[1])},
            }
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
