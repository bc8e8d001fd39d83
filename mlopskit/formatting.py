"""Plain-text and Markdown tables, and value formatting shared by commands and reports."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any


def first(items: Sequence[object], n: int) -> str:
    """The first ``n`` items, comma-separated, with `` ...`` when there are more: how
    every message names a long list (paths, stages, objects)."""
    return ", ".join(str(x) for x in items[:n]) + (" ..." if len(items) > n else "")


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def fmt_param(value: Any) -> str:
    """A param as its file spells it: ``1.0`` stays ``1.0`` (``fmt`` rounds for metrics)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return fmt(value)


def fmt_change(change: float | None, rel: float | None) -> tuple[str, str]:
    if change is None:
        return "—", "—"
    abs_s = f"{change:+.6g}"
    rel_s = f"{rel * 100:+.2f}%" if rel is not None else "—"
    return abs_s, rel_s


_ZWSP = "\u200b"  # a zero-width space: breaks a mention or an autolink, shows nothing
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto)(:)|\b(www)(\.)")


def md_escape(text: str) -> str:
    """Escape text for GitHub Markdown (a table cell, a verdict): pipes, newlines, HTML,
    and what untrusted text could use to reach outside the comment: links and images
    (``[..](..)``, ``![..](..)``), autolinked URLs, and @mentions or #references."""
    text = (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace("!", "\\!")
        .replace("\r", " ")
        .replace("\n", " ")
    )
    text = _AUTOLINK.sub(lambda m: (m[1] or m[3]) + _ZWSP + (m[2] or m[4]), text)
    return re.sub(r"([@#])(?=\w)", "\\1" + _ZWSP, text)


def md_code(text: str) -> str:
    """A Markdown code span: HTML is literal inside one, so only backticks, pipes (tables)
    and newlines need care."""
    clean = text.replace("`", "'").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return f"`{clean}`"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n"
