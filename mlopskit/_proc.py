"""The one place that starts subprocesses. Arguments are lists, never shell strings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "surrogateescape").strip()


def run(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> Result:
    full_env = dict(os.environ)
    full_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    full_env["LC_ALL"] = "C"
    full_env["LANGUAGE"] = "C"
    if env:
        full_env.update(env)
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        check=False,
    )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
