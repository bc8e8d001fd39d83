"""Params: show, set (keeping comments and order), diff against a revision."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import at_revision, dotted, dvcfiles, names, project_lock, yamlio
from .errors import UsageError
from .journal import barrier
from .project import Project

MISSING: Any = object()


def _label(file: str, key: str) -> str:
    return key if file == dvcfiles.PARAMS_FILE else f"{file}:{key}"


def read_state(reader: dvcfiles.Reader, rev: str | None) -> dict[str, Any]:
    """The params ``dvc params show`` shows at ``rev``, flattened (``train.C``,
    ``other.yaml:key``): the keys stages of every dvc.yaml list (whole files where
    one lists none), top-level ``params:``, ``params.yaml``, and the variables stages
    interpolate from other files."""
    state = reader.state(rev)
    out: dict[str, Any] = {}
    for file, keys in state.params.items():
        for path in reader.expand(rev, file):
            data = reader.load(rev, path)
            if data is None:
                continue
            if not isinstance(data, Mapping):
                raise UsageError(
                    f"{path}: top level must be a mapping of params, not a list or value"
                )
            for key, value in dotted.flatten(dvcfiles.select(data, keys)).items():
                out[_label(path, key)] = value
    for file, values in state.tracked_vars.items():
        for key, value in dotted.flatten(values).items():
            out.setdefault(_label(file, key), value)
    return out


def read(root: Path, rev: str | None = None) -> dict[str, Any]:
    """Every param of the project at ``rev``, flattened: ``train.C`` or ``other.yaml:key``."""
    with dvcfiles.Reader(root) as reader:
        return read_state(reader, rev)


def show(project: Project) -> dict[str, Any]:
    return read(project.root)


def check_file(root: Path, file: str) -> Any:
    """Load a params file strictly: a directory, binary, list or duplicate key is exit 2."""
    path = root / file
    if path.is_dir():
        raise UsageError(f"{file}: is a directory, expected a params file")
    if file.endswith((".json", ".toml", ".py")):
        # As DVC parses them (a Python params file is its top-level assignments).
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else None
        except UnicodeDecodeError:
            raise UsageError(f"{file}: not a UTF-8 text file") from None
        data = dvcfiles.parse_text(file, text, display=file) if text is not None else None
    else:
        data = yamlio.load(path, display=file, missing_ok=True)
    if path.is_dir():
        raise UsageError(f"{file}: is a directory, expected a params file")
    if data is not None and not isinstance(data, Mapping):
        raise UsageError(f"{file}: top level must be a mapping of params, not a list or value")
    return data


def parse_value(text: str) -> Any:
    """Type a value the way ``dvc exp run -S`` does: YAML scalars, lists and mappings."""
    if text == "":
        return ""
    try:
        value = yamlio.loads(text, display="value")
    except UsageError:
        return text
    return text if value is None and text not in ("null", "~") else value


@dataclass(frozen=True)
class SetResult:
    changed: dict[str, tuple[Any, Any]]  # label -> (old, new); old is None when added
    files: list[str]


def _split(assignment: str) -> tuple[str, str, str]:
    if "=" not in assignment:
        raise UsageError(f"'{assignment}': expected KEY=VALUE", "for example train.C=0.5")
    lhs, value = assignment.split("=", 1)
    file, key = dvcfiles.PARAMS_FILE, lhs
    if ":" in lhs:
        file, key = lhs.split(":", 1)
    if not names.is_params_key(key):
        raise UsageError(f"'{assignment}': empty key")
    if value == "":
        # `train.C=` is a slip (an unset shell variable), not a wish for an empty string.
        raise UsageError(
            f"'{assignment}': no value for '{lhs}'",
            f"give one, e.g. {lhs}=0.5; for an empty string: {lhs}=\"''\"",
        )
    return file, key, value


def _walk_set(
    data: Any, parts: list[str], value: Any, *, allow_new: bool, label: str, known: list[str]
) -> Any:
    from ruamel.yaml.comments import CommentedMap

    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            try:
                idx = int(part)
                node[idx]  # noqa: B018 - bounds check
            except (ValueError, IndexError):
                raise UsageError(
                    f"params: '{label}': '{part}' is not an index of the list"
                ) from None
            if last:
                old = node[idx]
                node[idx] = value
                return old
            node = node[idx]
            continue
        if not isinstance(node, MutableMapping):
            raise UsageError(f"params: '{label}': '{'.'.join(parts[:i])}' is not a mapping")
        if part not in node:
            if not allow_new:
                close = difflib.get_close_matches(label, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise UsageError(
                    f"params: unknown key '{label}'", f"{hint}use --allow-new to add it"
                )
            if last:
                node[part] = value
                return MISSING
            node[part] = CommentedMap()
        if last:
            old = node[part]
            node[part] = value
            return old
        node = node[part]
    raise AssertionError("unreachable")  # pragma: no cover


@barrier
def set_params(
    project: Project, assignments: Sequence[str], *, allow_new: bool = False, wait: bool = False
) -> SetResult:
    """Set params in their YAML files, typed like ``dvc exp run -S``; unknown keys are refused."""
    from ruamel.yaml.comments import CommentedMap

    root = project.root
    by_file: dict[str, list[tuple[str, str]]] = {}
    for a in assignments:
        file, key, value = _split(a)
        if not file.endswith((".yaml", ".yml")):
            raise UsageError(f"{file}: only YAML params files can be set", "edit it by hand")
        by_file.setdefault(file, []).append((key, value))
    # Read, change and write under the lock: a waiting `params set` sees what the
    # holder wrote instead of overwriting it with what it read before.
    with project_lock.held(project.tmp_dir, wait=wait):
        changed: dict[str, tuple[Any, Any]] = {}
        loaded: dict[str, Any] = {}
        known = list(read(root))
        for file, items in by_file.items():
            paths_ok = project.rel(root / file)
            data = check_file(root, paths_ok)
            if data is None:
                if not allow_new:
                    raise UsageError(f"{file}: no such params file", "use --allow-new to create it")
                data = CommentedMap()
            for key, text in items:
                label = _label(file, key)
                value = parse_value(text)
                old = _walk_set(
                    data, key.split("."), value, allow_new=allow_new, label=label, known=known
                )
                if old is MISSING or dotted.plain(old) != dotted.plain(value):
                    before = None if old is MISSING else dotted.plain(old)
                    changed[label] = (before, dotted.plain(value))
            loaded[file] = data
        for file, data in loaded.items():
            yamlio.dump(root / file, data)
    return SetResult(changed=changed, files=sorted(loaded))


@dataclass(frozen=True)
class ParamChange:
    key: str
    old: Any
    new: Any
    status: str  # "modified", "added", "removed"


def diff(project: Project, *, base: str = "HEAD", head: str | None = None) -> list[ParamChange]:
    """Params that differ between ``base`` and ``head`` (default: the workspace)."""
    root = project.root
    base_sha = at_revision.resolve_rev(root, base)
    head_sha = at_revision.resolve_rev(root, head) if head else None
    old = read(root, base_sha)
    new = read(root, head_sha)
    out: list[ParamChange] = []
    for key in list(dict.fromkeys([*old, *new])):
        a, b = old.get(key, MISSING), new.get(key, MISSING)
        if a is MISSING:
            out.append(ParamChange(key, None, b, "added"))
        elif b is MISSING:
            out.append(ParamChange(key, a, None, "removed"))
        elif a != b or type(a) is not type(b):
            out.append(ParamChange(key, a, b, "modified"))
    return out
