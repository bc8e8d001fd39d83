"""A journal for the few steps that change files and then commit them.

``data add`` writes pointers and .gitignore entries, then commits them. If the
process dies in between, the journal ``.dvc/tmp/mlopskit/txn.json`` remembers what
the files held before, and ``mlopskit recover`` completes the commit (when the
pointers are whole and match the data) or puts the files back.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import scm, yamlio
from .errors import PreconditionError

NAME = "txn.json"


def path_for(tmp_dir: Path) -> Path:
    return tmp_dir / NAME


@dataclass
class Txn:
    root: Path
    journal: Path
    op: str
    message: str
    targets: list[str]
    # path -> base64 of the bytes it held before, or None when it did not exist
    before: dict[str, str | None] = field(default_factory=dict)
    # path -> "mode sha" of its index entry before, or None when it was not in the index;
    # None as a whole for a journal written before this was recorded
    index: dict[str, str | None] | None = None

    def save(self) -> None:
        data = {
            "op": self.op,
            "message": self.message,
            "targets": self.targets,
            "before": self.before,
            "index": self.index,
        }
        yamlio.atomic_write_text(self.journal, json.dumps(data, indent=2))

    def changed(self) -> list[str]:
        """The journaled files whose content differs from before."""
        out = []
        for rel, old in self.before.items():
            f = self.root / rel
            now = f.read_bytes() if f.is_file() else None
            was = base64.b64decode(old) if old is not None else None
            if now != was:
                out.append(rel)
        return out

    def rollback(self) -> list[str]:
        """Put every journaled file back as it was and unstage it; returns the paths."""
        restored = []
        for rel, old in self.before.items():
            f = self.root / rel
            if old is None:
                if f.is_file():
                    f.unlink()
                    restored.append(rel)
            else:
                data = base64.b64decode(old)
                if not f.is_file() or f.read_bytes() != data:
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_bytes(data)
                    restored.append(rel)
        paths = list(self.before)
        if self.index is not None:
            _restore_index(self.root, self.index)
        elif scm.has_commits(self.root):
            scm.git(self.root, "reset", "-q", "--", *paths, check=False)
        else:
            scm.git(
                self.root, "rm", "-q", "--cached", "--ignore-unmatch", "--", *paths, check=False
            )
        self.finish()
        return restored

    def finish(self) -> None:
        self.journal.unlink(missing_ok=True)


def _index_entries(root: Path, files: list[str]) -> dict[str, str | None]:
    """path -> "mode sha" of its (stage 0) index entry, or None when it is not in the index."""
    entries: dict[str, str | None] = dict.fromkeys(files)
    raw = scm.git(root, "--literal-pathspecs", "ls-files", "--stage", "-z", "--", *files).out
    for item in raw.split("\0"):
        if "\t" not in item:
            continue
        info, path = item.split("\t", 1)
        mode, sha, stage = info.split()
        if path in entries and stage == "0":
            entries[path] = f"{mode} {sha}"
    return entries


def _restore_index(root: Path, entries: dict[str, str | None]) -> None:
    """Put each path's index entry back exactly, so what the user had staged stays staged."""
    # --index-info takes paths from the top of the work tree (a project may be a sub-folder).
    prefix = (scm.layout(root) or (root, ""))[1]
    keep = "".join(f"{e}\t{prefix}{p}\0" for p, e in entries.items() if e is not None)
    drop = "".join(f"{p}\0" for p, e in entries.items() if e is None)
    if keep:
        scm.git(
            root,
            "update-index",
            "-z",
            "--index-info",
            input=keep.encode("utf-8", "surrogateescape"),
            check=False,
        )
    if drop:
        scm.git(
            root,
            "update-index",
            "--force-remove",
            "-z",
            "--stdin",
            input=drop.encode("utf-8", "surrogateescape"),
            check=False,
        )


def pending(tmp_dir: Path) -> Path | None:
    j = path_for(tmp_dir)
    return j if j.is_file() else None


def require_none(tmp_dir: Path) -> None:
    j = pending(tmp_dir)
    if j is not None:
        raise PreconditionError(
            f"{j}: an interrupted operation left a journal",
            "run 'mlopskit recover' to complete or undo it",
        )


def begin(
    root: Path, tmp_dir: Path, *, op: str, message: str, targets: list[str], files: list[str]
) -> Txn:
    require_none(tmp_dir)
    before: dict[str, str | None] = {}
    for rel in files:
        f = root / rel
        before[rel] = base64.b64encode(f.read_bytes()).decode() if f.is_file() else None
    txn = Txn(root, path_for(tmp_dir), op, message, targets, before, _index_entries(root, files))
    txn.save()
    return txn


def load(root: Path, tmp_dir: Path) -> Txn | None:
    j = pending(tmp_dir)
    if j is None:
        return None
    try:
        data = json.loads(j.read_text())
        return Txn(
            root,
            j,
            str(data["op"]),
            str(data["message"]),
            list(data["targets"]),
            dict(data["before"]),
            dict(data["index"]) if data.get("index") is not None else None,
        )
    except (ValueError, KeyError, TypeError):
        raise PreconditionError(
            f"{j}: the journal is unreadable",
            "inspect 'git status', then delete the file by hand",
        ) from None
