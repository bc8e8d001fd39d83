"""Running the pipeline: repro, commit, and validate (the checks every run starts with)."""

from __future__ import annotations

import click

from ._base import _ok, _project, cli


@cli.command("validate")
def validate_cmd() -> None:
    """Check dvc.yaml, params files and mlopskit.yaml without running anything."""
    from ..pipeline import stages

    res = stages.validate(_project())
    pointers = f" and {res.pointers} .dvc file(s)" if res.pointers else ""
    _ok(f"Valid: {res.stages} stage(s) in dvc.yaml{pointers}; every param they name exists.")


@cli.command("commit")
@click.argument("targets", nargs=-1)
@click.option("-m", "--message", default="pipeline: update state", show_default=True)
@click.option(
    "--push",
    is_flag=True,
    help="Push the branch to its git remote, rebasing and "
    "retrying (bounded) when the remote moved.",
)
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@click.option(
    "--pull-request",
    is_flag=True,
    help="With --push: push to a new branch and open a pull request (GITHUB_TOKEN, "
    "GITHUB_REPOSITORY) instead of pushing the current branch.",
)
@click.option(
    "--allow-missing-remote",
    is_flag=True,
    help="With --push: push the commit even when outputs it points at are not in the "
    "DVC remote (a fresh clone cannot pull them).",
)
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def commit_cmd(
    targets: tuple[str, ...],
    message: str,
    push: bool,
    retries: int,
    pull_request: bool,
    allow_missing_remote: bool,
    wait: bool,
) -> None:
    """Commit the pipeline's state (dvc.lock, params, metrics, plots data, pointers).

    What CT runs after `repro --push` and the quality gate.
    """
    from ..pipeline import run as pipeline

    if pull_request and not push:
        raise click.UsageError("--pull-request goes with --push")
    res = pipeline.commit_state(
        _project(),
        targets,
        message=message,
        push=push,
        retries=retries,
        pull_request=pull_request,
        allow_missing_remote=allow_missing_remote,
        wait=wait,
    )
    if res.commit:
        _ok(f"Committed {res.commit[:8]}: {', '.join(res.committed)}")
    else:
        click.echo("No changes to commit.")
    if res.pushed_to:
        click.echo(f"Pushed to '{res.pushed_to}'.")
    if res.pull_request:
        click.echo(f"Opened {res.pull_request}")


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--pull", is_flag=True, help="Fetch the data the stages need first.")
@click.option(
    "--push",
    is_flag=True,
    help="Push outputs and run-cache to the DVC remote "
    "(and, with --commit, the commit to the branch's upstream).",
)
@click.option("--commit", is_flag=True, help="Commit dvc.lock, params, metrics and plots data.")
@click.option("-m", "--message", help="Commit message for --commit.")
@click.option("-f", "--force", is_flag=True, help="Run stages even if nothing changed.")
@click.option("--dry", is_flag=True, help="Print what would run; run nothing.")
@click.option("--allow-dirty", is_flag=True, help="Commit even with uncommitted code changes.")
@click.option("-r", "--remote", help="DVC remote for --pull/--push.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def repro(
    targets: tuple[str, ...],
    pull: bool,
    push: bool,
    commit: bool,
    message: str | None,
    force: bool,
    dry: bool,
    allow_dirty: bool,
    remote: str | None,
    wait: bool,
) -> None:
    """Reproduce the pipeline (DVC's repro: only what changed runs)."""
    from ..pipeline import run as pipeline

    res = pipeline.repro(
        _project(),
        targets,
        pull=pull,
        push=push,
        commit=commit,
        message=message,
        force=force,
        dry=dry,
        allow_dirty=allow_dirty,
        remote=remote,
        wait=wait,
    )
    if dry:
        click.echo("Dry run: " + (", ".join(res.ran) if res.ran else "nothing would run"))
        return
    click.echo(("Ran: " + ", ".join(res.ran)) if res.ran else "Pipeline is up to date.")
    if res.pushed is not None:
        click.echo(f"Pushed {res.pushed} object(s) to DVC remote '{res.remote}'.")
    if commit:
        if res.commit:
            _ok(f"Committed {res.commit[:8]}: {', '.join(res.committed)}")
        else:
            click.echo("No changes to commit.")
    if res.git_pushed:
        click.echo(f"Pushed the commit to '{res.git_pushed}'.")
