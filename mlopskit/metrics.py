"""Metrics: show them, diff them against a revision (base, head, absolute, relative)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import at_revision, dotted, dvcfiles, scm
from .errors import OperationFailed, UsageError
from .project import Project


def unreachable_hint(path: str, recorded: bool) -> str:
    """What to do about a declared file that is neither in git, the workspace nor the
    cache: pull it when a revision recorded it, produce it when none did."""
    if recorded:
        return f"pull it: mlopskit data pull {path}"
    return "no revision recorded it yet: run 'mlopskit repro' to produce it"


@dataclass(frozen=True)
class Read:
    values: dict[str, dict[str, Any]]  # file -> {metric: value}
    missing: list[str]  # declared, but not in git, the workspace or the cache
    recorded: list[str]  # of those, the ones a dvc.lock / .dvc file records (pullable)


def read_state(reader: dvcfiles.Reader, rev: str | None, *, required: bool = True) -> Read:
    """Every metrics file the pipeline declares at ``rev`` (stage metrics of every
    dvc.yaml, foreach/matrix ones included, and top-level ``metrics:``; directories
    expanded), read as ``dvc metrics show`` reads them."""
    state = reader.state(rev)
    out: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    recorded: list[str] = []
    for declared in state.metrics:
        for path in reader.expand(rev, declared):
            where = path if rev is None else f"{path}@{rev[:8]}"
            try:
                data = reader.load(rev, path)
            except UsageError as err:
                raise _unreadable(err) from None
            if data is None:
                known = reader.md5_of(rev, path) is not None
                if required:
                    raise OperationFailed(
                        f"metrics file {where}: declared but not in the workspace or the DVC cache",
                        unreachable_hint(path, known),
                    )
                missing.append(path)
                if known:
                    recorded.append(path)
                continue
            out[path] = _values(data, where)
    return Read(out, missing, recorded)


def _unreadable(err: UsageError) -> OperationFailed:
    return OperationFailed(f"metrics file {err.message}", "fix the stage that writes it")


def _parse(raw: bytes, path: str, where: str) -> Any:
    """A metrics file's bytes parsed as ``Reader.load`` parses them."""
    try:
        return dvcfiles.parse_text(path, raw.decode("utf-8"), display=where)
    except UnicodeDecodeError:
        raise OperationFailed(
            f"metrics file {where}: not a UTF-8 text file", "fix the stage that writes it"
        ) from None
    except UsageError as err:
        raise _unreadable(err) from None


