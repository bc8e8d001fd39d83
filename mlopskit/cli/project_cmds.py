"""init, quickstart, stages, repro, commit, validate, recover."""

from __future__ import annotations

from pathlib import Path

import click

from ._base import _json, _ok, _project, cli

SUBDIR_HELP = (
    "Inside another git repository: a DVC project in a sub-folder of it (monorepo), "
    "committed there, workflows at its top. Default: DIRECTORY gets a repository of its own."
)


def _where(root: Path, enclosing: Path | None, git_root: Path | None) -> None:
    if enclosing is not None:
        click.echo(
            f"{root} is inside the git repository {enclosing}: made it a repository of its "
            "own (that one is not touched; --subdir makes a project in it instead)"
        )
    elif git_root is not None and git_root != root:
        click.echo(f"{root} is a DVC project in a sub-folder of the git repository {git_root}")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--remote", "remote_url", help="Default DVC remote: s3://, gs://, azure://, ssh:// or a path."
)
@click.option("--name", help="Project name (default: the directory name).")
@click.option(
    "--force", is_flag=True, help="Overwrite files that already exist (committed ones only)."
)
@click.option("--subdir", is_flag=True, help=SUBDIR_HELP)
@click.option(
    "--template",
    type=click.Choice(["classification", "none"]),
    default="classification",
    show_default=True,
    help="classification: the example pipeline (validate, prepare, train, evaluate), "
    "params, gates and a model artifact. none: a project of your own, with no stage, "
    "param, gate or artifact (add them with `stage add`, `params set`, `gate add`).",
)
def init(
    directory: Path | None,
    remote_url: str | None,
    name: str | None,
    force: bool,
    subdir: bool,
    template: str,
) -> None:
    """Create (or adopt) DIRECTORY as a git + DVC project and commit it."""
    from .. import scaffold

    res = scaffold.init(
        directory,
        remote_url=remote_url,
        name=name,
        force=force,
        subdir=subdir,
        template=template,
    )
    _where(res.root, res.enclosing, res.git_root)
    _ok(f"Initialized {res.root} ({len(res.written)} files written)")
    where = "in .dvc/config.local (not committed)" if res.remote_local_only else "in .dvc/config"
    click.echo(f"Default DVC remote '{res.remote_name}': {res.remote_url} {where}")
    if res.commit:
        click.echo(f"Committed {res.commit[:8]}")
    from .ci_cmds import _needs

    _needs(list(res.warnings), list(res.ci_needs))
    if template == "none":
        click.echo("No pipeline yet. Next: `mlopskit stage add NAME -d ... -o ... -- CMD`.")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--dataset",
    type=click.Choice(["breast_cancer", "wine"]),
    default="breast_cancer",
    show_default=True,
    help="Data set bundled with scikit-learn.",
)
@click.option("--remote", "remote_url", help="Default DVC remote (default: a local folder).")
@click.option("--name", help="Project name (default: the directory name).")
@click.option("--subdir", is_flag=True, help=SUBDIR_HELP)
def quickstart(
    directory: Path | None, dataset: str, remote_url: str | None, name: str | None, subdir: bool
) -> None:
    """Init a project, version a data set, train, commit and push the data: a model in one
    command."""
    from .. import _dvc
    from .. import quickstart as qs
    from ..formatting import fmt

    with _dvc.quiet():  # the stages' own lines tell the story; DVC's logging is noise here
        res = qs.quickstart(
            directory or Path("mlopskit-demo"),
            dataset=dataset,
            remote_url=remote_url,
            name=name,
            subdir=subdir,
        )
    click.echo("")
    _where(res.root, res.enclosing, res.git_root)
    _ok(f"Trained a model on the {res.dataset} data set ({res.rows} rows).")
    for path, values in res.metrics.items():
        click.echo(f"Metrics ({path}): " + ", ".join(f"{k}={fmt(v)}" for k, v in values.items()))
    click.echo(f"Project:  {res.root}")
    click.echo(f"Data:     {res.root / qs.RAW} (DVC-tracked, pointer committed)")
    click.echo(f"Model:    {res.root / 'models' / 'model.skops'}")
    click.echo(f"Remote:   {res.remote_name} -> {res.remote_url} ({res.pushed} objects pushed)")
    click.echo(f"Commits:  {len(res.commits)} ({', '.join(c[:8] for c in res.commits)})")
    if res.git_remote is None:
        click.echo(
            "Git:      no git remote yet (nothing pushed to git); to share it: "
            f"git remote add origin URL && git push -u origin {res.branch}"
        )
    else:
        click.echo(f"Git:      not pushed; run 'git push {res.git_remote} {res.branch}' when ready")
    click.echo("\nNext, try:")
    click.echo(f"  cd {res.root}")
    click.echo("  mlopskit params set train.C=0.1 && mlopskit repro")
    click.echo("  mlopskit metrics diff")
    if res.git_remote is None:
        click.echo("  mlopskit repro --commit -m 'try C=0.1'   (--push once it has a git remote)")
    else:
        click.echo("  mlopskit repro --commit --push -m 'try C=0.1'")
    if res.ci_warnings or res.ci_needs:
        from .ci_cmds import _needs

        click.echo("")
        _needs(list(res.ci_warnings), list(res.ci_needs))


