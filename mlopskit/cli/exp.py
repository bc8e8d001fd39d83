"""exp: experiments and parallel sweeps."""

from __future__ import annotations

from typing import Any

import click

from ._base import _github_output, _json, _ok, _project, cli


@cli.group()
def exp() -> None:
    """Experiments (DVC experiments): one run, parallel sweeps, comparison, promotion."""


@exp.command("run")
@click.option("-S", "--set-param", "assignments", multiple=True, metavar="KEY=VALUE")
@click.option("-n", "--name", help="Experiment name.")
@click.option("--allow-new", is_flag=True, help="Allow params that do not exist yet.")
@click.option(
    "--point",
    "point_json",
    help="A sweep point as JSON (from 'exp plan'; the "
    "matrix jobs of sweep.yml pass it through env:).",
)
@click.option(
    "--pull", is_flag=True, help="First pull the data the workspace tracks (a fresh CI runner)."
)
@click.option("--push", is_flag=True, help="Then push its outputs (DVC) and its ref (git).")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def exp_run(
    assignments: tuple[str, ...],
    name: str | None,
    allow_new: bool,
    point_json: str | None,
    pull: bool,
    push: bool,
    wait: bool,
) -> None:
    """Run one experiment in the workspace (dvc exp run), params checked first."""
    from ..experiments import runs as experiments
    from ..formatting import fmt

    project = _project()
    if point_json is not None:
        if assignments or name:
            raise click.UsageError("--point replaces -S and --name")
        pt = experiments.parse_point(point_json)
        assignments, name = pt.assignments, pt.name
    if pull:
        from .. import data

        data.pull(project, allow_missing=True, wait=wait)
    res = experiments.run(project, assignments, name=name, allow_new=allow_new, wait=wait)
    if push:
        ref = experiments.push_experiment(project, res.name, wait=wait)
        click.echo(f"Pushed {ref} and its outputs.")
    _ok(
        f"Experiment {res.name} ({(res.rev or '')[:7]}): "
        + ", ".join(f"{k}={fmt(v)}" for k, v in res.metrics.items())
    )


def _sweep_table(points: list[Any], as_json: bool) -> None:
    from ..formatting import fmt, text_table

    if as_json:
        _json(points)
        return
    keys = list(dict.fromkeys(k for p in points for k in p.params))
    mkeys = list(dict.fromkeys(k for p in points for k in p.metrics))
    rows = [
        [
            p.name,
            p.status,
            *(str(p.params.get(k, "")) for k in keys),
            *(fmt(p.metrics.get(k)) for k in mkeys),
            f"{p.seconds:.1f}s",
            p.error[:60],
        ]
        for p in points
    ]
    click.echo(text_table(["point", "status", *keys, *mkeys, "time", "error"], rows), nl=False)


