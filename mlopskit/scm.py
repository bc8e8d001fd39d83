"""The one gateway to git. Names always follow ``--``; output is parsed with ``-z``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import _proc
from .errors import GitError as GitError  # re-exported: scm.GitError stays importable
from .errors import PreconditionError, RemoteError


def git(
    root: Path,
    *args: str,
    check: bool = True,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> _proc.Result:
    res = _proc.run(["git", *args], cwd=root, input=input, env=env)
    if check and res.returncode != 0:
        msg = res.err.splitlines()[-1] if res.err else f"exit {res.returncode}"
        raise GitError(f"git {args[0]} failed: {msg}")
    return res


def toplevel(path: Path) -> Path | None:
    res = _proc.run(["git", "rev-parse", "--show-toplevel"], cwd=path)
    if res.returncode != 0:
        return None
    return Path(res.out.strip())


def layout(path: Path) -> tuple[Path, str] | None:
    """(the work tree's top, ``path``'s prefix inside it: "" or "sub/dir/"), or None outside git."""
    res = _proc.run(["git", "rev-parse", "--show-toplevel", "--show-prefix"], cwd=path)
    if res.returncode != 0:
        return None
    lines = res.out.split("\n")
    return Path(lines[0]), (lines[1] if len(lines) > 1 else "")


def init(path: Path, branch: str = "main") -> None:
    git(path, "init", "-q", "-b", branch)


def has_commits(root: Path) -> bool:
    return git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).returncode == 0


def head(root: Path) -> str | None:
    res = git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    return res.out.strip() if res.returncode == 0 else None


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    res = git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return res.out.strip() if res.returncode == 0 else None


def resolve(root: Path, rev: str) -> str | None:
    res = git(
        root, "rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}", check=False
    )
    return res.out.strip() if res.returncode == 0 else None


def show(root: Path, rev: str, path: str) -> bytes | None:
    """The bytes of ``path`` (relative to ``root``) at ``rev`` from git objects, or None.

    ``REV:./PATH`` is relative to the working directory, so this also reads a project
    in a sub-folder of its repository (``REV:PATH`` would be relative to the git root).
    """
    res = git(root, "cat-file", "blob", f"{rev}:./{path}", check=False)
    return res.stdout if res.returncode == 0 else None


@dataclass(frozen=True)
class StatusEntry:
    code: str
    path: str


def status(root: Path, paths: Sequence[str] = ()) -> list[StatusEntry]:
    args = ["status", "--porcelain=v1", "-z", "--untracked-files=all"]
    if paths:
        args += ["--", *paths]
    raw = git(root, *args).out
    entries: list[StatusEntry] = []
    parts = raw.split("\0")
    i = 0
    while i < len(parts):
        item = parts[i]
        i += 1
        if not item:
            continue
        code, path = item[:2], item[3:]
        if code[0] in "RC":
            i += 1  # the source path of a rename follows
        entries.append(StatusEntry(code, path))
    return entries


def staged_paths(root: Path) -> list[str]:
    """Every staged path of the repository, relative to its top (as ``status`` prints)."""
    if not has_commits(root):
        res = git(root, "ls-files", "-z", "--cached", "--full-name", "--", ":/").out
        return [p for p in res.split("\0") if p]
    raw = git(root, "diff", "--cached", "--name-only", "-z", "HEAD").out
    return [p for p in raw.split("\0") if p]


def tracked(root: Path, paths: Sequence[str]) -> set[str]:
    """The ``paths`` (relative to ``root``) that git tracks."""
    if not paths:
        return set()
    raw = git(root, "--literal-pathspecs", "ls-files", "-z", "--", *paths).out
    return {p for p in raw.split("\0") if p}


def remotes(root: Path) -> list[str]:
    return [r for r in git(root, "remote").out.split() if r]


def ahead(root: Path, remote: str, branch: str) -> int | None:
    """How many commits HEAD has that ``remote``'s ``branch`` (as last fetched or pushed)
    lacks; None when that remote-tracking branch is unknown."""
    ref = f"refs/remotes/{remote}/{branch}"
    if resolve(root, ref) is None:
        return None
    res = git(root, "rev-list", "--count", f"{ref}..HEAD", check=False)
    return int(res.out.strip()) if res.returncode == 0 and res.out.strip().isdigit() else None


def unpushed(root: Path, remote: str, branch: str) -> list[str]:
    """The commits a push of HEAD to ``remote``'s ``branch`` would send, newest first:
    those its remote-tracking branch lacks; unknown to git, those no ref of ``remote``
    (as last fetched or pushed) has."""
    ref = f"refs/remotes/{remote}/{branch}"
    span = [f"{ref}..HEAD"] if resolve(root, ref) else ["HEAD", "--not", f"--remotes={remote}"]
    res = git(root, "rev-list", *span, check=False)
    return res.out.split() if res.returncode == 0 else []


def dirty_tracked(root: Path, ignore: Iterable[str] = ()) -> list[str]:
    """Tracked files with uncommitted changes (staged or not), minus ``ignore``."""
    skip = set(ignore)
    return [e.path for e in status(root) if e.code != "??" and e.path not in skip]


def check_large_files(root: Path, paths: Iterable[str], max_mb: float) -> None:
    limit = max_mb * 1024 * 1024
    big = []
    for p in paths:
        f = root / p
        if f.is_file() and not f.is_symlink() and f.stat().st_size > limit:
            big.append(f"{p} ({f.stat().st_size / 1024 / 1024:.0f} MB)")
    if big:
        raise PreconditionError(
            f"refusing to commit large files to git: {', '.join(big)}",
            f"version them with 'mlopskit data add', or raise git.max_file_mb "
            f"(now {max_mb:g}) in mlopskit.yaml",
        )


def commit_paths(
    root: Path, paths: Sequence[str], message: str, *, max_file_mb: float
) -> str | None:
    """Commit exactly ``paths`` (as they are in the work tree), nothing else the user staged.

    Returns the new commit, or None when there was nothing to commit.
    """
    paths = sorted(set(paths))
    if not paths:
        return None
    present = [p for p in paths if (root / p).exists() or (root / p).is_symlink()]
    check_large_files(root, present, max_file_mb)
    # `git add -A -- paths` records additions and deletions of exactly these paths.
    git(root, "add", "-A", "--", *paths)
    if not has_commits(root):
        # --only needs a HEAD; the first commit takes what the index holds.
        prefix = (layout(root) or (root, ""))[1]
        others = set(staged_paths(root)) - {prefix + p for p in paths}
        if others:
            raise PreconditionError(
                "other files are staged in a repository with no commit yet: "
                + ", ".join(sorted(others)[:5]),
                "commit or unstage them first",
            )
        res = git(root, "commit", "-q", "--no-verify", "-m", message, check=False)
    else:
        changed = git(root, "diff", "--cached", "--name-only", "-z", "HEAD", "--", *paths).out
        if not changed.strip("\0"):
            return None
        res = git(
            root, "commit", "-q", "--no-verify", "-m", message, "--only", "--", *paths, check=False
        )
    if res.returncode != 0:
        raise GitError(f"git commit failed: {res.err or res.out}".strip())
    return head(root)


def push_remote(root: Path, branch: str) -> str | None:
    """The remote ``git push`` would use for ``branch``, if one is configured."""
    for key in (f"branch.{branch}.pushRemote", "remote.pushDefault", f"branch.{branch}.remote"):
        res = git(root, "config", "--get", key, check=False)
        if res.returncode == 0 and res.out.strip() and res.out.strip() != ".":
            return res.out.strip()
    return None


def remote_url(root: Path, name: str) -> str | None:
    res = git(root, "remote", "get-url", "--", name, check=False)
    return res.out.strip() if res.returncode == 0 else None


def auth_args(root: Path, remote: str) -> list[str]:
    """Credentials for an https remote from MLOPSKIT_GIT_TOKEN or GITHUB_TOKEN, for this one
    command, never written to config and never on a command line (where the process list
    shows it): a credential helper, scoped to the remote's host, that reads the token from
    the environment git inherits."""
    token = os.environ.get("MLOPSKIT_GIT_TOKEN") or os.environ.get("GITHUB_TOKEN")
    url = remote_url(root, remote) or ""
    if not token or not url.startswith("https://"):
        return []
    parts = urlsplit(url)
    # git matches credential.<url> keys port and all: a key without the port applies only
    # to the default one (GitHub's), so a server on another port must be named with it.
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    helper = (
        '!f() { test "$1" = get || return 0; echo username=x-access-token; '
        'echo "password=${MLOPSKIT_GIT_TOKEN:-$GITHUB_TOKEN}"; }; f'
    )
    key = f"credential.https://{host}.helper"
    return ["-c", f"{key}=", "-c", f"{key}={helper}"]


def merge_base(root: Path, a: str, b: str) -> str | None:
    res = git(root, "merge-base", "--end-of-options", a, b, check=False)
    return res.out.strip() if res.returncode == 0 and res.out.strip() else None


def changed_paths(root: Path, a: str, b: str) -> list[str]:
    """The paths (relative to the git top) that differ between commits ``a`` and ``b``."""
    raw = git(root, "diff", "--no-renames", "--name-only", "-z", a, b, "--").out
    return [p for p in raw.split("\0") if p]


_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "[remote rejected]")
# git's words for a login the server refused, or one it could not even offer.
_AUTH_FAILED = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "The requested URL returned error: 401",
    "The requested URL returned error: 403",
    "Permission denied (publickey",
)


def checkpoint(step: str) -> None:
    """Test-only fault point (see journal.checkpoint); imported here to avoid a cycle."""
    from . import journal

    journal.checkpoint(step)


def push_rebasing(
    root: Path,
    remote: str,
    branch: str,
    *,
    retries: int = 3,
    before_rebase: Callable[[str, str], None] | None = None,
    after_rebase: Callable[[], None] | None = None,
) -> None:
    """Push HEAD to ``remote``'s ``branch``; never with --force.

    A non-fast-forward (the branch moved meanwhile) is fetched, rebased on and retried,
    at most ``retries`` times; a rebase conflict (both sides changed dvc.lock) aborts the
    rebase. Network errors are retried with backoff. Then exit 4, the local commit kept.

    ``before_rebase(head, fetched)`` may refuse (raise) before anything moves;
    ``after_rebase()`` checks the rebased HEAD, and when it raises the branch is put back
    where it was (``reset --keep``) and nothing is pushed.
    """
    kept = "the local commit is kept"

    def rebase(text: str) -> None:
        auth = auth_args(root, remote)
        fetched = git(root, *auth, "fetch", "--quiet", "--", remote, branch, check=False)
        if fetched.returncode != 0:
            return
        checkpoint("git:fetched")
        upstream = git(root, "rev-parse", "FETCH_HEAD").out.strip()
        before = head(root) or "HEAD"
        if before_rebase is not None:
            before_rebase(before, upstream)
        rebased = git(root, "rebase", "--quiet", upstream, check=False)
        if rebased.returncode != 0:
            git(root, "rebase", "--abort", check=False)
            raise RemoteError(
                f"'{remote}/{branch}' moved and its changes conflict with this commit "
                "(both changed the pipeline state); the local commit is kept",
                f"rerun on the new '{branch}'",
            )
        if after_rebase is not None:
            try:
                after_rebase()
            except BaseException:
                git(root, "reset", "--quiet", "--keep", before, check=False)
                raise
        checkpoint("git:rebased")

    push(
        root,
        remote,
        f"HEAD:refs/heads/{branch}",
        retries=retries,
        kept=kept,
        missing_hint=f"add it with 'git remote add {remote} URL' and run 'git push'",
        hint="pull or rebase, then 'git push'",
        refused_hint="push to a branch and open a pull request (ci.ct_mode: pull-request)",
        on_rejected=rebase,
    )


def push(
    root: Path,
    remote: str,
    refspec: str,
    *,
    retries: int = 3,
    kept: str,
    hint: str,
    missing_hint: str | None = None,
    refused_hint: str | None = None,
    on_rejected: Callable[[str], None] | None = None,
) -> str | None:
    """The one ``git push`` (never forced): ``refspec`` to ``remote``.

    Over https it authenticates with MLOPSKIT_GIT_TOKEN or GITHUB_TOKEN (:func:`auth_args`).
    A remote that is not configured, a refusal (protected branch, a hook) and a failure
    that outlasts ``retries`` retries with backoff are exit 4, saying ``kept`` (what stays
    local). When the remote rejects the update (non-fast-forward, a tag that exists):
    with ``on_rejected`` it is called with git's output (it may raise, or prepare the next
    attempt, e.g. by rebasing) and the push is tried again; without, the output is
    returned for the caller to judge. None: pushed.
    """
    if remote_url(root, remote) is None:
        raise RemoteError(
            f"git remote '{remote}' is not configured; {kept}",
            missing_hint or f"add it with 'git remote add {remote} URL'",
        )
    auth = auth_args(root, remote)
    delay = 1.0
    for attempt in range(retries + 1):
        res = git(root, *auth, "push", "--porcelain", "--", remote, refspec, check=False)
        if res.returncode == 0:
            return None
        text = res.out + res.err
        detail = [line for line in (res.err or res.out).strip().splitlines() if line.strip()]
        last = detail[-1] if detail else f"exit {res.returncode}"
        if on_rejected is None and ("[rejected]" in text or "already exists" in text):
            # A ref the remote has another value for (a tag someone else pushed first:
            # git says "[rejected]", or "[remote rejected] ... already exists" when two
            # pushes race): the caller judges it, before the refusal below.
            return text
        if any(word in text for word in _AUTH_FAILED):
            # Not transient: retrying a refused login only delays the exit.
            raise RemoteError(
                f"git push to '{remote}' was refused: {last}; {kept}",
                "give the push a token that may write to it: MLOPSKIT_GIT_TOKEN (or "
                "GITHUB_TOKEN) for an https remote, an SSH key for an ssh one",
            )
        if "protected branch" in text.lower() or "[remote rejected]" in text:
            raise RemoteError(
                f"git push to '{remote}' was refused: {last}; {kept}", refused_hint or hint
            )
        rejected = any(word in text for word in _REJECTED)
        if attempt == retries:
            raise RemoteError(
                f"git push to '{remote}' failed after {retries + 1} attempts: {last}; {kept}",
                hint,
            )
        if rejected and on_rejected is not None:
            on_rejected(text)
            continue
        time.sleep(delay)
        delay *= 2
    return None  # pragma: no cover - the loop returns or raises


def default_remote(root: Path) -> str:
    """The git remote pushes and fetches use when none is named: the current branch's push
    remote (as ``git push`` picks it), else ``origin``."""
    branch = current_branch(root)
    return (push_remote(root, branch) if branch else None) or "origin"
