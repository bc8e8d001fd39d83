"""Quality-gate rules: the grammar of ``accuracy >= 0.9`` and ``rmse: max_increase 5%``.

Parsing only, with no project, metrics or git imports, so ``config`` can check the
``gates:`` of ``mlopskit.yaml`` when it reads the file without importing the gate
(which evaluates rules against metrics and would import ``config`` back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

_ABS = re.compile(r"^\s*(?P<metric>[^\s<>=!:][^<>=!]*?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>\S+)\s*$")
_REG = re.compile(
    r"^\s*(?P<metric>\S+?)\s*:\s*(?P<kind>max_drop|max_increase)\s+(?P<value>[^\s%]+)(?P<pct>%?)\s*$"
)


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str
    kind: str  # ">=", "<=", ">", "<", "max_drop", "max_increase"
    threshold: float
    percent: bool = False

    @property
    def needs_base(self) -> bool:
        return self.kind in ("max_drop", "max_increase")


def _number(text: str, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"gate rule {rule!r}: {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"gate rule {rule!r}: the threshold must be finite")
    return value


def parse_rule(text: Any) -> Rule:
    """Parse ``accuracy >= 0.9`` or ``rmse: max_increase 5%`` (or the YAML mapping form)."""
    if isinstance(text, dict) and len(text) == 1:
        ((key, value),) = text.items()
        text = f"{key}: {value}"
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"gate rule {text!r}: expected text like 'accuracy >= 0.9'")
    m = _REG.match(text)
    if m:
        value = _number(m["value"], text)
        if value < 0:
            raise UsageError(f"gate rule {text!r}: {m['kind']} must not be negative")
        return Rule(text.strip(), m["metric"], m["kind"], value, bool(m["pct"]))
    m = _ABS.match(text)
    if m:
        return Rule(text.strip(), m["metric"].strip(), m["op"], _number(m["value"], text))
    raise UsageError(
        f"gate rule {text!r}: not understood",
        "use 'METRIC >= N', 'METRIC <= N', 'METRIC: max_drop N' or 'METRIC: max_increase N%'",
    )
