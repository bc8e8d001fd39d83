"""Flatten nested params/metrics into dotted keys, as DVC shows them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Mapping) and value:
                out.update(flatten(value, name))
            else:
                out[name] = plain(value)
    elif prefix:
        out[prefix] = plain(data)
    return out


def plain(value: Any) -> Any:
    """ruamel's commented types -> plain Python, for JSON output."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def number(value: Any) -> float | None:
    """A finite number, or None for anything else (bool, str, NaN, inf, list...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None
