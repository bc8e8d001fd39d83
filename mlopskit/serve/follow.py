"""``serve NAME#STAGE --follow``: fetch the registry's tags every ``serve.follow_seconds``;
when the stage names another version, fetch and verify it (md5 against dvc.lock, trusted
types, contract) and swap it in as one reference, so that requests in flight finish on
the model they started with. A version that fails verification is refused: the old model
keeps serving, and the failure is logged and counted (``mlopskit_serve_follow_failures``).

Tags come from the remote ``git push`` would use for the current branch (else ``origin``),
with the token of ``MLOPSKIT_GIT_TOKEN``/``GITHUB_TOKEN`` for an https remote, as ``exp
fetch`` does. With ``--workers N`` every worker follows, but only one fetches: the one
holding an flock on ``.git/mlopskit-follow.lock`` (the kernel frees it when that worker
dies; another takes it on its next round). The others read the tags it fetched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .. import scm
from ..errors import IntegrityError, MlopskitError

if TYPE_CHECKING:
    from .app import Settings, State

log = logging.getLogger("uvicorn.error")


class Follower(threading.Thread):
    def __init__(self, settings: Settings, state: State, stop: threading.Event) -> None:
        super().__init__(name="mlopskit-follow", daemon=True)
        self.settings = settings
        self.state = state
        self.stop = stop
        self.refused: set[str] = set()  # versions refused once: logged and counted once
        self._lock_fd: int | None = None  # held: this process fetches for every worker

    def fetcher(self, root: Path) -> bool:
        """Whether this process fetches the tags (holds the follow lock), taking the lock
        when it is free."""
        if self._lock_fd is not None:
            return True
        git_dir = scm.git(root, "rev-parse", "--git-common-dir", check=False).out.strip()
        if not git_dir:
            return True
        path = (root / git_dir) / "mlopskit-follow.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        log.info("follow: this worker (pid %d) fetches the tags for all workers", os.getpid())
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def run(self) -> None:
        from ..project import Project

        project = Project(root=Path(self.settings.root))
        every = project.config.serve.follow_seconds
        try:
            while not self.stop.wait(every):
                try:
                    self.check(project)
                except Exception:  # the follower must outlive anything one check raises
                    log.exception("follow: check failed")
                    self.state.follow_failures.inc()
        finally:
            self.release()

    def check(self, project: object) -> str | None:
        """One round: fetch tags, resolve, swap if the stage moved. The new version, or None."""
        from ..project import Project
        from .app import Live
        from .inputs import Contract
        from .loader import load_target, target

        assert isinstance(project, Project)
        root = project.root
        remote = scm.default_remote(root)
        if scm.remote_url(root, remote) is not None and self.fetcher(root):
            auth = scm.auth_args(root, remote)
            res = scm.git(root, *auth, "fetch", "--quiet", "--tags", "--", remote, check=False)
            if res.returncode != 0:
                log.warning("follow: git fetch --tags %s failed: %s", remote, res.err.strip()[:200])
                self.state.follow_failures.inc()
                return None
        current = self.state.live.served.target
        try:
            tgt = target(project, self.settings.spec)
        except IntegrityError as exc:  # an unsigned or wrongly signed stage assignment
            if str(exc) not in self.refused:
                self.refused.add(str(exc))
                self.state.follow_failures.inc()
                log.error("follow: refused: %s; still serving %s", exc, current.version)
            return None
        except MlopskitError as exc:
            log.warning("follow: %s; keeping %s %s", exc, current.artifact, current.version)
            return None
        if (tgt.version, tgt.commit) == (current.version, current.commit):
            return None
        key = f"{tgt.version}@{tgt.commit}"
        try:
            served = load_target(project, tgt, remote=self.settings.remote)
        except MlopskitError as exc:
            if key not in self.refused:
                self.refused.add(key)
                self.state.follow_failures.inc()
                log.error(
                    "follow: refused %s %s: %s; still serving %s",
                    tgt.artifact,
                    tgt.version,
                    exc,
                    current.version,
                )
            return None
        cfg = project.config.serve
        self.state.swap(
            Live(served, Contract(served.columns, served.allow_extra_columns, cfg.max_rows))
        )
        log.info(
            "follow: %s %s -> %s (md5 %s verified)",
            tgt.artifact,
            current.version,
            tgt.version,
            served.md5,
        )
        return tgt.version
