"""Pipeline stages in dvc.yaml: adding, listing, and the checks every run starts with
(paths inside the project, every named param present, dvc.yaml readable with file:line).
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _dvc, dotted, dvcfiles, names, params, paths, project_lock, yamlio
from ..errors import OperationFailed, UsageError
from ..journal import barrier
from ..project import Project

if TYPE_CHECKING:
    from dvc.repo import Repo


@dataclass(frozen=True)
class StageInfo:
    name: str
    cmd: str
    changed: bool
    changes: list[str] = field(default_factory=list)


def _params_hint(file: str, key: str) -> str:
    label = key if file == dvcfiles.PARAMS_FILE else f"{file}:{key}"
    return f"mlopskit params set {label}=VALUE --allow-new"


def check_stage_params(
    root: Path, name: str, groups: Sequence[Mapping[str, Sequence[str]]]
) -> None:
    """Every ``-p`` param of a new stage exists in its params file (exit 2, did-you-mean)."""
    for group in groups:
        for file, keys in group.items():
            data = params.check_file(root, file)
            if data is None:
                first = keys[0] if keys else "KEY"
                raise UsageError(
                    f"stage '{name}': params file {file} not found",
                    f"create it with '{_params_hint(file, first)}'",
                )
            leaves = dotted.flatten(data)
            known = set(leaves)
            for leaf in leaves:
                parts = leaf.split(".")
                known.update(".".join(parts[:i]) for i in range(1, len(parts)))
            for key in keys:
                if key in known:
                    continue
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise UsageError(
                    f"stage '{name}': param '{key}' is not in {file}",
                    f"{hint}add it with '{_params_hint(file, key)}' or fix -p",
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
    wait: bool = False,
) -> StageInfo:
    """Write a stage to dvc.yaml. A command given as a list is quoted with shlex.

    DVC builds and checks the stage (duplicate names and outputs, cycles); dvc.yaml is
    then edited in place, keeping its comments, key order, blank lines and indentation.
    """

    names.check_stage_name(name)
    command = cmd if isinstance(cmd, str) else shlex.join(cmd)
    if not command.strip():
        raise UsageError(f"stage '{name}': empty --cmd")
    root = project.root
    for p in [*deps, *outs, *metrics, *plots]:
        rel = paths.inside(root, p, cwd=project.cwd, must_exist=False)
        if p not in deps:  # an output: DVC writes its .gitignore line, git tracks it
            names.check_ignorable(rel, where=f"stage '{name}': output")
    groups = _dvc.parse_params(params_)
    check_stage_params(root, name, groups)
    path = root / "dvc.yaml"
    with (
        project_lock.held(project.tmp_dir, wait=wait),
        _dvc.open_repo(root) as repo,
        _dvc.translated(),
    ):
        text, doc = _load_doc(path)
        with _dvc.repo_lock(repo):
            stage = repo.stage.create(
                name=name,
                cmd=command,
                deps=list(deps),
                outs=list(outs),
                params=groups,
                metrics_no_cache=list(metrics),
                plots_no_cache=list(plots),
                force=force,
            )
            entry = _commented(_dvc.pipeline_entry(stage))
            table = _stages_table(doc)
            if name in table:
                # Replaced in place; what followed it (the next stage's comment) stays.
                tail = yamlio.take_tail(table[name])
                _dvc.apply_diff(entry, table[name])
                yamlio.put_tail(table[name], tail)
            else:
                existing = list(table)
                pending = "" if existing else yamlio.take_key_tail(doc, "stages")
                # Stages separated by blank lines get one before the new stage too.
                spaced = any(yamlio.peek_tail(table[n]).startswith("\n") for n in existing[:-1])
                table[name] = entry
                if existing:
                    yamlio.put_tail(entry, yamlio.take_tail(table[existing[-1]]))
                    if spaced:
                        yamlio.put_tail(table[existing[-1]], "\n")
                else:
                    yamlio.put_tail(entry, pending)
            yamlio.dump(path, doc, like=text)
            stage.ignore_outs()
            try:
                names.ignore_exactly(root, _ignored_outs(root, [stage]), hint=_IGNORE_HINT)
            except OperationFailed:  # put dvc.yaml and .gitignore back as they were
                stage.ignore_remove_outs()
                if text is None:
                    path.unlink()
                else:
                    yamlio.atomic_write_text(path, text)
                raise
        return StageInfo(name=stage.name, cmd=command, changed=True)


_IGNORE_HINT = "check the .gitignore files for a '!' rule that re-includes it"


def _ignored_outs(root: Path, stages: Sequence[Any]) -> list[str]:
    """The outputs DVC writes a .gitignore line for (cached, inside the repository)."""
    found = []
    for o in (o for s in stages for o in s.outs if o.use_scm_ignore):
        where = paths.within(root, Path(o.fs_path).parent)  # the output may be a cache link
        if where is not None:
            found.append(
                Path(o.fs_path).name if where == "." else f"{where}/{Path(o.fs_path).name}"
            )
    return found


@contextmanager
def outputs_ignored_exactly(root: Path, stages: Sequence[Any]) -> Iterator[None]:
    """Around DVC's repro: DVC writes a .gitignore line for each output it saves, leaving
    trailing spaces unescaped (git strips them). Afterwards (also after a failed or
    interrupted run: the stages that ran wrote theirs) those lines are escaped; after a
    run that completed, git must ignore each such output (``git check-ignore``)."""
    spaced = [r for r in _ignored_outs(root, stages) if r.endswith(" ")]
    if not spaced:
        yield
        return
    try:
        yield
    except BaseException:
        with suppress(Exception):
            names.escape_gitignore(root, spaced)
        raise
    names.ignore_exactly(root, [r for r in spaced if (root / r).exists()], hint=_IGNORE_HINT)


def _load_doc(path: Path) -> tuple[str | None, Any]:
    """dvc.yaml's text and round-trip document (an empty mapping when absent or empty)."""
    from ruamel.yaml.comments import CommentedMap

    if not path.exists():
        return None, CommentedMap()
    text = path.read_text(encoding="utf-8")
    doc = yamlio.load(path, display="dvc.yaml")
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, MutableMapping):
        raise UsageError("dvc.yaml: top level must be a mapping")
    return text, doc


