"""What changed in DVC-tracked data between a revision and the workspace.

Hashes come from the pointers (``.dvc`` files, ``dvc.lock``) as recorded, so nothing
is rehashed. For tables (CSV, TSV, Parquet) the two versions are read from the DVC
cache (fetched from the remote when missing) and compared: rows added and removed
(as a multiset of whole rows), columns added and removed, dtype changes.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import at_revision, scm

TABULAR = (".csv", ".tsv", ".parquet")


@dataclass(frozen=True)
class Tracked:
    path: str
    md5: str
    size: int | None
    nfiles: int | None
    source: str  # "data" (a .dvc file) or the dvc.lock stage that outputs it


@dataclass(frozen=True)
class TableDiff:
    rows_before: int
    rows_after: int
    rows_added: int
    rows_removed: int
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DataChange:
    path: str
    status: str  # "added", "removed", "modified"
    source: str
    old_md5: str | None
    new_md5: str | None
    old_size: int | None
    new_size: int | None
    table: TableDiff | None = None
    note: str = ""


def tracked_at(root: Path, rev: str | None) -> dict[str, Tracked]:
    """Every DVC-tracked output with its recorded hash, at ``rev`` or in the workspace:
    the outs of every dvc.lock (nested ones, foreach/matrix stages) and every ``.dvc``
    file, as the one reader of DVC state reads them (never a stage's deps)."""
    from .. import dvcfiles

    with dvcfiles.Reader(root) as reader:
        outs = reader.outputs(rev)
    found: dict[str, Tracked] = {}
    for path, md5 in sorted(outs.recorded().items()):
        lockfile = outs.lockfiles.get(path)
        stage = outs.producers[path]
        if lockfile is None:
            source = "data"
        elif lockfile == "dvc.lock":
            source = f"stage {stage}"
        else:
            source = f"stage {posixpath.dirname(lockfile)}/dvc.yaml:{stage}"
        found[path] = Tracked(path, md5, outs.sizes.get(path), outs.nfiles.get(path), source)
    return found


def _frame(root: Path, path: str, md5: str, rev: str | None) -> Any:
    import pandas as pd

    f = at_revision.cache_path(root, md5)
    if not f.is_file() and rev is None and (root / path).is_file():
        f = root / path
    if not f.is_file():
        import io

        from .. import _dvc

        raw = _dvc.read_tracked(root, path, rev)

        src: Any = io.BytesIO(raw)
    else:
        src = f
    if path.endswith(".parquet"):
        return pd.read_parquet(src)
    return pd.read_csv(src, sep="\t" if path.endswith(".tsv") else ",")


def table_diff(old: Any, new: Any) -> TableDiff:
    import pandas as pd

    cols_old, cols_new = list(old.columns), list(new.columns)
    common = [c for c in cols_new if c in cols_old]
    types = {
        c: (str(old[c].dtype), str(new[c].dtype))
        for c in common
        if str(old[c].dtype) != str(new[c].dtype)
    }
    # Rows compared as whole rows over the shared columns (a multiset difference).
    h_old = Counter(pd.util.hash_pandas_object(old[common].astype(str), index=False).tolist())
    h_new = Counter(pd.util.hash_pandas_object(new[common].astype(str), index=False).tolist())
    added = sum((h_new - h_old).values())
    removed = sum((h_old - h_new).values())
    return TableDiff(
        rows_before=len(old),
        rows_after=len(new),
        rows_added=added,
        rows_removed=removed,
        columns_added=[c for c in cols_new if c not in cols_old],
        columns_removed=[c for c in cols_old if c not in cols_new],
        type_changes=types,
    )


def diff(root: Path, base_sha: str, *, tables: bool = True) -> list[DataChange]:
    """Changes from ``base_sha`` to the workspace, one entry per DVC-tracked path."""
    old = tracked_at(root, base_sha)
    new = tracked_at(root, None)
    # Metrics and plots files are reported in their own sections.
    from .. import dvcfiles

    skip: set[str] = set()
    with dvcfiles.Reader(root) as reader:
        for rev in (base_sha, None):
            state = reader.state(rev)
            skip.update(state.metrics, (d.file for d in state.plots))
    # Outputs git tracks (cache: false) are not DVC-managed data.
    skip.update(p for p in scm.git(root, "ls-files", "-z").out.split("\0") if p)
    out: list[DataChange] = []
    for path in sorted((set(old) | set(new)) - skip):
        a, b = old.get(path), new.get(path)
        if a and b and a.md5 == b.md5:
            continue
        status = "added" if a is None else "removed" if b is None else "modified"
        table = None
        note = ""
        if tables and a and b and path.endswith(TABULAR) and not a.md5.endswith(".dir"):
            try:
                table = table_diff(
                    _frame(root, path, a.md5, base_sha), _frame(root, path, b.md5, None)
                )
            except Exception as exc:  # noqa: BLE001 - a report shows what it can
                note = f"table diff unavailable: {type(exc).__name__}: {str(exc)[:120]}"
        out.append(
            DataChange(
                path=path,
                status=status,
                source=b.source if b else a.source if a else "",
                old_md5=a.md5 if a else None,
                new_md5=b.md5 if b else None,
                old_size=a.size if a else None,
                new_size=b.size if b else None,
                table=table,
                note=note,
            )
        )
    return out