@cli.command()
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def recover(wait: bool) -> None:
    """Complete or undo what an interrupted `data add` left behind."""
    from .. import data as d

    res = d.recover(_project(), wait=wait)
    if res.action == "none":
        click.echo("Nothing to recover.")
        return
    if res.restored:
        _ok(f"Restored from the cache: {', '.join(res.restored)}")
    if res.action == "completed":
        _ok(
            f"Completed the interrupted '{res.op}': committed {', '.join(res.files)}"
            + (f" in {res.commit[:8]}" if res.commit else "")
        )
    else:
        _ok(f"Undid the interrupted '{res.op}': restored {', '.join(res.files) or 'nothing'}")


@cli.command("validate")
def validate_cmd() -> None:
    """Check dvc.yaml, params files and mlopskit.yaml without running anything."""
    from .. import stages

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
    from .. import pipeline

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
    from .. import pipeline

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


@cli.group()
def stage() -> None:
    """Pipeline stages in dvc.yaml."""


@stage.command("add", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.option("--cmd", "cmd", help="The command (a shell string, stored as written).")
@click.option("-d", "--dep", "deps", multiple=True, help="A dependency path.")
@click.option("-o", "--out", "outs", multiple=True, help="An output path (DVC-cached).")
@click.option(
    "-p",
    "--param",
    "params_",
    multiple=True,
    help="Params: 'train.C,train.max_iter' or 'file.yaml:key'.",
)
@click.option("-M", "--metrics", multiple=True, help="A metrics file (committed to git).")
@click.option("--plots", multiple=True, help="A plots data file (committed to git).")
@click.option("-f", "--force", is_flag=True, help="Replace a stage of the same name.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def stage_add(
    name: str,
    cmd: str | None,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    params_: tuple[str, ...],
    metrics: tuple[str, ...],
    plots: tuple[str, ...],
    force: bool,
    wait: bool,
    argv: tuple[str, ...],
) -> None:
    """Add stage NAME to dvc.yaml.

    Give the command with --cmd, or after `--` as separate arguments, which are
    quoted safely: `mlopskit stage add train -- python train.py --lr 0.1`.
    """
    from .. import stages

    if bool(cmd) == bool(argv):
        raise click.UsageError("give the command either with --cmd or after --, not both")
    res = stages.stage_add(
        _project(),
        name,
        cmd=cmd if cmd else list(argv),
        deps=deps,
        outs=outs,
        params_=params_,
        metrics=metrics,
        plots=plots,
        force=force,
        wait=wait,
    )
    _ok(f"Added stage '{res.name}' to dvc.yaml: {res.cmd}")


@stage.command("list")
@click.option("--json", "as_json", is_flag=True)
def stage_list(as_json: bool) -> None:
    """Stages in the order they run, and whether they are up to date."""
    from .. import stages
    from ..formatting import text_table

    res = stages.stage_list(_project())
    if as_json:
        _json(res)
        return
    if not res:
        click.echo("No stages in dvc.yaml: add one with 'mlopskit stage add NAME ... -- CMD'.")
        return
    rows = [[s.name, "changed" if s.changed else "up to date", s.cmd] for s in res]
    click.echo(text_table(["stage", "status", "cmd"], rows), nl=False)


@stage.command("remove")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def stage_remove(name: str, wait: bool) -> None:
    """Remove stage NAME from dvc.yaml and dvc.lock (as `dvc remove` does).

    Its outputs stay on disk and leave .gitignore; dvc.yaml keeps its comments.
    """
    from .. import stages

    res = stages.stage_remove(_project(), name, wait=wait)
    where = "dvc.yaml and dvc.lock" if res.lock_entry else "dvc.yaml"
    _ok(f"Removed stage '{res.name}' from {where}.")
    if res.kept_outputs:
        click.echo(
            "Its outputs stay on disk: "
            + ", ".join(res.kept_outputs)
            + " (delete them, or version them with `mlopskit data add`)."
        )
    if res.unignored:
        click.echo("No longer in .gitignore: " + ", ".join(res.unignored))
    for entry in res.still_named:
        click.echo(f"warning: dvc.yaml still names it under {entry}", err=True)
