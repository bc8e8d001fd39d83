"""Pipeline stages in dvc.yaml: adding, listing, and the checks every run starts with
(paths inside the project, every named param present, dvc.yaml readable with file:line).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _dvc, lock, params, yamlio
from .errors import UsageError
from .journal import barrier
from .project import Project

if TYPE_CHECKING:
    from dvc.repo import Repo


@dataclass(frozen=True)
class StageInfo:
    name: str
    cmd: str
    changed: bool
    changes: list[str] = field(default_factory=list)


def _check_name(name: str) -> None:
    bad = set(name) & set("/\\:@#$;`'\"!&|<>(){}[]*?~ \t\n\r")
    if not name or bad or name.startswith(("-", ".")):
        raise UsageError(
            f"stage name {name!r}: use letters, digits, '-', '_' and '.' only",
            "for example 'train' or 'train-large'",
        )


@barrier
def stage_add(
    project: Project,
    name: str,
    *,
    cmd: str | Sequence[str],
    deps: Sequence[str] = (),
    outs: Sequence[str] = (),
    params_: Sequence[str] = (),
    metrics: Sequence[str] = (),
    plots: Sequence[str] = (),
    force: bool = False,
) -> StageInfo:
    """Write a stage to dvc.yaml. A command given as a list is quoted with shlex."""
    from dvc.utils.cli_parse import parse_params

    _check_name(name)
    command = cmd if isinstance(cmd, str) else shlex.join(cmd)
    if not command.strip():
        raise UsageError(f"stage '{name}': empty --cmd")
    root = project.root
    for p in [*deps, *outs, *metrics, *plots]:
        from . import paths

        paths.inside(root, p, cwd=project.cwd, must_exist=False)
    with lock.held(project.tmp_dir), _dvc.open_repo(root) as repo, _dvc.translated():
        if (root / "dvc.yaml").exists():
            yamlio.load(root / "dvc.yaml", display="dvc.yaml")
        stage = repo.stage.add(
            name=name,
            cmd=command,
            deps=list(deps),
            outs=list(outs),
            params=parse_params(params_),
            metrics_no_cache=list(metrics),
            plots_no_cache=list(plots),
            force=force,
        )
        return StageInfo(name=stage.name, cmd=command, changed=True)


def _pipeline_stages(repo: Repo) -> list[Any]:
    """Named dvc.yaml stages, upstream first."""
    import networkx as nx  # type: ignore[import-untyped]
    from dvc.stage import PipelineStage

    graph = repo.index.graph
    order = list(reversed(list(nx.topological_sort(graph))))
    return [s for s in order if isinstance(s, PipelineStage)]


def stage_list(project: Project) -> list[StageInfo]:
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        stages = _pipeline_stages(repo)
        status = repo.status()
        out = []
        for s in stages:
            changes = status.get(s.addressing, [])
            described: list[str] = []
            for c in changes:
                if isinstance(c, dict):
                    for kind, files in c.items():
                        if isinstance(files, dict):
                            described.extend(f"{kind}: {f} {v}" for f, v in files.items())
                        else:
                            described.append(f"{kind}: {files}")
                else:
                    described.append(str(c))
            out.append(StageInfo(s.name, str(s.cmd), bool(changes), described))
        return out


def check_params(root: Path, stages: Sequence[Any]) -> None:
    """Every param a stage names must exist, before anything runs (dvc#3707)."""
    from dvc.dependency.param import ParamsDependency

    seen: set[str] = set()
    for stage in stages:
        for dep in stage.deps:
            if not isinstance(dep, ParamsDependency):
                continue
            rel = Path(dep.fs_path).relative_to(root).as_posix()
            if rel not in seen:
                params.check_file(root, rel)
                seen.add(rel)
            if not dep.params:
                continue
            with _dvc.translated():
                found = dep.read_params()
            missing = [p for p in dep.params if p not in found]
            if missing:
                raise UsageError(
                    f"dvc.yaml: stage '{stage.name}' needs {', '.join(missing)} from {rel}, "
                    "which does not exist",
                    f"add it with 'mlopskit params set {missing[0]}=VALUE --allow-new' or fix "
                    "the stage's params list",
                )


def check_paths(root: Path, stages: Sequence[Any]) -> None:
    """A stage's wdir, outputs and local dependencies must stay inside the project (C4.29)."""

    def inside(p: str) -> bool:
        try:
            Path(os.path.realpath(p)).relative_to(root)
        except ValueError:
            return False
        return True

    for stage in stages:
        where = f"{stage.relpath}: stage '{getattr(stage, 'name', stage.addressing)}'"
        if not inside(stage.wdir):
            raise UsageError(
                f"{where} has wdir {stage.wdir!r} outside the project root",
                "keep wdir inside the repository",
            )
        for item in [*stage.outs, *stage.deps]:
            if getattr(item.fs, "protocol", "local") in ("local", "file") and not inside(
                item.fs_path
            ):
                raise UsageError(
                    f"{where}: {item.def_path!r} is outside the project root",
                    "keep stage paths inside the repository",
                )


def _stages_in_scope(repo: Repo, targets: Sequence[str]) -> list[Any]:
    if not targets:
        return list(repo.index.stages)
    found: list[Any] = []
    for t in targets:
        for s in repo.stage.collect(t, with_deps=True):
            if s not in found:
                found.append(s)
    return found


def _load_stages(root: Path, repo: Repo, targets: Sequence[str]) -> list[Any]:
    """The stages in scope; a dvc.yaml DVC cannot read is reported as file:line."""
    try:
        with _dvc.translated():
            return _stages_in_scope(repo, targets)
    except UsageError:
        # Our own parser names the line (duplicate keys, merge markers, syntax);
        # when it finds nothing wrong, DVC's schema message stands.
        yamlio.load(root / "dvc.yaml", display="dvc.yaml")
        raise


@dataclass(frozen=True)
class Validation:
    stages: int


def validate(project: Project) -> Validation:
    """dvc.yaml, params files and mlopskit.yaml are well formed, stage paths stay inside
    the project and every param a stage names exists. Runs nothing."""
    root = project.root
    _ = project.config  # mlopskit.yaml: unknown keys and bad values are errors
    if not (root / "dvc.yaml").exists():
        raise UsageError("dvc.yaml: not found", "add a stage with 'mlopskit stage add'")
    with _dvc.open_repo(root) as repo:
        stages = _load_stages(root, repo, ())
        check_paths(root, stages)
        check_params(root, stages)
    return Validation(stages=len(stages))
