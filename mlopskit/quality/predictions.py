"""Reading the prediction log that ``mlopskit serve --log-dir`` writes
(:mod:`mlopskit.serve.predlog`): one JSON line per predicted row, ``{"time", "artifact",
"version", "inputs": {...}, "output"}``, in ``predictions-PID.jsonl`` files and their
rotated ``.1``, ``.2`` ... copies. ``monitor drift --current LOGDIR`` reads it here, so
the quality package needs nothing from serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError

PREFIX = "predictions-"


def files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.startswith(PREFIX) and ".jsonl" in p.name
    )


def read(folder: Path) -> Any:
    """The logged inputs (one row per prediction) of every log file in ``folder``, with
    the prediction as column ``prediction`` unless an input has that name."""
    import orjson
    import pandas as pd

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory of prediction logs")
    found = files(folder)
    rows: list[dict[str, Any]] = []
    for path in found:
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip() or not line.endswith(b"\n"):
                    continue  # a line cut short by a crash mid-write
                try:
                    rec = orjson.loads(line)
                    inputs = dict(rec["inputs"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    raise UsageError(f"{path}:{n}: not a prediction log record") from None
                inputs.setdefault("prediction", rec.get("output"))
                rows.append(inputs)
    if not rows:
        raise UsageError(
            f"{folder}: no logged predictions" + ("" if found else f" (no {PREFIX}*.jsonl files)"),
            "serve with --log-dir and send some traffic first",
        )
    return pd.DataFrame(rows)
