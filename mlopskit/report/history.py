"""``metrics history``: metrics and params along first-parent history, from git objects.

One ``git log`` and one ``git cat-file --batch`` process serve the whole walk, through
the one reader of DVC project state (mlopskit/dvcfiles.py): every dvc.yaml resolved as
DVC resolves it (foreach, matrix, vars), once per distinct blob; files parsed once per
blob id, so long histories stay fast (no checkout, no DVC brancher).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import dotted, dvcfiles, scm
from ..errors import MlopskitError, UsageError
from ..project import Project


@dataclass(frozen=True)
class HistoryRow:
    commit: str
    date: str
    author: str
    subject: str
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _commits(root: Path, rev: str, limit: int | None) -> list[tuple[str, str, str, str]]:
    args = ["log", "--first-parent", "--format=%H%x00%cI%x00%an%x00%s%x00", "-z"]
    if limit:
        args.append(f"-n{limit}")
    args += ["--end-of-options", rev]
    res = scm.git(root, *args, check=False)
    if res.returncode != 0:
        raise UsageError(f"revision range '{rev}' not found", "give a branch, tag, commit or A..B")
    fields = res.out.split("\0")
    out = []
    for i in range(0, len(fields) - 4, 5):
        sha, date, author, subject = (f.strip("\n") for f in fields[i : i + 4])
        out.append((sha, date, author, subject))
    return out


def _row(reader: dvcfiles.Reader, commit: tuple[str, str, str, str]) -> HistoryRow:
    from .. import metrics as metrics_mod
    from .. import params as params_mod

    sha, date, author, subject = commit
    try:
        values = metrics_mod.read_state(reader, sha, required=False).values
    except MlopskitError:
        values = {}  # a commit whose metrics DVC cannot read either: an empty row
    metrics: dict[str, Any] = {}
    many = len(values) > 1
    for path, found in values.items():
        for k, v in found.items():
            metrics[f"{path}:{k}" if many else k] = v
    try:
        params = params_mod.read_state(reader, sha)
    except MlopskitError:
        params = {}
    return HistoryRow(sha, date, author, subject, metrics, params)


def history(project: Project, *, rev: str = "HEAD", limit: int | None = 20) -> list[HistoryRow]:
    """Newest first, along first parents."""
    root = project.root
    commits = _commits(root, rev, limit)
    with dvcfiles.Reader(root) as reader:
        return [_row(reader, c) for c in commits]


def columns(rows: list[HistoryRow]) -> tuple[list[str], list[str]]:
    """The metric and param names that appear anywhere in ``rows``, in first-seen order."""
    m: dict[str, None] = {}
    p: dict[str, None] = {}
    for r in rows:
        m.update(dict.fromkeys(r.metrics))
        p.update(dict.fromkeys(r.params))
    return list(m), list(p)


def plot(rows: list[HistoryRow], out: Path) -> None:
    """A PNG of every numeric metric over the commits (oldest on the left)."""
    from . import charts

    metric_names, _ = columns(rows)
    series: dict[str, list[float | None]] = {}
    ordered = list(reversed(rows))
    for name in metric_names:
        values = [dotted.number(r.metrics.get(name)) for r in ordered]
        if any(v is not None for v in values):
            series[name] = values
    labels = [r.commit[:7] for r in ordered]
    charts.history_chart(labels, series, out)