def _values(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise OperationFailed(f"metrics file {where}: expected a mapping of metric names to values")
    return dotted.flatten(dvcfiles.metric_values(data))


def read(root: Path, rev: str | None = None, *, required: bool = True) -> dict[str, dict[str, Any]]:
    """``{file: {metric: value}}`` for every metrics file the pipeline declares at ``rev``."""
    with dvcfiles.Reader(root) as reader:
        return read_state(reader, rev, required=required).values


def show(project: Project, *, rev: str | None = None) -> dict[str, dict[str, Any]]:
    sha = at_revision.resolve_rev(project.root, rev) if rev else None
    return read(project.root, sha)


MISSING = "missing"


@dataclass(frozen=True)
class Shown:
    values: dict[str, dict[str, Any]]
    # DVC-cached metrics files that are not in the workspace: read from the cache or the
    # remote (as `dvc metrics show` does), or MISSING when neither has them.
    not_pulled: dict[str, str] = field(default_factory=dict)  # path -> "cache"/"remote"/...
    # Declared files no pull can bring: never recorded by a revision, or tracked by git
    # and deleted. path -> what to do about it.
    absent: dict[str, str] = field(default_factory=dict)

    @property
    def unpulled(self) -> list[str]:
        """Recorded, DVC-cached, and in neither the workspace, the cache nor the remote."""
        return [p for p, source in self.not_pulled.items() if source == MISSING]

    def notes(self) -> dict[str, str]:
        """path -> why it has no values, for every declared file that was read from
        nowhere ("declared but not pulled (pull it: ...)")."""
        out = {p: f"declared but not pulled ({unreachable_hint(p, True)})" for p in self.unpulled}
        for p, hint in self.absent.items():
            out[p] = f"declared but not in the workspace or the DVC cache ({hint})"
        return out


def reach(root: Path, rev: str | None = None, *, need_remote: bool = True) -> Shown:
    """Every metrics file declared at ``rev`` (None: the workspace), read where DVC
    reads it: git or the workspace, else (a DVC-cached file that was not pulled) the
    local cache, else streamed from the default remote, as ``dvc metrics show/diff`` do
    in a fresh clone. Files read from nowhere are named in ``not_pulled``/``absent``.

    A file that only a remote could give, with no default remote: the no-remote error
    (``need_remote``), else it counts as not pulled."""
    with dvcfiles.Reader(root) as reader:
        found = read_state(reader, rev, required=False)
        values = dict(found.values)
        not_pulled = {p: "cache" for p in values if not (root / p).exists()} if rev is None else {}
        absent: dict[str, str] = {}
        remote_paths: list[str] = []
        for path in found.missing:
            md5 = reader.md5_of(rev, path) or _unlisted_dir(reader, rev, path)
            # (at a revision, a file in git is never missing)
            tracked = rev is None and bool(scm.git(root, "ls-files", "--", path).out.strip())
            if md5 is None or tracked:
                # Not a DVC-cached output (or tracked by git and deleted): nothing to pull.
                absent[path] = unreachable_hint(path, md5 is not None and not tracked)
            elif path in reader.outputs(rev).hashes and md5.endswith(".dir"):
                not_pulled[path] = MISSING  # a directory whose manifest is not cached
            else:
                remote_paths.append(path)  # DVC's filesystem fetches a manifest it needs
    if remote_paths:
        from . import _dvc
        from .remote import no_remote_error

        name, read = _dvc.read_not_pulled(root, rev, remote_paths)
        if name is None and need_remote:
            raise no_remote_error()
        for path in remote_paths:
            raw = read.get(path)
            not_pulled[path] = f"remote '{name}'" if raw is not None else MISSING
            if raw is not None:
                where = path if rev is None else f"{path}@{rev[:8]}"
                values[path] = _values(_parse(raw, path, where), where)
    return Shown(values, not_pulled, absent)


def _unlisted_dir(reader: dvcfiles.Reader, rev: str | None, path: str) -> str | None:
    """The md5 of the directory output ``path`` is in, when its manifest is not cached
    (which files it holds is only known to the remote)."""
    hashes = reader.outputs(rev).hashes
    parts = path.split("/")
    for i in range(len(parts) - 1, 0, -1):
        md5 = hashes.get("/".join(parts[:i]))
        if md5 and md5.endswith(".dir"):
            return md5 if reader.manifest(md5) is None else None
    return None


def _refuse_absent(shown: Shown) -> None:
    for path, hint in shown.absent.items():
        raise OperationFailed(
            f"metrics file {path}: declared but not in the workspace or the DVC cache", hint
        )


def show_workspace(project: Project) -> Shown:
    """The workspace's metrics; a metrics file DVC caches (``cache: true``) that was never
    pulled is read from the local cache, else streamed from the remote, as DVC does."""
    shown = reach(project.root, None)
    _refuse_absent(shown)
    return shown


@dataclass(frozen=True)
class MetricChange:
    path: str
    key: str
    old: Any
    new: Any
    change: float | None  # new - old, when both are finite numbers
    rel: float | None  # change / |old|, when old is a non-zero finite number
    status: str  # "modified", "unchanged", "added", "removed", "not numeric"
    direction: str | None  # "higher" / "lower" is better, when known

    @property
    def better(self) -> bool | None:
        if self.change is None or self.direction is None or self.change == 0:
            return None
        return (self.change > 0) == (self.direction == "higher")


def compare(
    old_all: dict[str, dict[str, Any]],
    new_all: dict[str, dict[str, Any]],
    directions: Any,
    *,
    include_unchanged: bool = True,
) -> list[MetricChange]:
    out: list[MetricChange] = []
    for path in dict.fromkeys([*new_all, *old_all]):
        old, new = old_all.get(path, {}), new_all.get(path, {})
        for key in dict.fromkeys([*new, *old]):
            a, b = old.get(key), new.get(key)
            direction = directions.direction(key)
            na, nb = dotted.number(a), dotted.number(b)
            if key not in old:
                status = "added"
            elif key not in new:
                status = "removed"
            elif na is None or nb is None:
                status = "unchanged" if a == b else "not numeric"
            else:
                status = "unchanged" if na == nb else "modified"
            change = nb - na if na is not None and nb is not None else None
            rel = change / abs(na) if change is not None and na else None
            if status == "unchanged" and not include_unchanged:
                continue
            out.append(MetricChange(path, key, a, b, change, rel, status, direction))
    return out


def diff(
    project: Project, *, base: str = "HEAD", head: str | None = None, all_metrics: bool = True
) -> list[MetricChange]:
    """Metrics at ``base`` vs ``head`` (default: the workspace); a missing base is 'added'."""
    root = project.root
    base_sha = at_revision.resolve_rev(root, base)
    head_sha = at_revision.resolve_rev(root, head) if head else None
    # Both sides read as `dvc metrics diff` reads them: a cached file not pulled comes
    # from the cache, else the remote (a fresh clone's `repro --pull` pulls only HEAD's).
    head_read = reach(root, head_sha)
    _refuse_absent(head_read)
    for path in head_read.unpulled:
        raise OperationFailed(
            f"metrics file {path}: declared but not pulled", unreachable_hint(path, True)
        )
    old = reach(root, base_sha, need_remote=False).values
    return compare(old, head_read.values, project.config.metrics, include_unchanged=all_metrics)
