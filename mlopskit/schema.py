"""Data schemas: infer one from a table, keep it as YAML, validate files against it.

A schema holds row-count bounds and, per column (in order): a type (integer, float,
boolean, string, category, datetime), whether nulls are allowed and what fraction,
bounds for numbers, the allowed values of a category, uniqueness, and whether the
column is required.

``validate`` streams the file (CSV/TSV through pandas in chunks, Parquet by record
batches), so its memory does not grow with the file. The one exception is the
uniqueness check: it keeps a 64-bit hash of every distinct value seen (8 bytes each,
twice that while merging a chunk) and gives up, with a note in the result, past
``max_unique_values`` distinct values. Two different values share a hash with
probability below 1e-5 for ten million values; such a collision reports a false
duplicate, never hides a real one.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlio
from .errors import UsageError

TYPES = ("integer", "float", "boolean", "string", "category", "datetime")
NUMERIC = ("integer", "float")
TEXT = ("string", "category")
EXTENSIONS = (".csv", ".tsv", ".parquet")
# A string column with at most this many distinct values (and some repeats) is a category.
MAX_CATEGORIES = 20
EXAMPLES = 5
DEFAULT_MAX_UNIQUE = 10_000_000
BUCKETS = 64  # a power of two
VERSION = 1

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_ISO_DATE = r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True
    nullable: bool = False
    max_null_fraction: float | None = None  # only when nullable; None means any fraction
    min: float | None = None  # integer and float columns only
    max: float | None = None
    allowed: tuple[str, ...] | None = None  # string and category columns only
    unique: bool = False


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    min_rows: int = 1
    max_rows: int | None = None
    allow_extra_columns: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


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


# --- reading tables ---------------------------------------------------------------


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise UsageError(
            f"{path}: unsupported file type '{suffix or path.name}'",
            "use a .csv, .tsv or .parquet file",
        )
    if not path.is_file():
        raise UsageError(f"{path}: {'is a directory' if path.is_dir() else 'file not found'}")
    return suffix


def _unreadable(path: Path, exc: BaseException) -> UsageError:
    if isinstance(exc, UnicodeDecodeError):
        return UsageError(f"{path}: not UTF-8 text", "re-encode the file as UTF-8")
    if isinstance(exc, PermissionError):
        return UsageError(f"{path}: permission denied")
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return UsageError(f"{path}: cannot read the table: {text}")


def _read_errors() -> tuple[type[BaseException], ...]:
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

    return (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        pa.ArrowException,
        UnicodeDecodeError,
        OSError,
        ValueError,
    )


def read_table(path: Path, *, nrows: int | None = None) -> Any:
    """The whole table (or its first ``nrows`` rows) as a pandas DataFrame."""
    import pandas as pd

    kind = _kind(path)
    if nrows is not None and nrows < 1:
        raise UsageError(f"sample_rows must be at least 1, got {nrows}")
    try:
        if kind != ".parquet":
            return pd.read_csv(
                path, sep="\t" if kind == ".tsv" else ",", nrows=nrows, low_memory=False
            )
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        if nrows is None:
            return pq.read_table(path).to_pandas()
        with pq.ParquetFile(path) as pf:
            batches = []
            left = nrows
            for batch in pf.iter_batches(batch_size=min(nrows, 65_536)):
                batches.append(batch.slice(0, left))
                left -= batches[-1].num_rows
                if left <= 0:
                    break
            import pyarrow as pa  # type: ignore[import-untyped]

            return pa.Table.from_batches(batches, schema=pf.schema_arrow).to_pandas()
    except _read_errors() as exc:
        raise _unreadable(path, exc) from None


def _header(path: Path, kind: str) -> list[str]:
    import pandas as pd

    try:
        if kind == ".parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return [str(n) for n in pq.read_schema(path).names]
        frame = pd.read_csv(path, sep="\t" if kind == ".tsv" else ",", nrows=0)
        return [str(c) for c in frame.columns]
    except _read_errors() as exc:
        raise _unreadable(path, exc) from None


def _chunks(
    path: Path, kind: str, names: list[str], text_columns: list[str], chunksize: int
) -> Iterator[Any]:
    """DataFrames of at most ``chunksize`` rows holding ``names`` (Parquet: only those; CSV:
    every column, because with ``usecols`` pandas ignores a row's extra fields silently)."""
    if kind == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=chunksize, columns=names):
                yield batch.to_pandas()
        return
    import pandas as pd

    with pd.read_csv(
        path,
        sep="\t" if kind == ".tsv" else ",",
        # Text as Python objects: exact (no "007" -> 7), and the fastest to parse.
        dtype=dict.fromkeys(text_columns, "object"),
        chunksize=chunksize,
        low_memory=False,
    ) as reader:
        yield from reader


