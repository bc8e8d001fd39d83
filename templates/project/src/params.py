"""Read params.yaml: every stage takes its settings from there, never from constants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load(section: str) -> dict[str, Any]:
    with open(ROOT / "params.yaml", encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    return dict(params.get(section) or {})
