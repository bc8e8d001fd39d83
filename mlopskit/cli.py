"""The command line: parse arguments, call one library function, print the result.

The only module that imports click. Library modules are imported inside the
commands so that ``mlopskit --help`` does not pay for DVC, pandas or scikit-learn.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .errors import INTERRUPTED, PRECONDITION, USAGE, MlopskitError

if TYPE_CHECKING:
    from .project import Project


# --------------------------------------------------------------------------- helpers


def _project() -> Project:
    from .project import Project

    project = Project.find()
    if project.cwd is not None:
        click.echo(f"mlopskit: project root {project.root}", err=True)
    return project


def _json(data: Any) -> None:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        return str(o)

    click.echo(json.dumps(data, indent=2, default=default, allow_nan=True))


def _ok(message: str) -> None:
    click.secho(message, fg="green")


def _parse_kv(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=what)
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


# --------------------------------------------------------------------------- root


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="mlopskit")
@click.option("--traceback", is_flag=True, help="Show the full stack trace on errors.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Version data, params, code and models together, on DVC and Git.

    Every file mlopskit writes is plain DVC, Git or GTO state.
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--remote", "remote_url", help="Default DVC remote: s3://, gs://, azure://, ssh:// or a path."
)
@click.option("--name", help="Project name (default: the directory name).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path | None, remote_url: str | None, name: str | None, force: bool) -> None:
    """Create (or adopt) DIRECTORY as a git + DVC project and commit it."""
    from . import scaffold

    res = scaffold.init(directory, remote_url=remote_url, name=name, force=force)
    _ok(f"Initialized {res.root} ({len(res.written)} files written)")
    where = "in .dvc/config.local (not committed)" if res.remote_local_only else "in .dvc/config"
    click.echo(f"Default DVC remote '{res.remote_name}': {res.remote_url} {where}")
    if res.commit:
        click.echo(f"Committed {res.commit[:8]}")


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
def quickstart(
    directory: Path | None, dataset: str, remote_url: str | None, name: str | None
) -> None:
    """Init a project, version a data set, train, commit and push: a model in one command."""
    from . import quickstart as qs
    from .formatting import fmt

    res = qs.quickstart(
        directory or Path("mlopskit-demo"), dataset=dataset, remote_url=remote_url, name=name
    )
    click.echo("")
    _ok(f"Trained a model on the {res.dataset} data set ({res.rows} rows).")
    for path, values in res.metrics.items():
        click.echo(f"Metrics ({path}): " + ", ".join(f"{k}={fmt(v)}" for k, v in values.items()))
    click.echo(f"Project:  {res.root}")
    click.echo(f"Data:     {res.root / qs.RAW} (DVC-tracked, pointer committed)")
    click.echo(f"Model:    {res.root / 'models' / 'model.skops'}")
    click.echo(f"Remote:   {res.remote_name} -> {res.remote_url} ({res.pushed} objects pushed)")
    click.echo(f"Commits:  {len(res.commits)} ({', '.join(c[:8] for c in res.commits)})")
    click.echo("\nNext, try:")
    click.echo(f"  cd {res.root}")
    click.echo("  mlopskit params set train.C=0.1 && mlopskit repro")
    click.echo("  mlopskit metrics diff")
    click.echo("  mlopskit repro --commit --push -m 'try C=0.1'")


# --------------------------------------------------------------------------- data


@cli.group()
def data() -> None:
    """Version data with DVC: add, push, pull, status."""


@data.command("add")
@click.argument("paths", nargs=-1, required=True)
@click.option("-m", "--message", help="Commit message.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def data_add(paths: tuple[str, ...], message: str | None, wait: bool) -> None:
    """Track PATHS with DVC and commit their pointers (and nothing else staged)."""
    from . import data as d

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


@data.command("push")
@_transfer_options
def data_push(targets: tuple[str, ...], remote: str | None, jobs: int | None) -> None:
    """Upload DVC-tracked data (default: all the workspace uses) to the remote."""
    from . import data as d

    res = d.push(_project(), targets, remote=remote, jobs=jobs)
    _ok(
        f"{res.count} file(s) pushed to '{res.remote}'"
        if res.count
        else f"Everything is already in '{res.remote}'."
    )


@data.command("pull")
@_transfer_options
@click.option("--allow-missing", is_flag=True, help="Skip files that are not in the remote.")
def data_pull(
    targets: tuple[str, ...], remote: str | None, jobs: int | None, allow_missing: bool
) -> None:
    """Download DVC-tracked data from the remote and check it out."""
    from . import data as d

    res = d.pull(_project(), targets, remote=remote, jobs=jobs, allow_missing=allow_missing)
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
    from . import data as d
    from .formatting import text_table

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
    from . import schema

    s = schema.infer(path, sample_rows=sample_rows)
    if out is None:
        click.echo(schema.dumps(s), nl=False)
    else:
        schema.write(s, out)
        _ok(f"Schema of {path} ({len(s.columns)} columns) written to {out}")


@data.command("validate")
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
    from . import schema
    from .errors import OperationFailed
    from .formatting import text_table

    res = schema.validate(path, schema.load(schema_file), chunksize=chunksize)
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


@data.command("check-updates")
@click.option("--json", "as_json", is_flag=True)
@click.option("--github-output", is_flag=True, help="Write updates=true|false to $GITHUB_OUTPUT.")
def data_check_updates(as_json: bool, github_output: bool) -> None:
    """Which imported sources (dvc import-url) changed upstream, without downloading them."""
    from . import sources
    from .formatting import text_table

    res = sources.check_updates(_project())
    if as_json:
        _json(res)
    elif not res:
        click.echo("No imported data sources (dvc import-url) in this project.")
    else:
        rows = [[s.path, s.source, "changed" if s.changed else "up to date", s.detail] for s in res]
        click.echo(text_table(["import", "source", "status", "detail"], rows), nl=False)
    if github_output:
        _github_output({"updates": str(any(s.changed for s in res)).lower()})


def _github_output(values: dict[str, str]) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise click.UsageError("--github-output needs GITHUB_OUTPUT (set by GitHub Actions)")
    with open(target, "a", encoding="utf-8") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in values.items())


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
    type=click.Path(dir_okay=False, path_type=Path),
    help="The production data (default: monitor.current).",
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
    from . import drift
    from .errors import OperationFailed
    from .formatting import fmt, text_table

    cfg = None
    if reference is None or current is None or columns is None:
        from .project import Project

        try:
            cfg = Project.find().config.monitor
        except MlopskitError:
            cfg = None
    ref = reference or (Path(cfg.reference) if cfg and cfg.reference else None)
    cur = current or (Path(cfg.current) if cfg and cfg.current else None)
    if ref is None or cur is None:
        raise click.UsageError(
            "give --reference and --current, or monitor.reference and "
            "monitor.current in mlopskit.yaml"
        )
    cols = (
        [c.strip() for c in columns.split(",") if c.strip()]
        if columns
        else (list(cfg.columns) if cfg and cfg.columns else None)
    )
    res = drift.detect(
        ref,
        cur,
        columns=cols,
        psi_threshold=psi if psi is not None else (cfg.psi_threshold if cfg else 0.2),
        ks_pvalue=ks_pvalue if ks_pvalue is not None else (cfg.ks_pvalue if cfg else 0.01),
        chi2_pvalue=chi2_pvalue if chi2_pvalue is not None else (cfg.chi2_pvalue if cfg else 0.01),
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(drift.report_markdown(res, image_dir=out.parent), encoding="utf-8")
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


@cli.command()
def recover() -> None:
    """Complete or undo what an interrupted `data add` left behind."""
    from . import data as d

    res = d.recover(_project())
    if res.action == "none":
        click.echo("Nothing to recover.")
    elif res.action == "completed":
        _ok(
            f"Completed the interrupted '{res.op}': committed {', '.join(res.files)}"
            + (f" in {res.commit[:8]}" if res.commit else "")
        )
    else:
        _ok(f"Undid the interrupted '{res.op}': restored {', '.join(res.files) or 'nothing'}")


# --------------------------------------------------------------------------- remotes


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
    from . import remote as r
    from ._dvc import redact

    creds = _parse_kv(credentials, "--credential")
    res = r.add(_project(), name, url, default=default, credentials=creds, local=local, force=force)
    _ok(f"Added remote '{res.name}' -> {redact(res.url)}" + (" (default)" if res.default else ""))
    if res.options:
        click.echo(f"Credentials {', '.join(res.options)} written to .dvc/config.local")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True)
def remote_list(as_json: bool) -> None:
    """List DVC remotes (secrets redacted)."""
    from . import remote as r
    from .formatting import text_table

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


# --------------------------------------------------------------------------- pipeline


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
    argv: tuple[str, ...],
) -> None:
    """Add stage NAME to dvc.yaml.

    Give the command with --cmd, or after `--` as separate arguments, which are
    quoted safely: `mlopskit stage add train -- python train.py --lr 0.1`.
    """
    from . import pipeline

    if bool(cmd) == bool(argv):
        raise click.UsageError("give the command either with --cmd or after --, not both")
    res = pipeline.stage_add(
        _project(),
        name,
        cmd=cmd if cmd else list(argv),
        deps=deps,
        outs=outs,
        params_=params_,
        metrics=metrics,
        plots=plots,
        force=force,
    )
    _ok(f"Added stage '{res.name}' to dvc.yaml: {res.cmd}")


@stage.command("list")
@click.option("--json", "as_json", is_flag=True)
def stage_list(as_json: bool) -> None:
    """Stages in the order they run, and whether they are up to date."""
    from . import pipeline
    from .formatting import text_table

    res = pipeline.stage_list(_project())
    if as_json:
        _json(res)
        return
    rows = [[s.name, "changed" if s.changed else "up to date", s.cmd] for s in res]
    click.echo(text_table(["stage", "status", "cmd"], rows), nl=False)


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
    from . import pipeline

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
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
def commit_cmd(
    targets: tuple[str, ...],
    message: str,
    push: bool,
    retries: int,
    pull_request: bool,
    wait: bool,
) -> None:
    """Commit the pipeline's state (dvc.lock, params, metrics, plots data, pointers).

    What CT runs after `repro --push` and the quality gate.
    """
    from . import pipeline

    if pull_request and not push:
        raise click.UsageError("--pull-request goes with --push")
    res = pipeline.commit_state(
        _project(),
        targets,
        message=message,
        push=push,
        retries=retries,
        pull_request=pull_request,
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


@cli.command("validate")
def validate_cmd() -> None:
    """Check dvc.yaml, params files and mlopskit.yaml without running anything."""
    from . import pipeline

    res = pipeline.validate(_project())
    _ok(f"Valid: {res.stages} stage(s); every param they name exists.")


# --------------------------------------------------------------------------- params


@cli.group()
def params() -> None:
    """Show, set and diff params."""


@params.command("show")
@click.option("--json", "as_json", is_flag=True)
def params_show(as_json: bool) -> None:
    """All params, flattened (train.C)."""
    from . import params as p
    from .formatting import fmt, text_table

    res = p.show(_project())
    if as_json:
        _json(res)
        return
    click.echo(text_table(["param", "value"], [[k, fmt(v)] for k, v in res.items()]), nl=False)


@params.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--allow-new", is_flag=True, help="Allow keys that do not exist yet.")
def params_set(assignments: tuple[str, ...], allow_new: bool) -> None:
    """Set params (typed like `dvc exp run -S`), keeping comments and order."""
    from . import params as p
    from .formatting import fmt

    res = p.set_params(_project(), assignments, allow_new=allow_new)
    if not res.changed:
        click.echo("No changes: the params already have these values.")
    for key, (old, new) in res.changed.items():
        click.echo(f"{key}: {fmt(old)} -> {fmt(new)}")


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
    from . import params as p
    from .formatting import fmt, md_table, text_table

    res = p.diff(_project(), base=base)
    if as_json:
        _json(res)
        return
    rows = [[c.key, fmt(c.old), fmt(c.new), c.status] for c in res]
    headers = ["param", base, "workspace", "status"]
    if not rows and not as_md:
        click.echo(f"No param changes since {base}.")
        return
    click.echo((md_table if as_md else text_table)(headers, rows), nl=False)


# --------------------------------------------------------------------------- metrics


@cli.group()
def metrics() -> None:
    """Show and diff metrics."""


@metrics.command("show")
@click.option("--json", "as_json", is_flag=True)
def metrics_show(as_json: bool) -> None:
    """Metrics of the workspace."""
    from . import metrics as m
    from .formatting import fmt, text_table

    res = m.show(_project())
    if as_json:
        _json(res)
        return
    rows = [[path, k, fmt(v)] for path, values in res.items() for k, v in values.items()]
    click.echo(text_table(["file", "metric", "value"], rows), nl=False)


@metrics.command("diff")
@_diff_format
@click.option("--changed-only", is_flag=True, help="Hide unchanged metrics.")
def metrics_diff(base: str, as_json: bool, as_md: bool, changed_only: bool) -> None:
    """Metrics at --base vs the workspace: absolute and relative change."""
    from . import metrics as m
    from .formatting import fmt, fmt_change, md_table, text_table

    res = m.diff(_project(), base=base, all_metrics=not changed_only)
    if as_json:
        _json([dict(dataclasses.asdict(c), better=c.better) for c in res])
        return
    rows = []
    for c in res:
        abs_s, rel_s = fmt_change(c.change, c.rel)
        mark = {True: "better", False: "worse", None: ""}[c.better]
        rows.append([c.path, c.key, fmt(c.old), fmt(c.new), abs_s, rel_s, mark or c.status])
    headers = ["file", "metric", base, "workspace", "change", "change %", ""]
    click.echo((md_table if as_md else text_table)(headers, rows), nl=False)


@cli.command("check")
@click.option("--base", help="Revision for regression rules (default: merge-base with main).")
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
    base: str | None, rules: tuple[str, ...], no_config: bool, allow_no_rules: bool, as_json: bool
) -> None:
    """The quality gate: exit 1 when a rule fails (missing, NaN or non-numeric fails too)."""
    from . import gate
    from .errors import OperationFailed
    from .formatting import fmt, text_table

    project = _project()
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

    from . import history as h
    from .formatting import fmt, text_table

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
                *(fmt(r.params.get(c)) for c in varying),
                r.subject[:50],
            ]
            for r in rows
        ]
        click.echo(text_table(headers, table), nl=False)
    if plot_file is not None and not (as_json or as_csv):
        click.echo(f"Chart written to {plot_file}")


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
def report_cmd(
    base: str | None,
    out: Path | None,
    fmt_: str,
    post: bool,
    post_from: Path | None,
    no_plots: bool,
) -> None:
    """Metrics, params, plots and data changes vs --base, with the gate's verdict."""
    from . import report as rep
    from . import report_render as render

    if post_from is not None:
        from . import github, report_io

        posted = github.post_report(report_io.load_untrusted(post_from))
        click.echo(f"{posted.action} comment {posted.url}")
        for note in posted.notes:
            click.echo(note, err=True)
        return
    project = _project()
    r = rep.build(project, base=base, with_plots=not no_plots)
    images: dict[str, str] | None = None
    if out is not None and fmt_ != "html":
        images = _write_images(r, out)
    if post:
        from . import github

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
    from .report_render import image_key

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


