"""mlopskit: data, params, code and models versioned together on DVC and Git.

The public API lives in the modules named in ``__all__``; importing this package
imports none of them (``mlopskit --help`` must stay fast), so use
``from mlopskit import data`` or ``mlopskit.data.add(...)`` after importing it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "config",
    "data",
    "errors",
    "metrics",
    "params",
    "pipeline",
    "project",
    "quickstart",
    "remote",
    "scaffold",
]
