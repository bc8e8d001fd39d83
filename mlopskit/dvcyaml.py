"""Which files hold params, metrics and plots: ``files()`` answers through the one
reader of DVC project state (mlopskit/dvcfiles.py). ``parse`` and ``stage_inputs``
are the old single-file view, kept for callers not yet moved to dvcfiles.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import revfile
from .errors import UsageError

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class PipelineFiles:
    params: dict[str, list[str]] = field(default_factory=dict)  # file -> keys ([] = all)
    metrics: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


def _paths(entries: Iterable[Any]) -> list[str]:
    out = []
    for entry in entries or []:
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict):
            out.extend(str(k) for k in entry)
    return out


def _join(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path)) if wdir not in ("", ".") else path


def parse(data: Any) -> PipelineFiles:
    params: dict[str, list[str]] = {}
    metrics: list[str] = []
    plots: list[str] = []
    if not isinstance(data, dict):
        return PipelineFiles({PARAMS_FILE: []})
    for name, stage in (data.get("stages") or {}).items():
        if not isinstance(stage, dict) or "foreach" in stage or "matrix" in stage:
            continue
        wdir = str(stage.get("wdir", "."))
        for entry in stage.get("params") or []:
            if isinstance(entry, str):
                params.setdefault(_join(wdir, PARAMS_FILE), []).append(entry)
            elif isinstance(entry, dict):
                for file, keys in entry.items():
                    bucket = params.setdefault(_join(wdir, str(file)), [])
                    bucket.extend(str(k) for k in (keys or []))
        metrics.extend(_join(wdir, p) for p in _paths(stage.get("metrics") or []))
        plots.extend(_join(wdir, p) for p in _paths(stage.get("plots") or []))
        del name
    metrics.extend(_paths(data.get("metrics") or []))
    for entry in data.get("plots") or []:
        if isinstance(entry, str):
            plots.append(entry)
        elif isinstance(entry, dict):
            for key, spec in entry.items():
                if isinstance(spec, dict) and isinstance(spec.get("y"), dict):
                    plots.extend(str(f) for f in spec["y"])
                elif isinstance(spec, dict) and isinstance(spec.get("y"), str):
                    continue
                else:
                    plots.append(str(key))
    for file in _paths(data.get("params") or []):
        params.setdefault(file, [])
    params.setdefault(PARAMS_FILE, [])
    return PipelineFiles(params, list(dict.fromkeys(metrics)), list(dict.fromkeys(plots)))


def files(root: Path, rev: str | None = None) -> PipelineFiles:
    """The files of every dvc.yaml at ``rev``, through the one reader of DVC project
    state (dvcfiles: foreach/matrix/vars resolved by DVC, nested dvc.yaml files)."""
    from . import dvcfiles

    if rev is revfile.WORKSPACE:
        check_workspace_wdirs(root)

    with dvcfiles.Reader(root) as reader:
        state = reader.state(rev)
    found = {f: list(keys) for f, keys in state.params.items()}
    found.setdefault(PARAMS_FILE, [])
    return PipelineFiles(
        found, list(state.metrics), list(dict.fromkeys(d.file for d in state.plots))
    )


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
    top = Path(os.path.realpath(root))
    base = (root / dvcfile).parent
    for name, stage in stages.items():
        if not isinstance(stage, dict):
            continue
        body = stage.get("do") if ("foreach" in stage or "matrix" in stage) else stage
        wdir = body.get("wdir") if isinstance(body, dict) else None
        if not isinstance(wdir, str) or "${" in wdir:
            continue
        if not Path(os.path.realpath(base / wdir)).is_relative_to(top):
            raise wdir_outside(f"{dvcfile}: stage '{name}'", wdir)


def check_workspace_wdirs(root: Path) -> None:
    """``check_wdirs`` on the workspace's dvc.yaml; one that does not parse is left to
    whoever reads it next (that reader names its line)."""
    try:
        data = revfile.load_structured(root, revfile.WORKSPACE, "dvc.yaml")
    except UsageError:
        return
    check_wdirs(root, data)


def stage_inputs(data: Any) -> set[str] | None:
    """Every path a stage reads (deps, with wdir), or None when dvc.yaml uses templating
    (foreach, matrix, vars, ${...}) that only DVC can expand."""
    if not isinstance(data, dict) or "vars" in data:
        return None
    found: set[str] = set()
    for stage in (data.get("stages") or {}).values():
        if not isinstance(stage, dict) or "foreach" in stage or "matrix" in stage:
            return None
        wdir = str(stage.get("wdir", "."))
        for dep in _paths(stage.get("deps") or []):
            if "${" in dep:
                return None
            found.add(_join(wdir, dep))
    return found
