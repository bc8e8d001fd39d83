"""A Project is the root of a git + DVC repository and its mlopskit settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from . import config as _config
from . import paths, scm, yamlio
from .errors import PreconditionError, UsageError


@dataclass(frozen=True)
class Project:
    root: Path
    # The directory the user ran from, when it differs from root (submodule, sub-folder).
    cwd: Path | None = field(default=None, compare=False)

    @classmethod
    def find(cls, start: Path | str | None = None) -> Project:
        """The DVC project that contains ``start`` (default: the current directory).

        Walks up to the nearest folder holding ``.dvc/`` without leaving the git work
        tree, as DVC does; the result is the root every command then acts on.
        """
        here = Path(start or os.getcwd()).resolve()
        if not here.exists():
            raise UsageError(f"{here}: no such directory")
        top = scm.toplevel(here)
        if top is None:
            raise UsageError(f"{here}: not a git repository", "run 'mlopskit init'")
        top = top.resolve()
        cur = here
        while True:
            if (cur / ".dvc").is_dir():
                # A malformed mlopskit.yaml fails every command (file:line), not only
                # the ones that happen to read a setting.
                yamlio.check(cur / _config.FILENAME, display=_config.FILENAME)
                return cls(root=cur, cwd=here if here != cur else None)
            if cur == top or cur.parent == cur:
                break
            cur = cur.parent
        raise UsageError(f"{top}: not a DVC project (no .dvc/ folder)", "run 'mlopskit init'")

    @cached_property
    def config(self) -> _config.Config:
        return _config.load(self.root)

    @cached_property
    def _layout(self) -> tuple[Path, str]:
        found = scm.layout(self.root)
        return (found[0], found[1]) if found is not None else (self.root, "")

    @property
    def git_root(self) -> Path:
        """The top of the git work tree holding the project (the root itself, unless the
        project is a sub-folder of a bigger repository: ``init --subdir``)."""
        return self._layout[0]

    @property
    def git_prefix(self) -> str:
        """The project's folder inside its repository, "" or "sub/dir/". git prints paths
        relative to the top (``git status``, ``git diff --name-only``): compare them with
        project paths through :meth:`git_path` and :meth:`project_path`."""
        return self._layout[1]

    def git_path(self, rel: str) -> str:
        """A project-relative path as git prints it (relative to the git root)."""
        return self.git_prefix + rel

    def project_path(self, git_path: str) -> str | None:
        """A path git printed, relative to the project root; None when outside the project."""
        prefix = self.git_prefix
        if not prefix:
            return git_path
        return git_path[len(prefix) :] if git_path.startswith(prefix) else None

    def status(self) -> list[scm.StatusEntry]:
        """``git status`` of the files inside the project, with project-relative paths."""
        entries = scm.status(self.root, ["."] if self.git_prefix else ())
        out = []
        for e in entries:
            rel = self.project_path(e.path)
            if rel is not None:
                out.append(scm.StatusEntry(e.code, rel))
        return out

    @property
    def tmp_dir(self) -> Path:
        """mlopskit's private state, inside DVC's git-ignored ``.dvc/tmp``."""
        return self.root / ".dvc" / "tmp" / "mlopskit"

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the root, as a POSIX string; outside the root is an error."""
        p = Path(path)
        if not p.is_absolute():
            p = (self.cwd or self.root) / p
        rel = paths.within(self.root, p)
        if rel is None:
            raise UsageError(
                f"{path}: outside the project root {self.root}",
                "only paths inside the repository can be versioned",
            )
        return rel

    def require_branch(self, what: str) -> str:
        branch = scm.current_branch(self.root)
        if branch is None:
            raise PreconditionError(
                f"HEAD is detached; {what} needs a branch",
                "checkout a branch ('git switch -c NAME') and run again",
            )
        return branch
