"""``mlopskit serve SPEC --dockerfile PATH``: a Dockerfile that serves one model.

The image holds the project's repository (the registry's tags and dvc.lock travel with
it), the project's pinned requirements and mlopskit with the serve extra, and runs as a
non-root user. At start, ``mlopskit serve`` fetches the model from the DVC remote
(credentials from the container's environment, as in deploy.yml), verifies its md5 and
types, and serves it; ``HEALTHCHECK`` asks ``/health/ready``. The base image is a slim
Python of the project's ``ci.python``; pin it by digest as the comment above FROM says.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from ..project import Project

UID = 10001
LOG_DIR = "/home/serve/predictions"


def render(project: Project, spec: str, *, port: int = 8080, workers: int = 1) -> str:
    python = project.config.ci.python
    base = f"python:{python}-slim-bookworm"
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
# Pin the base by digest once reviewed, e.g. FROM {base}@sha256:<digest>
# (docker buildx imagetools inspect {base} prints it).
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
RUN pip install -r /tmp/requirements.txt "mlopskit[serve]=={__version__}"

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
    project: Project, spec: str, path: Path, *, port: int = 8080, workers: int = 1
) -> list[Path]:
    """Write the Dockerfile (and a .dockerignore at the project root when there is none)."""
    if not (project.root / "requirements.txt").is_file():
        raise UsageError(
            "requirements.txt: not found in the project; the image installs from it",
            "pin the project's packages there (mlopskit init writes one)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(project, spec, port=port, workers=workers), encoding="utf-8")
    written = [path]
    ignore = project.root / ".dockerignore"
    if not ignore.exists():
        ignore.write_text(DOCKERIGNORE, encoding="utf-8")
        written.append(ignore)
    return written
