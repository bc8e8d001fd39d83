"""Validate a table against a schema, streaming it in chunks so memory stays bounded.

CSV and TSV are read with pandas in chunks, Parquet by record batch; every check keeps
running totals (counts, min/max, examples), and uniqueness keeps 8 bytes per distinct
value. The schema itself (its model, inference and YAML form) lives in ``schema``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .schema import (
    BUCKETS,
    DEFAULT_MAX_UNIQUE,
    EXAMPLES,
    FALSE_WORDS,
    NUMERIC,
    TEXT,
    TRUE_WORDS,
    Column,
    Schema,
    _chunks,
    _header,
    _kind,
    _read_errors,
    _unreadable,
)


@dataclass(frozen=True)
class Violation:
    column: str | None  # None for rules over the whole table (row counts)
    rule: str  # missing_column, extra_column, type, nullable, max_null_fraction,
    # min, max, allowed, unique, min_rows, max_rows
    expected: str
    found: str
    count: int = 0  # rows that break the rule (0 for table-level rules)
    rows: tuple[int, ...] = ()  # the first few, 1-based data rows (the header is not a row)


@dataclass(frozen=True)
class ValidationResult:
    path: str
    rows: int
    violations: tuple[Violation, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations


# --- validation ---------------------------------------------------------------------


@dataclass
class _Tally:
    """Rows breaking one rule in one column, accumulated over chunks."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    extreme: float | None = None

    def add(self, mask: Any, offset: int, values: Any = None, extreme: str | None = None) -> None:
        import numpy as np
        import pandas as pd

        hits = np.flatnonzero(mask)
        if not hits.size:
            return
        self.count += int(hits.size)
        if len(self.rows) < EXAMPLES:
            self.rows.extend(int(offset + i + 1) for i in hits[: EXAMPLES - len(self.rows)])
        if values is None:
            return
        bad = values[hits] if isinstance(values, np.ndarray) else values.iloc[hits]
        if len(self.samples) < EXAMPLES:
            for v in pd.unique(np.asarray(bad, dtype=object))[: 2 * EXAMPLES]:
                if v not in self.samples and len(self.samples) < EXAMPLES:
                    self.samples.append(v)
        if extreme is not None:
            value = float(np.min(bad) if extreme == "min" else np.max(bad))
            if self.extreme is None:
                self.extreme = value
            else:
                self.extreme = (
                    min(self.extreme, value) if extreme == "min" else max(self.extreme, value)
                )


@dataclass
class _ColumnState:
    column: Column
    nulls: _Tally = field(default_factory=_Tally)
    tallies: dict[str, _Tally] = field(default_factory=dict)
    # The unique check: keys seen so far, in BUCKETS sorted uint64 arrays by their top bits.
    seen: list[Any] = field(default_factory=list)
    distinct: int = 0
    unique_given_up: bool = False

    def tally(self, rule: str) -> _Tally:
        return self.tallies.setdefault(rule, _Tally())


