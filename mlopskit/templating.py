"""Render the jinja2 templates in ``templates/`` (inside the wheel: ``mlopskit/templates``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

# Template file names that cannot be stored under their real name in this repository.
_RENAMES = {"gitignore": ".gitignore"}
SUFFIX = ".j2"


def templates_dir() -> Path:
    """The installed copy first; an editable install falls back to the checkout's ``templates/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("mlopskit's templates are missing; reinstall mlopskit")


def environment(directory: Path, *, workflow: bool = False) -> Any:
    import jinja2

    kwargs: dict[str, Any] = {}
    if workflow:
        # GitHub's ${{ }} must pass through untouched.
        kwargs = {
            "block_start_string": "[%",
            "block_end_string": "%]",
            "variable_start_string": "[[",
            "variable_end_string": "]]",
            "comment_start_string": "[#",
            "comment_end_string": "#]",
        }
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        **kwargs,
    )


def render_tree(
    name: str,
    context: Mapping[str, Any],
    *,
    workflow: bool = False,
    only: Collection[str] | None = None,
) -> dict[str, str]:
    """``{relative output path: text}`` for every file under ``templates/NAME``
    (with ``only``: those of its template files, named as they are stored)."""
    base = templates_dir() / name
    env = environment(base, workflow=workflow)
    out: dict[str, str] = {}
    for src in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = src.relative_to(base)
        if "__pycache__" in rel.parts or rel.suffix == ".pyc":
            continue
        if only is not None and rel.as_posix() not in only:
            continue
        parts = list(rel.parts)
        leaf = parts[-1]
        if leaf.endswith(SUFFIX):
            leaf = leaf[: -len(SUFFIX)]
            text = env.get_template(rel.as_posix()).render(**context)
        else:
            text = src.read_text(encoding="utf-8")
        parts[-1] = _RENAMES.get(leaf, leaf)
        out["/".join(parts)] = text
    return out


# `mlopskit init --template NAME`. "classification" is the whole of templates/project;
# "none" (a project of your own) takes the pipeline-free files of templates/project
# and the empty dvc.yaml of templates/project-none: no stages, params, gates or artifacts.
PROJECT_TEMPLATES = ("classification", "none")
DEFAULT_PROJECT_TEMPLATE = "classification"
_NONE_SHARED = (
    "gitignore.j2",
    "README.md.j2",
    "mlopskit.yaml.j2",
    "requirements.txt.j2",
    "deploy/deploy.sh",
)


def render_project(template: str, context: Mapping[str, Any]) -> dict[str, str]:
    """The files of a new project made from ``template`` (see PROJECT_TEMPLATES)."""
    from .errors import UsageError

    if template not in PROJECT_TEMPLATES:
        raise UsageError(
            f"template {template!r}: unknown", f"use one of {', '.join(PROJECT_TEMPLATES)}"
        )
    ctx = {**context, "template": template}
    if template == "classification":
        return render_tree("project", ctx)
    return {
        **render_tree("project", ctx, only=_NONE_SHARED),
        **render_tree("project-none", ctx),
    }
