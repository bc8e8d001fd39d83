"""Read a project file as it was at a revision, straight from git objects (no checkout).

Files DVC caches (not in git) are found through that revision's dvc.lock and read
from the local DVC cache.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from . import scm, yamlio
from .errors import UsageError

WORKSPACE = None


def resolve_rev(root: Path, rev: str) -> str:
    sha = scm.resolve(root, rev)
    if sha is None:
        raise UsageError(f"revision '{rev}' not found", "give a branch, tag or commit that exists")
    return sha


def cache_path(root: Path, md5: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def lock_md5s(root: Path, rev: str | None) -> dict[str, str]:
    """path -> md5 of every output and dependency recorded in dvc.lock at ``rev``."""
    raw = read_bytes(root, rev, "dvc.lock", through_cache=False)
    if raw is None:
        return {}
    data = yamlio.fast_loads(
        raw.decode("utf-8", "replace"), display=f"dvc.lock@{rev or 'workspace'}"
    )
    found: dict[str, str] = {}
    stages = (data or {}).get("stages", {}) if isinstance(data, dict) else {}
    for stage in stages.values():
        if not isinstance(stage, dict):
            continue
        for kind in ("deps", "outs"):
            for entry in stage.get(kind, []) or []:
                if isinstance(entry, dict) and "path" in entry and "md5" in entry:
                    found[str(entry["path"])] = str(entry["md5"])
    return found


def read_bytes(
    root: Path, rev: str | None, path: str, *, through_cache: bool = True
) -> bytes | None:
    if rev is WORKSPACE:
        f = root / path
        return f.read_bytes() if f.is_file() else None
    blob = scm.show(root, rev, path)
    if blob is not None or not through_cache:
        return blob
    md5 = lock_md5s(root, rev).get(path)
    if md5 and not md5.endswith(".dir"):
        cached = cache_path(root, md5)
        if cached.is_file():
            return cached.read_bytes()
    return None


def load_structured(root: Path, rev: str | None, path: str) -> Any:
    """Parse a JSON/YAML/TOML file at ``rev``; None when absent. Malformed: UsageError.

    A commit's files never change, so parses at a full commit id are cached (the report
    reads dvc.yaml at the base several times); the workspace is always read afresh.
    """
    import copy

    if rev is not WORKSPACE and rev is not None and len(rev) == 40:
        return copy.deepcopy(_load_at_commit(root, rev, path))
    return _load(root, rev, path)


@functools.lru_cache(maxsize=256)
def _load_at_commit(root: Path, rev: str, path: str) -> Any:
    return _load(root, rev, path)


def _load(root: Path, rev: str | None, path: str) -> Any:
    raw = read_bytes(root, rev, path)
    if raw is None:
        return None
    return parse(raw, path, path if rev is WORKSPACE else f"{path}@{rev[:8] if rev else ''}")


def parse(raw: bytes, path: str, where: str) -> Any:
    """Parse a file's bytes by its extension (JSON, TOML, else YAML); ``where`` names it."""
    text = raw.decode("utf-8", "replace")
    if path.endswith(".toml"):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{where}: invalid TOML: {exc}") from None
    if path.endswith(".json"):
        import json

        try:
            return json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{where}: invalid JSON: {exc}") from None
    return yamlio.fast_loads(text, display=where)


def check_workspace(root: Path) -> None:
    """Parse the pipeline's files in the workspace strictly (dvc.yaml, dvc.lock and the
    YAML params files), so that a malformed one is ``FILE:LINE`` before DVC acts: some of
    its commands (``exp run``) change git state before they read them."""
    from . import dvcyaml

    names = ["dvc.yaml", "dvc.lock", *dvcyaml.files(root).params]
    for name in dict.fromkeys(names):
        if name.endswith((".yaml", ".yml", ".lock")):
            yamlio.check(root / name, display=name)