@exp.command("sweep")
@click.option(
    "-S",
    "--set-param",
    "specs",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help="Values to sweep (the grid is their product).",
)
@click.option("--random", "random_k", type=int, help="Run K random points of the grid.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("-n", "--name", "prefix", help="Name prefix of the points (PREFIX-1, ...).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--json", "as_json", is_flag=True)
def exp_sweep(
    specs: tuple[str, ...],
    random_k: int | None,
    jobs: int,
    prefix: str | None,
    seed: int,
    as_json: bool,
) -> None:
    """Run a grid of experiments JOBS at a time, each in its own workspace."""
    from ..errors import OperationFailed
    from ..experiments import runs as experiments
    from ..experiments import sweep

    project = _project()
    points = experiments.plan(project, specs, random_k=random_k, prefix=prefix, seed=seed)
    click.echo(f"Sweep: {len(points)} point(s), {jobs} at a time", err=True)

    def progress(p: Any, res: Any) -> None:
        if res is not None:
            mark = "done" if res.status == "done" else res.status.upper()
            click.echo(
                f"  {res.name}: {mark} ({res.seconds:.1f}s)  [{p.done} done, "
                f"{p.running} running, {p.failed} failed of {p.total}]",
                err=True,
            )

    res = sweep.sweep(project, points, jobs=jobs, on_progress=progress)
    _sweep_table(res.points, as_json)
    if res.failed:
        raise OperationFailed(
            f"{len(res.failed)} of {len(res.points)} point(s) failed: "
            + ", ".join(p.name for p in res.failed)
        )


@exp.command("plan")
@click.option("--grid", required=True, help="'KEY=V1,V2 KEY2=V3,V4' (what sweep.yml takes).")
@click.option(
    "--random",
    "random_k",
    type=int,
    default=0,
    show_default=True,
    help="Only K random points (0: the whole grid).",
)
@click.option("-n", "--name", "prefix", help="Name prefix of the points.")
@click.option("--github-output", is_flag=True, help="Write points= and count= to $GITHUB_OUTPUT.")
def exp_plan(grid: str, random_k: int, prefix: str | None, github_output: bool) -> None:
    """Validate a sweep grid and print its points as JSON (the matrix of sweep.yml)."""
    import shlex

    from ..experiments import runs as experiments

    try:
        specs = shlex.split(grid)
    except ValueError as exc:
        raise click.UsageError(f"--grid: {exc}") from None
    points = experiments.plan(
        _project(),
        specs,
        random_k=random_k or None,
        prefix=prefix,
        max_points=experiments.MATRIX_LIMIT,
    )
    text = experiments.points_json(points)
    click.echo(text)
    if github_output:
        _github_output({"points": text, "count": str(len(points))})


@exp.command("fetch")
@click.option(
    "--remote", "git_remote", default=None, help="Git remote (default: the branch's, else origin)."
)
def exp_fetch(git_remote: str | None) -> None:
    """Fetch every experiment ref from the git remote (as `dvc exp pull` without data)."""
    from ..experiments import runs as experiments

    new = experiments.fetch_experiments(_project(), git_remote=git_remote)
    click.echo(f"Fetched {len(new)} experiment ref(s).")


@exp.command("show")
@click.option("--sort-by", help="Metric to sort by, best first (direction from mlopskit.yaml).")
@click.option("-A", "--all", "all_baselines", is_flag=True, help="Experiments of every branch.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--md", "as_md", is_flag=True)
def exp_show(
    sort_by: str | None, all_baselines: bool, as_json: bool, as_csv: bool, as_md: bool
) -> None:
    """Experiments of HEAD (or of the commit they ran on, after `exp promote`), under
    their baseline's row, best first by --sort-by."""
    import csv
    import io

    from ..experiments import runs as experiments
    from ..formatting import fmt, fmt_param, md_table, text_table

    rows = experiments.show(_project(), sort_by=sort_by, all_baselines=all_baselines)
    if as_json:
        _json(rows)
        return
    pkeys = list(dict.fromkeys(k for r in rows for k in r.params))
    varying = [k for k in pkeys if len({repr(r.params.get(k)) for r in rows}) > 1] or pkeys[:3]
    mkeys = list(dict.fromkeys(k for r in rows for k in r.metrics))

    def label(i: int) -> str:
        """As `dvc exp show` draws them: each baseline, its experiments under it."""
        r = rows[i]
        if r.kind == "baseline" or as_csv:
            return r.name
        last = i + 1 == len(rows) or rows[i + 1].kind == "baseline"
        return ("└── " if last else "├── ") + r.name

    headers = ["experiment", *(["kind"] if as_csv else []), "rev", *varying, *mkeys]
    table = [
        [
            label(i),
            *([r.kind] if as_csv else []),
            r.rev[:7],
            *(fmt_param(r.params.get(k)) for k in varying),
            *(fmt(r.metrics.get(k)) for k in mkeys),
        ]
        for i, r in enumerate(rows)
    ]
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(table)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo((md_table if as_md else text_table)(headers, table), nl=False)


@exp.command("promote")
@click.argument("name")
@click.option(
    "--branch",
    help="Create this branch at the experiment instead of committing it to the current branch.",
)
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def exp_promote(name: str, branch: str | None, wait: bool) -> None:
    """Bring experiment NAME into the workspace as one commit, or into a new branch."""
    from ..experiments import runs as experiments

    res = experiments.promote(_project(), name, branch=branch, wait=wait)
    if res.branch:
        _ok(
            f"Branch {res.branch} at {(res.commit or '')[:8]} holds experiment {name}: "
            f"push it and open a pull request"
        )
    else:
        _ok(f"Committed experiment {name} as {(res.commit or '')[:8]}: {', '.join(res.committed)}")
