"""What a registered model is made of, and getting it: lineage, model card, fetching.

Everything here starts from a registry tag (``NAME@vX.Y.Z``, ``NAME#STAGE``) and reads
that commit's dvc.lock and .dvc files (every dvc.yaml's, through dvcfiles), params and
metrics straight from git objects; ``get`` fetches the model file from the DVC cache or
remote and verifies its md5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _dvc, scm
from ..errors import UsageError
from ..project import Project
from .tags import declared, locate, resolve, state


@dataclass(frozen=True)
class Lineage:
    artifact: str
    version: str
    stages: list[str]
    commit: str
    registered_by: str
    registered_at: str
    path: str
    description: str
    type: str
    labels: list[str]
    model_md5: str | None
    model_source: str  # where model_md5 comes from: the producing stage, a .dvc file, git
    data: dict[str, str]  # DVC-tracked path -> md5: every dvc.lock (outs win over deps), .dvc
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    commit_subject: str


def show(project: Project, spec: str) -> Lineage:
    from .. import metrics, params

    root = project.root
    art, version = resolve(root, spec)
    reg = art.versions[version]
    decl = declared(root, reg.commit).get(art.name, {})
    path = str(decl.get("path", ""))
    data = _data_md5s(root, reg.commit)
    found = locate(root, reg.commit, path)
    subject = scm.git(root, "log", "-1", "--format=%s", reg.commit).out.strip()
    return Lineage(
        artifact=art.name,
        version=version,
        stages=sorted(s for s, v in art.stages.items() if v == version),
        commit=reg.commit,
        registered_by=f"{reg.tagger} <{reg.email}>",
        registered_at=reg.date,
        path=path,
        description=str(decl.get("desc", "")),
        type=str(decl.get("type", "")),
        labels=[str(x) for x in decl.get("labels", []) or []],
        model_md5=found.md5 if found else None,
        model_source=found.described if found else "",
        data=data,
        params=params.read(root, reg.commit),
        metrics=metrics.read(root, reg.commit, required=False),
        commit_subject=subject,
    )


def _data_md5s(root: Path, rev: str) -> dict[str, str]:
    """path -> md5 of the DVC-managed data ``rev`` records (every dvc.lock, nested ones
    and foreach/matrix stages, and every .dvc file, read by the one reader of DVC state):
    what a stage produced (outs), else what one consumed (deps; stale when that stage
    was not re-run after the producer changed). Files git tracks are code, not data."""
    from .. import dvcfiles

    with dvcfiles.Reader(root) as reader:
        hashes = reader.outputs(rev).hashes
        return {
            p: m
            for p, m in sorted(hashes.items())
            if reader.read_git(rev, p) is None and not reader.isdir(rev, p)
        }


def code_span(text: str) -> str:
    """A Markdown code span that holds ``text`` verbatim: the fence is one backtick longer
    than the longest run inside, padded when the text starts or ends with a backtick."""
    import re

    text = " ".join(text.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    edge = text[:1] == "`" or text[-1:] == "`" or (text[:1] == " " and text[-1:] == " ")
    pad = " " if edge and text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def card(project: Project, spec: str) -> str:
    """A Markdown model card from the lineage and dvc.yaml's description."""
    from ..formatting import fmt, md_escape, md_table

    lin = show(project, spec)
    parts = [
        f"# Model card: {md_escape(lin.artifact)} {md_escape(lin.version)}\n",
        f"{md_escape(lin.description) or '_No description in dvc.yaml._'}\n",
        md_table(
            ["", ""],
            [
                ["type", lin.type or "—"],
                ["labels", ", ".join(lin.labels) or "—"],
                ["stages", ", ".join(lin.stages) or "—"],
                ["file", lin.path],
                ["md5", lin.model_md5 or "—"],
                ["md5 recorded in", lin.model_source or "—"],
                ["commit", lin.commit],
                ["commit message", lin.commit_subject],
                ["registered by", lin.registered_by],
                ["registered at", lin.registered_at],
            ],
        ),
        "## Metrics\n",
        md_table(
            ["file", "metric", "value"],
            [[f, k, fmt(v)] for f, vals in lin.metrics.items() for k, v in vals.items()],
        )
        if lin.metrics
        else "_No metrics at this commit._\n",
        "## Params\n",
        md_table(["param", "value"], [[k, fmt(v)] for k, v in lin.params.items()])
        if lin.params
        else "_No params._\n",
        "## Data lineage (from dvc.lock and .dvc files)\n",
        md_table(["path", "md5"], [[p, m] for p, m in lin.data.items()])
        if lin.data
        else "_No DVC-tracked data._\n",
        f"\nReproduce: {code_span(f'git checkout {lin.commit[:12]} && dvc pull && dvc repro')} "
        f"(or fetch the model: {code_span(f'mlopskit model get {lin.artifact}@{lin.version}')}).\n",
    ]
    return "\n".join(parts)