# --- inference ----------------------------------------------------------------------


def _nice(value: float, step: float, up: bool) -> float:
    rounded = (math.ceil if up else math.floor)(value / step) * step
    digits = max(0, -math.floor(math.log10(step)))
    return round(rounded, digits)


def _widen(lo: float, hi: float, integer: bool) -> tuple[float, float]:
    """Observed bounds widened by 5 % of the range, rounded outward; never below 0 when the
    data is non-negative."""
    margin = 0.05 * (hi - lo) or 0.05 * abs(lo) or 1.0
    new_lo, new_hi = lo - margin, hi + margin
    if lo >= 0:
        new_lo = max(new_lo, 0.0)
    if integer:
        return math.floor(new_lo), math.ceil(new_hi)
    step = 10.0 ** math.floor(math.log10(margin))
    return _nice(new_lo, step, up=False), _nice(new_hi, step, up=True)


def _infer_column(name: str, s: Any) -> Column:
    import numpy as np
    import pandas as pd
    from pandas.api import types as pt

    n = len(s)
    nulls = int(s.isna().sum())
    values = s.dropna()
    nullable = nulls > 0
    null_fraction = None
    if nullable:
        null_fraction = min(1.0, math.ceil(2000 * nulls / n) / 1000)  # twice observed
    base: dict[str, Any] = {
        "name": name,
        "nullable": nullable,
        "max_null_fraction": null_fraction,
    }
    if values.empty:
        return Column(type="string", **base)
    if pt.is_bool_dtype(s.dtype):
        return Column(type="boolean", **base)
    if pt.is_datetime64_any_dtype(s.dtype):
        return Column(type="datetime", **base)
    if pt.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        arr = values.to_numpy(dtype="float64")
        finite = arr[np.isfinite(arr)]
        integer = pt.is_integer_dtype(s.dtype) or (
            nullable and finite.size == arr.size and bool(np.all(finite == np.floor(finite)))
        )
        lo = hi = None
        if finite.size:
            lo, hi = _widen(float(finite.min()), float(finite.max()), integer)
        unique = integer and len(values) >= 2 and bool(values.is_unique)
        return Column(type="integer" if integer else "float", min=lo, max=hi, unique=unique, **base)
    text = values.astype(str)
    if bool(text.str.lower().isin(("true", "false")).all()):
        return Column(type="boolean", **base)  # a boolean column with nulls reads as text
    if bool(text.str.fullmatch(_ISO_DATE).all()):
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        if not parsed.isna().any():
            return Column(type="datetime", **base)
    distinct = int(text.nunique())
    categorical = isinstance(s.dtype, pd.CategoricalDtype)
    if distinct <= MAX_CATEGORIES and (categorical or distinct < len(text)):
        return Column(type="category", allowed=tuple(sorted(text.unique())), **base)
    return Column(
        type="category" if categorical else "string",
        unique=not categorical and len(text) >= 2 and distinct == len(text),
        **base,
    )


