"""serve: a registered model over HTTP (needs the mlopskit[serve] extra)."""

from __future__ import annotations

from pathlib import Path

import click

from ._base import _ok, _project, cli


@cli.command("serve")
@click.argument("spec", metavar="NAME[@VERSION|#STAGE]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each prediction (inputs, output, version, time) to JSON Lines files here.",
)
@click.option(
    "--follow", is_flag=True, help="Fetch tags periodically and swap in the stage's new version."
)
@click.option("-r", "--remote", help="DVC remote to fetch the model from (default remote).")
@click.option("--access-log", is_flag=True, help="Log every request (slower).")
@click.option(
    "--dockerfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a Dockerfile that serves SPEC to this path, and exit.",
)
@click.option(
    "--base-image",
    metavar="IMAGE[@sha256:DIGEST]",
    help="With --dockerfile: the FROM image (default: the official slim Python of "
    "ci.python, pinned by digest where mlopskit knows one).",
)
def serve(
    spec: str,
    host: str,
    port: int,
    workers: int,
    log_dir: Path | None,
    follow: bool,
    remote: str | None,
    access_log: bool,
    dockerfile: Path | None,
    base_image: str | None,
) -> None:
    """Serve NAME's model: md5-verified, loaded with skops against serve.trusted_types,
    every request checked against the data contract (data/schema.yaml)."""
    from ..serve import loader

    project = _project()
    if follow and "#" not in spec:
        raise click.UsageError("--follow needs a stage: NAME#STAGE")
    if base_image is not None and dockerfile is None:
        raise click.UsageError("--base-image goes with --dockerfile PATH")
    if dockerfile is not None:
        from ..serve import container

        tgt = loader.target(project, spec)  # the spec must name a registered version
        written = container.write(
            project, spec, dockerfile, port=port, workers=workers, base_image=base_image
        )
        names = " and ".join(str(w) for w in written)
        _ok(f"Dockerfile serving {tgt.artifact}@{tgt.version} ({spec}): wrote {names}")
        return
    served = loader.load(project, spec, remote=remote)
    try:
        from ..serve import app
    except ImportError as exc:
        raise click.ClickException(
            f"serving needs the serve extra ({exc.name} is missing): pip install 'mlopskit[serve]'"
        ) from None
    t = served.target
    _ok(
        f"Serving {t.artifact}@{t.version}"
        + (f" ({t.stage})" if t.stage else "")
        + f" from {t.commit[:8]}: md5 {served.md5} verified, {len(served.columns)} input columns"
        + f" checked against {served.schema_path}; http://{host}:{port}"
    )
    settings = app.Settings(
        root=str(project.root),
        spec=spec,
        remote=remote,
        log_dir=str(log_dir.resolve()) if log_dir else None,
        follow=follow,
    )
    try:
        app.run(settings, served, host=host, port=port, workers=workers, access_log=access_log)
    except KeyboardInterrupt:  # uvicorn has shut down gracefully: a normal stop
        click.echo("Stopped.", err=True)