@dataclass(frozen=True)
class Fetched:
    artifact: str
    version: str
    path: Path
    md5: str


def get(project: Project, spec: str, out_dir: Path, *, remote: str | None = None) -> Fetched:
    """Fetch the model file of that version into ``out_dir`` (the workspace is not touched)
    and verify its md5: from the DVC cache or remote when DVC tracks it, from the git object
    at that commit when git does. Exit 5 on a mismatch, nothing written."""
    import hashlib
    import os
    import tempfile

    from ..errors import IntegrityError

    root = project.root
    art, version = resolve(root, spec)
    if "#" in spec:
        from . import signing

        signing.check_stage(project, art.name, spec.split("#", 1)[1])  # require_signed
    commit = art.versions[version].commit
    path = str(declared(root, commit).get(art.name, {}).get("path", ""))
    found = locate(root, commit, path)
    if found is None:
        raise UsageError(
            f"{path}: not a stage output in dvc.lock, not tracked by a .dvc file and not in "
            f"git at {commit[:8]}"
        )
    md5 = found.md5
    if md5.endswith(".dir"):
        raise UsageError(f"{path} is a directory; fetch it with 'dvc get . {path} --rev {commit}'")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / Path(path).name
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=".mlopskit-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if found.source == "git":
            blob = scm.show(root, commit, path)
            assert blob is not None  # locate found it
            tmp.write_bytes(blob)
        else:
            _dvc.fetch_object(root, md5, path, tmp, remote=remote, command="model get")
        digest = hashlib.md5()
        with tmp.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != md5:
            raise IntegrityError(
                f"{path}: md5 {digest.hexdigest()} does not match {md5} recorded in "
                f"{found.described} at {commit[:8]}; nothing was written",
                "the remote object is corrupt: push a good copy (mlopskit data push)",
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return Fetched(art.name, version, target, md5)


def describe_tag(root: Path, tag: str) -> dict[str, str]:
    """What a GTO tag records, for deploy workflows: ``event`` (registration,
    deregistration, assignment, unassignment, deprecation, as GTO's own action names
    them), ``artifact``, ``version``, ``stage``, the model ``file`` and ``current``
    ("true" when no later assignment or unassignment of that stage exists, so a deploy
    that waited behind a newer one can stand down). A stage tag resolves to the version
    registered at the commit it points to; only an assignment requires one."""
    from .. import _gto

    m = _gto.TAG_RE.match(tag)
    if not m or m["created"]:
        raise UsageError(
            f"{tag!r} is not a GTO registry tag",
            "expected NAME@vX.Y.Z, NAME@vX.Y.Z!, NAME#STAGE#N, NAME#STAGE!#N or NAME@deprecated",
        )
    if m["version"]:
        event = _gto.DEREGISTRATION if m["cancel"] else _gto.REGISTRATION
    elif m["stage"]:
        event = _gto.UNASSIGNMENT if m["cancel"] else _gto.ASSIGNMENT
    else:
        event = _gto.DEPRECATION
    commit = scm.resolve(root, f"refs/tags/{tag}")
    if commit is None:
        raise UsageError(
            f"no tag {tag!r} in this clone",
            "fetch the tags ('git fetch --tags'; actions/checkout does with fetch-depth: 0)",
        )
    name = m["artifact"]
    art = state(root).get(name.replace("=", ":"))
    version = m["version"] or (art.version_at(commit) if art else None) or ""
    registered = bool(art and version in art.versions)
    if event == _gto.ASSIGNMENT and not registered:
        raise UsageError(f"tag {tag!r} points to a commit with no registered version")
    file = ""
    if art and registered:
        decl = declared(root, art.versions[version].commit).get(name, {})
        file = Path(str(decl.get("path", ""))).name
    current = True
    if m["stage"] and art:
        moves = [
            t for t in art.history if t.stage == m["stage"] and t.kind in ("assign", "unassign")
        ]
        if moves:
            current = max(moves, key=lambda t: (t.date, t.counter)).name == tag
    return {
        "event": event,
        "artifact": name,
        "version": version,
        "stage": m["stage"] or "",
        "file": file,
        "current": "true" if current else "false",
    }
