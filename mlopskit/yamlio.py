"""Read and write YAML files (params.yaml, dvc.yaml, mlopskit.yaml) keeping comments and order.

ruamel.yaml in round-trip mode rejects duplicate keys (PyYAML keeps the last one
silently) and reports line numbers, which our error messages carry.
"""

from __future__ import annotations

import io
import os
import re
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


_DUPLICATE = re.compile(r'found duplicate key "(.*?)" with value')


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
        problem = " ".join((exc.problem or exc.context or "invalid YAML").split())
        dup = _DUPLICATE.match(problem)
        if dup:
            # ruamel quotes both values in full (a whole stages: mapping): the key is enough.
            raise UsageError(
                f"{where}: duplicate key '{dup[1]}'", "keep one of the two entries"
            ) from None
        raise UsageError(f"{where}: {problem}") from None
    except YAMLError as exc:
        raise UsageError(f"{display}: invalid YAML: {exc}") from None


_FAST: Any = None


def _fast_loader() -> Any:
    """libyaml's safe loader, made strict (duplicate keys are an error) and YAML 1.2 about
    booleans (only true/false, as DVC's ruamel reads them; YAML 1.1 also takes yes/no/on/off)."""
    global _FAST
    if _FAST is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class Strict(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
                if len(keys) != len({repr(k) for k in keys}):
                    raise yaml.constructor.ConstructorError(
                        None, None, "duplicate key", node.start_mark
                    )
                return super().construct_mapping(node, deep=deep)

        resolvers = {
            k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
            for k, v in base.yaml_implicit_resolvers.items()
        }
        Strict.yaml_implicit_resolvers = resolvers
        Strict.add_implicit_resolver(
            "tag:yaml.org,2002:bool",
            re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
            list("tTfF"),
        )
        _FAST = (Strict, yaml.YAMLError)
    return _FAST


def fast_loads(text: str, *, display: str) -> Any:
    """Read-only parsing for hot paths (reports, history): libyaml, ~20x faster than the
    round-trip parser. Anything it rejects is parsed again by ``loads`` for the message."""
    loader, error = _fast_loader()
    try:
        return __import__("yaml").load(text, Loader=loader)  # noqa: S506 - a safe loader
    except error:
        return loads(text, display=display)


def check(path: Path, *, display: str | None = None) -> None:
    """Fail with ``file:line`` if ``path`` exists and is not well-formed, strict YAML
    (duplicate keys, merge markers); the fast parser, so it costs little on every command."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return
    name = display or path.name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not a UTF-8 text file") from None
    fast_loads(text, display=name)


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
