"""stage: add, list, remove pipeline stages in dvc.yaml."""

from __future__ import annotations

import click

from ._base import _json, _ok, _project, cli


@cli.group()
def stage() -> None:
    """Pipeline stages in dvc.yaml."""


@stage.command("add", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.option("--cmd", "cmd", help="The command (a shell string, stored as written).")
@click.option("-d", "--dep", "deps", multiple=True, help="A dependency path.")
@click.option("-o", "--out", "outs", multiple=True, help="An output path (DVC-cached).")
@click.option(
    "-p",
    "--param",
    "params_",
    multiple=True,
    help="Params: 'train.C,train.max_iter' or 'file.yaml:key'.",
)
@click.option("-M", "--metrics", multiple=True, help="A metrics file (committed to git).")
@click.option("--plots", multiple=True, help="A plots data file (committed to git).")
@click.option("-f", "--force", is_flag=True, help="Replace a stage of the same name.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def stage_add(
    name: str,
    cmd: str | None,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    params_: tuple[str, ...],
    metrics: tuple[str, ...],
    plots: tuple[str, ...],
    force: bool,
    wait: bool,
    argv: tuple[str, ...],
) -> None:
    """Add stage NAME to dvc.yaml.

    Give the command with --cmd, or after `--` as separate arguments, which are
    quoted safely: `mlopskit stage add train -- python train.py --lr 0.1`.
    """
    from ..pipeline import stages

    if bool(cmd) == bool(argv):
        raise click.UsageError("give the command either with --cmd or after --, not both")
    res = stages.stage_add(
        _project(),
        name,
        cmd=cmd if cmd else list(argv),
        deps=deps,
        outs=outs,
        params_=params_,
        metrics=metrics,
        plots=plots,
        force=force,
        wait=wait,
    )
    _ok(f"Added stage '{res.name}' to dvc.yaml: {res.cmd}")


@stage.command("list")
@click.option("--json", "as_json", is_flag=True)
def stage_list(as_json: bool) -> None:
    """Stages in the order they run, and whether they are up to date."""
    from ..formatting import text_table
    from ..pipeline import stages

    res = stages.stage_list(_project())
    if as_json:
        _json(res)
        return
    if not res:
        click.echo("No stages in dvc.yaml: add one with 'mlopskit stage add NAME ... -- CMD'.")
        return
    rows = [[s.name, "changed" if s.changed else "up to date", s.cmd] for s in res]
    click.echo(text_table(["stage", "status", "cmd"], rows), nl=False)


@stage.command("remove")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def stage_remove(name: str, wait: bool) -> None:
    """Remove stage NAME from dvc.yaml and dvc.lock (as `dvc remove` does).

    Its outputs stay on disk and leave .gitignore; dvc.yaml keeps its comments.
    """
    from ..pipeline import stages

    res = stages.stage_remove(_project(), name, wait=wait)
    where = "dvc.yaml and dvc.lock" if res.lock_entry else "dvc.yaml"
    _ok(f"Removed stage '{res.name}' from {where}.")
    if res.kept_outputs:
        click.echo(
            "Its outputs stay on disk: "
            + ", ".join(res.kept_outputs)
            + " (delete them, or version them with `mlopskit data add`)."
        )
    if res.unignored:
        click.echo("No longer in .gitignore: " + ", ".join(res.unignored))
    for entry in res.still_named:
        click.echo(f"warning: dvc.yaml still names it under {entry}", err=True)
