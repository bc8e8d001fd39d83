"""The CI shortcut of ``repro --pull``: on a fresh clone, is DVC's answer provably
"nothing to run", without importing DVC?

It is taken only where it repeats DVC's own rules (``Stage.changed`` with
``allow_missing``, as ``dvc repro --allow-missing`` applies them) on what the clone
holds; anything it cannot decide the way DVC would sends the question to DVC.
tests/pipeline/test_fastpath.py holds it equal to ``dvc repro --allow-missing --dry``
on a fresh clone of every commit of a history built to break it.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import scm

_GLOB = set("*?[]")


def _join(*parts: str) -> str:
    kept = [p for p in parts if p not in ("", ".")]
    return posixpath.normpath(posixpath.join(*kept)) if kept else ""


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _entries(items: Any) -> dict[str, Mapping[str, Any]] | None:
    """A dvc.lock ``deps``/``outs`` list by path; None when it is not DVC 3's shape (a
    ``hash: md5`` entry with an ``md5``; DVC 2's md5-dos2unix entries: ask DVC)."""
    out: dict[str, Mapping[str, Any]] = {}
    for item in items or []:
        if not isinstance(item, Mapping) or "path" not in item:
            return None
        if item.get("hash") != "md5" or not isinstance(item.get("md5"), str):
            return None
        out[str(item["path"])] = item
    return out


def _plain_cmds(raw: Any) -> bool:
    """Every stage's ``cmd`` in the unresolved dvc.yaml is one string (a list's joined
    form could equal a recorded string DVC would call changed)."""
    stages = raw.get("stages") if isinstance(raw, Mapping) else None
    if not isinstance(stages, Mapping):
        return False
    for spec in stages.values():
        if not isinstance(spec, Mapping):
            return False
        body = spec.get("do") if "foreach" in spec else spec  # matrix: cmd beside it
        if not isinstance(body, Mapping) or not isinstance(body.get("cmd"), str):
            return False
    return True


def _value_of(data: Any, key: str) -> tuple[bool, Any]:
    """(found, value) of a dotted params key, as DVC's dpath lookup finds it."""
    node = data
    for part in key.split("."):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return False, None
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _same(actual: Any, recorded: Any) -> bool:
    return bool(actual == recorded or (isinstance(actual, tuple) and list(actual) == recorded))


def _params_unchanged(reader: Any, root: Path, stage: Any, recorded: Any) -> bool:
    """DVC's ParamsDependency status: each listed key (or, for a file tracked whole,
    each top-level key on either side) has the value dvc.lock recorded."""
    if not stage.params:
        return True
    if not isinstance(recorded, Mapping):
        return False
    by_file = {_join(stage.wdir, str(f)): v for f, v in recorded.items()}
    wanted: dict[str, list[tuple[str, ...]]] = {}
    for file, keys in stage.params:
        wanted.setdefault(file, []).append(keys)
    for file, key_lists in wanted.items():
        whole = [k for k in key_lists if not k]
        if whole and len(whole) != len(key_lists):
            return False  # a file both whole and by key: ask DVC
        info = by_file.get(file)
        if not isinstance(info, Mapping):
            return False  # DVC: "new"
        if not (root / file).is_file():
            return False
        data = reader.load(None, file, strict=False)
        if not isinstance(data, Mapping):
            return False
        if whole:
            if set(data) != set(info) or not all(_same(data[k], info[k]) for k in data):
                return False
            continue
        for key in dict.fromkeys(k for keys in key_lists for k in keys):
            if _GLOB & set(key) or key not in info:
                return False
            found, value = _value_of(data, key)
            if not found or not _same(value, info[key]):
                return False
    return True


