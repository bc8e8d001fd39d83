"""params: show, set, diff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ._base import _json, _project, cli


@cli.group()
def params() -> None:
    """Show, set and diff params."""


@params.command("show")
@click.option("--json", "as_json", is_flag=True)
def params_show(as_json: bool) -> None:
    """All params, flattened (train.C)."""
    from .. import params as p
    from ..formatting import fmt_param, text_table

    res = p.show(_project())
    if as_json:
        _json(res)
        return
    rows = [[k, fmt_param(v)] for k, v in res.items()]
    click.echo(text_table(["param", "value"], rows), nl=False)


@params.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--allow-new", is_flag=True, help="Allow keys that do not exist yet.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def params_set(assignments: tuple[str, ...], allow_new: bool, wait: bool) -> None:
    """Set params (typed like `dvc exp run -S`), keeping comments and order."""
    from .. import params as p
    from ..formatting import fmt_param

    res = p.set_params(_project(), assignments, allow_new=allow_new, wait=wait)
    if not res.changed:
        click.echo("No changes: the params already have these values.")
    for key, (old, new) in res.changed.items():
        click.echo(f"{key}: {fmt_param(old)} -> {fmt_param(new)}")


def _diff_format(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--md", "as_md", is_flag=True, help="Markdown table.")(f)
    f = click.option("--json", "as_json", is_flag=True)(f)
    return click.option(
        "--base", default="HEAD", show_default=True, help="Revision to compare with."
    )(f)


@params.command("diff")
@_diff_format
def params_diff(base: str, as_json: bool, as_md: bool) -> None:
    """Params changed between --base and the workspace."""
    from .. import params as p
    from ..formatting import fmt_param, md_table, text_table

    res = p.diff(_project(), base=base)
    if as_json:
        _json(res)
        return
    rows = [[c.key, fmt_param(c.old), fmt_param(c.new), c.status] for c in res]
    headers = ["param", base, "workspace", "status"]
    if not rows and not as_md:
        click.echo(f"No param changes since {base}.")
        return
    click.echo((md_table if as_md else text_table)(headers, rows), nl=False)
