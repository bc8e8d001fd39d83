"""remote: add and list DVC remotes."""

from __future__ import annotations

import click

from ._base import _json, _ok, _parse_kv, _project, cli


@cli.group()
def remote() -> None:
    """DVC remotes (credentials stay in .dvc/config.local)."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", is_flag=True, help="Make it the default remote.")
@click.option(
    "--credential",
    "credentials",
    multiple=True,
    metavar="KEY=VALUE",
    help="A credential option (e.g. password=..., access_key_id=...); "
    "written to .dvc/config.local only.",
)
@click.option("--local", is_flag=True, help="Write the whole remote to .dvc/config.local.")
@click.option("--force", is_flag=True, help="Replace a remote of the same name.")
def remote_add(
    name: str, url: str, default: bool, credentials: tuple[str, ...], local: bool, force: bool
) -> None:
    """Add a DVC remote NAME at URL."""
    from .. import remote as r
    from .._dvc import redact

    creds = _parse_kv(credentials, "--credential")
    res = r.add(_project(), name, url, default=default, credentials=creds, local=local, force=force)
    _ok(f"Added remote '{res.name}' -> {redact(res.url)}" + (" (default)" if res.default else ""))
    if res.options:
        click.echo(f"Credentials {', '.join(res.options)} written to .dvc/config.local")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True)
def remote_list(as_json: bool) -> None:
    """List DVC remotes (secrets redacted)."""
    from .. import remote as r
    from ..formatting import text_table

    res = r.list_remotes(_project())
    if as_json:
        _json(res)
        return
    rows = [
        [
            x.name + (" (default)" if x.default else ""),
            x.url,
            ", ".join(f"{k}={v}" for k, v in x.options.items()),
        ]
        for x in res
    ]
    click.echo(text_table(["name", "url", "options"], rows), nl=False)