def fresh_clone_up_to_date(root: Path) -> bool:
    """True only when ``dvc repro --allow-missing`` would provably run nothing here:

    - the work tree is clean and no DVC-cached data is in the workspace (the fresh clone
      of a CI runner: DVC's --allow-missing then skips what is missing);
    - no stage is ``always_changed`` or frozen, each has a dvc.lock entry in DVC 3's
      format whose ``cmd`` is the dvc.yaml's and whose deps and outs name the same paths;
    - each dependency in the work tree (a git-tracked file) has the md5 dvc.lock
      recorded, as DVC hashes it; a missing one (another stage's or a pointer's output)
      was recorded with the md5 its producer records (DVC's upstream rule);
    - each git-tracked output (``cache: false``) has its recorded md5;
    - each params key has its recorded value (DVC's ParamsDependency rule).

    A dependency edited in the same commit as a dvc.lock another stage's run wrote is
    caught: nothing is taken from git history. Anything else: False, DVC decides."""
    if scm.status(root):
        return False
    from .. import dvcfiles

    listed = scm.git(root, "ls-files", "-z").out.split("\0")
    tracked = {p for p in listed if p}
    with dvcfiles.Reader(root) as reader:
        state = reader.state(None)  # every dvc.yaml, foreach/matrix resolved by DVC
        if not state.dvcfiles:
            return False
        # What every producer records: out path -> its dvc.lock / .dvc entry.
        produced: dict[str, Mapping[str, Any]] = {}
        locks: dict[str, Mapping[str, Any]] = {}
        for dvcfile in state.dvcfiles:
            if not _plain_cmds(reader.load(None, dvcfile, strict=False)):
                return False
            lockfile = _join(posixpath.dirname(dvcfile), "dvc.lock")
            data = reader.load(None, lockfile, strict=False)
            entries = data.get("stages") if isinstance(data, Mapping) else None
            if not isinstance(entries, Mapping):
                return False
            locks[dvcfile] = entries
        for stage in state.stages:
            entry = locks[stage.dvcfile].get(stage.name)
            if not isinstance(entry, Mapping):
                return False
            outs = _entries(entry.get("outs"))
            if outs is None:
                return False
            for path, item in outs.items():
                produced[_join(stage.wdir, path)] = item
        for pointer in state.pointers:
            data = reader.load(None, pointer, strict=False)
            if not isinstance(data, Mapping):
                return False
            where = _join(posixpath.dirname(pointer), str(data.get("wdir") or ""))
            outs = _entries(data.get("outs"))
            if outs is None:
                return False
            for path, item in outs.items():
                produced[_join(where, path)] = item
        managed = {o.path for s in state.stages for o in s.outs} | set(produced)
        if any((root / p).exists() for p in managed - tracked):
            return False  # DVC-cached data in the workspace: DVC compares it
        for stage in state.stages:
            if stage.always_changed or stage.frozen:
                return False  # DVC runs an always_changed stage on every repro
            entry = locks[stage.dvcfile][stage.name]
            if entry.get("cmd") != stage.cmd:
                return False  # DVC: "changed command"
            deps = _entries(entry.get("deps"))
            outs = _entries(entry.get("outs"))
            if deps is None or outs is None:
                return False
            deps = {_join(stage.wdir, p): v for p, v in deps.items()}
            outs = {_join(stage.wdir, p): v for p, v in outs.items()}
            if set(deps) != set(stage.deps) or set(outs) != {o.path for o in stage.outs}:
                return False
            for path, item in deps.items():
                if "://" in path or path.startswith("../"):
                    return False
                if path in tracked:
                    if _md5(root / path) != item["md5"]:
                        return False
                elif (root / path).exists():
                    return False  # a directory or an untracked file: DVC hashes it
                elif (up := produced.get(path)) is not None and (
                    up.get("md5") != item["md5"] or up.get("hash") != item.get("hash")
                ):
                    return False  # DVC: "modified" (the upstream's output differs)
            for path, item in outs.items():
                if path in tracked and _md5(root / path) != item["md5"]:
                    return False
            if not _params_unchanged(reader, root, stage, entry.get("params")):
                return False
    return True
