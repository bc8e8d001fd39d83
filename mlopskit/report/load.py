"""Load a report written by ``mlopskit report --format json`` as untrusted data.

The privileged job that posts a pull request's report never runs the PR's code: it
reads the uploaded ``report.json`` and PNGs, checks every field's type and size, and
rebuilds a Report that is then rendered (and escaped) by mlopskit itself. Nothing in
the file is evaluated, and only PNG files with the expected names are read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import metrics, params
from ..config import REMOTE_KINDS
from ..errors import UsageError
from . import datadiff, gate
from .build import DataQuality, PlotImage, Provenance, Report
from .render import image_key

MAX_JSON = 8 * 1024 * 1024
MAX_PNG = 5 * 1024 * 1024
MAX_ITEMS = 5000
MAX_TEXT = 2000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_KEY = re.compile(r"^[A-Za-z0-9._-]+-(base|head)\.png$")

T = TypeVar("T")


class _Bad(Exception):
    pass


def _s(v: Any, *, optional: bool = False) -> Any:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise _Bad(f"expected text, found {type(v).__name__}")
    return v[:MAX_TEXT]


def _scalar(v: Any) -> Any:
    """A metric or param value: a JSON scalar, or a short list/dict of them."""
    if v is None or isinstance(v, bool | int | float):
        return v
    if isinstance(v, str):
        return v[:MAX_TEXT]
    if isinstance(v, list) and len(v) <= 100:
        return [_scalar(x) for x in v]
    if isinstance(v, dict) and len(v) <= 100:
        return {_s(k): _scalar(x) for k, x in v.items()}
    raise _Bad("value of an unexpected type or size")


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad("expected a number")
    return float(v)


def _int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad("expected a whole number")
    return v


def _list(v: Any, item: Callable[[Any], T]) -> list[T]:
    if not isinstance(v, list) or len(v) > MAX_ITEMS:
        raise _Bad("expected a list (of at most 5000 items)")
    return [item(x) for x in v]


def _dict(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad("expected an object")
    return v


def _choice(v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise _Bad(f"unexpected value {str(v)[:40]!r}")
    return str(v)


def _metric(d: Any) -> metrics.MetricChange:
    d = _dict(d)
    return metrics.MetricChange(
        path=_s(d["path"]),
        key=_s(d["key"]),
        old=_scalar(d.get("old")),
        new=_scalar(d.get("new")),
        change=_num(d.get("change")),
        rel=_num(d.get("rel")),
        status=_choice(d["status"], ("modified", "unchanged", "added", "removed", "not numeric")),
        direction=None
        if d.get("direction") is None
        else _choice(d["direction"], ("higher", "lower")),
    )


def _param(d: Any) -> params.ParamChange:
    d = _dict(d)
    return params.ParamChange(
        _s(d["key"]),
        _scalar(d.get("old")),
        _scalar(d.get("new")),
        _choice(d["status"], ("modified", "added", "removed")),
    )


def _table(d: Any) -> datadiff.TableDiff | None:
    if d is None:
        return None
    d = _dict(d)
    types = {
        _s(k): (_s(v[0]), _s(v[1]))
        for k, v in _dict(d.get("type_changes", {})).items()
        if isinstance(v, list) and len(v) == 2
    }
    return datadiff.TableDiff(
        rows_before=_int(d["rows_before"]) or 0,
        rows_after=_int(d["rows_after"]) or 0,
        rows_added=_int(d["rows_added"]) or 0,
        rows_removed=_int(d["rows_removed"]) or 0,
        columns_added=_list(d.get("columns_added", []), _s),
        columns_removed=_list(d.get("columns_removed", []), _s),
        type_changes=types,
    )


def _data(d: Any) -> datadiff.DataChange:
    d = _dict(d)
    return datadiff.DataChange(
        path=_s(d["path"]),
        status=_choice(d["status"], ("added", "removed", "modified")),
        source=_s(d.get("source", "")),
        old_md5=_s(d.get("old_md5"), optional=True),
        new_md5=_s(d.get("new_md5"), optional=True),
        old_size=_int(d.get("old_size")),
        new_size=_int(d.get("new_size")),
        table=_table(d.get("table")),
        note=_s(d.get("note", "")),
    )


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"expected true or false, got {type(v).__name__}")
    return v


def _outcome(d: Any) -> gate.Outcome:
    d = _dict(d)
    if not isinstance(d.get("passed"), bool):
        raise _Bad("gate outcome without a passed flag")
    return gate.Outcome(
        _s(d["rule"]),
        _s(d["metric"]),
        d["passed"],
        _scalar(d.get("value")),
        _scalar(d.get("base")),
        _s(d.get("reason", "")),
    )


def _quality(d: Any) -> DataQuality:
    d = _dict(d)
    if not isinstance(d.get("ok"), bool):
        raise _Bad("data quality without an ok flag")
    violations = [
        {
            k: _scalar(v)
            for k, v in _dict(x).items()
            if k in ("column", "rule", "expected", "found", "count", "rows")
        }
        for x in _list(d.get("violations", []), lambda x: x)[:50]
    ]
    return DataQuality(
        _s(d["file"]), d["ok"], _int(d["rows"]) or 0, _int(d.get("base_rows")), violations
    )


def _png(folder: Path, key: str) -> bytes | None:
    if not _KEY.match(key):
        return None
    f = folder / key
    if f.is_symlink() or not f.is_file() or f.stat().st_size > MAX_PNG:
        return None
    data = f.read_bytes()
    return data if data.startswith(PNG_MAGIC) else None


def _plot(d: Any, assets: Path) -> PlotImage:
    d = _dict(d)
    name = _s(d["name"])
    return PlotImage(
        name,
        _s(d.get("title", name)),
        _png(assets, image_key(name, "base")),
        _png(assets, image_key(name, "head")),
        _s(d.get("note", "")),
    )


def _lineage(d: Any) -> Provenance:
    d = _dict(d)
    sync = d.get("lock_in_sync")
    if sync is not None and not isinstance(sync, bool):
        raise _Bad("lock_in_sync must be true, false or null")
    return Provenance(
        commit=_s(d.get("commit"), optional=True),
        subject=_s(d.get("subject", "")),
        branch=_s(d.get("branch"), optional=True),
        data={_s(k): _s(v) for k, v in _dict(d.get("data", {})).items()},
        lock_in_sync=sync,
        out_of_sync=_list(d.get("out_of_sync", []), _s),
        dirty=_list(d.get("dirty", []), _s),
    )


def load_untrusted(folder: Path) -> Report:
    """Read ``folder/report.json`` (and its PNGs) strictly; anything off is exit 2."""
    f = folder / "report.json"
    if f.is_symlink() or not f.is_file():
        raise UsageError(
            f"{f}: no report.json",
            "upload the output of 'mlopskit report --format json --out DIR/report.json'",
        )
    if f.stat().st_size > MAX_JSON:
        raise UsageError(f"{f}: larger than {MAX_JSON // 1024 // 1024} MB, refused")
    try:
        d = _dict(json.loads(f.read_text(encoding="utf-8")))
        assets = folder / "report_assets"
        g = d.get("gate")
        gate_result = None
        if g is not None:
            g = _dict(g)
            gate_result = gate.GateResult(
                _s(g.get("base"), optional=True), _list(g.get("outcomes", []), _outcome)
            )
        return Report(
            base=_s(d["base"]),
            base_sha=_s(d["base_sha"]),
            gate=gate_result,
            gate_error=_s(d.get("gate_error"), optional=True),
            metrics=_list(d.get("metrics", []), _metric),
            params=_list(d.get("params", []), _param),
            plots=_list(d.get("plots", []), lambda p: _plot(p, assets))[:50],
            data=_list(d.get("data", []), _data),
            lineage=_lineage(d.get("lineage", {})),
            notes=_list(d.get("notes", []), _s)[:20],
            quality=_list(d.get("quality", []), _quality)[:20],
            repro=_choice(d.get("repro", ""), ("", *gate.REPRO_OUTCOMES)),
            fork=_bool(d.get("fork", False)),
            remote_kind=_choice(d.get("remote_kind", ""), ("", *REMOTE_KINDS)),
        )
    except (_Bad, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"{f}: not a valid mlopskit report ({type(exc).__name__}: {exc})",
            "it is refused rather than posted",
        ) from None
