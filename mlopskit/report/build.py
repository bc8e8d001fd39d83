"""The pull-request report: gate verdict, metrics, params, plots, data changes, lineage.

``build`` collects everything into a ``Report`` (plain data, PNG bytes included);
``report_render`` turns it into Markdown, HTML or JSON; ``github`` posts it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _dvc, at_revision, dvcfiles, metrics, params, scm
from ..errors import MlopskitError, UsageError
from ..project import Project
from . import charts, datadiff, gate
from .gate import Verdict

HEAD_LABEL = "workspace"


@dataclass(frozen=True)
class PlotImage:
    name: str
    title: str
    base_png: bytes | None
    head_png: bytes | None
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where the report's head comes from (its "Lineage" footer): the commit, branch, the
    workspace's data pointers and whether ``dvc.lock`` matches. A registered model's
    lineage is :class:`mlopskit.registry.lineage.Lineage`."""

    commit: str | None
    subject: str
    branch: str | None
    data: dict[str, str]  # path -> md5 in the workspace pointers
    lock_in_sync: bool | None
    out_of_sync: list[str] = field(default_factory=list)
    dirty: list[str] = field(default_factory=list)
    not_pulled: list[str] = field(default_factory=list)  # stages whose outputs are absent


@dataclass(frozen=True)
class DataQuality:
    file: str
    ok: bool
    rows: int
    base_rows: int | None
    violations: list[dict[str, Any]] = field(default_factory=list)


