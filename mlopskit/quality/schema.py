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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import yamlio
from ..errors import UsageError

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

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
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
    return from_data(yamlio.loads(text, display=display), display)


def from_data(data: Any, display: str) -> Schema:
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
    return from_data(yamlio.load(path, display=str(path)), str(path))