@cli.group()
def ci() -> None:
    """GitHub Actions workflows: CI, continuous training, PR reports, retraining."""


@ci.command("generate")
@click.option("--force", is_flag=True, help="Overwrite workflows edited by hand.")
def ci_generate(force: bool) -> None:
    """Write .github/workflows/ from the ci: settings in mlopskit.yaml."""
    from . import workflows

    res = workflows.generate(_project(), force=force)
    for rel in res.written:
        click.echo(f"wrote {rel}")
    if res.unchanged:
        click.echo(f"unchanged: {', '.join(res.unchanged)}")


@ci.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ci_check(files: tuple[Path, ...]) -> None:
    """Check workflows: pins, permissions, injection; zizmor, actionlint, check-jsonschema."""
    from . import workflows
    from .errors import OperationFailed

    res = workflows.check(_project(), paths=[f.resolve() for f in files] or None)
    for f in res.findings:
        click.echo(f"{f.file}: [{f.tool}] {f.message}")
    click.echo(
        f"ran: {', '.join(res.ran)}"
        + (f"; not installed: {', '.join(res.missing)}" if res.missing else "")
    )
    if not res.ok:
        raise OperationFailed(f"{len(res.findings)} finding(s) in the workflows")
    _ok("Workflows pass every check that ran.")


@cli.group()
def model() -> None:
    """The model registry: GTO-format Git tags (versions, stages), lineage, cards."""


@model.command("register")
@click.argument("name")
@click.option("--version", "version", help="vX.Y.Z (strict SemVer).")
@click.option(
    "--bump",
    "bump_part",
    type=click.Choice(["major", "minor", "patch"]),
    help="Next version after the latest (default: patch).",
)
@click.option("--rev", default="HEAD", show_default=True, help="The commit to register.")
@click.option("--push", is_flag=True, help="Push the tag to origin (never forced).")
@click.option("-r", "--remote", help="DVC remote that must hold the model (default remote).")
def model_register(
    name: str, version: str | None, bump_part: str | None, rev: str, push: bool, remote: str | None
) -> None:
    """Register a version of artifact NAME (a tag NAME@vX.Y.Z on --rev)."""
    from . import registry

    res = registry.register(
        _project(), name, version=version, bump_part=bump_part, rev=rev, push=push, remote=remote
    )
    _ok(f"Registered {res.tag} at {res.commit[:8]}" + (" and pushed it" if res.pushed else ""))


@model.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--stage", required=True, help="dev, staging, prod... (registry.stages).")
@click.option("--push", is_flag=True, help="Push the tag to origin (never forced).")
def model_promote(name: str, version: str, stage: str, push: bool) -> None:
    """Assign STAGE to NAME@VERSION (a tag NAME#STAGE#N)."""
    from . import registry

    res = registry.promote(_project(), name, version, stage, push=push)
    _ok(f"{res.artifact}@{res.version} is now in {res.stage} ({res.tag})")


@model.command("unpromote")
@click.argument("name")
@click.option("--stage", required=True)
@click.option("--push", is_flag=True)
def model_unpromote(name: str, stage: str, push: bool) -> None:
    """Take NAME's version out of STAGE (a tag NAME#STAGE!#N)."""
    from . import registry

    res = registry.unpromote(_project(), name, stage, push=push)
    _ok(f"{res.artifact}@{res.version} left {res.stage} ({res.tag})")


@model.command("deprecate")
@click.argument("name")
@click.option("--push", is_flag=True)
def model_deprecate(name: str, push: bool) -> None:
    """Deprecate artifact NAME (a tag NAME@deprecated)."""
    from . import registry

    tag = registry.deprecate(_project(), name, push=push)
    _ok(f"Deprecated {name} ({tag})")


@model.command("list")
@click.option("--json", "as_json", is_flag=True)
def model_list(as_json: bool) -> None:
    """Each artifact: latest version and the version in each stage."""
    from . import registry
    from .formatting import text_table

    project = _project()
    res = registry.list_models(project)
    if as_json:
        _json(res)
        return
    stages = list(project.config.registry.stages)
    rows = [
        [
            m.artifact + (" (deprecated)" if m.deprecated else ""),
            m.latest or "—",
            *(m.stages.get(st, "—") for st in stages),
        ]
        for m in res
    ]
    click.echo(text_table(["artifact", "latest", *stages], rows), nl=False)


@model.command("show")
@click.argument("spec", metavar="NAME[@VERSION|#STAGE]")
@click.option("--json", "as_json", is_flag=True)
def model_show(spec: str, as_json: bool) -> None:
    """Lineage: commit, who registered it when, data and model md5s, params, metrics."""
    from . import registry
    from .formatting import fmt

    lin = registry.show(_project(), spec)
    if as_json:
        _json(lin)
        return
    click.echo(
        f"{lin.artifact}@{lin.version}"
        + (f"  stages: {', '.join(lin.stages)}" if lin.stages else "")
    )
    click.echo(f"commit:      {lin.commit}  {lin.commit_subject}")
    click.echo(f"registered:  {lin.registered_at} by {lin.registered_by}")
    click.echo(f"model:       {lin.path}  md5 {lin.model_md5}")
    for p, m in lin.data.items():
        click.echo(f"data:        {p}  md5 {m}")
    for k, v in lin.params.items():
        click.echo(f"param:       {k} = {fmt(v)}")
    for f, vals in lin.metrics.items():
        for k, v in vals.items():
            click.echo(f"metric:      {k} = {fmt(v)}  ({f})")


@model.command("card")
@click.argument("spec", metavar="NAME[@VERSION|#STAGE]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
def model_card(spec: str, out: Path | None) -> None:
    """A Markdown model card from the lineage and the description in dvc.yaml."""
    from . import registry

    text = registry.card(_project(), spec)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"Model card written to {out}", err=True)


@model.command("get")
@click.argument("spec", metavar="NAME[@VERSION|#STAGE]")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
)
@click.option("-r", "--remote", help="DVC remote to fetch from (default remote).")
def model_get(spec: str, out_dir: Path, remote: str | None) -> None:
    """Fetch the model file of that version into OUT (the workspace is untouched), md5-checked."""
    from . import registry

    res = registry.get(_project(), spec, out_dir, remote=remote)
    _ok(f"{res.artifact}@{res.version} -> {res.path} (md5 {res.md5} verified)")


@model.command("release")
@click.argument("spec", metavar="NAME@VERSION")
@click.option("--stage", default="", help="The stage it was promoted to (for the title).")
@click.option(
    "--dir",
    "folder",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Files to attach; MODEL_CARD.md in it becomes the release notes.",
)
def model_release(spec: str, stage: str, folder: Path) -> None:
    """Publish a GitHub release of NAME@VERSION with the files in --dir (deploy workflow)."""
    from . import github, registry

    art, version = registry.resolve(_project().root, spec)
    card = folder / "MODEL_CARD.md"
    body = card.read_text(encoding="utf-8") if card.is_file() else f"{art.name} {version}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink())
    title = f"{art.name} {version}" + (f" ({stage})" if stage else "")
    rel = github.publish_release(tag=f"{art.name}@{version}", title=title, body=body, files=files)
    _ok(
        f"{'Published' if rel.created else 'Updated'} release {rel.url}: "
        f"{', '.join(rel.assets) or 'no new files'}"
    )


@model.command("describe-tag")
@click.argument("tag")
@click.option(
    "--github-output",
    is_flag=True,
    help="Also append artifact=, version=, stage= to $GITHUB_OUTPUT (values are validated first).",
)
def model_describe_tag(tag: str, github_output: bool) -> None:
    """Which artifact, version and stage a registry tag names (for deploy workflows)."""
    from . import registry

    info = registry.describe_tag(_project().root, tag)
    for k, v in info.items():
        click.echo(f"{k}={v}")
    if github_output:
        _github_output(info)


@cli.group()
def exp() -> None:
    """Experiments (DVC experiments): one run, parallel sweeps, comparison, promotion."""


@exp.command("run")
@click.option("-S", "--set-param", "assignments", multiple=True, metavar="KEY=VALUE")
@click.option("-n", "--name", help="Experiment name.")
@click.option("--allow-new", is_flag=True, help="Allow params that do not exist yet.")
@click.option(
    "--point",
    "point_json",
    help="A sweep point as JSON (from 'exp plan'; the "
    "matrix jobs of sweep.yml pass it through env:).",
)
@click.option(
    "--pull", is_flag=True, help="First pull the data the workspace tracks (a fresh CI runner)."
)
@click.option("--push", is_flag=True, help="Then push its outputs (DVC) and its ref (git).")
def exp_run(
    assignments: tuple[str, ...],
    name: str | None,
    allow_new: bool,
    point_json: str | None,
    pull: bool,
    push: bool,
) -> None:
    """Run one experiment in the workspace (dvc exp run), params checked first."""
    from . import experiments
    from .formatting import fmt

    project = _project()
    if point_json is not None:
        if assignments or name:
            raise click.UsageError("--point replaces -S and --name")
        pt = experiments.parse_point(point_json)
        assignments, name = pt.assignments, pt.name
    if pull:
        from . import data

        data.pull(project, allow_missing=True)
    res = experiments.run(project, assignments, name=name, allow_new=allow_new)
    if push:
        ref = experiments.push_experiment(project, res.name)
        click.echo(f"Pushed {ref} and its outputs.")
    _ok(
        f"Experiment {res.name} ({(res.rev or '')[:7]}): "
        + ", ".join(f"{k}={fmt(v)}" for k, v in res.metrics.items())
    )


def _sweep_table(points: list[Any], as_json: bool) -> None:
    from .formatting import fmt, text_table

    if as_json:
        _json(points)
        return
    keys = list(dict.fromkeys(k for p in points for k in p.params))
    mkeys = list(dict.fromkeys(k for p in points for k in p.metrics))
    rows = [
        [
            p.name,
            p.status,
            *(str(p.params.get(k, "")) for k in keys),
            *(fmt(p.metrics.get(k)) for k in mkeys),
            f"{p.seconds:.1f}s",
            p.error[:60],
        ]
        for p in points
    ]
    click.echo(text_table(["point", "status", *keys, *mkeys, "time", "error"], rows), nl=False)


@exp.command("sweep")
@click.option(
    "-S",
    "--set-param",
    "specs",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help="Values to sweep (the grid is their product).",
)
@click.option("--random", "random_k", type=int, help="Run K random points of the grid.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("-n", "--name", "prefix", help="Name prefix of the points (PREFIX-1, ...).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--json", "as_json", is_flag=True)
def exp_sweep(
    specs: tuple[str, ...],
    random_k: int | None,
    jobs: int,
    prefix: str | None,
    seed: int,
    as_json: bool,
) -> None:
    """Run a grid of experiments JOBS at a time, each in its own workspace."""
    from . import experiments
    from .errors import OperationFailed

    project = _project()
    points = experiments.plan(project, specs, random_k=random_k, prefix=prefix, seed=seed)
    click.echo(f"Sweep: {len(points)} point(s), {jobs} at a time", err=True)

    def progress(p: Any, res: Any) -> None:
        if res is not None:
            mark = "done" if res.status == "done" else res.status.upper()
            click.echo(
                f"  {res.name}: {mark} ({res.seconds:.1f}s)  [{p.done} done, "
                f"{p.running} running, {p.failed} failed of {p.total}]",
                err=True,
            )

    res = experiments.sweep(project, points, jobs=jobs, on_progress=progress)
    _sweep_table(res.points, as_json)
    if res.failed:
        raise OperationFailed(
            f"{len(res.failed)} of {len(res.points)} point(s) failed: "
            + ", ".join(p.name for p in res.failed)
        )


@exp.command("plan")
@click.option("--grid", required=True, help="'KEY=V1,V2 KEY2=V3,V4' (what sweep.yml takes).")
@click.option(
    "--random",
    "random_k",
    type=int,
    default=0,
    show_default=True,
    help="Only K random points (0: the whole grid).",
)
@click.option("-n", "--name", "prefix", help="Name prefix of the points.")
@click.option("--github-output", is_flag=True, help="Write points= and count= to $GITHUB_OUTPUT.")
def exp_plan(grid: str, random_k: int, prefix: str | None, github_output: bool) -> None:
    """Validate a sweep grid and print its points as JSON (the matrix of sweep.yml)."""
    import shlex

    from . import experiments

    try:
        specs = shlex.split(grid)
    except ValueError as exc:
        raise click.UsageError(f"--grid: {exc}") from None
    points = experiments.plan(_project(), specs, random_k=random_k or None, prefix=prefix)
    text = experiments.points_json(points)
    click.echo(text)
    if github_output:
        _github_output({"points": text, "count": str(len(points))})


@exp.command("fetch")
@click.option("--remote", "git_remote", default="origin", show_default=True)
def exp_fetch(git_remote: str) -> None:
    """Fetch every experiment ref from the git remote (as `dvc exp pull` without data)."""
    from . import experiments

    new = experiments.fetch_experiments(_project(), git_remote=git_remote)
    click.echo(f"Fetched {len(new)} experiment ref(s).")


@exp.command("show")
@click.option("--sort-by", help="Metric to sort by, best first (direction from mlopskit.yaml).")
@click.option("-A", "--all", "all_baselines", is_flag=True, help="Experiments of every branch.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--md", "as_md", is_flag=True)
def exp_show(
    sort_by: str | None, all_baselines: bool, as_json: bool, as_csv: bool, as_md: bool
) -> None:
    """Experiments of HEAD, best first by --sort-by."""
    import csv
    import io

    from . import experiments
    from .formatting import fmt, md_table, text_table

    rows = experiments.show(_project(), sort_by=sort_by, all_baselines=all_baselines)
    if as_json:
        _json(rows)
        return
    pkeys = list(dict.fromkeys(k for r in rows for k in r.params))
    varying = [k for k in pkeys if len({repr(r.params.get(k)) for r in rows}) > 1] or pkeys[:3]
    mkeys = list(dict.fromkeys(k for r in rows for k in r.metrics))
    headers = ["experiment", "rev", *varying, *mkeys]
    table = [
        [
            r.name,
            r.rev[:7],
            *(fmt(r.params.get(k)) for k in varying),
            *(fmt(r.metrics.get(k)) for k in mkeys),
        ]
        for r in rows
    ]
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(table)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo((md_table if as_md else text_table)(headers, table), nl=False)


@exp.command("promote")
@click.argument("name")
@click.option(
    "--branch",
    help="Create this branch at the experiment instead of committing it to the current branch.",
)
def exp_promote(name: str, branch: str | None) -> None:
    """Bring experiment NAME into the workspace as one commit, or into a new branch."""
    from . import experiments

    res = experiments.promote(_project(), name, branch=branch)
    if res.branch:
        _ok(
            f"Branch {res.branch} at {(res.commit or '')[:8]} holds experiment {name}: "
            f"push it and open a pull request"
        )
    else:
        _ok(f"Committed experiment {name} as {(res.commit or '')[:8]}: {', '.join(res.committed)}")


# --------------------------------------------------------------------------- entry point


def _crash_log(exc: BaseException) -> Path | None:
    try:
        from platformdirs import user_log_dir

        path = Path(user_log_dir("mlopskit")) / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def _quiet_shutdown() -> None:
    """After an interrupt, progress bars that DVC and fsspec left half-open may complain
    while the interpreter exits ('Exception ignored in ... __del__'): not ours to show."""
    sys.unraisablehook = lambda unraisable: None


def _on_sigterm(signum: int, frame: Any) -> None:
    # GitHub Actions cancels with SIGTERM: clean up exactly as for Ctrl-C.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (see README, "Exit codes")."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in args or bool(os.environ.get("MLOPSKIT_TRACEBACK"))
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=args, prog_name="mlopskit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        # click turns Ctrl-C into Abort; the cleanup already ran on the way out.
        _quiet_shutdown()
        click.secho("Interrupted.", fg="red", err=True)
        return INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return USAGE if exc.exit_code == 2 else int(exc.exit_code)
    except MlopskitError as exc:
        if show_tb:
            traceback.print_exc()
        click.secho(f"error: {exc}", fg="red", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        if show_tb:
            traceback.print_exc()
        _quiet_shutdown()
        click.secho("Interrupted.", fg="red", err=True)
        return INTERRUPTED
    except Exception as exc:
        if show_tb:
            traceback.print_exc()
        log = _crash_log(exc)
        click.secho(
            f"error: unexpected {type(exc).__name__}: {exc}. This is a bug in mlopskit; please "
            f"report it" + (f" with {log}" if log else "") + " (--traceback shows the stack)",
            fg="red",
            err=True,
        )
        return PRECONDITION
    return 0


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
