"""monitor: drift of live data against the reference."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MlopskitError
from ._base import _github_output, _json, cli


@cli.group()
def monitor() -> None:
    """Watch production data: drift against the training data."""


@monitor.command("drift")
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The training data (default: monitor.reference in mlopskit.yaml).",
)
@click.option(
    "--current",
    type=click.Path(path_type=Path),
    help="The production data, or a prediction log folder (serve --log-dir) "
    "(default: monitor.current).",
)
@click.option("--columns", help="Comma-separated features (default: monitor.columns, or all).")
@click.option("--threshold", "psi", type=float, help="PSI above which a feature drifts.")
@click.option("--ks-pvalue", type=float, help="KS p-value below which a numeric feature drifts.")
@click.option("--chi2-pvalue", type=float, help="Chi-square p-value for categorical features.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a Markdown report here, with a PNG of the most drifted features.",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-fail", is_flag=True, help="Exit 0 on drift (bad input is still exit 2).")
@click.option("--github-output", is_flag=True, help="Write drifted=true|false to $GITHUB_OUTPUT.")
def monitor_drift(
    reference: Path | None,
    current: Path | None,
    columns: str | None,
    psi: float | None,
    ks_pvalue: float | None,
    chi2_pvalue: float | None,
    out: Path | None,
    as_json: bool,
    no_fail: bool,
    github_output: bool,
) -> None:
    """PSI and KS (numeric) or PSI and chi-square (categorical) per feature; exit 1 on drift."""
    from ..config import MonitorConfig
    from ..errors import OperationFailed
    from ..formatting import fmt, text_table
    from ..project import Project
    from ..quality import drift

    try:
        cfg = Project.find().config.monitor  # every default comes from `monitor:`
    except MlopskitError:
        cfg = MonitorConfig()  # outside a project: the config's own defaults
    ref = reference or (Path(cfg.reference) if cfg.reference else None)
    cur = current or (Path(cfg.current) if cfg.current else None)
    if ref is None or cur is None:
        raise click.UsageError(
            "give --reference and --current, or monitor.reference and "
            "monitor.current in mlopskit.yaml"
        )
    cols = (
        [c.strip() for c in columns.split(",") if c.strip()]
        if columns
        else (list(cfg.columns) if cfg.columns else None)
    )
    res = drift.detect(
        ref,
        cur,
        columns=cols,
        psi_threshold=psi if psi is not None else cfg.psi_threshold,
        ks_pvalue=ks_pvalue if ks_pvalue is not None else cfg.ks_pvalue,
        chi2_pvalue=chi2_pvalue if chi2_pvalue is not None else cfg.chi2_pvalue,
    )
    if out is not None:
        drift.write_report(res, out)
        click.echo(f"Drift report written to {out}", err=True)
    if github_output:
        _github_output({"drifted": str(not res.ok).lower()})
    if as_json:
        _json({"drifted": res.drifted, "features": res.features})
    else:
        rows = [
            [
                f.name,
                f.kind,
                fmt(f.psi),
                f.test,
                fmt(f.p_value),
                "DRIFT" if f.drifted else "ok",
                f.reason,
            ]
            for f in res.features
        ]
        click.echo(
            text_table(["feature", "kind", "psi", "test", "p-value", "", "why"], rows), nl=False
        )
    if res.drifted and not no_fail:
        raise OperationFailed(f"drift in {len(res.drifted)} feature(s): {', '.join(res.drifted)}")
