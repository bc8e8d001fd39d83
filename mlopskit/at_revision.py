"""Read a project file as it was at a revision, straight from git objects (no checkout).

Files DVC caches (not in git) are found through that revision's dvc.lock and read
from the local DVC cache.
"""

from __future__ import annotations

import functools
import posixpath
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
    """Where the DVC cache keeps ``md5``: the cache directory DVC's configuration names
    (``dvc cache dir``; .dvc/cache by default)."""
    from . import _dvc

    base = _dvc.cache_dir(root)
    modern = base / "files" / "md5" / md5[:2] / md5[2:]
    legacy = base / md5[:2] / md5[2:]
    return legacy if not modern.exists() and legacy.exists() else modern


def lock_md5s(root: Path, rev: str | None) -> dict[str, str]:
    """path -> md5 of every output recorded at ``rev`` (every dvc.lock and .dvc file);
    a dependency's md5 only where no stage records the path as its output (a later
    stage's deps never overwrite what the producing stage recorded)."""
    from . import dvcfiles

    with dvcfiles.Reader(root) as reader:
        return dict(reader.outputs(rev).hashes)


def read_bytes(
    root: Path, rev: str | None, path: str, *, through_cache: bool = True
) -> bytes | None:
    if rev is WORKSPACE:
        f = root / path
        return f.read_bytes() if f.is_file() else None
    blob = scm.show(root, rev, path)
    if blob is not None or not through_cache:
        return blob
    from . import dvcfiles

    with dvcfiles.Reader(root) as reader:
        return reader.read(rev, path)


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
    from . import dvcfiles

    names = ["dvc.yaml", "dvc.lock"]
    for name in names[:]:
        yamlio.check(root / name, display=name)  # before DVC's resolver reads them
    with dvcfiles.Reader(root) as reader:
        state = reader.state(None)
    locks = [posixpath.join(posixpath.dirname(f), "dvc.lock") for f in state.dvcfiles]
    names += [*state.dvcfiles, *locks, *state.params]
    for name in dict.fromkeys(names):
        if name.endswith((".yaml", ".yml", ".lock")):
            yamlio.check(root / name, display=name)
