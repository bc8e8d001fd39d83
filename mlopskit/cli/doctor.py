"""doctor."""

from __future__ import annotations

from pathlib import Path

import click

from ._base import _json, cli

_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red"}


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds the DVC remote gets to answer.",
)
def doctor(as_json: bool, strict: bool, timeout: float) -> None:
    """Check the project's health and name the fix for each problem (exit 1 on a failure)."""
    from .. import doctor as d
    from ..errors import MlopskitError, OperationFailed
    from ..project import Project

    try:
        project = Project.find()
    except MlopskitError:
        project = Project(root=Path.cwd().resolve())  # not a project: the checks say why
    report = d.check(project, timeout=timeout)
    if as_json:
        _json({"root": report.root, "ok": report.ok, "checks": report.checks})
    else:
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            mark = click.style(f"{c.status:<4}", fg=_COLOURS[c.status], bold=c.status != "ok")
            click.echo(f"{mark}  {c.name:<{width}}  {c.message}")
            if c.fix and c.status != "ok":
                click.echo(f"      {'':<{width}}  fix: {c.fix}")
    problems = report.failed + (report.warnings if strict else [])
    if problems:
        raise OperationFailed(f"{len(problems)} problem(s): {', '.join(c.name for c in problems)}")
    if not as_json:
        click.secho(
            "Healthy." + (f" ({len(report.warnings)} warning(s))" if report.warnings else ""),
            fg="green",
        )
