"""params, metrics (show, diff, history), check (the gate) and report."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._base import _json, _ok, _project, cli


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

    from .. import history as h
    from ..formatting import fmt, fmt_param, text_table

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


_REPRO_HELP = (
    "The outcome of this CI run's Reproduce step (success, failure, cancelled, skipped): "
    "the verdict is only 'passed' after success with dvc.lock matching."
)
_FORK_HELP = "true: the pull request comes from a fork (a failed repro is 'not evaluated')."


@cli.command("check")
@click.option("--base", help="Revision for regression rules (default: merge-base with main).")
@click.option(
    "--before",
    metavar="SHA",
    help="CT: compare with the branch's tip before the push (github.event.before); "
    "missing or all zeros: the last commit before HEAD whose dvc.lock changed.",
)
@click.option(
    "--repro-outcome",
    type=click.Choice(["success", "failure", "cancelled", "skipped"]),
    help=_REPRO_HELP,
)
@click.option("--fork", type=click.BOOL, default=False, metavar="true|false", help=_FORK_HELP)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="EXPR",
    help="A rule, e.g. 'accuracy >= 0.9' or 'rmse: max_increase 5%'.",
)
@click.option("--no-config", is_flag=True, help="Ignore the gates in mlopskit.yaml.")
@click.option("--allow-no-rules", is_flag=True, help="Pass (exit 0) when no rule is configured.")
@click.option("--json", "as_json", is_flag=True)
def check_cmd(
    base: str | None,
    before: str | None,
    repro_outcome: str | None,
    fork: bool,
    rules: tuple[str, ...],
    no_config: bool,
    allow_no_rules: bool,
    as_json: bool,
) -> None:
    """The quality gate: exit 1 when a rule fails (missing, NaN or non-numeric fails too),
    and, with --repro-outcome (CI), when the run did not reproduce the pipeline or
    dvc.lock does not match ('not evaluated' or 'failed', never 'passed')."""
    from .. import gate
    from ..errors import OperationFailed, UsageError

    project = _project()
    if base is not None and before is not None:
        raise UsageError("check: --base and --before are exclusive", "pass one of them")
    if before is not None:
        base = gate.previous_tip(project, before)
    verdict = None
    if repro_outcome is not None:
        in_sync, stale = gate.lock_status(project) if repro_outcome == "success" else (None, [])
        verdict = gate.verdict(
            None,
            repro=repro_outcome,
            fork=fork,
            remote_kind=project.config.ci.remote.kind,
            lock_in_sync=in_sync,
            out_of_sync=stale,
        )
        if verdict.state != gate.NO_GATE:
            fix = f" Fix: {verdict.fix}." if verdict.fix else ""
            raise OperationFailed(f"quality gate {verdict.state}: {verdict.reason}.{fix}")
    _check_rules(project, base, rules, no_config, allow_no_rules, as_json)


def _check_rules(
    project: Any,
    base: str | None,
    rules: tuple[str, ...],
    no_config: bool,
    allow_no_rules: bool,
    as_json: bool,
) -> None:
    from .. import gate
    from ..errors import OperationFailed
    from ..formatting import fmt, text_table

    if allow_no_rules and not rules and (no_config or not project.config.gates):
        click.echo("No quality gate configured (gates: in mlopskit.yaml): nothing to check.")
        return
    res = gate.check(project, base=base, rules=list(rules), config_rules=not no_config)
    if as_json:
        _json({"passed": res.passed, "base": res.base, "rules": res.outcomes})
    else:
        rows = [
            ["pass" if o.passed else "FAIL", o.rule, fmt(o.value), fmt(o.base), o.reason]
            for o in res.outcomes
        ]
        click.echo(text_table(["result", "rule", "value", "base", "why"], rows), nl=False)
    if not res.passed:
        raise OperationFailed(
            f"quality gate failed: {len(res.failed)} of {len(res.outcomes)} rule(s): "
            + "; ".join(o.rule for o in res.failed)
        )
    if not as_json:
        _ok(f"Quality gate passed ({len(res.outcomes)} rule(s)).")


@cli.group()
def gate() -> None:
    """The quality gate's rules (gates: in mlopskit.yaml), which `check` evaluates."""


@gate.command("add")
@click.argument("rules", nargs=-1, required=True, metavar="RULE...")
@click.option("--force", is_flag=True, help="Add a rule whose metric no metrics file holds.")
@click.option("--commit", is_flag=True, help="Commit mlopskit.yaml.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def gate_add(rules: tuple[str, ...], force: bool, commit: bool, wait: bool) -> None:
    """Add RULEs, e.g. 'rmse <= 3.0', 'r2 >= 0.8' or 'rmse: max_increase 5%'."""
    from .. import gate as g

    res = g.add_rules(_project(), list(rules), force=force, commit=commit, wait=wait)
    for note in res.notes:
        click.echo(f"warning: {note}", err=True)
    if res.changed:
        _ok("Added to gates in mlopskit.yaml: " + "; ".join(res.changed))
    else:
        click.echo("No changes: mlopskit.yaml already has these rules.")
    if res.commit:
        click.echo(f"Committed {res.commit[:8]}")


@gate.command("remove")
@click.argument("rules", nargs=-1, required=True, metavar="RULE...")
@click.option("--commit", is_flag=True, help="Commit mlopskit.yaml.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def gate_remove(rules: tuple[str, ...], commit: bool, wait: bool) -> None:
    """Remove RULEs from gates in mlopskit.yaml."""
    from .. import gate as g

    res = g.remove_rules(_project(), list(rules), commit=commit, wait=wait)
    _ok("Removed from gates in mlopskit.yaml: " + "; ".join(res.changed))
    if res.commit:
        click.echo(f"Committed {res.commit[:8]}")


@gate.command("list")
@click.option("--json", "as_json", is_flag=True)
def gate_list(as_json: bool) -> None:
    """The rules in mlopskit.yaml, with each metric's known direction."""
    from ..formatting import text_table
    from ..rules import parse_rule

    project = _project()
    rules = [parse_rule(r) for r in project.config.gates]
    if as_json:
        _json([r.text for r in rules])
        return
    if not rules:
        click.echo("No gate rules: add one with `mlopskit gate add RULE`.")
        return
    rows = [[r.text, project.config.metrics.direction(r.metric) or "?"] for r in rules]
    click.echo(text_table(["rule", "better"], rows), nl=False)


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
    from .. import report as rep
    from .. import report_render as render

    if post_from is not None:
        from .. import github, report_io

        posted = github.post_report(report_io.load_untrusted(post_from))
        click.echo(f"{posted.action} comment {posted.url}")
        for note in posted.notes:
            click.echo(note, err=True)
        return
    from ..charts import PngWorker

    # The PNG renderer starts before anything else: its warm-up is the critical path.
    worker = None if no_plots else PngWorker()
    try:
        project = _project()
    except BaseException:
        if worker is not None:
            worker.close()
        raise
    if before is not None:
        from .. import gate

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
        from .. import github

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
    from ..report_render import image_key

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
