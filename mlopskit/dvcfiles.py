"""The one reader of DVC project state at a revision (or in the workspace).

Every command that reads the pipeline's declarations or their values goes through
here: metrics, params, plots, stage names, the report, history, the gate, the
registry and the CT shortcut. What it reads, it reads as DVC does:

- every ``dvc.yaml`` of the tree (nested ones too; not inside a DVC subrepo), each
  resolved by DVC's own resolver (``vars``, ``foreach``, ``matrix``, ``${...}``),
  through the gateway ``_dvc.resolve_dvcyaml``;
- top-level ``metrics:``, ``params:`` and ``plots:``, relative to their ``dvc.yaml``;
- params files of every type DVC reads (YAML, JSON, TOML, Python), DVC's rules for
  which keys are shown (a stage's listed keys, whole files, ``params.yaml``, vars);
- outputs recorded in each ``dvc.lock`` (outs only: a later stage's deps do not
  overwrite them) and in ``.dvc`` files, directory outputs through their manifest;
- the cache directory from DVC's configuration, where DVC's cache manager puts it
  (``cache.local = NAME``, else ``cache.dir``, else ``.dvc/cache``);
- a stage's ``wdir`` that leaves the project, refused before DVC loads it.

Revisions are read from git objects through one ``git cat-file --batch`` (no
checkout); trees, resolutions and parses are memoised per object id, so a long
history costs little more than its distinct files.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _dvc, paths, yamlio
from .errors import UsageError
from .gitbatch import BlobReader

WORKSPACE = None
_REF = re.compile(r"\$\{\s*([A-Za-z_][\w-]*)")
PARAMS_FILE = "params.yaml"
DVCFILE = "dvc.yaml"
IGNOREFILE = ".dvcignore"


@dataclass(frozen=True)
class Output:
    path: str  # repository-relative
    cache: bool = True
    metric: bool = False
    plot: bool = False
    # a plot output's own options (x, y, template, title), as DVC reads them
    props: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Stage:
    dvcfile: str  # "dvc.yaml" or "sub/dvc.yaml"
    name: str  # as generated: "train", "train@0", "train@lr-0.1"
    wdir: str  # repository-relative ("" for the root)
    cmd: str
    deps: tuple[str, ...] = ()
    outs: tuple[Output, ...] = ()
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (file, keys); () keys = all
    always_changed: bool = False
    frozen: bool = False

    @property
    def address(self) -> str:
        """As DVC prints it: ``name`` in the root dvc.yaml, ``sub/dvc.yaml:name`` else."""
        return self.name if self.dvcfile == DVCFILE else f"{self.dvcfile}:{self.name}"


@dataclass(frozen=True)
class PlotDef:
    name: str
    file: str  # repository-relative (a file or a directory)
    x: Any = None
    y: Any = None
    template: Any = None
    title: Any = None


@dataclass(frozen=True)
class State:
    rev: str | None
    dvcfiles: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    metrics: tuple[str, ...] = ()  # declared paths (files or directories)
    params: dict[str, list[str]] = field(default_factory=dict)  # file -> keys ([] = all)
    plots: tuple[PlotDef, ...] = ()
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    pointers: tuple[str, ...] = ()  # .dvc files
    tracked_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def many_dvcfiles(self) -> bool:
        return len(self.dvcfiles) > 1

    def stage_inputs(self) -> set[str]:
        return {d for s in self.stages for d in s.deps}


@dataclass(frozen=True)
class Outputs:
    """What a revision records of its outputs (every dvc.lock's outs, .dvc files)."""

    hashes: dict[str, str] = field(default_factory=dict)  # output path -> md5 (or .dir)
    producers: dict[str, str] = field(default_factory=dict)  # output path -> stage / .dvc
    # output path -> the dvc.lock that records it (outputs of .dvc files are not in it)
    lockfiles: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # as recorded, where recorded
    nfiles: dict[str, int] = field(default_factory=dict)  # directory outputs

    def recorded(self) -> dict[str, str]:
        """Outputs only (stage outs and .dvc files): path -> md5, no stage's deps."""
        return {p: self.hashes[p] for p in self.producers}


def _join(*parts: str) -> str:
    kept = [p for p in parts if p not in ("", ".")]
    return posixpath.normpath(posixpath.join(*kept)) if kept else ""


def _entries(items: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """``[path, {path: {opts}}]`` lists (outs, metrics, plots, deps) as (path, opts)."""
    for entry in items or []:
        if isinstance(entry, str):
            yield entry, {}
        elif isinstance(entry, Mapping):
            for k, v in entry.items():
                yield str(k), dict(v) if isinstance(v, Mapping) else {}


# ------------------------------------------------------------------------- trees


def _parse_tree(raw: bytes) -> list[tuple[str, str, str]]:
    """A git tree object's entries: (mode, name, object id)."""
    out = []
    i = 0
    while i < len(raw):
        sp = raw.index(b" ", i)
        nul = raw.index(b"\0", sp)
        mode = raw[i:sp].decode()
        name = raw[sp + 1 : nul].decode("utf-8", "surrogateescape")
        sha = raw[nul + 1 : nul + 21].hex()
        out.append((mode, name, sha))
        i = nul + 21
    return out


_TREES: dict[str, list[tuple[str, str, str]]] = {}
_FOUND: dict[str, tuple[list[str], list[str]]] = {}
_PARSED: dict[tuple[str, str], Any] = {}
_RESOLVED: dict[tuple[str, str], list[tuple[dict[str, Any], tuple[dict[str, Any], Any]]]] = {}
_IGNORES: dict[tuple[str, str], Any] = {}
_SHARED: tuple[dict[Any, Any], ...] = (_TREES, _FOUND, _PARSED, _RESOLVED, _IGNORES)
_SHARED_MAX = 50_000


class Reader:
    """Reads project state at revisions; one per command (``with Reader(root) as r``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._git: BlobReader | None = None
        self._objects: dict[str, tuple[str, str, bytes] | None] = {}
        # Content-addressed memos, shared by every reader of the process (a report reads
        # the same revisions through several commands): keyed by object ids / hashes.
        for memo in _SHARED:
            if len(memo) > _SHARED_MAX:
                memo.clear()
        self._trees = _TREES
        self._found = _FOUND
        self._parsed = _PARSED
        self._resolved = _RESOLVED
        self._states: dict[str, State] = {}
        self._outputs: dict[str, Outputs] = {}
        self._cache_dir: Path | None = None

    # -- plumbing
    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._git is not None:
            self._git.close()
            self._git = None

    def _object(self, spec: str) -> tuple[str, str, bytes] | None:
        if spec not in self._objects:
            if self._git is None:
                self._git = BlobReader(self.root)
            self._objects[spec] = self._git.object(spec)
        return self._objects[spec]

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            self._cache_dir = _dvc.cache_dir(self.root)
        return self._cache_dir

    def _tree(self, sha: str) -> list[tuple[str, str, str]]:
        if sha not in self._trees:
            obj = self._object(sha)
            self._trees[sha] = _parse_tree(obj[2]) if obj and obj[1] == "tree" else []
        return self._trees[sha]

    def _git_entry(self, rev: str, path: str) -> tuple[str, str] | None:
        """(type, object id) of ``path`` at ``rev`` ("" is the root tree)."""
        # REV:./PATH is relative to the project root, also in a sub-folder of its repository
        obj = self._object(f"{rev}:./{path}")
        return (obj[1], obj[0]) if obj else None

    def blob_id(self, rev: str | None, path: str) -> str | None:
        """The object id of a file at ``rev``; in the workspace, a hash of its bytes (a
        memo key: a file edited between two reads is read afresh)."""
        if rev is WORKSPACE:
            raw = self.read_git(None, path)
            return "w" + hashlib.sha1(raw).hexdigest() if raw is not None else None  # noqa: S324
        entry = self._git_entry(rev, path)
        return entry[1] if entry and entry[0] == "blob" else None

    def _find_in_tree(self, sha: str, top: bool) -> tuple[list[str], list[str]]:
        """(dvc.yaml and .dvcignore paths, .dvc file paths) under a tree, skipping DVC
        subrepos."""
        key = f"{sha}:{top}"
        if key in self._found:
            return self._found[key]
        entries = self._tree(sha)
        yamls: list[str] = []
        pointers: list[str] = []
        if not top and any(m == "40000" and n == ".dvc" for m, n, _ in entries):
            self._found[key] = (yamls, pointers)
            return yamls, pointers
        for mode, name, obj in entries:
            if mode == "40000":
                if name in (".git", ".dvc"):
                    continue
                sub_y, sub_p = self._find_in_tree(obj, False)
                yamls += [f"{name}/{p}" for p in sub_y]
                pointers += [f"{name}/{p}" for p in sub_p]
            elif mode.startswith("10"):
                if name in (DVCFILE, IGNOREFILE):
                    yamls.append(name)
                elif name.endswith(".dvc"):
                    pointers.append(name)
        self._found[key] = (yamls, pointers)
        return yamls, pointers

    def _unignored(self, rev: str | None, found: list[str]) -> list[str]:
        """``found`` without what a ``.dvcignore`` (DVC's matcher) hides from DVC."""
        ignores = [p for p in found if posixpath.basename(p) == IGNOREFILE]
        kept = [p for p in found if posixpath.basename(p) != IGNOREFILE]
        if not ignores:
            return kept
        filters = []
        for path in ignores:
            text = (self.read_git(rev, path) or b"").decode("utf-8", "replace")
            lines = [ln.strip() for ln in text.splitlines()]
            if not any(ln and not ln.startswith("#") for ln in lines):
                continue  # `dvc init`'s .dvcignore: comments only
            where = posixpath.dirname(path)
            key = (where, text)
            if key not in _IGNORES:
                _IGNORES[key] = _dvc.ignore_patterns(text, where)
            filters.append((where, _IGNORES[key]))
        if not filters:
            return kept

        def hidden(path: str) -> bool:
            parts = path.split("/")
            for i in range(len(parts)):
                parent, name = "/".join(parts[:i]), parts[i]
                for where, patterns in filters:
                    inside = not where or parent == where or parent.startswith(where + "/")
                    if inside and patterns.matches(
                        "/" + parent if parent else "/", name, i < len(parts) - 1
                    ):
                        return True
            return False

        return [p for p in kept if not hidden(p)]

    def _find_in_workspace(self) -> tuple[list[str], list[str]]:
        """As DVC collects them in a workspace: files git does not ignore (DVC skips
        git-ignored files and folders there: a virtualenv inside the project is not
        part of the pipeline), outside DVC subrepos."""
        from . import scm

        listed = scm.git(
            self.root,
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            f":(glob)**/{DVCFILE}",
            f":(glob)**/{IGNOREFILE}",
            ":(glob)**/*.dvc",
            check=False,
        ).out
        yamls: list[str] = []
        pointers: list[str] = []
        subrepos: dict[str, bool] = {}

        def in_subrepo(path: str) -> bool:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in subrepos:
                    subrepos[d] = (self.root / d / ".dvc").is_dir()
                if subrepos[d]:
                    return True
            return False

        for path in sorted(dict.fromkeys(p for p in listed.split("\0") if p)):
            if path.startswith(".dvc/") or "/.dvc/" in path or in_subrepo(path):
                continue
            if not (self.root / path).is_file():
                continue  # deleted in the workspace
            name = posixpath.basename(path)
            if name in (DVCFILE, IGNOREFILE):
                yamls.append(path)
            elif name.endswith(".dvc"):
                pointers.append(path)
        return yamls, pointers

    # -- files
    def isdir(self, rev: str | None, path: str) -> bool:
        if rev is WORKSPACE:
            return (self.root / path).is_dir()
        entry = self._git_entry(rev, path)
        return bool(entry and entry[0] == "tree")

    def read_git(self, rev: str | None, path: str) -> bytes | None:
        """The file as committed at ``rev`` (the workspace's file for WORKSPACE)."""
        if rev is WORKSPACE:
            f = self.root / path
            try:
                return f.read_bytes() if f.is_file() else None
            except OSError:
                return None
        obj = self._object(f"{rev}:./{path}")  # relative to the project root
        return obj[2] if obj and obj[1] == "blob" else None

    def read(self, rev: str | None, path: str) -> bytes | None:
        """A file at ``rev``: from git (or the workspace), else a DVC output from the
        cache by the md5 that revision recorded for it (dvc.lock, .dvc)."""
        raw = self.read_git(rev, path)
        if raw is not None:
            return raw
        md5 = self.md5_of(rev, path)
        if md5 and not md5.endswith(".dir"):
            return self.cached(md5)
        return None

    def cached(self, md5: str) -> bytes | None:
        for f in self.cache_files(md5):
            if f.is_file():
                return f.read_bytes()
        return None

    def cache_files(self, md5: str) -> list[Path]:
        """Where DVC keeps the object ``md5`` (3.x layout first, then 2.x)."""
        base = self.cache_dir
        return [base / "files" / "md5" / md5[:2] / md5[2:], base / md5[:2] / md5[2:]]

    def manifest(self, md5: str) -> list[tuple[str, str]] | None:
        """A directory output's (relpath, md5) entries, from its ``.dir`` object."""
        raw = self.cached(md5)
        if raw is None:
            return None
        try:
            entries = json.loads(raw)
        except ValueError:
            return None
        return [
            (str(e["relpath"]), str(e["md5"]))
            for e in entries
            if isinstance(e, dict) and "relpath" in e and "md5" in e
        ]

    def md5_of(self, rev: str | None, path: str) -> str | None:
        """The md5 ``rev`` records for ``path``: an output, or a file in a directory one."""
        hashes = self.outputs(rev).hashes
        if path in hashes:
            return hashes[path]
        parts = path.split("/")
        for i in range(len(parts) - 1, 0, -1):
            top = "/".join(parts[:i])
            md5 = hashes.get(top)
            if md5 and md5.endswith(".dir"):
                rel = "/".join(parts[i:])
                for name, file_md5 in self.manifest(md5) or []:
                    if name == rel:
                        return file_md5
                return None
        return None

    def expand(self, rev: str | None, path: str) -> list[str]:
        """A declared path as the files DVC reads for it: a directory's files (in git,
        the workspace, or a directory output's manifest), else the path itself (also a
        directory output whose manifest is not cached: it is declared, and not pulled)."""
        if rev is WORKSPACE and (self.root / path).is_dir():
            return sorted(
                _join(path, Path(dp, f).relative_to(self.root / path).as_posix())
                for dp, _, fs in os.walk(self.root / path)
                for f in fs
            )
        if rev is not WORKSPACE and self.isdir(rev, path):
            return sorted(self._git_files(rev, path))
        md5 = self.outputs(rev).hashes.get(path)
        manifest = self.manifest(md5) if md5 and md5.endswith(".dir") else None
        if manifest is not None:
            return sorted(_join(path, rel) for rel, _ in manifest)
        return [path]

    def _git_files(self, rev: str, path: str) -> Iterator[str]:
        entry = self._git_entry(rev, path)
        if entry is None:
            return
        for mode, name, _obj in self._tree(entry[1]):
            sub = _join(path, name)
            if mode == "40000":
                yield from self._git_files(rev, sub)
            elif mode.startswith("10"):
                yield sub

    def load(self, rev: str | None, path: str, *, strict: bool = True) -> Any:
        """A params/metrics file parsed as DVC parses it (None when absent). YAML goes
        through the fast libyaml reader (YAML 1.2 like DVC's ruamel: the differential
        tests hold it equal); JSON, TOML and Python through DVC's parsers."""
        raw = self.read(rev, path)
        if raw is None:
            return None
        sha = self.blob_id(rev, path)
        key = (sha or "", path)
        if sha and key in self._parsed:
            return self._parsed[key]
        where = path if rev is WORKSPACE else f"{path}@{rev[:8]}"
        try:
            value = parse_text(path, raw.decode("utf-8"), display=where)
        except UnicodeDecodeError:
            if strict:
                raise UsageError(f"{where}: not a UTF-8 text file") from None
            value = None
        except UsageError:
            if strict:
                raise
            value = None
        if sha:
            self._parsed[key] = value
        return value

    # -- pipeline state
    def state(self, rev: str | None) -> State:
        key = "" if rev is WORKSPACE else rev
        if key not in self._states:
            self._states[key] = self._build(rev)
        return self._states[key]

    def _build(self, rev: str | None) -> State:
        if rev is WORKSPACE:
            # A stage whose wdir leaves the project is exit 2 for every command.
            check_workspace_wdirs(self.root)
            yamls, pointers = self._find_in_workspace()
        else:
            root_tree = self._git_entry(rev, "")
            yamls, pointers = self._find_in_tree(root_tree[1], True) if root_tree else ([], [])
        ignores = [p for p in yamls if posixpath.basename(p) == IGNOREFILE]
        yamls = self._unignored(rev, yamls)
        pointers = self._unignored(rev, pointers + ignores)
        yamls = sorted(yamls, key=lambda p: (p.count("/"), p))
        stages: list[Stage] = []
        metrics: list[str] = []
        plots: list[PlotDef] = []
        param_lists: list[Any] = []
        artifacts: dict[str, dict[str, Any]] = {}
        tracked: dict[str, dict[str, Any]] = {}
        collected: list[str] = []
        out_dirs: set[str] = set()

        def under_an_output(path: str) -> bool:
            parts = path.split("/")
            return any("/".join(parts[:i]) in out_dirs for i in range(1, len(parts)))

        for dvcfile in yamls:
            if under_an_output(dvcfile):
                continue  # DVC does not collect a dvc.yaml inside an output directory
            collected.append(dvcfile)
            doc, used = self._resolve(rev, dvcfile)
            where = posixpath.dirname(dvcfile)
            file_stages = [_stage(dvcfile, where, n, s) for n, s in doc["stages"].items()]
            stages += file_stages
            out_dirs.update(o.path for s in file_stages for o in s.outs)
            for s in file_stages:
                for out in s.outs:
                    if out.metric:
                        metrics.append(out.path)
                    if out.plot:
                        plots.append(PlotDef(out.path, out.path, **out.props))
                for file, keys in s.params:
                    param_lists.append({file: list(keys)})
            metrics += [_join(where, str(m)) for m in doc.get("metrics") or []]
            for p in doc.get("params") or []:
                param_lists.append({_join(where, str(p)): []})
            plots = _top_plots(doc.get("plots") or [], where) + plots
            for name, spec in (doc.get("artifacts") or {}).items():
                spec = dict(spec or {})
                if "path" in spec:
                    spec["path"] = _join(where, str(spec["path"]))
                # GTO's and DVC's name for an artifact of a nested dvc.yaml: `dir:name`
                artifacts[f"{where}:{name}" if where else str(name)] = spec
            for files in used.values():
                for file, values in files.items():
                    tracked.setdefault(_join(file), {}).update(values)
        if (
            self.read_git(rev, PARAMS_FILE) is not None
            or PARAMS_FILE in self.outputs_of(rev, collected, stages, pointers).hashes
        ):
            param_lists.append({PARAMS_FILE: []})  # DVC shows params.yaml whole
        params = _merge_params(param_lists)
        tracked = {f: v for f, v in tracked.items() if f not in params}
        return State(
            rev=rev,
            dvcfiles=tuple(collected),
            stages=tuple(stages),
            metrics=tuple(dict.fromkeys(metrics)),
            params=params,
            plots=tuple(dict.fromkeys(plots)),
            artifacts=artifacts,
            pointers=tuple(sorted(pointers)),
            tracked_vars=tracked,
        )

    def outputs(self, rev: str | None) -> Outputs:
        """The outputs ``rev`` records, read on first use (a history whose metrics are
        in git never parses a dvc.lock)."""
        state = self.state(rev)
        return self.outputs_of(rev, state.dvcfiles, state.stages, state.pointers)

    def outputs_of(
        self,
        rev: str | None,
        dvcfiles: Iterable[str],
        stages: Iterable[Stage],
        pointers: Iterable[str],
    ) -> Outputs:
        key = "" if rev is WORKSPACE else rev
        if key in self._outputs:
            return self._outputs[key]
        hashes: dict[str, str] = {}
        producers: dict[str, str] = {}
        lockfiles: dict[str, str] = {}
        sizes: dict[str, int] = {}
        nfiles: dict[str, int] = {}

        def sized(path: str, item: Mapping[str, Any]) -> None:
            for name, into in (("size", sizes), ("nfiles", nfiles)):
                if isinstance(item.get(name), int):
                    into[path] = int(item[name])

        stage_list = list(stages)
        for dvcfile in dvcfiles:
            where = posixpath.dirname(dvcfile)
            by_name = {s.name: s for s in stage_list if s.dvcfile == dvcfile}
            lockfile = _join(where, "dvc.lock")
            for name, entry in self._lock(rev, lockfile).items():
                stage = by_name.get(name)
                if stage is None:
                    continue  # an entry of a stage since removed or renamed: DVC skips it
                wdir = stage.wdir
                for kind in ("outs", "deps"):
                    for item in (entry or {}).get(kind) or []:
                        if isinstance(item, Mapping) and "path" in item and "md5" in item:
                            path = _join(wdir, str(item["path"]))
                            if kind == "outs" or path not in hashes:
                                hashes[path] = str(item["md5"])
                                if kind == "outs":
                                    producers[path] = name
                                    lockfiles[path] = lockfile
                                    sized(path, item)
        for pointer in sorted(pointers):
            data = self._pointer(rev, pointer)
            wdir = _join(posixpath.dirname(pointer), str(data.get("wdir") or ""))
            for item in data.get("outs") or []:
                if isinstance(item, Mapping) and "path" in item and "md5" in item:
                    path = _join(wdir, str(item["path"]))
                    hashes[path] = str(item["md5"])
                    producers[path] = pointer
                    lockfiles.pop(path, None)
                    sized(path, item)
        self._outputs[key] = Outputs(hashes, producers, lockfiles, sizes, nfiles)
        return self._outputs[key]

    def _structured(self, rev: str | None, path: str) -> Any:
        raw = self.read_git(rev, path)
        if raw is None:
            return None
        sha = self.blob_id(rev, path)
        if sha and (sha, path) in self._parsed:
            return self._parsed[(sha, path)]
        where = path if rev is WORKSPACE else f"{path}@{rev[:8]}"
        value = yamlio.fast_loads(raw.decode("utf-8", "replace"), display=where)
        if sha:
            self._parsed[(sha, path)] = value
        return value

    def _lock(self, rev: str | None, path: str) -> dict[str, Any]:
        data = self._structured(rev, path)
        stages = data.get("stages") if isinstance(data, Mapping) else None
        return dict(stages) if isinstance(stages, Mapping) else {}

    def _pointer(self, rev: str | None, path: str) -> dict[str, Any]:
        try:
            data = self._structured(rev, path)
        except UsageError:
            return {}
        return dict(data) if isinstance(data, Mapping) else {}

    def _fingerprint(self, rev: str | None, path: str, names: list[str]) -> Any:
        """What of a file DVC's resolver read can change its result: the file's top-level
        keys (a clash between vars files is an error) and the values of the names the
        dvc.yaml interpolates. A params.yaml whose other values change between commits
        resolves once."""
        sha = self.blob_id(rev, path)
        raw = self.read_git(rev, path)
        if raw is None:
            return None
        key = (sha or "", path)
        if sha and key in self._parsed:
            data = self._parsed[key]
        else:
            try:
                data = parse_text(path, raw.decode("utf-8"), display=path)
            except (UsageError, UnicodeDecodeError):
                return ("unreadable", sha)
            if sha:
                self._parsed[key] = data
        if not isinstance(data, Mapping):
            return ("not a mapping", sha)
        values = [json.dumps(data.get(n), sort_keys=True, default=str) for n in names]
        return (tuple(sorted(str(k) for k in data)), tuple(values))

    def _resolve(self, rev: str | None, dvcfile: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """dvc.yaml resolved by DVC's resolver, memoised per blob (and per the blobs of
        the files its interpolation read)."""
        raw = self.read_git(rev, dvcfile)
        where = dvcfile if rev is WORKSPACE else f"{dvcfile}@{rev[:8]}"
        text = (raw or b"").decode("utf-8", "replace")
        sha = self.blob_id(rev, dvcfile)
        templated = "${" in text or "vars" in text
        names = sorted(set(_REF.findall(text)))
        memo = self._resolved.setdefault((sha or "", dvcfile), []) if sha else None
        if memo:
            for seen, known in memo:
                if not templated or all(
                    self._fingerprint(rev, p, names) == fp for p, fp in seen.items()
                ):
                    return known
        data = yamlio.fast_loads(text, display=where) if text.strip() else {}
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: top level must be a mapping")
        reads: dict[str, Any] = {}

        def read(path: str) -> bytes | None:
            reads[path] = self._fingerprint(rev, path, names)
            found = self.read_git(rev, path)
            if found is not None and path.endswith((".yaml", ".yml")):
                # A malformed vars file is FILE:LINE (ours), not DVC's multi-line message.
                shown = path if rev is WORKSPACE else f"{path}@{rev[:8]}"
                yamlio.fast_loads(found.decode("utf-8", "replace"), display=shown)
            return found

        def isdir(path: str) -> bool:
            return self.isdir(rev, path)

        # DVC's resolver for every dvc.yaml that templates; the memo makes it once per
        # distinct blob (and per value it interpolates). A dvc.yaml without templating
        # resolves to itself, so it skips importing DVC (tests/core/test_dvcstate.py holds
        # the two equal on every dvc.yaml of the corpus).
        plain = plain_doc(data, text)
        if plain is not None:
            result: tuple[dict[str, Any], Any] = (plain, {})
        else:
            result = _dvc.resolve_dvcyaml(
                dict(data), posixpath.dirname(dvcfile), read, isdir, display=where
            )
        if memo is not None:
            memo.append((reads, result))
        return result


_TEMPLATING = ("foreach", "matrix", "vars", "do")


def plain_doc(data: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    """The resolved form of a dvc.yaml that uses no templating (no ``${``, ``vars``,
    ``foreach`` or ``matrix``): itself. None when DVC's resolver is needed."""
    if "${" in text or "vars" in data:
        return None
    stages = data.get("stages") or {}
    if not isinstance(stages, Mapping) or any(
        not isinstance(s, Mapping) or any(k in s for k in _TEMPLATING) for s in stages.values()
    ):
        return None
    return {
        "stages": {str(k): v for k, v in stages.items()},
        "metrics": list(data.get("metrics") or []),
        "params": list(data.get("params") or []),
        "plots": list(data.get("plots") or []),
        "artifacts": dict(data.get("artifacts") or {}),
    }


def parse_text(path: str, text: str, *, display: str) -> Any:
    """A params/metrics file parsed as DVC parses it, by suffix."""
    if path.endswith(".json"):
        # DVC's parse_json is exactly this (json.loads, an empty document read as {}).
        try:
            return json.loads(text) or {}
        except ValueError as exc:
            raise UsageError(f"{display}: invalid JSON: {exc}") from None
    if path.endswith((".toml", ".py")):
        try:
            return _dvc.parse_file(path, text)
        except UsageError as err:
            raise UsageError(err.message.replace(path, display, 1)) from None
    return yamlio.fast_loads(text, display=display)


def _stage(dvcfile: str, where: str, name: str, spec: Any) -> Stage:
    spec = spec if isinstance(spec, Mapping) else {}
    wdir = _join(where, str(spec.get("wdir") or ""))
    cmd = spec.get("cmd")
    command = " && ".join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd or "")
    outs: list[Output] = []
    for kind in ("outs", "metrics", "plots"):
        for path, opts in _entries(spec.get(kind)):
            outs.append(
                Output(
                    _join(wdir, path),
                    cache=bool(opts.get("cache", True)),
                    metric=kind == "metrics",
                    plot=kind == "plots",
                    props={k: opts[k] for k in _PLOT_PROPS if k in opts} if kind == "plots" else {},
                )
            )
    params: list[tuple[str, tuple[str, ...]]] = []
    for entry in spec.get("params") or []:
        if isinstance(entry, str):
            params.append((_join(wdir, PARAMS_FILE), (entry,)))
        elif isinstance(entry, Mapping):
            for file, keys in entry.items():
                params.append((_join(wdir, str(file)), tuple(str(k) for k in keys or [])))
    return Stage(
        dvcfile=dvcfile,
        name=str(name),
        wdir=wdir,
        cmd=command,
        deps=tuple(_join(wdir, p) for p, _ in _entries(spec.get("deps"))),
        outs=tuple(outs),
        params=tuple(params),
        always_changed=bool(spec.get("always_changed", False)),
        frozen=bool(spec.get("frozen", False)),
    )


_PLOT_PROPS = ("x", "y", "template", "title")


def _field_for(value: Any, file: str) -> Any:
    """A top-level plot's ``x``: a field name, or ``{file: field}`` (DVC's form for a plot
    over named files), for ``file``."""
    if isinstance(value, Mapping):
        found = value.get(file)
        if found is None and len(value) == 1:
            found = next(iter(value.values()))
        return found[0] if isinstance(found, list) and found else found
    return value if isinstance(value, str) else None


def _top_plots(entries: Iterable[Any], where: str) -> list[PlotDef]:
    out: list[PlotDef] = []
    for entry in entries:
        if isinstance(entry, str):
            out.append(PlotDef(_join(where, entry), _join(where, entry)))
            continue
        if not isinstance(entry, Mapping):
            continue
        for name, spec in entry.items():
            spec = spec if isinstance(spec, Mapping) else {}
            y = spec.get("y")
            common = {"template": spec.get("template"), "title": spec.get("title")}
            if isinstance(y, Mapping):
                for file, fields in y.items():
                    first = fields[0] if isinstance(fields, list) and fields else fields
                    x = _field_for(spec.get("x"), str(file))
                    out.append(PlotDef(str(name), _join(where, str(file)), x=x, y=first, **common))
            else:
                file = _join(where, str(name))
                x = _field_for(spec.get("x"), str(name))
                out.append(PlotDef(file, file, x=x, y=y, **common))
    return out


def _merge_params(entries: list[Any]) -> dict[str, list[str]]:
    """DVC's rule: a file tracked whole anywhere is shown whole; else the listed keys."""
    whole = {f for e in entries for f, keys in e.items() if not keys}
    out: dict[str, list[str]] = {}
    for e in entries:
        for f, keys in e.items():
            bucket = out.setdefault(f, [])
            if f not in whole:
                bucket.extend(k for k in keys if k not in bucket)
    return out


def select(data: Any, keys: list[str]) -> Any:
    """The parts of a params file a stage tracks (``dvc params show``: dpath search)."""
    if not keys or not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = data
        parts = key.split(".")
        try:
            for part in parts:
                node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            continue
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
    return out


def metric_values(data: Any) -> Any:
    """What ``dvc metrics show`` keeps of a file: numbers, strings and booleans, nested
    in mappings (lists and nulls are dropped)."""
    if isinstance(data, int | float | str):
        return data
    if not isinstance(data, Mapping):
        return None
    out = {}
    for k, v in data.items():
        m = metric_values(v)
        if m not in (None, {}):
            out[k] = m
    return out


def wdir_outside(where: str, wdir: str) -> UsageError:
    """The one message for a stage whose ``wdir`` leaves the project."""
    return UsageError(
        f"{where} has wdir {wdir!r} outside the project root",
        "edit dvc.yaml: wdir is relative to the folder dvc.yaml is in and must stay "
        "inside the repository",
    )


def check_wdirs(root: Path, data: Any, dvcfile: str = "dvc.yaml") -> None:
    """Refuse a stage whose ``wdir`` leaves the project, before DVC sees it: DVC would run
    the stage out there, or fail on its outputs with an AssertionError (``dvc status``).
    A wdir that only DVC can expand (``${...}``) is checked on DVC's stages instead
    (``stages.check_paths``)."""
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        return
    base = (root / dvcfile).parent
    for name, stage in stages.items():
        if not isinstance(stage, dict):
            continue
        body = stage.get("do") if ("foreach" in stage or "matrix" in stage) else stage
        wdir = body.get("wdir") if isinstance(body, dict) else None
        if not isinstance(wdir, str) or "${" in wdir:
            continue
        if paths.within(root, base / wdir) is None:
            raise wdir_outside(f"{dvcfile}: stage '{name}'", wdir)


def check_workspace_wdirs(root: Path) -> None:
    """``check_wdirs`` on the workspace's dvc.yaml; one that does not parse is left to
    whoever reads it next (that reader names its line)."""
    f = root / DVCFILE
    try:
        raw = f.read_bytes() if f.is_file() else None
        data = yamlio.fast_loads(raw.decode("utf-8", "replace"), display=DVCFILE) if raw else None
    except (OSError, UsageError):
        return
    check_wdirs(root, data)


def open_reader(root: Path) -> Reader:
    return Reader(root)
