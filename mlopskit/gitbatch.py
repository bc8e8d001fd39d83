"""Read many blobs through one ``git cat-file --batch`` process (no checkout, no brancher)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType


class BlobReader:
    """``reader.read(rev, path)`` -> ``(blob id, bytes)`` or None; one long-lived git process."""

    def __init__(self, root: Path) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def read(self, rev: str, path: str) -> tuple[str, bytes] | None:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None
        assert stdout is not None
        spec = f"{rev}:./{path}"  # ./: relative to root, also in a sub-folder project
        if "\n" in spec:
            return None
        stdin.write(spec.encode("utf-8", "surrogateescape") + b"\n")
        stdin.flush()
        header = stdout.readline().decode().split()
        if len(header) != 3:  # "<spec> missing" or "<spec> ambiguous"
            return None
        sha, kind, size = header
        data = stdout.read(int(size))
        stdout.read(1)  # the newline after each object
        return (sha, data) if kind == "blob" else None

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
