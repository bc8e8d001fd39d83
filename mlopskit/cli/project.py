"""A project's life: init, quickstart, and recover (finish an interrupted step)."""

from __future__ import annotations

from pathlib import Path

import click

from ._base import _ok, _project, cli

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
    from .ci import _needs

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
        from .ci import _needs

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
