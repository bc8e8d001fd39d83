"""PNG charts without Node or a browser: DVC's own Vega-Lite templates (dvc-render),
rendered in-process by vl-convert."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .. import yamlio

DEFAULT_TEMPLATE = "linear"


def rows_from_bytes(path: str, raw: bytes) -> list[dict[str, Any]]:
    """Plot data rows from CSV/TSV/JSON/YAML, the formats DVC plots read."""
    text = raw.decode("utf-8", "replace")
    if path.endswith((".csv", ".tsv")):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.endswith(".tsv") else ",")
        return [dict(r) for r in reader]
    data: Any = json.loads(text) if path.endswith(".json") else yamlio.loads(text, display=path)
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if lists else [data]
    return [dict(r) for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def _with_index(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r, step=i) for i, r in enumerate(rows)]


def spec(
    name: str,
    rows: list[dict[str, Any]],
    rev: str,
    filename: str,
    *,
    template: str | None = None,
    x: str | None = None,
    y: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """A filled Vega-Lite spec from DVC's template ``template`` (default: linear)."""
    from .. import _dvc

    if not rows:
        return {}
    if y is None:
        y = list(rows[0])[-1]
    if x is None:
        rows = _with_index(rows)
        x = "step"
    points = [dict(r, rev=rev, filename=filename, field=y) for r in rows]
    props: dict[str, Any] = {
        "template": template or DEFAULT_TEMPLATE,
        "x": x,
        "y": y,
        "title": title or name,
    }
    return _dvc.vega_spec(points, name, **props)


def png(vega_lite: dict[str, Any]) -> bytes:
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(vega_lite, scale=1))


def history_chart(labels: list[str], series: dict[str, list[float | None]], out: Path) -> None:
    """One line per metric across commits."""
    values = [
        {"commit": label, "order": i, "metric": name, "value": v}
        for name, vs in series.items()
        for i, (label, v) in enumerate(zip(labels, vs, strict=False))
        if v is not None
    ]
    chart = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Metrics by commit",
        "width": max(300, 18 * len(labels)),
        "height": 240,
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {
                "field": "commit",
                "type": "ordinal",
                "sort": {"field": "order"},
                "axis": {"labelAngle": -45},
            },
            "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}},
            "color": {"field": "metric", "type": "nominal"},
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png(chart))


_WORKER = r"""
import base64, json, sys
import vl_convert
warm = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"x": 0}]}, "mark": "point",
        "encoding": {"x": {"field": "x", "type": "quantitative"}}}
vl_convert.vegalite_to_png(warm, scale=1)
for line in sys.stdin:
    try:
        png = vl_convert.vegalite_to_png(json.loads(line), scale=1)
        out = {"png": base64.b64encode(bytes(png)).decode()}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class PngWorker:
    """Renders specs in a child process started early: vl-convert's engine start (about
    0.45 s, once per process) then runs on the other core while the report reads git and
    DVC. Any trouble with the child falls back to rendering in this process."""

    def __init__(self) -> None:
        import sys

        from .. import _proc

        try:
            self._proc: Any = _proc.pipe([sys.executable, "-c", _WORKER], text=True)
        except OSError:
            self._proc = None

    def png(self, vega_lite: dict[str, Any]) -> bytes:
        import base64

        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin and proc.stdout:
            try:
                proc.stdin.write(json.dumps(vega_lite) + "\n")
                proc.stdin.flush()
                reply = json.loads(proc.stdout.readline() or "{}")
                if "png" in reply:
                    return base64.b64decode(reply["png"])
                if "error" in reply:
                    raise ValueError(reply["error"])
            except (OSError, ValueError) as exc:
                if isinstance(exc, ValueError) and str(exc):
                    raise
            self.close()
        return png(vega_lite)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - a stuck renderer is killed
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout:
                proc.stdout.close()
