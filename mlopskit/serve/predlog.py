"""The prediction log: one JSON line per predicted row (inputs, output, model version,
time), written by a background thread from a bounded queue so that logging never slows
or fails a request. A full queue drops the record and counts it; a file past
``max_bytes`` is rotated (``predictions-PID.jsonl`` -> ``.1`` -> ``.2`` ..., keeping
``backups``). Each worker process writes its own file, so lines never interleave.
:mod:`mlopskit.quality.predictions` reads a log directory back for ``monitor drift``.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..quality.predictions import PREFIX


@dataclass(frozen=True)
class Entry:
    artifact: str
    version: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    outputs: Sequence[Any]


class PredictionLog:
    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = 10_485_760,
        backups: int = 5,
        sample: float = 1.0,
        queue_size: int = 10_000,
        on_count: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_count(what, n)`` is told of every ``written``/``dropped``/``failed`` count
        as it happens (the server's metrics), from the request or the writer thread."""
        self.folder = folder
        self._on_count = on_count
        self.max_bytes = max_bytes
        self.backups = backups
        self.sample = sample
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[str, Entry] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._path = folder / f"{PREFIX}{os.getpid()}.jsonl"
        self._rng = random.Random()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"{PREFIX}{os.getpid()}.jsonl"
        self._thread = threading.Thread(target=self._run, name="mlopskit-predlog", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> None:
        """Queue one request's rows; never blocks, never raises."""
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            return
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        try:
            self._queue.put_nowait((stamp, entry))
        except queue.Full:
            self.dropped += 1
            self._count("dropped", 1)

    def _count(self, what: str, n: int) -> None:
        if self._on_count is not None:
            try:
                self._on_count(what, n)
            except Exception:  # noqa: BLE001 - metrics never fail the log or a request
                pass

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        import orjson

        fh = self._path.open("ab")  # a named pipe (a log shipper) blocks here until read
        try:
            try:
                size = fh.tell()
            except OSError:  # not seekable (a pipe): count from here
                size = 0
            while True:
                item = self._queue.get()
                if item is None:
                    return
                stamp, e = item
                try:
                    lines = b"".join(
                        orjson.dumps(
                            {
                                "time": stamp,
                                "artifact": e.artifact,
                                "version": e.version,
                                "inputs": dict(zip(e.columns, row, strict=True)),
                                "output": out,
                            },
                            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
                        )
                        for row, out in zip(e.rows, e.outputs, strict=True)
                    )
                    if size and size + len(lines) > self.max_bytes:
                        fh.close()
                        self._rotate()
                        fh = self._path.open("ab")
                        size = 0
                    fh.write(lines)
                    fh.flush()
                    size += len(lines)
                    self.written += len(e.rows)
                    self._count("written", len(e.rows))
                except (OSError, TypeError, ValueError):
                    self.failed += 1
                    self._count("failed", 1)
        finally:
            try:
                fh.close()
            except OSError:  # the unflushed tail of a full disk: already counted as failed
                pass

    def _rotate(self) -> None:
        if self.backups == 0:
            self._path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{i}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{i + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))
