"""metrics: show, diff, history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ._base import _json, _project, cli
from .params import _diff_format


@cli.group()
def metrics() -> None:
    """Show and diff metrics."""


@metrics.command("show")
@click.option("--json", "as_json", is_flag=True)
def metrics_show(as_json: bool) -> None:
    """Metrics of the workspace."""
    from .. import metrics as m
    from ..formatting import fmt, text_table

    shown = m.show_workspace(_project())
    res = shown.values
    for path, source in shown.not_pulled.items():
        pull = f"pull it: mlopskit data pull {path}"
        if path in res:
            click.echo(f"note: {path}: not in the workspace, read from {source} ({pull})", err=True)
        else:
            click.echo(
                f"warning: {path}: declared but not in the workspace/cache ({pull})", err=True
            )
    if as_json:
        _json(res)
        return
    if not res and shown.not_pulled:
        click.echo("No metrics to show: the declared metrics files are not pulled (see above).")
        return
    if not res:
        click.echo("No metrics: no stage in dvc.yaml declares a metrics file (stage add -M FILE).")
        return
    rows = [[path, k, fmt(v)] for path, values in res.items() for k, v in values.items()]
    click.echo(text_table(["file", "metric", "value"], rows), nl=False)


@metrics.command("diff")
@_diff_format
@click.option("--changed-only", is_flag=True, help="Hide unchanged metrics.")
def metrics_diff(base: str, as_json: bool, as_md: bool, changed_only: bool) -> None:
    """Metrics at --base vs the workspace: absolute and relative change."""
    from .. import metrics as m
    from ..formatting import fmt, fmt_change, md_table, text_table

    res = m.diff(_project(), base=base, all_metrics=not changed_only)
    if as_json:
        _json([dict(dataclasses.asdict(c), better=c.better) for c in res])
        return
    rows = []
    for c in res:
        abs_s, rel_s = fmt_change(c.change, c.rel)
        mark = {True: "better", False: "worse", None: ""}[c.better]
        rows.append([c.path, c.key, fmt(c.old), fmt(c.new), abs_s, rel_s, mark or c.status])
    headers = ["file", "metric", base, "workspace", "change", "change %", "verdict"]
    click.echo((md_table if as_md else text_table)(headers, rows), nl=False)


@metrics.command("history")
@click.option(
    "-n",
    "--max-count",
    "limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many commits.",
)
@click.option("--rev", default="HEAD", show_default=True, help="Revision or range (A..B).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a PNG chart of the metrics.",
)
def metrics_history(
    limit: int, rev: str, as_json: bool, as_csv: bool, plot_file: Path | None
) -> None:
    """Metrics and params for each commit along first-parent history (newest first)."""
    import csv
    import io

    from ..formatting import fmt, fmt_param, text_table
    from ..report import history as h

    rows = h.history(_project(), rev=rev, limit=limit)
    metric_cols, param_cols = h.columns(rows)
    if plot_file is not None:
        h.plot(rows, plot_file)
    if as_json:
        _json(rows)
    elif as_csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["commit", "date", "subject", *metric_cols, *param_cols])
        for r in rows:
            w.writerow(
                [
                    r.commit,
                    r.date,
                    r.subject,
                    *(r.metrics.get(c, "") for c in metric_cols),
                    *(r.params.get(c, "") for c in param_cols),
                ]
            )
        click.echo(buf.getvalue(), nl=False)
    else:
        varying = [c for c in param_cols if len({repr(r.params.get(c)) for r in rows}) > 1]
        headers = ["commit", "date", *metric_cols, *varying, "subject"]
        table = [
            [
                r.commit[:8],
                r.date[:10],
                *(fmt(r.metrics.get(c)) for c in metric_cols),
                *(fmt_param(r.params.get(c)) for c in varying),
                r.subject[:50],
            ]
            for r in rows
        ]
        click.echo(text_table(headers, table), nl=False)
    if plot_file is not None and not (as_json or as_csv):
        click.echo(f"Chart written to {plot_file}")
