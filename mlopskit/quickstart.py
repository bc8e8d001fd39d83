"""``mlopskit quickstart``: init, version a bundled data set, train, commit and push."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import data, metrics, pipeline, scaffold
from .project import Project

DATASETS = ("breast_cancer", "wine")
RAW = "data/raw/data.csv"
SCHEMA = "data/schema.yaml"


@dataclass(frozen=True)
class QuickstartResult:
    root: Path
    dataset: str
    rows: int
    metrics: dict[str, Any]
    remote_name: str
    remote_url: str
    pushed: int
    commits: list[str]


def write_dataset(root: Path, dataset: str = "breast_cancer") -> int:
    """Write a data set that ships with scikit-learn to data/raw/data.csv (label: ``target``)."""
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[dataset]
    frame = loader(as_frame=True).frame
    out = root / RAW
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return len(frame)


def quickstart(
    path: Path | str | None = None,
    *,
    dataset: str = "breast_cancer",
    remote_url: str | None = None,
    name: str | None = None,
) -> QuickstartResult:
    init = scaffold.init(path, remote_url=remote_url, name=name)
    project = Project(root=init.root)
    rows = write_dataset(project.root, dataset)
    added = data.add(project, [RAW], message=f"data: add the {dataset} data set")
    from . import schema, scm

    schema.write(schema.infer(project.root / RAW), project.root / SCHEMA)
    schema_commit = scm.commit_paths(
        project.root,
        [SCHEMA],
        "data: schema of the raw data",
        max_file_mb=project.config.git.max_file_mb,
    )
    result = pipeline.repro(
        project, push=True, commit=True, message="train: first model from the quickstart"
    )
    values = metrics.show(project)
    commits = [c for c in (init.commit, added.commit, schema_commit, result.commit) if c]
    return QuickstartResult(
        root=project.root,
        dataset=dataset,
        rows=rows,
        metrics=values,
        remote_name=init.remote_name,
        remote_url=init.remote_url,
        pushed=result.pushed or 0,
        commits=commits,
    )