def _coerce(s: Any, kind: str, present: Any) -> tuple[Any, Any]:
    """(values as numpy or Series in a canonical dtype, mask of non-null values that are not
    of ``kind``). Values at null or bad positions are meaningless."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as pt

    dtype = s.dtype
    if kind in NUMERIC:
        if pt.is_bool_dtype(dtype):
            return np.zeros(len(s)), present
        if kind == "integer" and pt.is_integer_dtype(dtype) and bool(present.all()):
            return s.to_numpy(), np.zeros(len(s), dtype=bool)  # exact, even past 2**53
        if pt.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            arr = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = np.zeros(len(s), dtype=bool)
        else:
            arr = pd.to_numeric(s.astype("object"), errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
            bad = present & np.isnan(arr)
        if kind == "integer":
            with np.errstate(invalid="ignore"):
                bad |= present & ~np.isnan(arr) & ~(np.isfinite(arr) & (arr == np.floor(arr)))
        return arr, bad
    if kind == "boolean":
        if pt.is_bool_dtype(dtype):
            return s.to_numpy(dtype="bool", na_value=False), np.zeros(len(s), dtype=bool)
        low = s.astype("str").str.strip().str.lower()
        truth = low.isin(TRUE_WORDS).to_numpy()
        bad = present & ~truth & ~low.isin(FALSE_WORDS).to_numpy()
        return truth, bad
    if kind == "datetime":
        if pt.is_datetime64_any_dtype(dtype):
            parsed = pd.to_datetime(s, utc=True)
        elif pt.is_numeric_dtype(dtype) or pt.is_bool_dtype(dtype):
            return np.zeros(len(s), dtype="int64"), present
        else:
            parsed = pd.to_datetime(s.astype("str"), errors="coerce", format="ISO8601", utc=True)
        bad = present & parsed.isna().to_numpy()
        ints = parsed.dt.tz_localize(None).dt.as_unit("us").to_numpy().view("int64")
        return ints, bad
    # string, category: anything is text (CSV text columns arrive as str objects already)
    return s if pt.is_object_dtype(dtype) else s.astype("str"), np.zeros(len(s), dtype=bool)


def _keys(values: Any, integer: bool) -> Any:
    """uint64 keys, equal exactly when values are equal (numbers, booleans, timestamps)
    or when their 64-bit hashes are (text); spread over the whole range for bucketing."""
    import numpy as np
    import pandas as pd

    if not isinstance(values, np.ndarray):
        return pd.util.hash_array(values.to_numpy(dtype=object))
    if values.dtype.kind == "f" and not integer:
        x = (values + 0.0).view("uint64").copy()  # -0.0 and 0.0 are one value
    else:  # integral floats of an integer column key as its int64 chunks do
        x = values.astype("int64").view("uint64").copy()
    # splitmix64's finalizer: a bijection on uint64, so distinct values keep distinct keys.
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _check_unique(state: _ColumnState, values: Any, ok: Any, offset: int, limit: int) -> None:
    """Mark values seen earlier (in this chunk or before). Keys live in BUCKETS sorted
    arrays, so adding a chunk copies one bucket at a time, not every key seen."""
    import numpy as np

    if state.unique_given_up:
        return
    idx = np.flatnonzero(ok)
    if not idx.size:
        return
    picked = values[idx] if isinstance(values, np.ndarray) else values.iloc[idx]
    keys = _keys(picked, state.column.type == "integer")
    distinct, first = np.unique(keys, return_index=True)  # sorted, so grouped by bucket
    dup = np.ones(keys.size, dtype=bool)
    dup[first] = False
    if not state.seen:
        state.seen = [np.empty(0, dtype="uint64")] * BUCKETS
    shift = np.uint64(64 - (BUCKETS - 1).bit_length())  # the top bits pick the bucket
    bounds = np.searchsorted(distinct >> shift, np.arange(BUCKETS + 1, dtype="uint64"))
    additions = []
    for b in np.flatnonzero(np.diff(bounds)):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        part, seen = distinct[lo:hi], state.seen[b]
        at = np.searchsorted(seen, part)
        if seen.size:
            hit = seen[np.minimum(at, seen.size - 1)] == part
            dup[first[lo:hi][hit]] = True
            part, at = part[~hit], at[~hit]
        additions.append((b, at, part))
    mask = np.zeros(len(values), dtype=bool)
    mask[idx[dup]] = True
    state.tally("unique").add(mask, offset, values)
    state.distinct += sum(part.size for _, _, part in additions)
    if state.distinct > limit:
        state.seen = []
        state.unique_given_up = True
        return
    for b, at, part in additions:
        state.seen[b] = np.insert(state.seen[b], at, part)


def _check_chunk(state: _ColumnState, s: Any, offset: int, limit: int) -> None:
    import numpy as np

    col = state.column
    nulls = s.isna().to_numpy()
    state.nulls.add(nulls, offset)
    values, bad = _coerce(s, col.type, ~nulls)
    state.tally("type").add(bad, offset, s)
    ok = ~nulls & ~bad
    if col.type in NUMERIC:
        with np.errstate(invalid="ignore"):
            if col.min is not None:
                state.tally("min").add(ok & (values < col.min), offset, values, "min")
            if col.max is not None:
                state.tally("max").add(ok & (values > col.max), offset, values, "max")
    if col.allowed is not None:
        outside = ok & ~values.isin(col.allowed).to_numpy()
        state.tally("allowed").add(outside, offset, values)
    if col.unique:
        _check_unique(state, values, ok, offset, limit)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _samples(t: _Tally) -> str:
    return ", ".join(
        _fmt(float(v)) if isinstance(v, numbers.Real) and not isinstance(v, bool) else repr(str(v))
        for v in t.samples
    )


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _column_violations(state: _ColumnState, rows: int) -> list[Violation]:
    col = state.column
    out: list[Violation] = []
    nulls = state.nulls
    if nulls.count:
        share = nulls.count / rows
        found = f"{nulls.count} nulls ({share:.2%} of {rows} rows)"
        if not col.nullable:
            out.append(
                Violation(col.name, "nullable", "no nulls", found, nulls.count, tuple(nulls.rows))
            )
        elif col.max_null_fraction is not None and share > col.max_null_fraction:
            expected = f"at most {col.max_null_fraction:.2%} nulls"
            out.append(
                Violation(
                    col.name, "max_null_fraction", expected, found, nulls.count, tuple(nulls.rows)
                )
            )
    for rule, t in state.tallies.items():
        if not t.count:
            continue
        if rule == "type":
            expected, found = (
                f"{col.type} values",
                f"{_values(t.count)} not {col.type}: {_samples(t)}",
            )
        elif rule == "min":
            expected = f">= {_fmt(col.min)}"
            found = f"{_values(t.count)} below, lowest {_fmt(t.extreme)}"
        elif rule == "max":
            expected = f"<= {_fmt(col.max)}"
            found = f"{_values(t.count)} above, highest {_fmt(t.extreme)}"
        elif rule == "allowed":
            shown = ", ".join(repr(a) for a in (col.allowed or ())[:10])
            more = ", ..." if len(col.allowed or ()) > 10 else ""
            expected = f"one of {shown}{more}"
            found = f"{_values(t.count)} outside the list: {_samples(t)}"
        else:  # unique
            expected, found = "unique values", f"{_values(t.count)} repeated: {_samples(t)}"
        out.append(Violation(col.name, rule, expected, found, t.count, tuple(t.rows)))
    return out


def validate(
    path: Path,
    schema: Schema,
    *,
    chunksize: int = 100_000,
    max_unique_values: int = DEFAULT_MAX_UNIQUE,
) -> ValidationResult:
    """Check ``path`` (CSV, TSV or Parquet) against ``schema``, ``chunksize`` rows at a time.

    Violations come in schema column order (missing and extra columns first, row counts
    last); each names its column and rule, what was expected and found, how many rows
    break it and the first few (1-based data rows).
    """
    if chunksize < 1:
        raise UsageError(f"chunksize must be at least 1, got {chunksize}")
    kind = _kind(path)
    header = _header(path, kind)
    present = [c for c in schema.columns if c.name in header]
    violations: list[Violation] = []
    for c in schema.columns:
        if c.name not in header and c.required:
            violations.append(Violation(c.name, "missing_column", "column present", "absent"))
    if not schema.allow_extra_columns:
        known = {c.name for c in schema.columns}
        for name in header:
            if name not in known:
                violations.append(
                    Violation(name, "extra_column", "only the schema's columns", "present")
                )
    names = [c.name for c in present] or header[:1]
    text_columns = [c.name for c in present if c.type in TEXT]
    states = [_ColumnState(c) for c in present]
    rows = 0
    chunks = _chunks(path, kind, names, text_columns, chunksize)
    while True:
        try:
            chunk = next(chunks, None)
        except _read_errors() as exc:
            raise _unreadable(path, exc) from None
        if chunk is None:
            break
        for state in states:
            _check_chunk(state, chunk[state.column.name], rows, max_unique_values)
        rows += len(chunk)
    notes: list[str] = []
    for state in states:
        violations += _column_violations(state, rows)
        if state.unique_given_up:
            notes.append(
                f"{state.column.name}: uniqueness not checked past {max_unique_values} "
                "distinct values (max_unique_values)"
            )
    if rows < schema.min_rows:
        violations.append(
            Violation(None, "min_rows", f"at least {schema.min_rows} rows", f"{rows} rows")
        )
    if schema.max_rows is not None and rows > schema.max_rows:
        violations.append(
            Violation(None, "max_rows", f"at most {schema.max_rows} rows", f"{rows} rows")
        )
    return ValidationResult(str(path), rows, tuple(violations), tuple(notes))
