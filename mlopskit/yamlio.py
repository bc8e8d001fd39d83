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


_YAML12 = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "tag:yaml.org,2002:float",
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
    ),
    (
        "tag:yaml.org,2002:int",
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
        "-+0123456789",
    ),
]


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

            def construct_yaml_int(self, node: Any) -> int:
                # YAML 1.2 (ruamel, DVC): 010 is ten, 0o10 is eight, no sexagesimal.
                text = str(self.construct_scalar(node)).replace("_", "")
                sign = -1 if text[0] == "-" else 1
                text = text.lstrip("+-")
                for prefix, radix in (("0b", 2), ("0x", 16), ("0o", 8)):
                    if text.startswith(prefix):
                        return sign * int(text[2:], radix)
                return sign * int(text)

        replaced = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float")}
        resolvers = {
            k: [(tag, rx) for tag, rx in v if tag not in replaced]
            for k, v in base.yaml_implicit_resolvers.items()
        }
        Strict.yaml_implicit_resolvers = resolvers
        Strict.add_constructor("tag:yaml.org,2002:int", Strict.construct_yaml_int)
        # The YAML 1.2 core schema, as ruamel (DVC's parser) resolves it: 1e-3 is a float.
        for tag, rx, first in _YAML12:
            Strict.add_implicit_resolver(tag, re.compile(rx, re.X), list(first))
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


def dumps(data: Any, *, like: str | None = None) -> str:
    """YAML text for ``data``; with ``like`` (the file's old text), indented as it was."""
    y = _yaml()
    if like is not None:
        y.indent(**indentation(like))
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def indentation(text: str) -> dict[str, int]:
    """ruamel's indent settings that reproduce how ``text`` indents mappings and lists
    (``- a`` under its key, as DVC writes, or indented by two, as mlopskit writes)."""
    import re

    mapping, offset = 2, 2
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    key = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")
    found_map = found_seq = False
    for prev, line in zip(lines, lines[1:], strict=False):
        m = key.match(prev)
        if not m:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line.lstrip(" ").startswith("- ") and not found_seq and indent >= len(m[1]):
            offset, found_seq = indent - len(m[1]), True
        elif not line.lstrip(" ").startswith("-") and not found_map and indent > len(m[1]):
            mapping, found_map = indent - len(m[1]), True
    return {"mapping": mapping, "sequence": offset + 2, "offset": offset}


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


def dump(path: Path, data: Any, *, like: str | None = None) -> None:
    atomic_write_text(path, dumps(data, like=like))


# Editing round-trip documents without losing their layout. ruamel keeps the blank lines
# and comments that follow a block on the last entry at the bottom of that block (the
# "tail"): they introduce what comes next, so they move when an entry is appended after
# that block or the block is deleted.


def _last_slot(node: Any) -> tuple[Any, Any, int] | None:
    """The comment slot of the last entry at the bottom of ``node``: ruamel keeps the
    blank lines and comments that follow a block there (they belong to what comes next)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    found = None
    while isinstance(node, CommentedMap | CommentedSeq) and len(node):
        key: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        pos = 2 if isinstance(node, CommentedMap) else 0
        found = (node, key, pos)
        node = node[key]
    return found


def _tail_token(node: Any) -> tuple[list[Any], int, Any] | None:
    slot = _last_slot(node)
    if slot is None:
        return None
    container, key, pos = slot
    entry = container.ca.items.get(key)
    token = entry[pos] if entry and len(entry) > pos else None
    if token is None or "\n" not in token.value:
        return None
    return entry, pos, token


def peek_tail(node: Any) -> str:
    found = _tail_token(node)
    return str(found[2].value).split("\n", 1)[1] if found else ""


def take_tail(node: Any) -> str:
    """Detach the lines that follow ``node``'s last line (blank lines, the next block's
    comments); its own end-of-line comment stays."""
    found = _tail_token(node)
    if found is None:
        return ""
    entry, pos, token = found
    head, tail = str(token.value).split("\n", 1)
    if head.strip():
        token.value = head + "\n"
    else:
        entry[pos] = None
    return tail


def put_tail(node: Any, tail: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    slot = _last_slot(node)
    if slot is None or not tail:
        return
    container, key, pos = slot
    entry = container.ca.items.setdefault(key, [None] * (4 if pos == 2 else 2))
    token = entry[pos]
    if token is not None and "\n" in token.value:
        token.value = token.value.split("\n", 1)[0] + "\n" + tail
    elif token is not None:
        token.value = token.value + "\n" + tail
    else:
        entry[pos] = CommentToken("\n" + tail, CommentMark(0), None)


def take_key_tail(doc: Any, key: str) -> str:
    """What follows a flow-style ``key: {}`` / ``key: []`` line of ``doc``."""
    slot: Any = doc.ca.items.get(key) if hasattr(doc, "ca") else None
    token = slot[2] if slot and len(slot) > 2 else None
    if token is None or "\n" not in token.value:
        return ""
    head, tail = str(token.value).split("\n", 1)
    if head.strip():
        token.value = head + "\n"
    else:
        slot[2] = None
    return tail


def put_key_tail(doc: Any, key: str, tail: str) -> None:
    """Put ``tail`` after a flow-style ``key: {}`` / ``key: []`` line of ``doc``."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    if not tail.strip() or not hasattr(doc, "ca"):
        return
    slot = doc.ca.items.setdefault(key, [None, None, None, None])
    slot[2] = CommentToken("\n" + tail, CommentMark(0), None)


def append(doc: Any, key: str, value: Any) -> None:
    """Append ``value`` to the block list ``doc[key]`` (made block style if it was ``[]``)."""
    seq = doc[key]
    pending = ""
    if seq.fa.flow_style():
        seq.fa.set_block_style()
        if not len(seq):
            pending = take_key_tail(doc, key)
    tail = take_tail(seq)
    seq.append(value)
    put_tail(seq, pending or tail)


def delete(doc: Any, key: str, index: int) -> None:
    """Delete ``doc[key][index]``; what followed it stays in place, and an emptied list
    is written ``key: []``."""
    seq = doc[key]
    tail = take_tail(seq) if index == len(seq) - 1 else ""
    del seq[index]
    if len(seq):
        put_tail(seq, tail)
    else:
        seq.fa.set_flow_style()
        put_key_tail(doc, key, tail)
