"""What changed in DVC-tracked data between a revision and the workspace.

Hashes come from the pointers (``.dvc`` files, ``dvc.lock``) as recorded, so nothing
is rehashed. For tables (CSV, TSV, Parquet) the two versions are read from the DVC
cache (fetched from the remote when missing) and compared: rows added and removed
(as a multiset of whole rows), columns added and removed, dtype changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import revfile, scm, yamlio
from .gitbatch import BlobReader

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


def _outs_of_pointer(data: Any, pointer: str) -> list[Tracked]:
    out = []
    base = str(Path(pointer).parent.as_posix())
    for entry in (data or {}).get("outs", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and entry.get("md5") and entry.get("path"):
            p = entry["path"] if base in ("", ".") else f"{base}/{entry['path']}"
            out.append(
                Tracked(str(p), str(entry["md5"]), entry.get("size"), entry.get("nfiles"), "data")
            )
    return out


def _outs_of_lock(data: Any) -> list[Tracked]:
    out = []
    stages = (data or {}).get("stages", {}) if isinstance(data, dict) else {}
    for name, stage in stages.items():
        for entry in (stage or {}).get("outs", []) or []:
            if isinstance(entry, dict) and entry.get("md5") and entry.get("path"):
                out.append(
                    Tracked(
                        str(entry["path"]),
                        str(entry["md5"]),
                        entry.get("size"),
                        entry.get("nfiles"),
                        f"stage {name}",
                    )
                )
    return out


def tracked_at(root: Path, rev: str | None) -> dict[str, Tracked]:
    """Every DVC-tracked path with its recorded hash, at ``rev`` or in the workspace."""
    found: dict[str, Tracked] = {}
    if rev is None:
        listed = scm.git(
            root,
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "*.dvc",
            "dvc.lock",
        ).out
        names = [n for n in listed.split("\0") if n]
        for name in names:
            f = root / name
            if not f.is_file():
                continue
            data = yamlio.fast_loads(f.read_text(encoding="utf-8", errors="replace"), display=name)
            items = _outs_of_lock(data) if name == "dvc.lock" else _outs_of_pointer(data, name)
            found.update({t.path: t for t in items})
        return found
    listed = scm.git(root, "ls-tree", "-r", "-z", "--name-only", rev).out
    names = [n for n in listed.split("\0") if n.endswith(".dvc") or n == "dvc.lock"]
    with BlobReader(root) as reader:
        for name in names:
            blob = reader.read(rev, name)
            if blob is None:
                continue
            data = yamlio.fast_loads(
                blob[1].decode("utf-8", "replace"), display=f"{name}@{rev[:8]}"
            )
            items = _outs_of_lock(data) if name == "dvc.lock" else _outs_of_pointer(data, name)
            found.update({t.path: t for t in items})
    return found


def _frame(root: Path, path: str, md5: str, rev: str | None) -> Any:
    import pandas as pd

    f = revfile.cache_path(root, md5)
    if not f.is_file() and rev is None and (root / path).is_file():
        f = root / path
    if not f.is_file():
        import io

        from . import _dvc

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
    from . import dvcfiles

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
