"""Metrics: show them, diff them against a revision (base, head, absolute, relative)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dvcfiles, flat, revfile, scm
from .errors import MlopskitError, OperationFailed, UsageError
from .project import Project


def unreachable_hint(path: str, recorded: bool) -> str:
    """What to do about a declared file that is neither in git, the workspace nor the
    cache: pull it when a revision recorded it, produce it when none did."""
    if recorded:
        return f"pull it: 'mlopskit data pull {path}'"
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
                raise OperationFailed(
                    f"metrics file {err.message}", "fix the stage that writes it"
                ) from None
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
            if not isinstance(data, Mapping):
                raise OperationFailed(
                    f"metrics file {where}: expected a mapping of metric names to values"
                )
            out[path] = flat.flatten(dvcfiles.metric_values(data))
    return Read(out, missing, recorded)


def read(root: Path, rev: str | None = None, *, required: bool = True) -> dict[str, dict[str, Any]]:
    """``{file: {metric: value}}`` for every metrics file the pipeline declares at ``rev``."""
    with dvcfiles.Reader(root) as reader:
        return read_state(reader, rev, required=required).values


def show(project: Project, *, rev: str | None = None) -> dict[str, dict[str, Any]]:
    sha = revfile.resolve_rev(project.root, rev) if rev else None
    return read(project.root, sha)


@dataclass(frozen=True)
class Shown:
    values: dict[str, dict[str, Any]]
    # DVC-cached metrics files that are not in the workspace: read from the cache or the
    # remote (as `dvc metrics show` does), or "missing" when neither has them.
    not_pulled: dict[str, str] = field(default_factory=dict)  # path -> "cache"/"remote"/...


def show_workspace(project: Project) -> Shown:
    """The workspace's metrics; a metrics file DVC caches (``cache: true``) that was never
    pulled is read from the local cache, else streamed from the remote, as DVC does."""
    root = project.root
    with dvcfiles.Reader(root) as reader:
        found = read_state(reader, None, required=False)
        values = dict(found.values)
        not_pulled = {p: "cache" for p in values if not (root / p).exists()}
        for path in found.missing:
            md5 = reader.md5_of(None, path)
            tracked = scm.git(root, "ls-files", "--", path).out.strip()
            if md5 is None or md5.endswith(".dir") or tracked:
                # Not a DVC-cached output (or tracked by git and deleted): nothing to pull.
                raise OperationFailed(
                    f"metrics file {path}: declared but not in the workspace or the DVC cache",
                    unreachable_hint(path, md5 is not None and not tracked),
                )
            raw, source = _read_cached(root, path, md5)
            not_pulled[path] = source
            if raw is not None:
                values[path] = _flat_mapping(revfile.parse(raw, path, path), path)
    return Shown(values, not_pulled)


def _read_cached(root: Path, path: str, md5: str) -> tuple[bytes | None, str]:
    cached = revfile.cache_path(root, md5)
    if cached.is_file():
        return cached.read_bytes(), "cache"
    from . import _dvc
    from .remote import no_remote_error

    with _dvc.open_repo(root) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            raise no_remote_error()
        try:
            with _dvc.translated():
                return bytes(repo.dvcfs.read_bytes(path)), f"remote '{name}'"
        except (OSError, MlopskitError):
            return None, "missing"


def _flat_mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise OperationFailed(f"metrics file {where}: expected a mapping of metric names to values")
    return flat.flatten(data)


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
            na, nb = flat.number(a), flat.number(b)
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
    base_sha = revfile.resolve_rev(root, base)
    head_sha = revfile.resolve_rev(root, head) if head else None
    new = read(root, head_sha)
    old = read(root, base_sha, required=False)
    return compare(old, new, project.config.metrics, include_unchanged=all_metrics)
