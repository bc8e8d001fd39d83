"""Render a Report as GitHub Markdown, self-contained HTML, or JSON."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from typing import Any

from ..formatting import first, fmt, fmt_change, md_code, md_escape, md_table
from .build import Report

COMMENT_LIMIT = 65536  # GitHub's limit for an issue or pull-request comment
MARKER = "<!-- mlopskit-report -->"
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def image_key(name: str, side: str) -> str:
    """A file-name-safe key for a plot image (``side`` is 'base' or 'head')."""
    return f"{_SAFE_ID.sub('_', name).strip('_') or 'plot'}-{side}.png"


def _verdict(r: Report) -> str:
    from . import gate

    v = r.verdict
    fix = f" Fix: {md_escape(v.fix)}." if v.fix else ""
    if r.gate_error:
        return f"⚠️ **Quality gate could not run**: {md_escape(r.gate_error)}"
    if v.state == gate.NOT_EVALUATED:
        return f"⚠️ **Quality gate not evaluated**: {md_escape(v.reason)}.{fix}"
    if v.state == gate.FAILED and (r.gate is None or r.gate.passed):
        return f"❌ **Quality gate failed**: {md_escape(v.reason)}.{fix}"
    if r.gate is None:
        return "⚪ **No quality gate configured** (add `gates:` to mlopskit.yaml)."
    if v.passed:
        return f"✅ **Quality gate passed** ({len(r.gate.outcomes)} rule(s))."
    failed = "; ".join(f"{md_code(o.rule)}: {md_escape(o.reason)}" for o in r.gate.failed)
    return f"❌ **Quality gate failed**: {failed}"


def _metrics_md(r: Report) -> str:
    if not r.metrics:
        if r.unreachable:
            return _unreachable_md(r.unreachable)
        return "_No metrics declared in any dvc.yaml._\n"
    rows = []
    for c in r.metrics:
        abs_s, rel_s = fmt_change(c.change, c.rel)
        mark = {
            True: "🟢 ▲ better" if (c.change or 0) > 0 else "🟢 ▼ better",
            False: "🔴 ▲ worse" if (c.change or 0) > 0 else "🔴 ▼ worse",
            None: "",
        }[c.better]
        if c.better is None and c.status not in ("modified", "unchanged"):
            mark = c.status
        name = c.key if len({m.path for m in r.metrics}) == 1 else f"{c.path}:{c.key}"
        rows.append([name, fmt(c.old), fmt(c.new), abs_s, rel_s, mark])
    table = md_table(["metric", r.base, "workspace", "change", "change %", ""], rows)
    return table + ("\n" + _unreachable_md(r.unreachable) if r.unreachable else "")


def _params_md(r: Report) -> str:
    if not r.params:
        return "_No param changes._\n"
    return md_table(
        ["param", r.base, "workspace", ""],
        [[c.key, fmt(c.old), fmt(c.new), c.status] for c in r.params],
    )


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _data_md(r: Report) -> str:
    if not r.data:
        return "_No DVC-tracked data changed._\n"
    rows = [
        [
            d.path,
            d.source,
            d.status,
            (d.old_md5 or "—")[:10],
            (d.new_md5 or "—")[:10],
            _size(d.old_size),
            _size(d.new_size),
        ]
        for d in r.data
    ]
    out = md_table(["path", "from", "change", "old md5", "new md5", "old size", "new size"], rows)
    for d in r.data:
        if d.table is not None:
            t = d.table
            bits = [f"rows {t.rows_before} → {t.rows_after} (+{t.rows_added} / −{t.rows_removed})"]
            if t.columns_added:
                bits.append("columns added: " + ", ".join(f"{md_code(c)}" for c in t.columns_added))
            if t.columns_removed:
                bits.append(
                    "columns removed: " + ", ".join(f"{md_code(c)}" for c in t.columns_removed)
                )
            if t.type_changes:
                bits.append(
                    "type changes: "
                    + ", ".join(
                        f"{md_code(c)} {md_escape(str(a))} → {md_escape(str(b))}"
                        for c, (a, b) in t.type_changes.items()
                    )
                )
            out += f"\n- {md_code(d.path)}: " + "; ".join(bits) + "\n"
        elif d.note:
            out += f"\n- {md_code(d.path)}: {md_escape(d.note)}\n"
    return out


def _plots_md(r: Report, images: dict[str, str] | None, fallback: str) -> str:
    if r.plots_skipped:
        return "_Plots not rendered (--no-plots)._\n"
    if not r.plots:
        return "_No plots declared in any dvc.yaml._\n"
    if images is None:
        return fallback + "\n"
    out = []
    for p in r.plots:
        cells = []
        for side, data in (("base", p.base_png), ("head", p.head_png)):
            url = images.get(image_key(p.name, side)) if data is not None else None
            cells.append(
                f'<img src="{html.escape(url, quote=True)}" width="400">'
                if url
                else "_not available_"
            )
        note = f" ({md_escape(p.note)})" if p.note else ""
        out.append(
            f"**{md_escape(p.title)}**{note}\n\n| {md_escape(r.base)} | workspace |\n|---|---|\n"
            f"| {cells[0]} | {cells[1]} |\n"
        )
    return "\n".join(out)


def _unreachable_md(files: list[str]) -> str:
    named = first([md_code(f) for f in files], 8)
    return (
        f"_Declared but not in the workspace or the DVC cache: {named} "
        f"(pull it: {md_code('mlopskit data pull ' + files[0])})._\n"
    )


def _lineage_md(r: Report) -> str:
    lin = r.lineage
    sync = {
        True: "in sync with the workspace"
        + (
            " (outputs not pulled: " + ", ".join(lin.not_pulled[:8]) + ")" if lin.not_pulled else ""
        ),
        False: "**out of date**: " + ", ".join(lin.out_of_sync[:8]),
        None: "unknown",
    }[lin.lock_in_sync]
    lines = [
        f"Head commit {md_code((lin.commit or 'none')[:12])} {md_escape(lin.subject)}"
        + (f" on {md_code(lin.branch)}" if lin.branch else ""),
        f"Base {md_code(r.base_sha[:12])} ({md_escape(r.base)})",
        f"dvc.lock: {sync}",
    ]
    if lin.dirty:
        lines.append("Uncommitted changes: " + ", ".join(f"{md_code(p)}" for p in lin.dirty[:8]))
    if lin.data:
        lines.append(
            "Data: " + ", ".join(f"{md_code(p)} {md_escape(m[:10])}" for p, m in lin.data.items())
        )
    return "\n".join(f"- {line}" for line in lines) + "\n"


def _quality_md(r: Report) -> str:
    if not r.quality:
        return ""
    parts = []
    for q in r.quality:
        rows = f"{q.rows} rows" + (f" (base: {q.base_rows})" if q.base_rows is not None else "")
        if q.ok:
            parts.append(f"✅ {md_code(q.file)}: {rows}, every schema rule holds.\n")
            continue
        parts.append(f"❌ {md_code(q.file)}: {rows}, {len(q.violations)} violation(s)\n\n")
        parts.append(
            md_table(
                ["column", "rule", "expected", "found", "example rows"],
                [
                    [
                        str(v.get("column") or "(table)"),
                        str(v.get("rule", "")),
                        str(v.get("expected", "")),
                        str(v.get("found", "")),
                        ", ".join(str(x) for x in (v.get("rows") or [])[:5]),
                    ]
                    for v in q.violations[:50]
                ],
            )
        )
    return "\n".join(parts)


def sections(
    r: Report, images: dict[str, str] | None, plots_fallback: str
) -> list[tuple[str, str]]:
    return [
        ("Metrics", _metrics_md(r)),
        ("Params", _params_md(r)),
        ("Plots", _plots_md(r, images, plots_fallback)),
        ("Data changes", _data_md(r)),
        *([("Data quality", _quality_md(r))] if r.quality else []),
        ("Lineage", _lineage_md(r)),
    ]


def markdown(
    r: Report,
    *,
    images: dict[str, str] | None = None,
    footer: str = "",
    plots_fallback: str = "_Plots: run with --out FILE.md to write PNG plots._",
    limit: int = COMMENT_LIMIT,
) -> str:
    head = f"{MARKER}\n## mlopskit report\n\n{_verdict(r)}\n\n"
    for note in r.notes:
        head += f"> {md_escape(note)}\n\n"
    parts = [f"### {title}\n\n{body}\n" for title, body in sections(r, images, plots_fallback)]
    tail = footer
    text = head + "".join(parts) + tail
    if len(text) <= limit:
        return text
    return _fold(head, parts, tail, limit)


def _fold(head: str, parts: list[str], tail: str, limit: int) -> str:
    """Keep whole sections while they fit; fold the rest into <details>, cut to the limit."""
    budget = limit - len(head) - len(tail) - 800
    kept: list[str] = []
    used = 0
    for part in parts:
        if used + len(part) > budget * 0.6:
            break
        kept.append(part)
        used += len(part)
    rest = "".join(parts[len(kept) :])
    room = max(0, budget - used)
    shown = rest
    if len(rest) > room:
        shown = rest[:room].rsplit("\n", 1)[0] + "\n"
    cut = len(rest) - len(shown)
    titles = [p.split("\n", 1)[0].lstrip("# ") for p in parts[len(kept) :]]
    note = (
        f"\n\n_… {cut:,} characters cut to fit GitHub's {COMMENT_LIMIT:,}-character comment "
        "limit. Run `mlopskit report` locally for the full report._\n"
        if cut
        else ""
    )
    details = (
        f"<details><summary>More: {', '.join(titles)}</summary>\n\n{shown}{note}\n</details>\n"
    )
    return head + "".join(kept) + details + tail


def _jsonable(o: Any) -> Any:
    if isinstance(o, bytes):
        return None
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: _jsonable(getattr(o, f.name)) for f in dataclasses.fields(o)}
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    return o


def as_json(r: Report, images: dict[str, str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = _jsonable(r)
    v = r.verdict
    data["passed"] = None if v.state == "no gate" else v.passed
    data["verdict"] = {"state": v.state, "reason": v.reason, "fix": v.fix}
    if r.gate is not None:
        data["gate"]["passed"] = r.gate.passed
    for plot in data["plots"]:
        plot["base_image"] = (images or {}).get(image_key(plot["name"], "base"))
        plot["head_image"] = (images or {}).get(image_key(plot["name"], "head"))
    for c, change in zip(data["metrics"], r.metrics, strict=True):
        c["better"] = change.better
    return data


def as_html(r: Report) -> str:
    """One self-contained page: the Markdown sections, images embedded as data URIs."""
    images = {}
    for p in r.plots:
        for side, data in (("base", p.base_png), ("head", p.head_png)):
            if data is not None:
                images[image_key(p.name, side)] = (
                    "data:image/png;base64," + base64.b64encode(data).decode()
                )
    md = markdown(r, images=images, limit=10**9)
    body = _md_to_html(md)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>mlopskit report</title>'
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "</style></head><body>\n" + body + "\n</body></html>\n"
    )


def _md_to_html(md: str) -> str:
    from markdown_it import MarkdownIt

    # html=True lets our own <img>/<details> through; every user-supplied string in the
    # Markdown was escaped by md_escape, so nothing else can inject markup.
    return str(MarkdownIt("commonmark", {"html": True}).enable("table").render(md))
