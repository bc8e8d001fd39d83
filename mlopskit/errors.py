"""One exception family; each class carries its exit code (see README, "Exit codes")."""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
PRECONDITION = 3
REMOTE = 4
INTEGRITY = 5
INTERNAL = 70  # an internal bug (EX_SOFTWARE in sysexits.h): "please report", with a crash log
INTERRUPTED = 130


class MlopskitError(Exception):
    """An error mlopskit explains in one line: what is wrong, and what to do."""

    exit_code = FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class OperationFailed(MlopskitError):
    """The operation ran and failed: a stage failed, a gate failed, data is missing."""

    exit_code = FAILED


class UsageError(MlopskitError):
    """Bad usage or bad input: a malformed file, an unknown key, a path outside the repo."""

    exit_code = USAGE


class PreconditionError(MlopskitError):
    """Refused before doing anything: dirty tree, detached HEAD, lock held, file conflict."""

    exit_code = PRECONDITION


class RemoteError(MlopskitError):
    """A DVC remote or a Git remote could not be reached or refused us."""

    exit_code = REMOTE


class IntegrityError(MlopskitError):
    """A hash did not match, or a model file holds types we do not trust."""

    exit_code = INTEGRITY


class GitError(MlopskitError):
    """A git command failed in a way mlopskit did not foresee (its last stderr line)."""

    exit_code = FAILED