def infer(path: Path, *, sample_rows: int | None = None) -> Schema:
    """A schema that ``path`` satisfies, from all its rows or the first ``sample_rows``.

    Bounds are widened a little (numbers by 5 % of their range, the null fraction to twice
    what was seen, ``min_rows`` to half the rows seen, no ``max_rows``); edit the file to
    state what the data must satisfy. The whole sample is read into memory.
    """
    frame = read_table(path, nrows=sample_rows)
    if len(frame.columns) == 0:
        raise UsageError(f"{path}: no columns to infer a schema from")
    if len(frame) == 0:
        raise UsageError(f"{path}: no data rows to infer a schema from")
    columns = tuple(_infer_column(str(name), frame[name]) for name in frame.columns)
    return Schema(columns=columns, min_rows=max(1, len(frame) // 2))


# --- YAML ---------------------------------------------------------------------------


def _number_out(value: float | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _to_yaml(schema: Schema) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    top = CommentedMap()
    top["version"] = VERSION
    rows = CommentedMap()
    rows["min"] = schema.min_rows
    if schema.max_rows is not None:
        rows["max"] = schema.max_rows
    top["rows"] = rows
    top["allow_extra_columns"] = schema.allow_extra_columns
    cols = CommentedMap()
    for c in schema.columns:
        entry = CommentedMap()
        entry["type"] = c.type
        if not c.required:
            entry["required"] = False
        entry["nullable"] = c.nullable
        if c.nullable and c.max_null_fraction is not None:
            entry["max_null_fraction"] = c.max_null_fraction
        if c.min is not None:
            entry["min"] = _number_out(c.min)
        if c.max is not None:
            entry["max"] = _number_out(c.max)
        if c.allowed is not None:
            allowed = CommentedSeq(c.allowed)
            allowed.fa.set_flow_style()
            entry["allowed"] = allowed
        if c.unique:
            entry["unique"] = True
        cols[c.name] = entry
    top["columns"] = cols
    top.yaml_set_start_comment(
        "Data schema checked by mlopskit. Inferred bounds are a starting point: edit them to\n"
        "what the data must satisfy. Column keys: type (integer, float, boolean, string,\n"
        "category, datetime), required, nullable, max_null_fraction, min, max, allowed, unique."
    )
    return top


def dumps(schema: Schema) -> str:
    return yamlio.dumps(_to_yaml(schema))


def write(schema: Schema, path: Path) -> None:
    """Write ``schema`` to ``path`` as YAML (atomically)."""
    yamlio.atomic_write_text(path, dumps(schema))


_TOP_KEYS = ("version", "rows", "allow_extra_columns", "columns")
_ROW_KEYS = ("min", "max")
_COLUMN_KEYS = (
    "type",
    "required",
    "nullable",
    "max_null_fraction",
    "min",
    "max",
    "allowed",
    "unique",
)


@dataclass
class _Reader:
    """Strict access to one parsed schema file; every error names the file and the key."""

    display: str

    def fail(self, key: str, problem: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{self.display}: {key}: {problem}", hint)

    def mapping(self, value: Any, key: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {_show(value)}")
        for k in value:
            if k not in known:
                close = difflib.get_close_matches(str(k), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                where = f"{key}.{k}" if key else str(k)
                raise UsageError(f"{self.display}: unknown key '{where}'", hint)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def count(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected a whole number >= 0, got {_show(value)}")
        return int(value)

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"expected a finite number, got {value}")
        return int(value) if isinstance(value, int) else float(value)


def _show(value: Any) -> str:
    kind = {bool: "a boolean", str: "text", list: "a list", type(None): "nothing"}
    for t, word in kind.items():
        if isinstance(value, t):
            return f"{word} ({value!r})" if t is not type(None) else word
    if isinstance(value, Mapping):
        return "a mapping"
    return repr(value)


def _column_from(r: _Reader, name: Any, raw: Any) -> Column:
    key = f"columns.{name}"
    if not isinstance(name, str):
        raise r.fail(key, "column names must be text", "quote the name")
    spec = r.mapping(raw, key, _COLUMN_KEYS)
    if "type" not in spec:
        raise r.fail(key, "missing 'type'", f"one of: {', '.join(TYPES)}")
    kind = spec["type"]
    if kind not in TYPES:
        close = difflib.get_close_matches(str(kind), TYPES, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(TYPES)}"
        raise r.fail(f"{key}.type", f"unknown type {kind!r}", hint)
    required = r.boolean(spec.get("required", True), f"{key}.required")
    nullable = r.boolean(spec.get("nullable", False), f"{key}.nullable")
    unique = r.boolean(spec.get("unique", False), f"{key}.unique")
    fraction = None
    if "max_null_fraction" in spec:
        fraction = r.number(spec["max_null_fraction"], f"{key}.max_null_fraction")
        if not 0 <= fraction <= 1:
            raise r.fail(f"{key}.max_null_fraction", f"expected 0 to 1, got {fraction}")
        if not nullable:
            raise r.fail(
                f"{key}.max_null_fraction", "set, but the column is not nullable", "nullable: true"
            )
    lo = hi = None
    for bound in ("min", "max"):
        if bound in spec:
            if kind not in NUMERIC:
                raise r.fail(f"{key}.{bound}", f"only integer and float columns have '{bound}'")
            value = r.number(spec[bound], f"{key}.{bound}")
            lo, hi = (value, hi) if bound == "min" else (lo, value)
    if lo is not None and hi is not None and lo > hi:
        raise r.fail(f"{key}.min", f"{lo} is above max {hi}")
    allowed = None
    if "allowed" in spec:
        if kind not in TEXT:
            raise r.fail(f"{key}.allowed", "only string and category columns have 'allowed'")
        items = spec["allowed"]
        if not isinstance(items, list) or not items:
            raise r.fail(f"{key}.allowed", f"expected a non-empty list, got {_show(items)}")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise r.fail(f"{key}.allowed", f"expected text values, got {_show(item)}")
        allowed = tuple(str(i) for i in items)
    return Column(
        name=name,
        type=str(kind),
        required=required,
        nullable=nullable,
        max_null_fraction=fraction,
        min=lo,
        max=hi,
        allowed=allowed,
        unique=unique,
    )


def loads(text: str, *, display: str) -> Schema:
    """Parse a schema from YAML text (``display`` names it in errors)."""
    return _from_data(yamlio.loads(text, display=display), display)


def _from_data(data: Any, display: str) -> Schema:
    r = _Reader(display)
    if not isinstance(data, Mapping):
        raise UsageError(f"{display}: expected a mapping with 'columns'")
    top = r.mapping(data, "", _TOP_KEYS)
    if top.get("version", VERSION) != VERSION:
        raise r.fail("version", f"unsupported version {top['version']!r}", f"use {VERSION}")
    rows = r.mapping(top.get("rows"), "rows", _ROW_KEYS)
    min_rows = r.count(rows.get("min", 1), "rows.min")
    max_rows = None if rows.get("max") is None else r.count(rows["max"], "rows.max")
    if max_rows is not None and max_rows < min_rows:
        raise r.fail("rows.max", f"{max_rows} is below rows.min {min_rows}")
    extra = r.boolean(top.get("allow_extra_columns", False), "allow_extra_columns")
    if "columns" not in top:
        raise UsageError(f"{display}: missing 'columns'")
    raw_columns = top["columns"]
    if not isinstance(raw_columns, Mapping) or not raw_columns:
        raise r.fail("columns", f"expected a mapping of column names, got {_show(raw_columns)}")
    columns = tuple(_column_from(r, name, spec) for name, spec in raw_columns.items())
    return Schema(columns=columns, min_rows=min_rows, max_rows=max_rows, allow_extra_columns=extra)


def load(path: Path) -> Schema:
    """Read a schema file; malformed YAML, an unknown key or a wrong type is a UsageError."""
    return _from_data(yamlio.load(path, display=str(path)), str(path))


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
        truth = low.isin(_TRUE).to_numpy()
        bad = present & ~truth & ~low.isin(_FALSE).to_numpy()
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
