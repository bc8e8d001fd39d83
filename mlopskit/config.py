"""``mlopskit.yaml``: the project's mlopskit settings, read into a frozen dataclass.

Only mlopskit's own settings live here; dvc.yaml, params.yaml and dvc.lock stay the
truth for the pipeline. Unknown keys are an error that names the file and the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import flat, yamlio
from .errors import UsageError

FILENAME = "mlopskit.yaml"

HIGHER = "higher"
LOWER = "lower"

# Substrings of metric names whose direction is well known.
_DEFAULT_LOWER = ("loss", "rmse", "mse", "mae", "mape", "error", "log_loss", "brier")
_DEFAULT_HIGHER = ("accuracy", "acc", "f1", "auc", "precision", "recall", "r2", "score")


@dataclass(frozen=True)
class MetricsConfig:
    directions: Mapping[str, str] = field(default_factory=dict)

    def direction(self, name: str) -> str | None:
        """``higher``/``lower`` for a metric (configured first, then by name), else None."""
        leaf = name.rsplit(".", 1)[-1].lower()
        for key in (name, leaf):
            if key in self.directions:
                return self.directions[key]
        if any(s in leaf for s in _DEFAULT_LOWER):
            return LOWER
        if any(s in leaf for s in _DEFAULT_HIGHER):
            return HIGHER
        return None


@dataclass(frozen=True)
class GitConfig:
    # GitHub warns above 50 MB and rejects files above 100 MB.
    max_file_mb: float = 50.0
    main_branch: str = "main"


@dataclass(frozen=True)
class Config:
    name: str = "project"
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    git: GitConfig = field(default_factory=GitConfig)
    # Quality-gate rules, parsed by gate.parse_rule (strings or one-key mappings).
    gates: tuple[Any, ...] = ()


def _unknown(where: str, key: str, known: list[str]) -> UsageError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
    return UsageError(f"{FILENAME}: unknown key '{where}{key}'", hint)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{FILENAME}: '{where}' must be a mapping")
    return value


def _check_keys(section: Mapping[str, Any], where: str, known: list[str]) -> None:
    for key in section:
        if key not in known:
            raise _unknown(where, str(key), known)


def parse(data: Any) -> Config:
    top = _mapping(data, "<top level>")
    _check_keys(top, "", ["project", "metrics", "git", "gates"])

    project = _mapping(top.get("project"), "project")
    _check_keys(project, "project.", ["name"])
    name = str(project.get("name", "project"))

    metrics = _mapping(top.get("metrics"), "metrics")
    _check_keys(metrics, "metrics.", ["directions"])
    directions: dict[str, str] = {}
    for key, value in _mapping(metrics.get("directions"), "metrics.directions").items():
        if value not in (HIGHER, LOWER):
            raise UsageError(
                f"{FILENAME}: metrics.directions.{key} is {value!r}",
                "use 'higher' or 'lower'",
            )
        directions[str(key)] = str(value)

    git = _mapping(top.get("git"), "git")
    _check_keys(git, "git.", ["max_file_mb", "main_branch"])
    max_mb = git.get("max_file_mb", GitConfig.max_file_mb)
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or max_mb <= 0:
        raise UsageError(f"{FILENAME}: git.max_file_mb must be a positive number")
    main_branch = str(git.get("main_branch", GitConfig.main_branch))

    gates = top.get("gates") or []
    if not isinstance(gates, list):
        raise UsageError(f"{FILENAME}: 'gates' must be a list of rules like 'accuracy >= 0.9'")
    from .gate import parse_rule

    for rule in gates:
        parse_rule(rule)  # a malformed rule is reported when the file is read

    return Config(
        gates=tuple(flat.plain(g) for g in gates),
        name=name,
        metrics=MetricsConfig(directions=directions),
        git=GitConfig(max_file_mb=float(max_mb), main_branch=main_branch),
    )


def load(root: Path) -> Config:
    """Read ``ROOT/mlopskit.yaml``; a missing file gives the defaults."""
    data = yamlio.load(root / FILENAME, display=FILENAME, missing_ok=True)
    return parse(data)
