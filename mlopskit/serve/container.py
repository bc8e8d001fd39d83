"""``mlopskit serve SPEC --dockerfile PATH``: a Dockerfile that serves one model.

The image holds the project's repository (the registry's tags and dvc.lock travel with
it), the project's pinned requirements and mlopskit with the serve extra, and runs as a
non-root user. At start, ``mlopskit serve`` fetches the model from the DVC remote
(credentials from the container's environment, as in deploy.yml), verifies its md5 and
types, and serves it; ``HEALTHCHECK`` asks ``/health/ready``. The base image is a slim
Python of the project's ``ci.python``, pinned by digest where one is known (``BASES``);
``--base-image`` names another (a mirror, a newer digest).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UsageError
from ..project import Project

UID = 10001
LOG_DIR = "/home/serve/predictions"

# Digests of the official image (the multi-platform index), by ci.python: the tag, the
# digest, and when it was published. Not fetched here (no registry at generation time):
# this one is the digest public Dockerfiles pin for python:3.11.13-slim-bookworm
# (published 2025-06); `docker buildx imagetools inspect TAG` shows the current one.
BASES: dict[str, tuple[str, str, str]] = {
    "3.11": (
        "python:3.11.13-slim-bookworm",
        "sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1",
        "2025-06",
    ),
}


def _install_line(project: Project) -> str:
    """mlopskit (with the serve extra) from ``ci.install``, as the workflows install it;
    never the unrelated ``mlopskit`` on PyPI. An unknown source fails the build with the fix."""
    from ..ci import workflows

    inst = workflows.install(project)
    req = inst.requirement
    if not req:
        return (
            'RUN echo "mlopskit: no source a build can install it from is known; set '
            'ci.install in mlopskit.yaml (see README, Workflows), then rewrite this file" >&2 '
            "&& exit 1"
        )
    if req.startswith(("git+", "http://", "https://")):
        wanted = f"mlopskit[serve] @ {req}"
    else:  # mlopskit==X from ci.index_url
        wanted = req.replace("mlopskit", "mlopskit[serve]", 1)
    index = f"--index-url {json.dumps(inst.index_url)} " if inst.index_url else ""
    return f"RUN pip install -r /tmp/requirements.txt {index}{json.dumps(wanted)}"


def _base(python: str, base_image: str | None) -> tuple[str, str]:
    """The FROM line's image and the comment above it."""
    if base_image:
        return base_image, "# The base image given by --base-image."
    known = BASES.get(python)
    if known is not None:
        tag, digest, when = known
        return f"{tag}@{digest}", (
            f"# Base: {tag} (ci.python {python}), pinned by the digest published {when}.\n"
            f"# To move it: docker buildx imagetools inspect python:{python}-slim-bookworm,\n"
            "# then rewrite with --base-image python:X-slim-bookworm@sha256:DIGEST."
        )
    tag = f"python:{python}-slim-bookworm"
    return tag, (
        f"# Pin the base by digest once reviewed, e.g. FROM {tag}@sha256:<digest>\n"
        f"# (docker buildx imagetools inspect {tag} prints it; --base-image writes it)."
    )


def render(
    project: Project,
    spec: str,
    *,
    port: int = 8080,
    workers: int = 1,
    base_image: str | None = None,
) -> str:
    base, base_note = _base(project.config.ci.python, base_image)
    cmd = [
        "mlopskit", "serve", spec, "--host", "0.0.0.0", "--port", str(port),
        "--workers", str(workers), "--log-dir", LOG_DIR,
    ]  # fmt: skip
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/health/ready', "
        "timeout=3).status != 200)"
    )
    return f"""\
# Serves {spec} with `mlopskit serve`. Written by `mlopskit serve {spec} --dockerfile`.
# Build from the project's root (the image needs its .git: the registry is its tags):
#   docker build -f Dockerfile -t {project.config.name}-serve .
#   docker run -p {port}:{port} -e AWS_ACCESS_KEY_ID=... {project.config.name}-serve
{base_note}
FROM {base}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git reads the registry (tags) and dvc.lock; the version is the distribution's.
# hadolint ignore=DL3008
RUN apt-get update \\
    && apt-get install -y --no-install-recommends git \\
    && rm -rf /var/lib/apt/lists/* \\
    && useradd --create-home --uid {UID} serve

WORKDIR /app
COPY requirements.txt /tmp/requirements.txt
{_install_line(project)}

COPY --chown={UID}:{UID} . /app
USER {UID}
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", {json.dumps(probe)}]
CMD {json.dumps(cmd)}
"""


DOCKERIGNORE = """\
# Written by `mlopskit serve --dockerfile`: the image gets the repository, not local state.
.dvc/cache
.dvc/tmp
.dvc/config.local
.venv
**/__pycache__
data/
models/
"""


def write(
    project: Project,
    spec: str,
    path: Path,
    *,
    port: int = 8080,
    workers: int = 1,
    base_image: str | None = None,
) -> list[Path]:
    """Write the Dockerfile (and a .dockerignore at the project root when there is none)."""
    if not (project.root / "requirements.txt").is_file():
        raise UsageError(
            "requirements.txt: not found in the project; the image installs from it",
            "pin the project's packages there (mlopskit init writes one)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image = r"[\w.\-/:]+(@sha256:[0-9a-f]{64})?"
    if base_image is not None and not re.fullmatch(image, base_image):
        raise UsageError(
            f"--base-image {base_image!r}: not an image reference",
            "give NAME:TAG or NAME:TAG@sha256:DIGEST (64 hex digits)",
        )
    text = render(project, spec, port=port, workers=workers, base_image=base_image)
    path.write_text(text, encoding="utf-8")
    written = [path]
    ignore = project.root / ".dockerignore"
    if not ignore.exists():
        ignore.write_text(DOCKERIGNORE, encoding="utf-8")
        written.append(ignore)
    return written
