"""``mlopskit quickstart``: init, version a bundled data set, train, commit and push."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import data, metrics, scaffold
from .pipeline import run as pipeline
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
    # The git repository DIR was inside, when quickstart made DIR one of its own.
    enclosing: Path | None = None
    git_root: Path | None = None
    # The git remote the branch would be pushed to; quickstart never pushes git itself.
    git_remote: str | None = None
    branch: str = "main"
    ci_warnings: tuple[str, ...] = ()  # what the generated workflows cannot do as configured
    ci_needs: tuple[str, ...] = ()  # what to set on GitHub for them


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
    subdir: bool = False,
) -> QuickstartResult:
    """Init, version a data set, train, commit; DVC data is pushed, git is not (the new
    repository has no git remote yet: the summary says how to add one)."""
    init = scaffold.init(path, remote_url=remote_url, name=name, subdir=subdir)
    project = Project(root=init.root)
    rows = write_dataset(project.root, dataset)
    added = data.add(project, [RAW], message=f"data: add the {dataset} data set")
    from . import scm
    from .quality import schema

    schema.write(schema.infer(project.root / RAW), project.root / SCHEMA)
    schema_commit = scm.commit_paths(
        project.root,
        [SCHEMA],
        "data: schema of the raw data",
        max_file_mb=project.config.git.max_file_mb,
    )
    result = pipeline.repro(project, push=True)
    state = pipeline.commit_state(project, message="train: first model from the quickstart")
    values = metrics.show(project)
    commits = [c for c in (init.commit, added.commit, schema_commit, state.commit) if c]
    branch = project.require_branch("quickstart")
    return QuickstartResult(
        root=project.root,
        dataset=dataset,
        rows=rows,
        metrics=values,
        remote_name=init.remote_name,
        remote_url=init.remote_url,
        pushed=result.pushed or 0,
        commits=commits,
        enclosing=init.enclosing,
        git_root=project.git_root,
        git_remote=scm.push_remote(project.root, branch),
        branch=branch,
        ci_warnings=tuple(init.warnings),  # all of them: e.g. "cannot install mlopskit yet"
        ci_needs=init.ci_needs,
    )
