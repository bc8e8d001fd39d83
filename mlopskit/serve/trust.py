"""Loading skops files against the exact list of trusted types in mlopskit.yaml.

skops trusts scikit-learn's own estimators by default and reports every other type a
file holds (``get_untrusted_types``). mlopskit accepts a file only when each of those is
named, exactly, in ``serve.trusted_types``: a list reviewed in pull requests and never
read from the artifact. Prefixes such as ``builtins.`` are not accepted, because they
admit ``builtins.eval``; a function held by a ``FunctionTransformer`` is reported by
its name and must be listed too. Pickle files are refused outright: loading one runs
code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import IntegrityError, UsageError

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".cloudpickle")


def _check_format(where: str) -> None:
    suffix = Path(where).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise IntegrityError(
            f"{where}: refusing to load a pickle-based file: loading it runs code",
            "save the model with skops (skops.io.dump) to a .skops file",
        )
    if suffix != ".skops":
        raise UsageError(f"{where}: mlopskit loads .skops files (skops.io), not '{suffix}'")


def untrusted(data: bytes, *, where: str) -> list[str]:
    """The types in a skops file that skops does not trust by default."""
    import skops.io as sio

    _check_format(where)
    try:
        return sorted(str(t) for t in sio.get_untrusted_types(data=data))
    except Exception as exc:  # a damaged or foreign file: never a traceback
        raise IntegrityError(f"{where}: not a readable skops file ({type(exc).__name__})") from None


def check(data: bytes, trusted: Sequence[str], *, where: str) -> list[str]:
    """The file's extra types when every one of them is in ``trusted``; else exit 5 naming
    the new types and the lines to add to mlopskit.yaml."""
    found = untrusted(data, where=where)
    allowed = set(trusted)
    new = [t for t in found if t not in allowed]
    if new:
        lines = "; ".join(f"    - {t}" for t in new)
        raise IntegrityError(
            f"{where}: holds types outside serve.trusted_types in mlopskit.yaml: {', '.join(new)}",
            "if a review finds them safe, add under serve.trusted_types: " + lines,
        )
    return found


def load(data: bytes, trusted: Sequence[str], *, where: str) -> Any:
    """The object in a skops file, loaded only when :func:`check` passes."""
    import skops.io as sio

    found = check(data, trusted, where=where)
    try:
        return sio.loads(data, trusted=found)
    except Exception as exc:
        raise IntegrityError(
            f"{where}: skops could not load it ({type(exc).__name__}: {exc})"
        ) from None


def load_file(path: Path, trusted: Sequence[str]) -> Any:
    """:func:`load` for a file on disk (the generated project's evaluate stage)."""
    return load(path.read_bytes(), trusted, where=str(path))


def load_project_file(root: Path, path: Path) -> Any:
    """:func:`load_file` with the trusted types of ``ROOT/mlopskit.yaml``."""
    from .. import config

    return load_file(path, config.load(root).serve.trusted_types)
