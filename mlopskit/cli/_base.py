"""The root command group and the helpers every command module shares."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__

if TYPE_CHECKING:
    from ..project import Project


def _project() -> Project:
    from ..project import Project

    project = Project.find()
    if project.cwd is not None:
        click.echo(f"mlopskit: project root {project.root}", err=True)
    return project


def _json(data: Any) -> None:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        return str(o)

    click.echo(json.dumps(data, indent=2, default=default, allow_nan=True))


def _ok(message: str) -> None:
    click.secho(message, fg="green")


def _parse_kv(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=what)
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _github_output(values: dict[str, str]) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise click.UsageError("--github-output needs GITHUB_OUTPUT (set by GitHub Actions)")
    with open(target, "a", encoding="utf-8") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in values.items())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="mlopskit")
@click.option("--traceback", is_flag=True, help="Show the full stack trace on errors.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Version data, params, code and models together, on DVC and Git.

    Every file mlopskit writes is plain DVC, Git or GTO state.
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback
