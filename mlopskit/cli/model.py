"""model: the registry on GTO-format tags."""

from __future__ import annotations

from pathlib import Path

import click

from ._base import _github_output, _json, _ok, _project, cli


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
@click.option("--push", is_flag=True, help="Push the tag to the branch's remote (never forced).")
@click.option("-r", "--remote", help="DVC remote that must hold the model (default remote).")
def model_register(
    name: str, version: str | None, bump_part: str | None, rev: str, push: bool, remote: str | None
) -> None:
    """Register a version of artifact NAME (a tag NAME@vX.Y.Z on --rev)."""
    from ..registry import tags as registry

    res = registry.register(
        _project(), name, version=version, bump_part=bump_part, rev=rev, push=push, remote=remote
    )
    _ok(f"Registered {res.tag} at {res.commit[:8]}" + (" and pushed it" if res.pushed else ""))


@model.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--stage", required=True, help="dev, staging, prod... (registry.stages).")
@click.option("--push", is_flag=True, help="Push the tag to the branch's remote (never forced).")
@click.option(
    "--sign",
    is_flag=True,
    help="SSH-sign the tag (git tag -s, gpg.format ssh, your user.signingkey).",
)
def model_promote(name: str, version: str, stage: str, push: bool, sign: bool) -> None:
    """Assign STAGE to NAME@VERSION (a tag NAME#STAGE#N).

    With --push inside GitHub Actions (GITHUB_TOKEN set), it also starts the deploy
    workflow with the tag by workflow_dispatch: tags pushed with GITHUB_TOKEN start none.
    """
    from ..registry import tags as registry

    res = registry.promote(_project(), name, version, stage, push=push, sign=sign)
    signed = ", signed" if sign else ""
    started = f"; started {res.dispatched} (workflow_dispatch)" if res.dispatched else ""
    _ok(f"{res.artifact}@{res.version} is now in {res.stage} ({res.tag}{signed}){started}")


@model.command("unpromote")
@click.argument("name")
@click.option("--stage", required=True)
@click.option("--push", is_flag=True)
def model_unpromote(name: str, stage: str, push: bool) -> None:
    """Take NAME's version out of STAGE (a tag NAME#STAGE!#N)."""
    from ..registry import tags as registry

    res = registry.unpromote(_project(), name, stage, push=push)
    now = f"{res.stage} is now {res.artifact}@{res.now}" if res.now else f"{res.stage} is empty"
    _ok(f"{res.artifact}@{res.version} left {res.stage} ({res.tag}); {now}")


@model.command("deprecate")
@click.argument("name")
@click.option("--push", is_flag=True)
def model_deprecate(name: str, push: bool) -> None:
    """Deprecate artifact NAME (a tag NAME@deprecated)."""
    from ..registry import tags as registry

    tag = registry.deprecate(_project(), name, push=push)
    _ok(f"Deprecated {name} ({tag})")


@model.command("list")
@click.option("--json", "as_json", is_flag=True)
def model_list(as_json: bool) -> None:
    """Each artifact: latest version and the version in each stage."""
    from ..formatting import text_table
    from ..registry import tags as registry

    project = _project()
    res = registry.list_models(project)
    if as_json:
        _json(res)
        return
    # The configured stages in their order, then any other stage in use (as GTO shows them).
    stages = list(project.config.registry.stages)
    stages += sorted({st for m in res for st in m.stages} - set(stages))

    def cell(version: str | None) -> str:
        if version is None:
            return "—"
        return version if version.startswith("v") else f"{version[:8]} (unregistered)"

    rows = [
        [
            m.artifact + (" (deprecated)" if m.deprecated else ""),
            m.latest or "—",
            *(cell(m.stages.get(st)) for st in stages),
        ]
        for m in res
    ]
    click.echo(text_table(["artifact", "latest", *stages], rows), nl=False)


@model.command("show")
@click.argument("spec", metavar="NAME[@VERSION|#STAGE]")
@click.option("--json", "as_json", is_flag=True)
def model_show(spec: str, as_json: bool) -> None:
    """Lineage: commit, who registered it when, data and model md5s, params, metrics."""
    from ..formatting import fmt
    from ..registry import lineage

    lin = lineage.show(_project(), spec)
    if as_json:
        _json(lin)
        return
    click.echo(
        f"{lin.artifact}@{lin.version}"
        + (f"  stages: {', '.join(lin.stages)}" if lin.stages else "")
    )
    click.echo(f"commit:      {lin.commit}  {lin.commit_subject}")
    click.echo(f"registered:  {lin.registered_at} by {lin.registered_by}")
    click.echo(f"model:       {lin.path}  md5 {lin.model_md5}  ({lin.model_source})")
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
    from ..registry import lineage

    text = lineage.card(_project(), spec)
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
@click.option(
    "--load-check",
    is_flag=True,
    help="Also load it with skops against serve.trusted_types (exit 5 and no file if refused).",
)
def model_get(spec: str, out_dir: Path, remote: str | None, load_check: bool) -> None:
    """Fetch the model file of that version into OUT (the workspace is untouched), md5-checked."""
    from ..registry import lineage

    project = _project()
    res = lineage.get(project, spec, out_dir, remote=remote)
    loaded = ""
    if load_check:
        from ..serve import trust

        try:
            trust.load_file(res.path, project.config.serve.trusted_types)
        except BaseException:
            res.path.unlink(missing_ok=True)
            raise
        loaded = ", loads with the trusted types"
    _ok(f"{res.artifact}@{res.version} -> {res.path} (md5 {res.md5} verified{loaded})")


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
    from ..registry import tags as registry
    from ..report import github

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
    help="Also append event=, artifact=, version=, stage=, file=, current= to $GITHUB_OUTPUT "
    "(values are validated first).",
)
def model_describe_tag(tag: str, github_output: bool) -> None:
    """The event a registry tag records (registration, deregistration, assignment,
    unassignment, deprecation), its artifact, version and stage, and whether it is still
    the newest event of that stage (for deploy workflows)."""
    from ..registry import lineage

    project = _project()
    info = lineage.describe_tag(project.root, tag)
    if info["stage"]:
        from ..registry import signing

        if signing.required(project, info["stage"]):  # registry.require_signed
            signing.verify_tag(project, tag, info["artifact"], info["stage"])
    for k, v in info.items():
        click.echo(f"{k}={v}")
    if github_output:
        _github_output(info)
