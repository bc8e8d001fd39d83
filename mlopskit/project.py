"""A Project is the root of a git + DVC repository and its mlopskit settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from . import config as _config
from . import scm, yamlio
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

    @property
    def tmp_dir(self) -> Path:
        """mlopskit's private state, inside DVC's git-ignored ``.dvc/tmp``."""
        return self.root / ".dvc" / "tmp" / "mlopskit"

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the root, as a POSIX string; outside the root is an error."""
        p = Path(path)
        if not p.is_absolute():
            p = (self.cwd or self.root) / p
        real = Path(os.path.realpath(p))
        try:
            return real.relative_to(self.root).as_posix()
        except ValueError:
            raise UsageError(
                f"{path}: outside the project root {self.root}",
                "only paths inside the repository can be versioned",
            ) from None

    def require_branch(self, what: str) -> str:
        branch = scm.current_branch(self.root)
        if branch is None:
            raise PreconditionError(
                f"HEAD is detached; {what} needs a branch",
                "checkout a branch ('git switch -c NAME') and run again",
            )
        return branch
