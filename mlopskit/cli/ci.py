"""ci: generate and check the GitHub Actions workflows."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._base import _ok, _project, cli


@cli.group()
def ci() -> None:
    """GitHub Actions workflows: CI, continuous training, PR reports, retraining."""


@ci.command("generate")
@click.option("--force", is_flag=True, help="Overwrite workflows edited by hand.")
def ci_generate(force: bool) -> None:
    """Write .github/workflows/ from the ci: settings in mlopskit.yaml."""
    from ..ci import workflows

    res = workflows.generate(_project(), force=force, require_install=True)

    def shown(rel: str) -> str:  # as seen from where the user is (a monorepo's sub-folder)
        return Path(os.path.relpath(res.base / rel)).as_posix()

    for rel in res.written:
        click.echo(f"wrote {shown(rel)}")
    if res.unchanged:
        click.echo(f"unchanged: {', '.join(shown(r) for r in res.unchanged)}")
    for pin in res.kept_pins:
        click.echo(f"kept a newer pin (Dependabot's): {pin}")
    for line in res.configured:
        click.echo(line[0].upper() + line[1:])
    click.echo(f"Runners install mlopskit from {res.install} ({res.install_source})")
    _needs(res.warnings, res.needs)


def _needs(warnings: list[str], needs: list[str]) -> None:
    for warning in warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    if needs:
        click.echo("On GitHub, CI needs:")
        for need in needs:
            click.echo(f"  - {need}")


@ci.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ci_check(files: tuple[Path, ...]) -> None:
    """Check workflows: pins, permissions, injection; zizmor, actionlint, check-jsonschema."""
    from ..ci import workflows
    from ..errors import OperationFailed

    res = workflows.check(_project(), paths=[f.resolve() for f in files] or None)
    for f in res.findings:
        click.echo(f"{f.file}: [{f.tool}] {f.message}")
    for pin in res.newer_pins:
        click.echo(f"newer pin (accepted; Dependabot's): {pin}")
    for warning in res.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    click.echo(
        f"ran: {', '.join(res.ran)}"
        + (f"; not installed: {', '.join(res.missing)}" if res.missing else "")
    )
    if not res.ok:
        raise OperationFailed(f"{len(res.findings)} finding(s) in the workflows")
    _ok("Workflows pass every check that ran.")
