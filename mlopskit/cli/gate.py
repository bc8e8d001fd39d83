"""The quality gate: the `check` command and the `gate` group (add, remove, list)."""

from __future__ import annotations

from typing import Any

import click

from ._base import _json, _ok, _project, cli

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
    from ..errors import OperationFailed, UsageError
    from ..report import gate

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
    from ..errors import OperationFailed
    from ..formatting import fmt, text_table
    from ..report import gate

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
    from ..report import gate as g

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
    from ..report import gate as g

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
