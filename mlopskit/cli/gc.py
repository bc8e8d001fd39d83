"""gc: list, then (with --yes) remove the cache and remote objects nothing kept uses."""

from __future__ import annotations

import click

from ._base import _json, _ok, _project, cli

SHOWN = 25  # kept commits listed in text output


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


@cli.command("gc")
@click.option(
    "-b",
    "--branch",
    "branches",
    multiple=True,
    metavar="NAME",
    help="Keep this branch (repeatable; default: every local and remote-tracking branch).",
)
@click.option(
    "-n",
    "--commits",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Keep the last N first-parent commits of each branch.",
)
@click.option("-T", "--all-tags", is_flag=True, help="Keep every tag, not only registry tags.")
@click.option("-A", "--all-commits", is_flag=True, help="Keep every commit.")
@click.option("-c", "--cloud", is_flag=True, help="Sweep the default DVC remote too.")
@click.option("-r", "--remote", help="With --cloud: sweep this remote instead of the default.")
@click.option(
    "-p",
    "--project",
    "projects",
    multiple=True,
    metavar="PATH",
    help="Another project sharing the remote (a local clone): keep what it uses too.",
)
@click.option("--not-shared", is_flag=True, help="With --cloud: no other project uses the remote.")
@click.option("-y", "--yes", is_flag=True, help="Remove (default: a dry run that only lists).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel requests.")
@click.option("--wait", is_flag=True, help="Wait for another mlopskit process to finish.")
@click.option("--json", "as_json", is_flag=True)
def gc_cmd(
    branches: tuple[str, ...],
    commits: int,
    all_tags: bool,
    all_commits: bool,
    cloud: bool,
    remote: str | None,
    projects: tuple[str, ...],
    not_shared: bool,
    yes: bool,
    jobs: int | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Remove cached and (--cloud) remote data that nothing kept uses; a dry run by default.

    Kept: every commit a registry tag (NAME@vX.Y.Z, NAME#STAGE#N) points at, the branches
    (with their last N commits) and the workspace. Half-written .tmp files older than an
    hour, left by an interrupted transfer, are removed too.
    """
    from .. import gc as g

    res = g.gc(
        _project(),
        branches=list(branches) or None,
        commits=commits,
        all_tags=all_tags,
        all_commits=all_commits,
        cloud=cloud,
        remote=remote,
        yes=yes,
        projects=projects,
        not_shared=not_shared,
        jobs=jobs,
        wait=wait,
    )
    if as_json:
        _json(res)
        return
    scope = "every commit" if all_commits else f"{len(res.kept)} commit(s)"
    click.echo(f"Keeping the data of the workspace and {scope}:")
    for k in res.kept[:SHOWN]:
        click.echo(f"  {k.commit[:8]}  {', '.join(k.reasons)}")
    if len(res.kept) > SHOWN:
        click.echo(f"  ... and {len(res.kept) - SHOWN} more (--json lists them all)")
    for p in res.projects:
        click.echo(f"  and of the branches and registry tags of {p}")
    verb = "Removed" if res.removed else "Would remove"
    for s in res.swept:
        items = [*s.objects, *s.orphans]
        if not items:
            continue
        size = human(sum(o.size for o in items))
        click.echo(f"{verb} from {s.where} ({s.location}): {len(items)} file(s), {size}")
        for o in s.objects:
            click.echo(f"  {o.path}  {human(o.size)}")
        for o in s.orphans:
            if o.upload:
                click.echo(f"  {o.path}  (unfinished multipart upload {o.upload[:12]})")
            else:
                click.echo(f"  {o.path}  {human(o.size)}  (temporary file left by a transfer)")
    if not res.count:
        _ok(
            "Nothing to remove"
            + (" from the cache or the remote." if res.cloud else " from the cache.")
        )
    elif res.removed:
        _ok(f"Removed {res.count} file(s), {human(res.size)}.")
    else:
        click.echo(
            f"Dry run: nothing was removed. Run again with --yes to remove {res.count} "
            f"file(s) ({human(res.size)})."
        )
