"""Safe garbage collection of the DVC cache and remote (dvc#7496, dvc#3476).

``dvc gc`` keeps only what the scope you name uses: forget ``--all-tags`` and the model
a registry tag points at is gone from the remote. mlopskit's gc computes the scope
itself and always keeps

- every commit a GTO registry tag points at (versions, stages, deprecations: anything
  that matches GTO's tag grammar), so a registered or promoted model survives the
  deletion of the branch it was trained on;
- the branches you name (default: every local and remote-tracking branch), each with
  its last N first-parent commits (``commits``, default 1);
- the workspace (what is checked out and added but not committed).

It is a dry run unless ``yes``: the result lists every object that would go, with its
size. ``cloud`` sweeps the default remote (or ``remote``) too, and only once you say
that no other project shares it (``not_shared``) or name those projects (``projects``),
whose revisions are then kept as well. A revision that cannot be read aborts the run
before anything is removed. Half-written ``.<token>.tmp`` files that an interrupted
transfer left in the cache or a local/SSH remote are listed and removed with the
objects once they are older than ``tmp_min_age`` (default one hour): a younger one may
belong to a transfer that is still running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _dvc, _gto, project_lock, scm
from .data import retry_transfer
from .errors import PreconditionError, UsageError
from .project import Project

TMP_MIN_AGE = 3600.0


@dataclass(frozen=True)
class Kept:
    """A commit whose data gc keeps, and why (the refs that point at it)."""

    commit: str
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GcResult:
    kept: list[Kept]
    swept: list[_dvc.Swept]
    removed: bool  # False: a dry run, nothing was touched
    cloud: bool
    projects: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(s.objects) + len(s.orphans) for s in self.swept)

    @property
    def size(self) -> int:
        return sum(o.size for s in self.swept for o in [*s.objects, *s.orphans])


def sweep_stale_tmp(stores: Iterable[Path | None], *, min_age: float = TMP_MIN_AGE) -> list[Path]:
    """Remove the ``.<token>.tmp`` orphans older than ``min_age`` seconds from local object
    stores (a cache's or a local remote's ``files/md5``): what a killed transfer left.

    Cheap enough to run after every transfer: one directory scan per two-hex-digit
    prefix, no hashing. SSH remotes are swept by ``gc --cloud`` (a listing there costs a
    round trip per directory)."""
    now = time.time()
    removed: list[Path] = []
    for store in stores:
        if store is None or not store.is_dir():
            continue
        with os.scandir(store) as prefixes:
            dirs = [e.path for e in prefixes if len(e.name) == 2 and e.is_dir()]
        for d in dirs:
            with os.scandir(d) as entries:
                for e in entries:
                    if not (e.name.startswith(".") and _dvc.is_tmp_name(e.name)):
                        continue
                    try:
                        if e.is_file(follow_symlinks=False) and now - e.stat().st_mtime >= min_age:
                            Path(e.path).unlink()
                            removed.append(Path(e.path))
                    except FileNotFoundError:  # its transfer finished meanwhile
                        pass
    return removed


def _branches(root: Path) -> list[tuple[str, str]]:
    """(name, commit) of every local and remote-tracking branch (not ``origin/HEAD``)."""
    out = scm.git(
        root,
        "for-each-ref",
        "--format=%(refname:short)%00%(objectname)%00%(symref)%00%(objecttype)",
        "refs/heads",
        "refs/remotes",
    ).out
    found = []
    for line in out.splitlines():
        name, sha, symref, otype = (line.split("\0") + ["", "", ""])[:4]
        if symref or otype != "commit":
            continue
        found.append((name, sha))
    return found


def _first_parents(root: Path, commit: str, n: int) -> list[str]:
    res = scm.git(root, "rev-list", "--first-parent", f"--max-count={n}", commit, "--")
    return res.out.split()


def _tag_commits(root: Path, *, all_tags: bool) -> list[tuple[str, str]]:
    """(tag, commit) of every registry tag (and, with ``all_tags``, of every other tag)."""
    found = []
    for t in _gto.read_tags(root):
        if all_tags or _gto.TAG_RE.match(t.name):
            sha = scm.resolve(root, f"refs/tags/{t.name}")
            if sha:  # a tag of a tree or blob holds no DVC state
                found.append((t.name, sha))
    return found


def revisions(
    root: Path,
    *,
    branches: Sequence[str] | None = None,
    commits: int = 1,
    all_tags: bool = False,
) -> list[Kept]:
    """The commits whose data gc keeps, each with the refs that make it kept."""
    if commits < 1:
        raise UsageError(f"--commits {commits}: keep at least 1 commit per branch")
    reasons: dict[str, list[str]] = {}

    def keep(sha: str, why: str) -> None:
        reasons.setdefault(sha, [])
        if why not in reasons[sha]:
            reasons[sha].append(why)

    for tag, sha in _tag_commits(root, all_tags=all_tags):
        keep(sha, f"tag {tag}")
    if branches:
        named = []
        for name in branches:
            found = scm.resolve(root, name)
            if found is None:
                raise UsageError(
                    f"--branch {name}: no such branch or revision",
                    "list them with 'git branch -a'",
                )
            named.append((name, found))
    else:
        named = _branches(root)
    for name, sha in named:
        for i, c in enumerate(_first_parents(root, sha, commits)):
            keep(c, name if i == 0 else f"{name}~{i}")
    return [Kept(sha, why) for sha, why in reasons.items()]


def _other_project(path: str) -> Path:
    p = Path(path).expanduser().resolve()
    if not (p / ".dvc").is_dir() or scm.toplevel(p) is None:
        raise UsageError(
            f"--project {path}: not a DVC project in a git repository",
            "name a local clone of each project that shares the remote",
        )
    return p


def gc(
    project: Project,
    *,
    branches: Sequence[str] | None = None,
    commits: int = 1,
    all_tags: bool = False,
    all_commits: bool = False,
    cloud: bool = False,
    remote: str | None = None,
    yes: bool = False,
    projects: Sequence[str] = (),
    not_shared: bool = False,
    jobs: int | None = None,
    tmp_min_age: float = TMP_MIN_AGE,
    wait: bool = False,
) -> GcResult:
    """List (or, with ``yes``, remove) the cache and remote objects nothing kept uses."""
    if remote and not cloud:
        raise UsageError("--remote needs --cloud", "add --cloud to sweep that remote")
    if cloud and yes and not (projects or not_shared):
        raise PreconditionError(
            "gc --cloud: other projects may share this DVC remote, and their data would "
            "look unused here (dvc#3476); nothing was removed",
            "name each with --project PATH (a local clone), or pass --not-shared if only "
            "this project uses the remote",
        )
    root = project.root
    kept = revisions(root, branches=branches, commits=commits, all_tags=all_tags)
    others = []
    for path in projects:
        other = _other_project(path)
        others.append((other, [k.commit for k in revisions(other, commits=commits)]))
    with project_lock.held(project.tmp_dir, wait=wait):
        try:
            swept = retry_transfer(
                lambda: _dvc.gc(
                    root,
                    [k.commit for k in kept],
                    others=others,
                    all_commits=all_commits,
                    cloud=cloud,
                    remote=remote,
                    dry=not yes,
                    jobs=jobs,
                    tmp_min_age=tmp_min_age,
                ),
                what="gc",
            )
        except _dvc.CollectFailed as err:
            names = next((k.reasons for k in kept if k.commit.startswith(err.rev)), [])
            if names:
                err.message = err.message.replace(err.rev, f"{err.rev[:8]} ({', '.join(names)})")
            raise
    return GcResult(
        kept=kept, swept=swept, removed=yes, cloud=cloud, projects=[str(p) for p, _ in others]
    )
