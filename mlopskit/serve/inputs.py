"""Requests -> a checked table: MLflow's scoring formats and the Open Inference Protocol,
validated row by row against the data contract (``data/schema.yaml``).

The rules are the schema's own (mlopskit/quality/schema.py: type, nullable, min, max, allowed,
required columns, extra columns); the checks are those of ``data validate``, applied to
one request's values instead of a file's chunks. Row-count, null-fraction and uniqueness
rules describe a data set, not a request, so they are not applied here.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..quality.schema import FALSE_WORDS, NUMERIC, TRUE_WORDS, Column

MAX_ERRORS = 20
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadRequest(Exception):
    """A request the server answers with ``status`` and a JSON body; never a traceback."""

    def __init__(self, status: int, message: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)


_MISSING = object()  # a record without the key


def parse_json(raw: bytes) -> Any:
    import orjson

    if not raw.strip():
        raise BadRequest(400, "the request body is empty; send a JSON document")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the request body is not valid JSON: {exc}") from None


def _records(items: list[Any], where: str) -> tuple[list[str], list[list[Any]]]:
    columns: list[str] = []
    seen: set[str] = set()
    for i, rec in enumerate(items):
        if not isinstance(rec, dict):
            raise BadRequest(400, f"{where}[{i}] is not an object of column: value")
        for k in rec:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    return columns, [[rec.get(c, _MISSING) for c in columns] for rec in items]


def _columnar(cols: dict[str, Any], where: str) -> tuple[list[str], list[list[Any]]]:
    names = list(cols)
    lists = []
    for n in names:
        v = cols[n]
        lists.append(v if isinstance(v, list) else [v])
    lengths = {len(v) for v in lists}
    if len(lengths) > 1:
        raise BadRequest(400, f"{where}: the columns have different lengths {sorted(lengths)}")
    return names, [list(r) for r in zip(*lists, strict=True)]


def _positional(
    rows: list[Any], where: str, features: Sequence[str]
) -> tuple[list[str], list[list[Any]]]:
    for i, r in enumerate(rows):
        if not isinstance(r, list):
            raise BadRequest(400, f"{where}[{i}] is not a list of values")
        if len(r) != len(features):
            raise BadRequest(
                422,
                f"row {i}: {len(r)} values, the model takes {len(features)} columns",
                [
                    {
                        "row": i,
                        "field": None,
                        "rule": "columns",
                        "expected": f"{len(features)} values",
                        "found": len(r),
                        "message": f"{len(r)} values",
                    }
                ],
            )
    return list(features), rows


def mlflow_table(body: Any, features: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) from a body in one of MLflow's scoring formats."""
    if not isinstance(body, dict):
        raise BadRequest(400, f"expected a JSON object with one of: {', '.join(MLFLOW_FORMATS)}")
    keys = [k for k in body if k in MLFLOW_FORMATS]
    other = [k for k in body if k not in MLFLOW_FORMATS and k != "params"]
    if len(keys) != 1 or other:
        raise BadRequest(
            400,
            f"expected exactly one of {', '.join(MLFLOW_FORMATS)} "
            f"(got {', '.join(body) or 'none'})",
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise BadRequest(400, "dataframe_split needs {'columns': [...], 'data': [[...]]}")
        data = value["data"]
        if "columns" not in value:
            return _positional(data, "dataframe_split.data", features)
        cols = value["columns"]
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise BadRequest(400, "dataframe_split.columns must be a list of column names")
        for i, r in enumerate(data):
            if not isinstance(r, list) or len(r) != len(cols):
                raise BadRequest(
                    400, f"dataframe_split.data[{i}] must be a list of {len(cols)} values"
                )
        return list(cols), data
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise BadRequest(400, "dataframe_records must be a list of objects")
        return _records(value, key)
    if isinstance(value, dict):
        return _columnar(value, key)
    if not isinstance(value, list):
        raise BadRequest(400, f"{key} must be a list of rows or an object of columns")
    if value and all(isinstance(r, dict) for r in value):
        return _records(value, key)
    return _positional(value, key, features)


_V2_TYPES = {
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


def v2_table(body: Any, features: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) from an Open Inference Protocol v2 request: one tensor per
    column (shape [N] or [N, 1], named after the column), or one [N, K] tensor holding
    the K input columns in the model's order."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest(400, "expected {'inputs': [{'name', 'shape', 'datatype', 'data'}, ...]}")
    tensors = body["inputs"]
    for i, t in enumerate(tensors):
        if not isinstance(t, dict) or not {"name", "shape", "datatype", "data"} <= set(t):
            raise BadRequest(400, f"inputs[{i}] needs name, shape, datatype and data")
        if t["datatype"] not in _V2_TYPES:
            raise BadRequest(400, f"inputs[{i}]: unknown datatype {t['datatype']!r}")
        shape = t["shape"]
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise BadRequest(400, f"inputs[{i}]: shape must be a list of sizes")
    if len(tensors) == 1 and len(tensors[0]["shape"]) == 2 and tensors[0]["shape"][1] > 1:
        t = tensors[0]
        n, k = t["shape"]
        flat = _flatten(t["data"])
        if len(flat) != n * k:
            raise BadRequest(400, f"inputs[0]: shape {t['shape']} but {len(flat)} values")
        return _positional([flat[i * k : (i + 1) * k] for i in range(n)], "inputs[0]", features)
    cols: dict[str, Any] = {}
    for i, t in enumerate(tensors):
        flat = _flatten(t["data"])
        size = math.prod(t["shape"])
        if len(flat) != size:
            raise BadRequest(400, f"inputs[{i}] ({t['name']}): shape {t['shape']} but {len(flat)}")
        cols[str(t["name"])] = flat
    return _columnar(cols, "inputs")


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(x, list) for x in data):
        return data
    out: list[Any] = []
    for x in data:
        out.extend(_flatten(x))
    return out


# --- the contract ---------------------------------------------------------------------


def _is_date(v: str) -> bool:
    try:
        dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _problem(col: Column, v: Any) -> tuple[str, str] | None:
    """(rule, expected) that ``v`` breaks, or None."""
    kind = col.type
    if v is None:
        return None if col.nullable else ("nullable", "a value (the column has no nulls)")
    if kind in NUMERIC:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return "type", f"a number ({kind})"
        if isinstance(v, float):
            if not math.isfinite(v):
                return "type", "a finite number"
            if kind == "integer" and not v.is_integer():
                return "type", "a whole number (integer)"
        if col.min is not None and v < col.min:
            return "min", f">= {_num(col.min)}"
        if col.max is not None and v > col.max:
            return "max", f"<= {_num(col.max)}"
        return None
    if kind == "boolean":
        if isinstance(v, bool) or (
            isinstance(v, str) and v.strip().lower() in TRUE_WORDS + FALSE_WORDS
        ):
            return None
        return "type", "true or false"
    if kind == "datetime":
        if isinstance(v, str) and _is_date(v):
            return None
        return "type", "an ISO 8601 date or time"
    if not isinstance(v, str):
        return "type", f"text ({kind})"
    if col.allowed is not None and v not in col.allowed:
        shown = ", ".join(repr(a) for a in col.allowed[:10])
        return "allowed", f"one of {shown}" + (", ..." if len(col.allowed) > 10 else "")
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _words(e: dict[str, Any]) -> str:
    where = f"row {e['row']}, " if e.get("row") is not None else ""
    return f"{where}field '{e['field']}': {e['message']}"


@dataclass(frozen=True)
class Contract:
    columns: tuple[Column, ...]
    allow_extra_columns: bool = False
    max_rows: int = 1000

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def table(self, names: list[str], rows: list[list[Any]]) -> Any:
        """A DataFrame in the model's column order; 422 naming the field and the row for
        the first violations, 413 past ``max_rows``."""
        if len(rows) > self.max_rows:
            raise BadRequest(
                413, f"{len(rows)} rows in one request; the limit is {self.max_rows} (max_rows)"
            )
        if not rows:
            raise BadRequest(422, "no rows to predict")
        fast = self._numeric(names, rows)
        if fast is not None:
            return fast
        errors: list[dict[str, Any]] = []
        index = {n: i for i, n in enumerate(names)}
        if len(index) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise BadRequest(400, f"column '{dup}' appears more than once")
        known = {c.name for c in self.columns}
        if not self.allow_extra_columns:
            for n in names:
                if n not in known:
                    errors.append(
                        {
                            "row": None,
                            "field": n,
                            "rule": "extra_column",
                            "message": "extra column, not a model input (see GET /metadata)",
                        }
                    )
        values: dict[str, list[Any]] = {}
        for col in self.columns:
            at = index.get(col.name)
            if at is None:
                if col.required:
                    errors.append(
                        {
                            "row": None,
                            "field": col.name,
                            "rule": "missing_column",
                            "message": f"missing ({col.type} column required by the contract)",
                        }
                    )
                values[col.name] = [None] * len(rows)
                continue
            vals = [r[at] for r in rows]
            for i, v in enumerate(vals):
                if v is _MISSING:
                    if col.required:
                        errors.append(
                            {"row": i, "field": col.name, "rule": "missing", "message": "missing"}
                        )
                    vals[i] = None
                    continue
                bad = _problem(col, v)
                if bad is not None and len(errors) < MAX_ERRORS:
                    rule, expected = bad
                    errors.append(
                        {
                            "row": i,
                            "field": col.name,
                            "rule": rule,
                            "expected": expected,
                            "found": v,
                            "message": f"{v!r} breaks '{rule}': expected {expected}",
                        }
                    )
            values[col.name] = vals
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            errors = errors[:MAX_ERRORS]
            raise BadRequest(422, _words(errors[0]) + more, errors)
        return self._frame(values, len(rows))

    def _numeric(self, names: list[str], rows: list[list[Any]]) -> Any:
        """The common case at numpy speed: every input column numeric, every value a
        finite number within its bounds. None when anything is off: the row-by-row
        checks then find and name it."""
        import numpy as np
        import pandas as pd

        cols = self.columns
        if len(names) != len(cols) or any(c.type not in NUMERIC for c in cols):
            return None
        if names != self.names:
            where = {n: i for i, n in enumerate(names)}
            if set(where) != {c.name for c in cols}:
                return None
            order: list[int] | None = [where[c.name] for c in cols]
        else:
            order = None
        number = (float, int)
        if not all(type(v) in number for row in rows for v in row):
            return None  # bool is not a number here, nor are None and text
        try:
            arr = np.array(rows, dtype="float64")
        except (ValueError, OverflowError):
            return None
        if arr.ndim != 2 or arr.shape[1] != len(cols):
            return None
        if order is not None:
            arr = arr[:, order]
        if not np.isfinite(arr).all():
            return None
        lo, hi, whole = self._bounds
        if (arr < lo).any() or (arr > hi).any():
            return None
        if whole.any() and not (arr[:, whole] == np.floor(arr[:, whole])).all():
            return None
        return pd.DataFrame(arr, columns=self.names)

    @functools.cached_property
    def _bounds(self) -> tuple[Any, Any, Any]:
        import numpy as np

        lo = np.array([-np.inf if c.min is None else c.min for c in self.columns])
        hi = np.array([np.inf if c.max is None else c.max for c in self.columns])
        return lo, hi, np.array([c.type == "integer" for c in self.columns])

    def _frame(self, values: dict[str, list[Any]], n: int) -> Any:
        import numpy as np
        import pandas as pd

        if all(c.type in NUMERIC for c in self.columns):
            arr = np.array(
                [[np.nan if v is None else v for v in values[c.name]] for c in self.columns],
                dtype="float64",
            ).T
            return pd.DataFrame(arr, columns=self.names)
        frame = {}
        for c in self.columns:
            vals = values[c.name]
            if c.type in NUMERIC:
                frame[c.name] = np.array(
                    [np.nan if v is None else v for v in vals], dtype="float64"
                )
            elif c.type == "boolean":
                frame[c.name] = pd.array(
                    [None if v is None else _truth(v) for v in vals], dtype="boolean"
                )
            elif c.type == "datetime":
                frame[c.name] = pd.to_datetime(
                    pd.Series(vals, dtype="object"), format="ISO8601", utc=True
                )
            else:
                frame[c.name] = pd.Series(vals, dtype="object")
        return pd.DataFrame(frame)


def _truth(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in TRUE_WORDS