def data_quality(root: Path, base_sha: str) -> list[DataQuality]:
    """Results of the pipeline's `mlopskit data validate ... --out FILE` stages: in every
    ``dvc.yaml`` (nested ones and ``foreach``/``matrix`` stages too, as the one reader of
    DVC state sees them), ``FILE`` relative to the stage's ``wdir``, read from git, the
    workspace or the DVC cache."""
    import json
    import posixpath
    import shlex

    out: list[DataQuality] = []
    with dvcfiles.Reader(root) as reader:
        try:
            stages = reader.state(None).stages
        except MlopskitError:
            return out  # a broken dvc.yaml is the gate's and lineage's to report
        for stage in stages:
            for part in stage.cmd.split("&&"):
                if "mlopskit data validate" not in part:
                    continue
                try:
                    args = shlex.split(part)
                    file = args[args.index("--out") + 1]
                except (ValueError, IndexError):
                    continue
                path = posixpath.normpath(posixpath.join(stage.wdir, file))
                head = reader.read(None, path)
                if head is None:
                    continue
                try:
                    data = json.loads(head)
                    base_raw = reader.read(base_sha, path)
                    base_rows = json.loads(base_raw)["rows"] if base_raw else None
                    out.append(
                        DataQuality(
                            path,
                            bool(data["ok"]),
                            int(data["rows"]),
                            base_rows,
                            list(data.get("violations", [])),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue
    return out


@dataclass(frozen=True)
class Report:
    base: str
    base_sha: str
    gate: gate.GateResult | None
    gate_error: str | None
    metrics: list[metrics.MetricChange]
    params: list[params.ParamChange]
    plots: list[PlotImage]
    data: list[datadiff.DataChange]
    lineage: Provenance
    notes: list[str] = field(default_factory=list)
    quality: list[DataQuality] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # declared, not in workspace/cache
    plots_skipped: bool = False  # --no-plots
    # How the CI run that built it went ("" outside CI): the Reproduce step's outcome,
    # whether the pull request came from a fork, and ci.remote.kind.
    repro: str = ""
    fork: bool = False
    remote_kind: str = ""

    @property
    def verdict(self) -> Verdict:
        if self.gate_error:
            return gate.Verdict(
                gate.NOT_EVALUATED, f"the quality gate could not run: {self.gate_error}"
            )
        return gate.verdict(
            self.gate,
            repro=self.repro,
            fork=self.fork,
            remote_kind=self.remote_kind,
            lock_in_sync=self.lineage.lock_in_sync,
            out_of_sync=self.lineage.out_of_sync,
        )


def _plot_defs(root: Path, rev: str | None) -> list[dict[str, Any]]:
    """Plot definitions of every dvc.yaml at ``rev`` (top-level ``plots:`` and stage
    plot outputs), resolved as DVC resolves them; a directory (DVCLive's
    ``plots/metrics``) stands for each file in it, as ``dvc plots diff`` shows them."""
    defs: list[dict[str, Any]] = []
    covered: set[str] = set()
    with dvcfiles.Reader(root) as reader:
        for d in reader.state(rev).plots:
            files = reader.expand(rev, d.file)
            for file in files:
                if file in covered and d.y is None:
                    continue
                covered.add(file)
                name = d.name if len(files) == 1 else file
                defs.append(
                    {
                        "name": name,
                        "file": file,
                        "y": d.y,
                        "x": d.x,
                        "template": d.template,
                        "title": d.title if len(files) == 1 else None,
                    }
                )
    return defs


def _render_plot(
    root: Path, d: dict[str, Any], rev: str | None, label: str, worker: charts.PngWorker
) -> bytes | None:
    file = str(d["file"])
    raw = at_revision.read_bytes(root, rev, file)
    if raw is None:
        return None
    if file.lower().endswith((".png", ".jpg", ".jpeg", ".svg", ".gif")):
        return raw
    rows = charts.rows_from_bytes(file, raw)
    spec = charts.spec(
        d["name"],
        rows,
        label,
        file,
        template=d.get("template"),
        x=d.get("x"),
        y=d.get("y"),
        title=d.get("title"),
    )
    return worker.png(spec) if spec else None


def plots(
    root: Path, base_sha: str, base_label: str, worker: charts.PngWorker | None = None
) -> list[PlotImage]:
    own = worker is None
    worker = worker or charts.PngWorker()
    try:
        return _plots(root, base_sha, base_label, worker)
    finally:
        if own:
            worker.close()


def _plots(root: Path, base_sha: str, base_label: str, worker: charts.PngWorker) -> list[PlotImage]:
    out = []
    for d in _plot_defs(root, None):
        note = ""
        try:
            base_png = _render_plot(root, d, base_sha, base_label, worker)
            head_png = _render_plot(root, d, None, HEAD_LABEL, worker)
        except Exception as exc:  # noqa: BLE001 - one bad plot must not sink the report
            base_png = head_png = None
            note = f"could not render: {type(exc).__name__}: {str(exc)[:160]}"
        title = str(d.get("title") or d["name"])
        if base_png is None and head_png is None and not note:
            file = str(d["file"])
            with dvcfiles.Reader(root) as reader:
                absent = reader.read(None, file) is None and reader.read(base_sha, file) is None
            note = (
                "declared but not in the workspace or the DVC cache "
                f"(pull it: mlopskit data pull {file})"
                if absent
                else "no data"
            )
        out.append(PlotImage(d["name"], title, base_png, head_png, note))
    return out


def lineage(project: Project) -> Provenance:
    root = project.root
    head = scm.head(root)
    subject = scm.git(root, "log", "-1", "--format=%s").out.strip() if head else ""
    tracked = datadiff.tracked_at(root, None)
    data_hashes = {p: t.md5 for p, t in tracked.items() if t.source == "data"}
    in_sync: bool | None = None
    stale: list[str] = []
    not_pulled: list[str] = []
    try:
        with _dvc.open_repo(root) as repo, _dvc.translated():
            stale, not_pulled = _dvc.lock_status(repo)
        in_sync = not stale
    except MlopskitError:
        in_sync = None
    # Tracked files with changes (scm.dirty_tracked), as the project sees them.
    dirty = [p for p in map(project.project_path, scm.dirty_tracked(root)) if p is not None]
    return Provenance(
        head, subject, scm.current_branch(root), data_hashes, in_sync, stale, dirty, not_pulled
    )


def build(
    project: Project,
    *,
    base: str | None = None,
    with_plots: bool = True,
    with_tables: bool = True,
    worker: charts.PngWorker | None = None,
    repro: str = "",
    fork: bool = False,
) -> Report:
    """Everything the report shows, comparing ``base`` with the workspace. ``repro`` is
    the outcome of a CI run's Reproduce step (the verdict is only "passed" after a
    successful one), ``fork`` whether the pull request came from a fork.

    ``worker`` lets a caller start the renderer even earlier (the CLI does, before it
    finds the project); it is closed here either way.
    """
    root = project.root
    # Started first: the renderer warms up on the other core while git and DVC are read.
    if with_plots and worker is None:
        worker = charts.PngWorker()
    elif not with_plots and worker is not None:
        worker.close()
        worker = None
    try:
        r = _build(project, root, base, worker, with_tables)
    finally:
        if worker is not None:
            worker.close()
    return dataclasses.replace(
        r, repro=repro, fork=fork, remote_kind=project.config.ci.remote.kind if repro else ""
    )


def _build(
    project: Project,
    root: Path,
    base: str | None,
    worker: charts.PngWorker | None,
    with_tables: bool,
) -> Report:
    base_name = base or gate.default_base(project)
    base_sha = scm.resolve(root, base_name)
    if base_sha is None:
        raise UsageError(
            f"base revision '{base_name}' not found",
            "fetch it (git fetch origin main) or pass --base REV",
        )
    notes: list[str] = []
    gate_result = None
    gate_error = None
    if project.config.gates:
        try:
            gate_result = gate.check(project, base=base_sha)
        except UsageError as err:
            gate_error = str(err)
    # As the gate and `dvc metrics diff` read them (a cached file not pulled: the
    # cache, else the remote); what neither has is named under the table.
    head_read = metrics.reach(root, None, need_remote=False)
    head_metrics = head_read.values
    base_metrics = metrics.reach(root, base_sha, need_remote=False).values
    if not base_metrics:
        notes.append(f"No metrics at the base {base_name}: every metric shows as added.")
    changes = metrics.compare(base_metrics, head_metrics, project.config.metrics)
    param_changes = params.diff(project, base=base_sha)
    data_changes = datadiff.diff(root, base_sha, tables=with_tables)
    lin = lineage(project)
    quality = data_quality(root, base_sha)
    # Plots last: by now the renderer process has warmed up in parallel.
    images = plots(root, base_sha, base_name, worker) if worker is not None else []
    missing = list(head_read.notes())
    return Report(
        base=base_name,
        base_sha=base_sha,
        gate=gate_result,
        gate_error=gate_error,
        metrics=changes,
        params=param_changes,
        plots=images,
        data=data_changes,
        lineage=lin,
        notes=notes,
        quality=quality,
        unreachable=missing,
        plots_skipped=worker is None,
    )
