"""Fetch a registered model into memory, verify it, and load it for serving.

The bytes come from where ``model get`` takes them (the DVC cache, else the DVC remote,
or the git blob), their md5 must equal the ``outs`` entry of the stage that produced the
file in dvc.lock at the registered commit, and skops loads them against the project's
trusted types. Nothing is written to disk: the file never exists outside DVC's cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import at_revision, scm
from ..errors import IntegrityError, UsageError
from ..project import Project
from ..quality.schema import Column, Schema
from ..registry import tags as registry
from . import trust


@dataclass(frozen=True)
class Target:
    """What a spec names now: the artifact, its version and the registered commit."""

    spec: str
    artifact: str
    version: str
    stage: str
    commit: str


@dataclass(frozen=True)
class Served:
    target: Target
    path: str  # the model file in the repository
    md5: str
    recorded_in: str  # "the outs of stage 'train' in dvc.lock"
    model: Any
    schema_path: str
    columns: tuple[Column, ...]  # the model's input columns, from the data contract
    allow_extra_columns: bool
    types: tuple[str, ...]  # the non-default types the file holds (all trusted)
    loaded_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    def metadata(self) -> dict[str, Any]:
        return {
            "artifact": self.target.artifact,
            "version": self.target.version,
            "stage": self.target.stage or None,
            "spec": self.target.spec,
            "commit": self.target.commit,
            "path": self.path,
            "md5": self.md5,
            "md5_recorded_in": self.recorded_in,
            "loaded_at": self.loaded_at,
            "trusted_types": list(self.types),
            "input_schema": {
                "source": self.schema_path,
                "allow_extra_columns": self.allow_extra_columns,
                "columns": [_column_doc(c) for c in self.columns],
            },
        }


def _column_doc(c: Column) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": c.name, "type": c.type, "nullable": c.nullable}
    if not c.required:
        doc["required"] = False
    if c.min is not None:
        doc["min"] = c.min
    if c.max is not None:
        doc["max"] = c.max
    if c.allowed is not None:
        doc["allowed"] = list(c.allowed)
    return doc


def target(project: Project, spec: str) -> Target:
    """``NAME``, ``NAME@vX.Y.Z`` or ``NAME#STAGE`` -> the version it names now."""
    parsed = registry.parse_spec(spec)
    art, version = registry.resolve(project.root, spec)
    if parsed.stage:
        from ..registry import signing

        signing.check_stage(project, art.name, parsed.stage)  # registry.require_signed
    return Target(spec, art.name, version, parsed.stage or "", art.versions[version].commit)


def fetch(project: Project, tgt: Target, *, remote: str | None = None) -> tuple[bytes, str, str]:
    """(bytes, path, md5) of the model file at the registered commit, md5-verified."""
    root = project.root
    path = str(registry.declared(root, tgt.commit).get(tgt.artifact, {}).get("path", ""))
    if not path:
        raise UsageError(f"dvc.yaml at {tgt.commit[:8]} declares no path for '{tgt.artifact}'")
    found = registry.locate(root, tgt.commit, path)
    if found is None:
        raise UsageError(
            f"{path}: not a stage output in dvc.lock, not tracked by a .dvc file and not in "
            f"git at {tgt.commit[:8]}"
        )
    if found.md5.endswith(".dir"):
        raise UsageError(f"{path} is a directory; serve loads one .skops file")
    if found.source == "git":
        data = scm.show(root, tgt.commit, path) or b""
    else:
        data = _dvc_bytes(project, found.md5, path, remote)
    digest = hashlib.md5(data).hexdigest()
    if digest != found.md5:
        raise IntegrityError(
            f"{path}: md5 {digest} does not match {found.md5} recorded in {found.described} "
            f"at {tgt.commit[:8]}; refusing to load it",
            "the cached or remote copy is corrupt: push a good copy (mlopskit data push)",
        )
    return data, path, found.described


def _dvc_bytes(project: Project, md5: str, path: str, remote: str | None) -> bytes:
    import tempfile

    from .. import _dvc

    with tempfile.TemporaryDirectory(prefix="mlopskit-serve-") as tmp:
        dest = Path(tmp) / "model"
        _dvc.fetch_object(project.root, md5, path, dest, remote=remote, command="serve")
        return dest.read_bytes()


def contract(project: Project, commit: str, model: Any) -> tuple[str, Schema, tuple[Column, ...]]:
    """The data contract at the model's commit, narrowed to the model's input columns
    (``feature_names_in_``; every column but none when the model does not record them)."""
    from ..quality.schema import from_data

    rel = project.config.serve.schema
    data = at_revision.load_structured(project.root, commit, rel)
    if data is None:
        raise UsageError(
            f"{rel}: not in the repository at {commit[:8]}; requests are checked against it",
            "make one with 'mlopskit data schema infer data/raw/data.csv -o data/schema.yaml' "
            "or set serve.schema in mlopskit.yaml",
        )
    schema = from_data(data, f"{rel}@{commit[:8]}")
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return rel, schema, schema.columns
    columns = []
    for name in (str(n) for n in names):
        col = schema.column(name)
        if col is None:
            raise UsageError(
                f"{rel}@{commit[:8]}: no column '{name}', which the model takes as input",
                "the data contract must describe every input column",
            )
        columns.append(col)
    return rel, schema, tuple(columns)


def load(project: Project, spec: str, *, remote: str | None = None) -> Served:
    """Resolve, fetch, verify and load ``spec``; exit 5 on a hash mismatch or an
    untrusted type, before anything is served."""
    tgt = target(project, spec)
    return load_target(project, tgt, remote=remote)


def load_target(project: Project, tgt: Target, *, remote: str | None = None) -> Served:
    data, path, recorded = fetch(project, tgt, remote=remote)
    trusted = project.config.serve.trusted_types
    model = trust.load(data, trusted, where=path)
    types = tuple(trust.untrusted(data, where=path))
    if not hasattr(model, "predict"):
        raise UsageError(f"{path}: the loaded object has no predict() ({type(model).__name__})")
    rel, schema, columns = contract(project, tgt.commit, model)
    return Served(
        target=tgt,
        path=path,
        md5=hashlib.md5(data).hexdigest(),
        recorded_in=recorded,
        model=model,
        schema_path=rel,
        columns=columns,
        allow_extra_columns=schema.allow_extra_columns,
        types=types,
    )
