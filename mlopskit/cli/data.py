"""data: add, push, pull, status, schema, validate, update, check-updates."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._base import _github_output, _json, _ok, _project, cli


@cli.group()
def data() -> None:
    """Version data with DVC: add, push, pull, status, update, check-updates, and
    schemas (infer, validate)."""


@data.command("add", short_help="Track PATHS with DVC and commit their pointers.")
@click.argument("paths", nargs=-1, required=True)
@click.option("-m", "--message", help="Commit message.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def data_add(paths: tuple[str, ...], message: str | None, wait: bool) -> None:
    """Track PATHS with DVC and commit their pointers (and nothing else staged)."""
    from .. import data as d

    res = d.add(_project(), paths, message=message, wait=wait)
    if res.commit:
        _ok(f"Versioned {', '.join(res.targets)} in {res.commit[:8]}")
        click.echo("Committed: " + ", ".join(res.committed))
    else:
        click.echo(f"No changes: {', '.join(res.targets)} already versioned as they are.")


def _transfer_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel transfers.")(f)
    f = click.option("-r", "--remote", help="DVC remote name (default: the default remote).")(f)
    return click.argument("targets", nargs=-1)(f)


@data.command("push", short_help="Upload DVC-tracked data to the remote.")
@_transfer_options
@click.option(
    "--rev",
    "revs",
    multiple=True,
    metavar="REV",
    help="Also push what commit REV points at (repeatable), e.g. an unpushed earlier commit.",
)
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def data_push(
    targets: tuple[str, ...],
    remote: str | None,
    jobs: int | None,
    revs: tuple[str, ...],
    wait: bool,
) -> None:
    """Upload DVC-tracked data (default: all the workspace uses) to the remote."""
    from .. import data as d

    res = d.push(_project(), targets, remote=remote, jobs=jobs, revs=revs, wait=wait)
    _ok(
        f"{res.count} file(s) pushed to '{res.remote}'"
        if res.count
        else f"Everything is already in '{res.remote}'."
    )


@data.command("pull")
@_transfer_options
@click.option("--allow-missing", is_flag=True, help="Skip files that are not in the remote.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def data_pull(
    targets: tuple[str, ...], remote: str | None, jobs: int | None, allow_missing: bool, wait: bool
) -> None:
    """Download DVC-tracked data from the remote and check it out."""
    from .. import data as d

    res = d.pull(
        _project(), targets, remote=remote, jobs=jobs, allow_missing=allow_missing, wait=wait
    )
    _ok(
        f"{res.count} file(s) fetched from '{res.remote}'"
        if res.count
        else "Everything is up to date."
    )


@data.command("status")
@click.argument("targets", nargs=-1)
@click.option("-r", "--remote", help="DVC remote to compare with.")
@click.option("--no-remote", is_flag=True, help="Do not contact the remote.")
@click.option("--json", "as_json", is_flag=True)
def data_status(
    targets: tuple[str, ...], remote: str | None, no_remote: bool, as_json: bool
) -> None:
    """Workspace vs cache vs remote for DVC-tracked data."""
    from .. import data as d
    from ..formatting import text_table

    res = d.status(_project(), targets, remote=remote, cloud=not no_remote)
    if as_json:
        _json(res)
        return
    if res.clean:
        where = f" and remote '{res.remote}'" if res.remote and not no_remote else ""
        _ok(f"Data is up to date: workspace, cache{where} agree.")
        return
    rows = [[p, ", ".join(states)] for p, states in res.entries.items()]
    click.echo(text_table(["path", "state"], rows), nl=False)


@data.group("schema")
def data_schema() -> None:
    """Schemas of tabular data (CSV, TSV, Parquet)."""


@data_schema.command("infer")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema here (YAML); default: print it.",
)
@click.option("--sample-rows", type=click.IntRange(min=1), help="Infer from the first N rows.")
def data_schema_infer(path: Path, out: Path | None, sample_rows: int | None) -> None:
    """Infer a schema: types, ranges, allowed values, null fractions, uniqueness, row counts."""
    from ..quality import schema

    s = schema.infer(path, sample_rows=sample_rows)
    if out is None:
        click.echo(schema.dumps(s), nl=False)
    else:
        schema.write(s, out)
        _ok(f"Schema of {path} ({len(s.columns)} columns) written to {out}")


@data.command("validate", short_help="Validate a data file against a schema.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--schema", "schema_file", required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--chunksize", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the result as JSON here (a pipeline stage's output).",
)
def data_validate(
    path: Path, schema_file: Path, chunksize: int, as_json: bool, out: Path | None
) -> None:
    """Validate PATH against a schema, streaming it in chunks (exit 1 on violations)."""
    from ..errors import OperationFailed
    from ..formatting import text_table
    from ..quality import schema, validation

    res = validation.validate(path, schema.load(schema_file), chunksize=chunksize)
    payload = {
        "path": res.path,
        "rows": res.rows,
        "ok": res.ok,
        "violations": [dataclasses.asdict(v) for v in res.violations],
        "notes": list(res.notes),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if as_json:
        _json(payload)
    elif not res.ok:
        rows = [
            [
                v.column or "(table)",
                v.rule,
                v.expected,
                v.found,
                ", ".join(map(str, v.rows)) + (" ..." if v.count > len(v.rows) else ""),
            ]
            for v in res.violations
        ]
        click.echo(
            text_table(["column", "rule", "expected", "found", "example rows"], rows), nl=False
        )
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    if not res.ok:
        raise OperationFailed(
            f"{path}: {len(res.violations)} schema violation(s) in {res.rows} rows ({schema_file})"
        )
    if not as_json:
        _ok(f"{path}: {res.rows} rows match {schema_file}")


@data.command("update", short_help="Re-import `dvc import-url` sources that changed.")
@click.argument("targets", nargs=-1)
def data_update(targets: tuple[str, ...]) -> None:
    """Re-import `dvc import-url` sources that changed upstream (dvc update)."""
    from .. import imported

    changed = imported.update(_project(), list(targets) or None)
    if changed:
        _ok(f"Updated {', '.join(changed)}: commit the pointers ('mlopskit commit') to keep them")
    else:
        click.echo("Every imported source is up to date.")


@data.command("check-updates", short_help="Which imported sources changed upstream (no download).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--github-output", is_flag=True, help="Write updates=true|false to $GITHUB_OUTPUT.")
def data_check_updates(as_json: bool, github_output: bool) -> None:
    """Which imported sources (dvc import-url) changed upstream, without downloading them."""
    from .. import imported
    from ..formatting import text_table

    res = imported.check_updates(_project())
    if as_json:
        _json(res)
    elif not res:
        click.echo("No imported data sources (dvc import-url) in this project.")
    else:
        rows = [[s.path, s.source, "changed" if s.changed else "up to date", s.detail] for s in res]
        click.echo(text_table(["import", "source", "status", "detail"], rows), nl=False)
    if github_output:
        _github_output({"updates": str(any(s.changed for s in res)).lower()})