def _stages_table(doc: MutableMapping[str, Any]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    table = doc.get("stages")
    if table is None:
        table = doc["stages"] = CommentedMap()
    if not isinstance(table, MutableMapping):
        raise UsageError("dvc.yaml: 'stages' must be a mapping of stage names")
    if isinstance(table, CommentedMap) and table.fa.flow_style():
        table.fa.set_block_style()  # `stages: {}` grows into the usual block layout
    return table


def _commented(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq(_commented(v) for v in value)
    return value


@dataclass(frozen=True)
class RemoveResult:
    name: str
    lock_entry: bool  # dvc.lock had an entry for it (now removed)
    kept_outputs: list[str]  # its outputs still on disk (left there, as `dvc remove` does)
    unignored: list[str]  # outputs whose .gitignore entry was removed
    still_named: list[str]  # top-level dvc.yaml entries that still name its outputs


def _stage_names(doc: Any) -> list[str]:
    table = doc.get("stages") if isinstance(doc, Mapping) else None
    return [str(k) for k in table] if isinstance(table, Mapping) else []


def _unknown_stage(name: str, names: Sequence[str]) -> UsageError:
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif names:
        hint = f"stages: {', '.join(names)}"
    else:
        hint = "dvc.yaml has no stages"
    return UsageError(f"dvc.yaml: no stage '{name}'", hint)


def _top_level_names(doc: Mapping[str, Any], outs: set[str]) -> list[str]:
    """``section: path`` for top-level plots, metrics and artifacts naming one of ``outs``."""
    found: list[str] = []
    for entry in doc.get("plots") or []:
        files: list[str] = []
        if isinstance(entry, str):
            files = [entry]
        elif isinstance(entry, Mapping):
            for key, spec in entry.items():
                y = spec.get("y") if isinstance(spec, Mapping) else None
                files += [str(f) for f in y] if isinstance(y, Mapping) else [str(key)]
        found += [f"plots: {f}" for f in files if f in outs]
    found += [f"metrics: {m}" for m in doc.get("metrics") or [] if str(m) in outs]
    for art, spec in (doc.get("artifacts") or {}).items():
        if isinstance(spec, Mapping) and str(spec.get("path")) in outs:
            found.append(f"artifacts.{art}: {spec['path']}")
    return list(dict.fromkeys(found))


@barrier
def stage_remove(project: Project, name: str, *, wait: bool = False) -> RemoveResult:
    """Take stage NAME out of dvc.yaml and dvc.lock, as ``dvc remove`` does without
    ``--outs``: its outputs stay on disk and their .gitignore entries go. dvc.yaml keeps
    its comments and layout, and stays (``stages: {}``) when its last stage goes."""
    root = project.root
    path = root / "dvc.yaml"
    if not path.exists():
        raise UsageError(f"dvc.yaml: not found, so there is no stage '{name}'")
    with (
        project_lock.held(project.tmp_dir, wait=wait),
        _dvc.open_repo(root) as repo,
        _dvc.translated(),
    ):
        text, doc = _load_doc(path)
        names = _stage_names(doc)
        if name not in names:
            raise _unknown_stage(name, names)
        table = doc["stages"]
        if isinstance(table[name], Mapping) and ({"foreach", "matrix"} & set(table[name])):
            raise UsageError(
                f"dvc.yaml: stage '{name}' is generated by foreach/matrix",
                "edit dvc.yaml by hand to remove it",
            )
        with _dvc.repo_lock(repo):
            stage = repo.stage.load_one("dvc.yaml", name)
            outs = [
                o for o in stage.outs if getattr(o.fs, "protocol", "local") in ("local", "file")
            ]
            rels = [Path(o.fs_path).relative_to(root).as_posix() for o in outs]
            unignored = [r for o, r in zip(outs, rels, strict=True) if o.use_scm_ignore]
            stage.unprotect_outs()
            stage.ignore_remove_outs()
            _drop_entry(doc, table, name)
            yamlio.dump(path, doc, like=text)
            lock_entry = _drop_lock_entry(root / "dvc.lock", name)
    return RemoveResult(
        name=name,
        lock_entry=lock_entry,
        kept_outputs=[r for r in rels if (root / r).exists()],
        unignored=unignored,
        still_named=_top_level_names(doc, set(rels)),
    )


def _drop_entry(doc: Any, table: Any, name: str) -> None:
    """Delete ``table[name]``; the comments and blank lines that followed it (which
    introduce what comes next) move to the stage before it."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    names = list(table)
    index = names.index(name)
    tail = yamlio.take_tail(table[name])
    if index > 0:
        previous = table[names[index - 1]]
        yamlio.take_tail(previous)
        yamlio.put_tail(previous, tail)
    del table[name]
    if index > 0 or not hasattr(doc, "ca"):
        return
    slot = doc.ca.items.setdefault("stages", [None, None, None, None])
    while len(slot) < 4:
        slot.append(None)
    if not table:
        # `stages: {}` (DVC reads it as no stages); what followed the stage follows it.
        table.fa.set_flow_style()
        slot[3] = None
        if tail.strip():
            slot[2] = CommentToken("\n" + tail, CommentMark(0), None)
        return
    # The comment above the first stage described it; the next stage's comment (in the
    # removed stage's tail) takes its place.
    slot[3] = [
        CommentToken(ln.strip() + "\n", CommentMark(len(ln) - len(ln.lstrip())), None)
        for ln in tail.splitlines()
        if ln.lstrip().startswith("#")
    ] or None


def _drop_lock_entry(path: Path, name: str) -> bool:
    """Remove ``name`` from dvc.lock; the file goes when no entry is left (as DVC does)."""
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    doc = yamlio.load(path, display="dvc.lock")
    entries = doc.get("stages") if isinstance(doc, MutableMapping) else None
    if not isinstance(entries, MutableMapping) or name not in entries:
        return False
    del entries[name]
    if not entries and not doc.get("datasets"):
        path.unlink()
    else:
        yamlio.dump(path, doc, like=text)
    return True


def _pipeline_stages(repo: Repo) -> list[Any]:
    """Named dvc.yaml stages, upstream first."""
    import networkx as nx  # type: ignore[import-untyped]

    graph = repo.index.graph
    order = list(reversed(list(nx.topological_sort(graph))))
    return [s for s in order if _dvc.is_pipeline_stage(s)]


def _status(repo: Repo, stages: Sequence[Any]) -> dict[str, Any]:
    """``dvc status`` of the pipeline stages. It asks the source of every ``dvc import``
    (frozen ones too), so offline it fails: then each stage alone, an import that
    cannot be reached named as such instead of failing the whole list."""
    from ..errors import MlopskitError

    try:
        with _dvc.translated():
            return dict(repo.status())
    except MlopskitError:
        pass
    out: dict[str, Any] = {}
    for s in stages:
        try:
            with _dvc.translated():
                found = repo.status(targets=[s.addressing])
            out.update(found)
        except MlopskitError as err:
            out[s.addressing] = [f"status unknown: {err.message}"]
    return out


def stage_list(project: Project) -> list[StageInfo]:
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        stages = _pipeline_stages(repo)
        check_paths(project.root, stages)  # before status: DVC asserts on outside outputs
        status = _status(repo, stages)
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
            # As DVC names it: `name` in the root dvc.yaml, `sub/dvc.yaml:name` else.
            out.append(StageInfo(s.addressing, str(s.cmd), bool(changes), described))
        return out


def check_params(root: Path, stages: Sequence[Any]) -> None:
    """Every param a stage names must exist, before anything runs (dvc#3707)."""
    seen: set[str] = set()
    for stage in stages:
        for dep in stage.deps:
            if not _dvc.is_params_dep(dep):
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
        return paths.within(root, p) is not None

    for stage in stages:
        where = f"{stage.relpath}: stage '{getattr(stage, 'name', stage.addressing)}'"
        if not inside(stage.wdir):
            shown = os.path.relpath(stage.wdir, Path(stage.path).parent)
            raise dvcfiles.wdir_outside(where, Path(shown).as_posix())
        outs = {id(o) for o in stage.outs}
        for item in [*stage.outs, *stage.deps]:
            if getattr(item.fs, "protocol", "local") not in ("local", "file"):
                continue
            if not inside(item.fs_path):
                raise UsageError(
                    f"{where}: {item.def_path!r} is outside the project root",
                    "keep stage paths inside the repository",
                )
            if id(item) in outs:  # a name git cannot ignore: refused before anything runs
                names.check_ignorable(str(item.def_path), where=f"{where}: output")


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
    stages: int  # stages of dvc.yaml files (DVC also counts each .dvc pointer as one)
    pointers: int = 0  # .dvc files


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
    named = sum(1 for s in stages if getattr(s, "name", None))
    return Validation(stages=named, pointers=len(stages) - named)
