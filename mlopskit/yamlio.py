"""Read and write YAML files (params.yaml, dvc.yaml, mlopskit.yaml) keeping comments and order.

ruamel.yaml in round-trip mode rejects duplicate keys (PyYAML keeps the last one
silently) and reports line numbers, which our error messages carry.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import UsageError


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def load(path: Path, *, display: str | None = None, missing_ok: bool = False) -> Any:
    """Load a YAML file; a malformed one is a UsageError naming ``file:line``."""
    name = display or path.name
    if path.is_dir():
        raise UsageError(f"{name}: is a directory, expected a YAML file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise UsageError(f"{name}: file not found") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not a UTF-8 text file") from None
    if "\x00" in text:
        raise UsageError(f"{name}: binary file, expected YAML")
    return loads(text, display=name)


def loads(text: str, *, display: str) -> Any:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
            raise UsageError(
                f"{display}:{lineno}: unresolved merge conflict marker",
                "resolve the conflict, then run again",
            )
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}" if mark is not None else display
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise UsageError(f"{where}: {problem}") from None
    except YAMLError as exc:
        raise UsageError(f"{display}: invalid YAML: {exc}") from None


def dumps(data: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump(path: Path, data: Any) -> None:
    atomic_write_text(path, dumps(data))
