"""``metrics history``: metrics and params along first-parent history, from git objects.

One ``git rev-list`` and one ``git cat-file --batch`` process serve the whole walk;
files are parsed once per blob id, so long histories stay fast (no checkout, no
DVC brancher).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dvcyaml, flat, revfile, scm, yamlio
from .errors import UsageError
from .gitbatch import BlobReader
from .project import Project


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


def _parse(path: str, raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError:
            return None
    if path.endswith(".toml"):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
    # Read-only and hot (one parse per blob of a long history): libyaml.
    try:
        return yamlio.fast_loads(text, display=path)
    except UsageError:
        return None


class _Walker:
    def __init__(self, root: Path, reader: BlobReader) -> None:
        self.root = root
        self.reader = reader
        self.parsed: dict[tuple[str, str], Any] = {}

    def load(self, rev: str, path: str) -> Any:
        blob = self.reader.read(rev, path)
        if blob is None:
            return None
        sha, raw = blob
        key = (sha, path)
        if key not in self.parsed:
            self.parsed[key] = _parse(path, raw)
        return self.parsed[key]

    def cached(self, rev: str, path: str) -> Any:
        """A DVC-cached file (not in git): its md5 from dvc.lock, its bytes from the cache."""
        lock = self.load(rev, "dvc.lock")
        if not isinstance(lock, dict):
            return None
        for stage in (lock.get("stages") or {}).values():
            for entry in (stage or {}).get("outs", []) or []:
                if isinstance(entry, dict) and entry.get("path") == path and entry.get("md5"):
                    f = revfile.cache_path(self.root, str(entry["md5"]))
                    return _parse(path, f.read_bytes()) if f.is_file() else None
        return None

    def row(self, commit: tuple[str, str, str, str]) -> HistoryRow:
        sha, date, author, subject = commit
        files = dvcyaml.parse(self.load(sha, "dvc.yaml"))
        metrics: dict[str, Any] = {}
        many = len(files.metrics) > 1
        for path in files.metrics:
            data = self.load(sha, path)
            if data is None:
                data = self.cached(sha, path)
            if isinstance(data, dict):
                for k, v in flat.flatten(data).items():
                    metrics[f"{path}:{k}" if many else k] = v
        params: dict[str, Any] = {}
        for path in files.params:
            data = self.load(sha, path)
            if isinstance(data, dict):
                for k, v in flat.flatten(data).items():
                    params[k if path == dvcyaml.PARAMS_FILE else f"{path}:{k}"] = v
        return HistoryRow(sha, date, author, subject, metrics, params)


def history(project: Project, *, rev: str = "HEAD", limit: int | None = 20) -> list[HistoryRow]:
    """Newest first, along first parents."""
    root = project.root
    commits = _commits(root, rev, limit)
    with BlobReader(root) as reader:
        walker = _Walker(root, reader)
        return [walker.row(c) for c in commits]


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
        values = [flat.number(r.metrics.get(name)) for r in ordered]
        if any(v is not None for v in values):
            series[name] = values
    labels = [r.commit[:7] for r in ordered]
    charts.history_chart(labels, series, out)
