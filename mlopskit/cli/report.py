"""report: the pull-request report, and posting it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ._base import _project, cli
from .gate import _FORK_HELP, _REPRO_HELP


@cli.command("report")
@click.option("--base", help="Revision to compare with (default: merge-base with main).")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here; PNG plots go to FILE's folder, in FILE_assets/.",
)
@click.option(
    "--format", "fmt_", type=click.Choice(["md", "json", "html"]), default="md", show_default=True
)
@click.option(
    "--post",
    is_flag=True,
    help="Create or update the pull request's comment "
    "(uses GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_API_URL).",
)
@click.option(
    "--post-from",
    "post_from",
    type=click.Path(file_okay=False, path_type=Path),
    help="Post a report built elsewhere (DIR/report.json + DIR/report_assets), "
    "validated as untrusted data; needs no repository.",
)
@click.option("--no-plots", is_flag=True, help="Skip rendering plots.")
@click.option("--before", metavar="SHA", help="CT: compare with the tip before the push.")
@click.option(
    "--repro-outcome",
    type=click.Choice(["success", "failure", "cancelled", "skipped"]),
    help=_REPRO_HELP,
)
@click.option("--fork", type=click.BOOL, default=False, metavar="true|false", help=_FORK_HELP)
def report_cmd(
    base: str | None,
    out: Path | None,
    fmt_: str,
    post: bool,
    post_from: Path | None,
    no_plots: bool,
    before: str | None,
    repro_outcome: str | None,
    fork: bool,
) -> None:
    """Metrics, params, plots and data changes vs --base, with the gate's verdict."""
    from ..report import build as rep
    from ..report import render

    if post_from is not None:
        from ..report import github
        from ..report import load as report_io

        posted = github.post_report(report_io.load_untrusted(post_from))
        click.echo(f"{posted.action} comment {posted.url}")
        for note in posted.notes:
            click.echo(note, err=True)
        return
    from ..report.charts import PngWorker

    # The PNG renderer starts before anything else: its warm-up is the critical path.
    worker = None if no_plots else PngWorker()
    try:
        project = _project()
    except BaseException:
        if worker is not None:
            worker.close()
        raise
    if before is not None:
        from ..report import gate

        base = base or gate.previous_tip(project, before)
    r = rep.build(
        project,
        base=base,
        with_plots=not no_plots,
        worker=worker,
        repro=repro_outcome or "",
        fork=fork,
    )
    images: dict[str, str] | None = None
    if out is not None and fmt_ != "html":
        images = _write_images(r, out)
    if post:
        from ..report import github

        posted = github.post_report(r)
        click.echo(f"{posted.action} comment {posted.url}", err=True)
        for note in posted.notes:
            click.echo(note, err=True)
    if fmt_ == "json":
        text = json.dumps(render.as_json(r, images), indent=2, default=str) + "\n"
    elif fmt_ == "html":
        text = render.as_html(r)
    else:
        text = render.markdown(r, images=images)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"Report written to {out}", err=True)
    elif not post:
        click.echo(text, nl=False)


def _write_images(r: Any, out: Path) -> dict[str, str]:
    from ..report.render import image_key

    assets = out.parent / f"{out.stem}_assets"
    images: dict[str, str] = {}
    for p in r.plots:
        for side, data in (("base", p.base_png), ("head", p.head_png)):
            if data is not None:
                assets.mkdir(parents=True, exist_ok=True)
                key = image_key(p.name, side)
                (assets / key).write_bytes(data)
                images[key] = f"{assets.name}/{key}"
    return images
