"""Read many blobs through one ``git cat-file --batch`` process (no checkout, no brancher)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from . import _proc


class BlobReader:
    """``reader.read(rev, path)`` -> ``(blob id, bytes)`` or None; one long-lived git process."""

    def __init__(self, root: Path) -> None:
        self._proc = _proc.pipe(["git", "cat-file", "--batch"], cwd=root)

    def read(self, rev: str, path: str) -> tuple[str, bytes] | None:
        found = self.object(f"{rev}:./{path}")  # ./: relative to root (a sub-folder project)
        return (found[0], found[2]) if found and found[1] == "blob" else None

    def object(self, spec: str) -> tuple[str, str, bytes] | None:
        """``(object id, type, raw bytes)`` of any object (a tree too), or None."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None
        assert stdout is not None
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
        return sha, kind, data

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
