"""The one gateway to DVC.

DVC is used in-process through its Python API: it saves a second interpreter start
on every call (see benchmarks/). DVC's exceptions are turned into mlopskit errors
here, and only here.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _proc, journal, yamlio
from .errors import (
    MlopskitError,
    OperationFailed,
    PreconditionError,
    RemoteError,
    UsageError,
)

if TYPE_CHECKING:
    from dvc.repo import Repo

_MD5 = re.compile(r"\b[0-9a-f]{32}\b")


def setup_logging() -> None:
    """DVC sets up its own console logging when it is imported, as its CLI does."""
    import dvc  # noqa: F401


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pretty(exc: BaseException) -> str:
    """DVC's YAML errors keep file:line in their cause chain; flatten to one line."""
    parts = [str(exc).strip()]
    cause = exc.__cause__
    while cause is not None:
        text = str(cause).strip()
        if text and text not in parts:
            parts.append(text)
        cause = cause.__cause__
    return " ".join(" ".join(p.split()) for p in parts if p)


def _file_error(exc: BaseException) -> UsageError | None:
    """DVC's "unable to read: 'params.yaml', YAML file structure is corrupted" (and its
    schema errors) as one line ``FILE:LINE: message``: the file is parsed again strictly,
    which names the line DVC's message buries in a multi-line cause."""
    from dvc.utils.serialize import ParseError
    from dvc.utils.strictyaml import YAMLValidationError

    if isinstance(exc, YAMLValidationError):
        return _validation_error(exc)
    if not isinstance(exc, ParseError):
        return None
    path = os.path.normpath(str(exc.path))
    rev = getattr(exc, "rev", None)
    display = f"{path}@{rev[:8]}" if rev else path
    text = getattr(exc, "yaml_text", None)
    try:
        if isinstance(text, str):
            yamlio.loads(text, display=display)
        elif rev is None and path.endswith((".yaml", ".yml", ".lock")):
            yamlio.load(Path(path), display=display)
    except UsageError as err:
        return err
    detail = _pretty(exc)
    prefix = f"unable to read: '{path}', "
    detail = detail.removeprefix(prefix)
    return UsageError(f"{display}: {detail}")


def _key_line(data: object, keys: list[object]) -> int | None:
    """The 1-based line of the last key of ``keys`` in a round-trip-parsed document."""
    if not keys:
        return None
    *parents, last = keys
    node: Any = data
    for k in parents:
        node = node[k]
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    pos = lc.item(last) if isinstance(last, int) else lc.key(last)
    return int(pos[0]) + 1


def _validation_error(exc: BaseException) -> UsageError:
    """A dvc.yaml / dvc.lock that parses but breaks DVC's schema: first error, its line."""
    from dvc.utils.strictyaml import determine_linecol

    path = os.path.normpath(str(getattr(exc, "path", "") or "dvc.yaml"))
    errors = list(getattr(getattr(exc, "exc", None), "errors", []) or [])
    if not errors:
        return UsageError(_pretty(exc))
    first = errors[0]
    message = " ".join(str(first.error_message).split())
    if first.path:
        message += " in " + " -> ".join(str(p) for p in first.path)
    line = None
    try:
        data = yamlio.loads(str(getattr(exc, "text", "") or ""), display=path)
        line = _key_line(data, list(first.path))
        if line is None:
            line, _col, _step = determine_linecol(data, first.path)
    except (UsageError, AttributeError, KeyError, IndexError, TypeError, ValueError):
        pass
    rev = getattr(exc, "rev", None)
    if rev:
        path = f"{path}@{rev[:8]}"
    where = f"{path}:{line}" if line else path
    more = f"and {len(errors) - 1} more error(s)" if len(errors) > 1 else None
    return UsageError(f"{where}: {message}", more)


def translate(  # noqa: PLR0911
    exc: BaseException, logged: Sequence[BaseException] = ()
) -> MlopskitError | None:
    """The mlopskit error for a DVC exception, or None when it is not DVC's.

    ``logged`` are the exceptions DVC logged and carried on from during the call (a file
    that failed to transfer): the disk errors among them explain the one it raised.
    """
    from dvc.config import ConfigError, NoRemoteError
    from dvc.dependency.param import (
        BadParamFileError,
        MissingParamsError,
        ParamsIsADirectoryError,
    )
    from dvc.exceptions import (
        CheckoutError,
        CyclicGraphError,
        DvcException,
        FileTransferError,
        InvalidArgumentError,
        NotDvcRepoError,
        OutputDuplicationError,
        OverlappingOutputPathsError,
        ReproductionError,
    )
    from dvc.output import (
        OutputAlreadyTrackedError,
        OutputDoesNotExistError,
        OutputIsIgnoredError,
        OutputIsStageFileError,
    )
    from dvc.stage.exceptions import (
        DuplicateStageName,
        InvalidStageName,
        StageExternalOutputsError,
        StageFileAlreadyExistsError,
        StagePathOutsideError,
    )
    from dvc.utils.strictyaml import YAMLSyntaxError, YAMLValidationError

    disk_err = _disk_error(exc, logged)
    if disk_err is not None:
        return disk_err
    missing_plugin = _missing_plugin(exc)
    if missing_plugin is not None:
        return missing_plugin
    if isinstance(exc, NoRemoteError):
        from .remote import no_remote_error

        return no_remote_error()
    if isinstance(exc, NotDvcRepoError):
        return UsageError(_first_line(exc), "run 'mlopskit init'")
    yaml_err = _file_error(exc)
    if yaml_err is not None:
        return yaml_err
    if isinstance(exc, YAMLSyntaxError | YAMLValidationError):
        return UsageError(_pretty(exc))
    if isinstance(exc, MissingParamsError | BadParamFileError | ParamsIsADirectoryError):
        return UsageError(_pretty(exc))
    if isinstance(
        exc,
        ConfigError
        | InvalidArgumentError
        | OutputDuplicationError
        | OverlappingOutputPathsError
        | CyclicGraphError
        | DuplicateStageName
        | InvalidStageName
        | StageExternalOutputsError
        | StagePathOutsideError
        | OutputAlreadyTrackedError
        | OutputDoesNotExistError
        | OutputIsIgnoredError
        | OutputIsStageFileError,
    ):
        return UsageError(_pretty(exc))
    if isinstance(exc, StageFileAlreadyExistsError):
        return PreconditionError(_pretty(exc), "use --force to overwrite it")
    unreachable = endpoint_unreachable(exc, logged)
    if unreachable is not None:
        return RemoteError(str(unreachable), ENDPOINT_FIX)
    if isinstance(exc, FileTransferError):
        return RemoteError(_pretty(exc), "check the remote and its credentials, then retry")
    if isinstance(exc, ReproductionError):
        cause = exc.__cause__
        detail = f": {_first_line(cause)}" if cause is not None else ""
        return OperationFailed(f"{_first_line(exc)}{detail}")
    if isinstance(exc, CheckoutError):
        return OperationFailed(_pretty(exc), "run 'mlopskit data status' to see what is missing")
    if isinstance(exc, DvcException):
        return OperationFailed(_pretty(exc))
    if is_connection_error(exc):  # e.g. botocore's EndpointConnectionError, raised bare
        return RemoteError(remote_error_text(exc), "check the remote and the network, then retry")
    missing = missing_credentials(exc)
    if missing:
        return RemoteError(f"the DVC remote refused: {_first_line(exc)}", missing)
    return None


# The DVC plugin each remote scheme needs, and the mlopskit extra that brings it.
_EXTRAS = {"s3": "s3", "azure": "azure", "gs": "gs"}
_PLUGIN_ERR = re.compile(r"^(\w+) is supported, but requires '[\w-]+' to be installed")


def _missing_plugin(exc: BaseException) -> MlopskitError | None:
    """A remote whose DVC plugin is not installed (``dvc-s3`` for ``s3://``): what to
    install, not "a bug in mlopskit"."""
    from dvc.fs import RemoteMissingDepsError

    seen: BaseException | None = exc
    scheme = url = ""
    while seen is not None:
        if isinstance(seen, RemoteMissingDepsError):
            scheme, url = seen.protocol, seen.url
            break
        # dvc_objects.fs.Registry (checked with dvc-objects 5.1) raises a bare ImportError
        # "gs is supported, but requires 'dvc-gs' to be installed" when the class is missing.
        found = _PLUGIN_ERR.match(str(seen)) if isinstance(seen, ImportError) else None
        if found:
            scheme = found.group(1)
            break
        seen = seen.__cause__ or seen.__context__
    if not scheme:
        return None
    extra = _EXTRAS.get(scheme)
    fix = (
        f"pip install \"mlopskit[{extra}]\" (in CI: run 'mlopskit ci generate', which "
        f"installs it on the runners)"
        if extra
        else f"pip install dvc-{scheme}"
    )
    remote = f"the DVC remote {url!r}" if url else f"a DVC remote on {scheme}://"
    return PreconditionError(
        f"{remote} needs DVC's {scheme} plugin, which is not installed",
        fix,
    )


# Credential errors the object-storage SDKs raise bare through DVC, by class name (their
# packages are optional extras): what to set for each.
_CREDENTIAL_ERRORS = {
    "NoCredentialsError": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in CI: the "
    "environment's secrets), or 'mlopskit remote add ... --credential' for this machine",
    "PartialCredentialsError": "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "ClientAuthenticationError": "set AZURE_STORAGE_CONNECTION_STRING (or the remote's "
    "credentials with 'mlopskit remote add ... --credential')",
    "DefaultCredentialsError": "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file",
}


def missing_credentials(exc: BaseException) -> str | None:
    """The fix when ``exc`` (or its cause) is an SDK's "no credentials" error."""
    seen: BaseException | None = exc
    while seen is not None:
        for cls in type(seen).__mro__:
            if cls.__name__ in _CREDENTIAL_ERRORS:
                return _CREDENTIAL_ERRORS[cls.__name__]
        seen = seen.__cause__ or seen.__context__
    return None


class _Failures(logging.Handler):
    """The exceptions DVC logs as errors and then carries on from ("failed to transfer")."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.excs: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and exc not in self.excs:
            self.excs.append(exc)


@contextmanager
def translated() -> Iterator[None]:
    failures = _Failures()
    logs = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    for log in logs:
        log.addHandler(failures)
    try:
        yield
    except MlopskitError:
        raise
    except Exception as exc:
        err = translate(exc, failures.excs)
        if err is None:
            raise
        _chain_logged(exc, failures.excs)
        raise err from (endpoint_unreachable(exc, failures.excs) or exc)
    else:
        refused = _refused_write(failures.excs)
        if refused is not None:
            raise refused[0] from refused[1]
    finally:
        for log in logs:
            log.removeHandler(failures)


def _refused_write(logged: Sequence[BaseException]) -> tuple[MlopskitError, BaseException] | None:
    """A write a disk refused that DVC only logged and went on from: its ``add`` then
    writes a pointer to an object that never reached the cache (a full disk), so the
    call must fail all the same. The error is raised from the logged one, whose frames
    name the half-written file for the cleanup."""
    for exc in logged:
        if _disk_errors(exc, ()):
            err = _disk_error(exc, [e for e in logged if e is not exc])
            if err is not None:
                return err, exc
    return None


def _chain_logged(exc: BaseException, logged: Sequence[BaseException]) -> None:
    """Hang the exception DVC logged and swallowed (a copy that failed half-way) under the
    one it raised later, so that the cleanup that walks the chain (``data._drop_dvc_tmp``)
    finds the half-written file in its frames, and --traceback shows the real cause."""
    if not logged:
        return
    last: BaseException = exc
    seen = {id(exc)}
    while last.__context__ is not None and id(last.__context__) not in seen:
        last = last.__context__
        seen.add(id(last))
    for extra in logged:
        if id(extra) not in seen:
            last.__context__ = extra
            seen.add(id(extra))
            last = extra


# Errors a disk gives when it refuses a write: read-only, no permission, full, quota.
_WRITE_ERRNOS = frozenset(
    {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _disk_errors(exc: BaseException, logged: Sequence[BaseException]) -> list[OSError]:
    """The refused writes among ``exc``, what it was raised from, and what DVC logged.
    Not ``__context__``: an error DVC handled (a link type it tried) explains nothing."""
    found: list[OSError] = []
    seen: set[int] = set()
    for start in (exc, *logged):
        cur: BaseException | None = start
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            if isinstance(cur, OSError) and cur.errno in _WRITE_ERRNOS:
                found.append(cur)
            cur = cur.__cause__
    return found


def _frames(exc: BaseException) -> Iterator[tuple[str, dict[str, Any]]]:
    """(module file, locals) of the frames ``exc`` passed through, innermost first."""
    import traceback

    frames = [(f.f_code.co_filename, f.f_locals) for f, _ in traceback.walk_tb(exc.__traceback__)]
    yield from reversed(frames)


def _candidates(err: OSError) -> list[str]:
    """The paths the failed write may have been aimed at: the error's own names (for a
    copy, the destination first), then absolute paths in the innermost frames' locals
    (DVC writes its link test file with ``open()`` and the error names no file)."""
    names = [n for n in (err.filename2, err.filename) if isinstance(n, str | os.PathLike)]
    found = [os.fspath(n) for n in names]
    for _file, local_vars in list(_frames(err))[:3]:
        found += [v for v in local_vars.values() if isinstance(v, str) and Path(v).is_absolute()]
    return list(dict.fromkeys(str(f) for f in found))


def _existing(path: str) -> Path | None:
    p = Path(path)
    for candidate in (p, *p.parents):
        if candidate.exists():
            return candidate
    return None


def _free(path: str) -> int | None:
    where = _existing(path)
    if where is None:
        return None
    try:
        st = os.statvfs(where)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _read_only(path: str) -> bool:
    where = _existing(path)
    try:
        return where is not None and bool(os.statvfs(where).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _failing_path(err: OSError) -> str | None:
    """The path whose disk refused the write: for a full disk the candidate with the least
    free space, for a read-only one the candidate on a read-only file system."""
    candidates = _candidates(err)
    if not candidates:
        return None
    if err.errno in _FULL:
        free = [(f, c) for c in candidates if (f := _free(c)) is not None]
        return min(free, key=lambda fc: fc[0])[1] if free else candidates[0]
    if err.errno == errno.EROFS:
        return next((c for c in candidates if _read_only(c)), candidates[0])
    return candidates[0]


def _shown(path: str) -> str:
    """A path as the user knows it: relative to the project (the working directory while
    DVC runs), cut to the DVC cache or remote it is in, never a temporary file's name."""
    p = Path(path)
    if p.name.endswith(".tmp"):
        p = p.parent
    text = p.as_posix()
    head, sep, _ = f"{text}/".partition("/files/md5/")  # DVC 3's layout: cache/files/md5/ab/cdef
    if sep and head:
        text = head
    try:
        rel = Path(text).relative_to(Path.cwd())
    except ValueError:
        return redact(text)
    return rel.as_posix() if rel.parts else "."


def _push_remote(
    exc: BaseException, logged: Sequence[BaseException]
) -> tuple[bool, str | None, str | None]:
    """Whether the failure happened inside DVC's push (where every write goes to the
    remote), and the remote's name and URL."""
    for err in (exc, *logged):
        for file, local_vars in _frames(err):
            if not Path(file).as_posix().endswith("/dvc/repo/push.py"):
                continue
            name, url = local_vars.get("remote"), None
            repo: Any = local_vars.get("self")  # push(self, ...) is bound to Repo
            try:
                name = name or repo.config["core"].get("remote")
                url = repo.config["remote"][name]["url"]
            except Exception:  # noqa: BLE001 - name and URL only decorate the message
                pass
            return True, str(name) if name else None, redact(str(url)) if url else None
    return False, None, None


def _disk_error(exc: BaseException, logged: Sequence[BaseException]) -> MlopskitError | None:
    """A write a disk refused (read-only, no permission, full) as one line naming where:
    during a push that is the remote's disk (exit 4), anywhere else a local one (exit 1).

    An existing file DVC could not open for lack of permission is left alone: that is a
    read (an SSH key file), which the caller explains."""
    errs = _disk_errors(exc, logged)
    if not errs:
        return None
    err = next((e for e in errs if e.errno in _FULL or e.errno == errno.EROFS), errs[0])
    path = _failing_path(err)
    if err.errno in (errno.EACCES, errno.EPERM) and path is not None and Path(path).is_file():
        return None
    where = _shown(path) if path else None
    reason = err.strerror or os.strerror(err.errno or 0)
    full = err.errno in _FULL
    pushing, name, url = _push_remote(exc, logged)
    if pushing:
        label = f"DVC remote '{name}'" if name else "the DVC remote"
        at = f" ({url or where})" if url or where else ""
        if full:
            return RemoteError(
                f"{label}{at} is full: {reason.lower()}",
                "free space on the remote or push to another one with -r NAME, then retry; "
                "nothing local was changed",
            )
        return RemoteError(
            f"{label}{at} refused the upload: {reason.lower()}",
            "make the remote writable or push to another one with -r NAME, then retry; "
            "nothing local was changed",
        )
    if full:
        in_cache = bool(where) and ".dvc/cache" in f"/{where}/"
        return OperationFailed(
            f"{where or 'a file'}: {reason.lower()}",
            "free space on that disk"
            + (" or move the DVC cache to a bigger one ('dvc cache dir PATH')" if in_cache else "")
            + ", then retry",
        )
    return OperationFailed(
        f"{where or 'a file'}: {reason.lower()}",
        "check its permissions and that its disk is not mounted read-only, then retry",
    )


@contextmanager
def quiet_info() -> Iterator[None]:
    """Hide DVC's "now run git add ..." advice: mlopskit does the git side itself."""
    setup_logging()
    log = logging.getLogger("dvc")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def quiet() -> Iterator[None]:
    """No DVC chatter on the terminal while a command tells its own story (quickstart):
    info logs ("didn't change, skipping", "Running stage", "Updating lock file"),
    progress bars and spinners ("Checking graph"). Warnings and errors still show;
    what the stages' own commands print is theirs and shows too."""
    setup_logging()
    from dvc.ui import ui

    log, bars = logging.getLogger("dvc"), logging.getLogger("dvc.progress")
    levels = (log.level, bars.level)
    log.setLevel(max(log.level, logging.WARNING))
    bars.setLevel(logging.CRITICAL)  # DVC's Tqdm hides itself above its level (ERROR)
    console = ui.error_console
    # ui._enabled is DVC's private switch for ui.write (checked against DVC 3.67.1;
    # tests/core/test_dvc_private.py fails when it moves).
    was_quiet, was_enabled = console.quiet, ui._enabled
    console.quiet, ui._enabled = True, False
    try:
        yield
    finally:
        console.quiet, ui._enabled = was_quiet, was_enabled
        log.setLevel(levels[0])
        bars.setLevel(levels[1])


@contextmanager
def open_repo(root: Path) -> Iterator[Repo]:
    """A DVC repo handle. DVC resolves targets against the working directory, so the
    call runs from the project root (as the ``dvc`` CLI does after finding it)."""
    # Translated inside the chdir: DVC names files relative to the working directory,
    # and a malformed one is parsed again (for its line) by that name.
    with chdir(root), translated():
        from dvc.repo import Repo

        _check_stage_dirs(root)
        _install_stage_runner()
        _install_endpoint_probes()
        repo = Repo(str(root))
        repo.scm_context.quiet = True
        try:
            yield repo
        finally:
            repo.close()


def _check_stage_dirs(root: Path) -> None:
    """A stage whose wdir leaves the project is exit 2 for every command, before DVC
    loads it (DVC runs it out there, or fails with an AssertionError on its outputs)."""
    from . import dvcfiles

    dvcfiles.check_workspace_wdirs(root)


def _install_stage_runner() -> None:
    """Stage commands run through :func:`mlopskit._proc.run_stage` (their own process
    group, stopped and waited for on SIGINT/SIGTERM) instead of DVC's ``_run``, which
    ignores SIGINT while the command runs and leaves it running on SIGTERM.

    ``dvc.stage.run._run(executable, cmd, **kwargs)`` and ``_make_cmd(executable, cmd)``
    are DVC's private names (checked against DVC 3.67.1; tests/core/test_dvc_private.py
    fails when they change)."""
    import dvc.stage.run as dvc_run

    if getattr(dvc_run._run, "_mlopskit", False):
        return

    def _run(executable: str | None, cmd: str, **kwargs: Any) -> None:
        from dvc.stage.exceptions import StageCmdFailedError

        code = _proc.run_stage(dvc_run._make_cmd(executable, cmd), **kwargs)
        if code != 0:
            raise StageCmdFailedError(cmd, code)

    _run._mlopskit = True  # type: ignore[attr-defined]
    dvc_run._run = _run


# --------------------------------------------------------------------------- endpoints

# A stopped storage endpoint (Azurite, a local S3 server, a mistyped account) is tried this
# many times, with this connect timeout and a doubling pause from the first value, before
# it is given up.
ENDPOINT_PROBES = 3
ENDPOINT_CONNECT_TIMEOUT = 5.0
ENDPOINT_PROBE_PAUSE = 0.5
ENDPOINT_FIX = (
    "start the storage server, or check the remote's URL and endpoint ('mlopskit remote "
    "list'), its credentials and the network, then retry; nothing local was changed"
)


class EndpointUnreachable(ConnectionError):
    """Nothing answers at an object-storage remote's endpoint."""


def _azure_endpoint(fs: Any, client: Any) -> str | None:
    return str(client.service_client.url)


def _s3_endpoint(fs: Any, client: Any) -> str | None:
    # Only an explicit ``endpointurl`` (MinIO, a local server): AWS's own endpoints are
    # resolved by botocore per region and left to its retries.
    url = fs.fs_args.get("client_kwargs", {}).get("endpoint_url")
    return str(url) if url else None


def _http_endpoint(fs: Any, client: Any) -> str | None:
    # The remote's own URL (HTTP(S) and WebDAV remotes): aiohttp gives up on an
    # unresolvable host with "does not exist", which DVC reports as missing files.
    url = fs.__dict__.get("_mlopskit_endpoint")
    return str(url) if url else None


# The DVC file systems whose first use is checked: module, class, label, endpoint.
_PROBED = (
    ("dvc_azure", "AzureFileSystem", "Azure", _azure_endpoint),
    ("dvc_s3", "S3FileSystem", "S3", _s3_endpoint),
    ("dvc_http", "HTTPFileSystem", "HTTP", _http_endpoint),
)


def _install_endpoint_probes() -> None:
    """Before DVC's first request to an Azure remote, an S3 remote with an explicit
    ``endpointurl`` or an HTTP(S) remote, check that its endpoint takes a TCP connection,
    a few times, and fail at once (exit 4) when it does not.

    Needed because the Azure SDK retries a refused connection with its own backoff
    (``ExponentialRetry``: 15 s, 18 s, 24 s per request) and neither DVC nor adlfs lets
    it be set: dvc-azure 3.1 passes only credentials to adlfs (its ``timeout`` settings
    are accepted by DVC's schema and dropped), and adlfs builds the service client
    without any of its own arguments (adlfs#502). A push of one file to a stopped
    Azurite took 251 s to fail. botocore retries too: with its default settings a push
    to a stopped local S3 server took 29 s to fail, ``gc --cloud`` 43 s. An HTTP remote
    that cannot be reached reads as "missing" in DVC (``dvc status -c``, ``dvc pull``:
    "Is your cache up to date?"). Checked against dvc-azure 3.1.1, adlfs 2026.8,
    dvc-s3 3.3.0 and dvc-http 2.32.0 (tests/data/test_azure.py, tests/data/test_s3.py,
    tests/registry/test_registry.py).

    Hooks, installed once: ``DataCloud.get_remote`` marks such a remote's DVC file
    system with the remote's name and URL (no connection is made there: DVC calls it
    for local commands too), and each class's ``fs``, which builds the SDK's file
    system on first use, checks the endpoint before handing it out.
    """
    import importlib
    import threading

    import dvc.data_cloud as dvc_cloud

    classes: list[tuple[Any, str]] = []
    for module, cls_name, label, endpoint in _PROBED:
        try:
            fs_cls = getattr(importlib.import_module(module), cls_name)
        except ImportError:  # the extra is not installed: no such remote works
            continue
        classes.append((fs_cls, label))
        built = fs_cls.__dict__["fs"]
        if not getattr(built, "_mlopskit", False):
            fs_cls.fs = _checked(built, label, endpoint, threading.Lock())
    if getattr(dvc_cloud.DataCloud.get_remote, "_mlopskit", False):
        return
    real_get_remote = dvc_cloud.DataCloud.get_remote

    def get_remote(self: Any, name: str | None = None, command: str = "<command>") -> Any:
        rem = real_get_remote(self, name, command)
        for fs_cls, label in classes:
            if isinstance(rem.fs, fs_cls):
                path = str(rem.path)
                url = path if "://" in path else f"{rem.fs.protocol}://{path}"
                rem.fs.__dict__["_mlopskit_remote"] = f"{label} remote '{rem.name}' ({redact(url)})"
                rem.fs.__dict__["_mlopskit_endpoint"] = url
        return rem

    get_remote._mlopskit = True  # type: ignore[attr-defined]
    for name in ("dvc", "dvc_data", "dvc_objects"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_HIDE_UNREACHABLE)
    dvc_cloud.DataCloud.get_remote = get_remote  # type: ignore[method-assign]


def _checked(built: Any, label: str, endpoint: Any, lock: Any) -> Any:
    """``fs`` (``built``), checked once per DVC file system; a data descriptor, so that no
    thread reads the client from the instance before the check is done."""

    class _Checked:
        _mlopskit = True

        def __get__(self, inst: Any, owner: Any = None) -> Any:
            if inst is None:
                return self
            state = inst.__dict__
            if state.get("_mlopskit_checked"):
                return state["fs"]
            with lock:
                failed = state.get("_mlopskit_unreachable")
                if failed:
                    raise EndpointUnreachable(failed)
                client = built.__get__(inst, owner)
                if not state.get("_mlopskit_checked"):
                    where = state.get("_mlopskit_remote") or f"the {label} remote"
                    try:
                        check_endpoint(endpoint(inst, client), where)
                    except EndpointUnreachable as exc:
                        state.pop("fs", None)
                        state["_mlopskit_unreachable"] = str(exc)
                        raise
                    state["_mlopskit_checked"] = True
                return client

        def __set__(self, inst: Any, value: Any) -> None:  # an fs handed in: not ours
            inst.__dict__["fs"] = value
            inst.__dict__["_mlopskit_checked"] = True

    return _Checked()


def check_endpoint(endpoint: str | None, where: str) -> None:
    """Raise :class:`EndpointUnreachable` when no TCP connection reaches ``endpoint`` (a
    URL) after :data:`ENDPOINT_PROBES` tries. Behind a proxy the SDK does not connect
    directly: nothing is checked."""
    import socket
    import time
    import urllib.parse
    import urllib.request

    if not endpoint:
        return
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname
    if not host:
        return
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    pause = ENDPOINT_PROBE_PAUSE
    last: OSError | None = None
    for attempt in range(ENDPOINT_PROBES):
        if attempt:
            time.sleep(pause)
            pause *= 2
        try:
            socket.create_connection((host, port), timeout=ENDPOINT_CONNECT_TIMEOUT).close()
            return
        except OSError as exc:
            last = exc
    assert last is not None
    if isinstance(last, socket.gaierror):
        reason = f"cannot resolve {host}"
    elif isinstance(last, TimeoutError):
        reason = f"no answer within {ENDPOINT_CONNECT_TIMEOUT:g} s"
    else:
        reason = last.strerror or type(last).__name__
    raise EndpointUnreachable(
        f"{where}: nothing answers at {host}:{port} ({reason.lower()}, {ENDPOINT_PROBES} tries)"
    ) from None


def endpoint_unreachable(
    exc: BaseException, logged: Sequence[BaseException] = ()
) -> EndpointUnreachable | None:
    """The :class:`EndpointUnreachable` that ``exc`` was raised from, or that DVC logged
    and carried on from before raising ``exc`` (a fetch: "failed to connect", then "N
    files failed to download")."""
    for start in (exc, *logged):
        seen: set[int] = set()
        cur: BaseException | None = start
        while cur is not None and id(cur) not in seen:
            if isinstance(cur, EndpointUnreachable):
                return cur
            seen.add(id(cur))
            cur = cur.__cause__ or cur.__context__
    return None


class _HideUnreachable(logging.Filter):
    """DVC's console lines for a request the probe refused ("failed to connect to azure"):
    the error mlopskit prints says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or endpoint_unreachable(exc) is None


_HIDE_UNREACHABLE = _HideUnreachable()


def hash_target(repo: Repo, path: str) -> tuple[str, int | None]:
    """The md5 (a directory's ``<md5>.dir``) and size DVC will record for ``path``.

    Computed by DVC's own builder, which stores it in DVC's state database: the
    ``add`` that follows finds it there and does not read the data a second time.
    """
    from dvc_data.hashfile.build import build

    _, meta, obj = build(
        repo.cache.local, path, repo.fs, "md5", dry_run=True, ignore=repo.dvcignore
    )
    return str(obj.hash_info.value), meta.size


def objects_not_in_remote(repo: Repo, remote: str | None, oids: Sequence[str]) -> set[str]:
    """Of these md5s, the ones DVC remote ``remote`` (None: the default) lacks, in DVC 3's
    layout or DVC 2's; a directory's ``MD5.dir`` counts as missing when its manifest or
    any file it lists is (the manifest read from the local cache, else the remote)."""
    import json

    odbs = [
        repo.cloud.get_remote_odb(remote, "push"),
        repo.cloud.get_remote_odb(remote, "push", hash_name="md5-dos2unix"),
    ]

    def present(wanted: set[str]) -> set[str]:
        found: set[str] = set()
        for odb in odbs:
            if wanted - found:
                found |= set(odb.oids_exist(wanted - found))
        return found

    wanted = set(oids)
    have = present(wanted)
    missing = wanted - have
    for oid in sorted(o for o in have if o.endswith(".dir")):
        raw = None
        for odb in [repo.cache.local, repo.cache.legacy, *odbs]:
            try:
                raw = odb.fs.cat_file(odb.oid_to_path(oid))
                break
            except (OSError, FileNotFoundError):
                continue
        try:
            entries = json.loads(raw) if raw is not None else None
        except ValueError:
            entries = None
        if not isinstance(entries, list):
            missing.add(oid)
            continue
        files = {str(e["md5"]) for e in entries if isinstance(e, dict) and "md5" in e}
        if files - present(files):
            missing.add(oid)
    return missing


def add(repo: Repo, paths: list[str]) -> None:
    """DVC's add. With a copy or reflink cache (DVC's default), the workspace file stays
    as it is (``dvc add --no-relink``): a relink deletes it and copies it back from the
    cache, and for that second no file holds the user's bytes under their own name.
    Hard- and symlink caches still relink (a link is what they are for); the journal
    names the cache object, and ``recover`` restores from it."""
    types = list(repo.cache.local.cache_types)
    relink = bool(types) and types[0] not in ("copy", "reflink")
    with _fault_points():
        repo.add(paths, relink=relink)


@contextmanager
def _fault_points() -> Iterator[None]:
    """Test-only (``MLOPSKIT_TEST_FAULT=add:...``): stop inside DVC's add, before and after
    it copies into the cache, and right after a relink removed the workspace file."""
    step = journal.fault_step()
    if step is None or not step.startswith("add:"):
        yield
        return
    import dvc.output as dvc_output
    import dvc_data.hashfile.checkout as dvc_checkout

    real_transfer, real_remove = dvc_output.otransfer, dvc_checkout._remove

    def transfer(*args: Any, **kwargs: Any) -> Any:
        journal.checkpoint("add:cache")
        res = real_transfer(*args, **kwargs)
        journal.checkpoint("add:cached")
        return res

    def remove(*args: Any, **kwargs: Any) -> Any:
        res = real_remove(*args, **kwargs)
        journal.checkpoint("add:relink")
        return res

    dvc_output.otransfer, dvc_checkout._remove = transfer, remove
    try:
        yield
    finally:
        dvc_output.otransfer, dvc_checkout._remove = real_transfer, real_remove


def init(root: Path, *, subdir: bool = False) -> None:
    with translated(), quiet_info():
        from dvc.repo import Repo

        Repo.init(str(root), subdir=subdir).close()


class _Collect(logging.Handler):
    """Collects DVC's warnings during one call (DVC warns where we must fail)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(record.getMessage())
        except Exception:  # pragma: no cover - a broken record must not break a push
            self.records.append(str(record.msg))


@contextmanager
def collect_warnings() -> Iterator[_Collect]:
    handler = _Collect()
    logs = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    for log in logs:
        log.addHandler(handler)
    try:
        yield handler
    finally:
        for log in logs:
            log.removeHandler(handler)


def missing_cache(warnings: list[str]) -> list[str]:
    """The md5s DVC reported as missing from both cache and remote."""
    found: list[str] = []
    for text in warnings:
        if "Missing cache files" in text or "missing cache" in text.lower():
            found.extend(m for m in _MD5.findall(text) if m not in found)
    return found


def remote_error_text(exc: BaseException) -> str:
    return redact(_pretty(exc))


_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@"
)


def redact(text: str) -> str:
    """Hide passwords in URLs (``scheme://user:pw@host`` -> ``scheme://user:***@host``)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def is_connection_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionError | TimeoutError):
            return True
        name = type(cur).__module__ + "." + type(cur).__name__
        if name.startswith(("asyncssh.", "aiohttp.", "botocore.exceptions.Endpoint")):
            return True
        if isinstance(cur, OSError) and cur.errno in (101, 104, 110, 111, 113, -2, -3):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@contextmanager
def repo_lock(repo: Repo) -> Iterator[None]:
    """DVC's own repo lock (``dvc.repo.lock_repo``) around several calls on one handle, so
    that no other DVC process gets between them and DVC builds its index once."""
    from dvc.repo import lock_repo

    with lock_repo(repo):
        yield


def read_tracked(root: Path, path: str, rev: str | None) -> bytes:
    """The bytes of a DVC-tracked ``path`` at ``rev`` from wherever DVC finds them (the
    cache, else the remote), as ``dvc.api.open`` reads them."""
    import dvc.api

    _install_endpoint_probes()
    with translated(), dvc.api.open(path, repo=str(root), rev=rev, mode="rb") as fh:
        data: bytes = fh.read()
    return data


def read_not_pulled(
    root: Path, rev: str | None, paths: list[str]
) -> tuple[str | None, dict[str, bytes | None]]:
    """DVC-tracked files that are not in the workspace (or, at ``rev``, not in git), read
    as ``dvc metrics show``/``diff`` read them: through DVC's filesystem, which takes
    the local cache, else streams from the default remote. One repo for all ``paths``.

    Returns (the default remote's name, path -> bytes, None where neither has it); with
    no default remote, (None, {}) and nothing is read. A revision without the project
    (before it was made) has none of them."""
    from contextlib import closing

    def read_all(repo: Repo) -> tuple[str | None, dict[str, bytes | None]]:
        name = repo.config["core"].get("remote")
        if not name:
            return None, {}
        out: dict[str, bytes | None] = {}
        for path in paths:
            try:
                with translated():
                    out[path] = bytes(repo.dvcfs.read_bytes(path))
            except (OSError, MlopskitError):
                out[path] = None
        return str(name), out

    _install_endpoint_probes()
    with open_repo(root) as repo:
        if rev is None:
            return read_all(repo)
        # DVC's own revision switch (dvc metrics diff's brancher): the config, dvc.lock
        # and remote as that commit has them, config.local from this checkout.
        # Repo.brancher(revs=, workspace=) is not documented API (checked against DVC
        # 3.67.1; tests/core/test_dvc_private.py).
        with closing(repo.brancher(revs=[rev], workspace=False)) as revs:
            for _ in revs:
                return read_all(repo)
    return None, {path: None for path in paths}


# --------------------------------------------------------------------------- gc


@dataclass(frozen=True)
class StoredObject:
    """One file in a cache or remote: an object DVC stores, or an orphan temporary file."""

    path: str  # relative to the object store's root ("ab/cdef..." or "ab/.<token>.tmp")
    oid: str  # the md5 ("" for a temporary file)
    size: int
    age: float | None = None  # seconds since last modified (temporary files only)
    upload: str = ""  # an unfinished S3 multipart upload's id (its parts are billed)


@dataclass(frozen=True)
class Swept:
    """What gc found unreferenced in one object store (and removed, unless dry)."""

    where: str  # "cache" or "remote 'NAME'"
    location: str  # the store's path or URL (userinfo redacted)
    objects: list[StoredObject]
    orphans: list[StoredObject]  # half-written ``.<token>.tmp`` files
    kept: int  # objects that stay


class CollectFailed(OperationFailed):
    """A revision could not be read (DVC's RevCollectionError); nothing was removed."""

    def __init__(self, message: str, hint: str | None = None, *, rev: str = "") -> None:
        super().__init__(message, hint)
        self.rev = rev


_TMP_NAME = re.compile(r"\.[A-Za-z0-9_-]{22}\.tmp")  # dvc-objects' tmp_fname()


def is_tmp_name(name: str) -> bool:
    """A temporary file name of dvc-objects (``.<token_urlsafe(16)>.tmp``)."""
    return _TMP_NAME.fullmatch(name) is not None


@contextmanager
def _never_prompt() -> Iterator[None]:
    """DVC asks "continue?" on a terminal when a directory's manifest is missing, and on
    "yes" it keeps the manifest but lets every file in it be collected. mlopskit never
    continues there: the missing manifest aborts gc (CollectCacheError) instead."""
    from dvc import prompt

    saved = prompt.confirm
    prompt.confirm = lambda statement: False
    try:
        yield
    finally:
        prompt.confirm = saved


def _mtime(info: dict[str, object]) -> float | None:
    import datetime as dt

    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.timestamp()
    return None


def _listing(odb: Any, *, tmp: bool, now: float) -> tuple[list[StoredObject], list[StoredObject]]:
    """Every object (and, if ``tmp``, every ``.<token>.tmp`` file) in one object store,
    with sizes, from one recursive listing."""
    fs = odb.fs
    root = odb.path
    found: dict[str, dict[str, Any]] = {}
    try:
        if fs.protocol == "local":
            import os

            for path in fs.find(root):
                try:
                    st = os.lstat(path)
                except FileNotFoundError:  # removed while we listed
                    continue
                found[path] = {"type": "file", "size": st.st_size, "mtime": st.st_mtime}
        else:
            found = dict(fs.fs.find(root, detail=True))
    except FileNotFoundError:
        return [], []
    base = fs.parts(root)
    objects: list[StoredObject] = []
    orphans: list[StoredObject] = []
    for path, info in found.items():
        parts = fs.parts(path)[len(base) :]
        if info.get("type") == "directory" or len(parts) != 2 or len(parts[0]) != 2:
            continue
        rel = "/".join(parts)
        size = int(info.get("size") or 0)
        if _TMP_NAME.fullmatch(parts[1]):
            if tmp:
                mtime = _mtime(info)
                orphans.append(StoredObject(rel, "", size, None if mtime is None else now - mtime))
            continue
        try:
            oid = odb.path_to_oid(path)
        except ValueError:
            continue
        objects.append(StoredObject(rel, oid, size))
    return objects, orphans


def _s3_unfinished(odb: Any, *, now: float) -> list[StoredObject]:
    """Unfinished multipart uploads under an S3 remote's object prefix: what a killed
    push leaves. S3 publishes an object only when its upload completes, so these are
    never visible as objects, but their parts stay stored (and billed) until aborted."""
    import datetime as dt

    s3 = odb.fs.fs
    bucket, prefix, _ = s3.split_path(odb.path)
    prefix = prefix.rstrip("/") + "/"
    found: list[StoredObject] = []
    kwargs: dict[str, str] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = s3.call_s3("list_multipart_uploads", **kwargs)
        for up in page.get("Uploads") or []:
            rel = str(up["Key"])[len(prefix) :]
            parts = rel.split("/")
            if len(parts) != 2 or len(parts[0]) != 2:
                continue
            started = up.get("Initiated")
            age = now - started.timestamp() if isinstance(started, dt.datetime) else None
            found.append(StoredObject(rel, "", 0, age, upload=str(up["UploadId"])))
        if not page.get("IsTruncated"):
            return found
        kwargs["KeyMarker"] = page["NextKeyMarker"]
        kwargs["UploadIdMarker"] = page["NextUploadIdMarker"]


def _sweep(
    odb: Any,
    used: set[tuple[str, str]],
    *,
    where: str,
    location: str,
    dry: bool,
    tmp: bool,
    tmp_min_age: float,
) -> Swept:
    import time

    hash_name = odb.hash_name
    keep = {value for name, value in used if name == hash_name}
    now = time.time()
    objects, orphans = _listing(odb, tmp=tmp and odb.fs.protocol != "s3", now=now)
    if tmp and odb.fs.protocol == "s3":
        orphans += _s3_unfinished(odb, now=now)
    garbage = sorted((o for o in objects if o.oid not in keep), key=lambda o: o.path)
    stale = sorted(
        (o for o in orphans if o.age is not None and o.age >= tmp_min_age), key=lambda o: o.path
    )
    if not dry and (garbage or stale):
        fs = odb.fs
        for o in garbage:
            if o.oid.endswith(".dir"):
                # As DVC's gc (dvc_data.hashfile.gc): the old ".unpacked" copies. A private
                # method of every HashFileDB (checked against DVC 3.67.1, dvc-data 3.18):
                # called, not probed, so a rename fails here and in test_dvc_private.py.
                odb._remove_unpacked_dir(o.oid)
        # Manifests first, as DVC does: a crash in between leaves files, never a manifest
        # whose files are gone.
        dirs = [o for o in garbage if o.oid.endswith(".dir")]
        files = [o for o in garbage if not o.oid.endswith(".dir")]
        tmp_files = [o for o in stale if not o.upload]
        for group in (dirs, files, tmp_files):
            if group:
                fs.remove([fs.join(odb.path, *o.path.split("/")) for o in group])
        if any(o.upload for o in stale):
            bucket, prefix, _ = fs.fs.split_path(odb.path)
            for o in stale:
                if o.upload:
                    key = f"{prefix.rstrip('/')}/{o.path}"
                    fs.fs.call_s3(
                        "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=o.upload
                    )
    return Swept(
        where=where,
        location=location,
        objects=garbage,
        orphans=stale,
        kept=len(objects) - len(garbage),
    )


def _raw_remotes(repo: Repo) -> dict[str, dict[str, Any]]:
    """The remote sections of every config level, merged as written (no schema defaults)."""
    merged: dict[str, dict[str, Any]] = {}
    for level in ("system", "global", "repo", "local"):
        for name, section in repo.config.read(level).get("remote", {}).items():
            merged.setdefault(name, {}).update(section)
    return merged


def gc(
    root: Path,
    revs: list[str],
    *,
    others: Sequence[tuple[Path, list[str]]] = (),
    all_commits: bool = False,
    cloud: bool = False,
    remote: str | None = None,
    dry: bool = True,
    jobs: int | None = None,
    tmp_min_age: float = 3600.0,
) -> list[Swept]:
    """Objects no kept revision uses, in the cache and (``cloud``) the remote; removed
    unless ``dry``.

    The workspace and every revision in ``revs`` are kept (DVC's ``used_objs``, which
    ``dvc gc`` calls too), and so are the revisions of each other project in ``others``
    that shares the cache or remote. A revision that cannot be read aborts the whole run
    before anything is removed (DVC's ``--skip-failed`` is never used). Orphan temporary
    files older than ``tmp_min_age`` seconds are removed too, never younger ones: those
    may belong to a transfer that is still running.
    """
    from dvc.exceptions import RevCollectionError
    from dvc.repo import Repo as DvcRepo
    from dvc_data.hashfile.db import get_index

    used: set[tuple[str, str]] = set()
    with open_repo(root) as repo, translated(), repo.lock:
        for where, wanted in [(root, revs), *others]:
            # Each revision is read with its own .dvc/config plus today's config.local. A
            # remote added since (its url in .dvc/config, its key in config.local) would
            # make every older revision's config invalid ("expected 'url'"), so today's
            # remote sections are laid over each revision's, as gc sweeps today's remote.
            base = repo if where == root else DvcRepo(str(where))
            remotes = _raw_remotes(base)
            if base is not repo:
                base.close()
            other = DvcRepo(str(where), config={"remote": remotes})
            try:
                with _never_prompt():
                    found = other.used_objs(
                        revs=wanted or None,
                        all_commits=all_commits,
                        remote=remote,
                        jobs=jobs,
                        num=1,
                        force=False,
                    )
            except RevCollectionError as exc:
                cause = exc.__cause__
                detail = _pretty(cause) if cause is not None else ""
                raise CollectFailed(
                    f"gc: cannot read revision {exc.rev} of {where}: {detail}; nothing was removed",
                    "fix or pull what that revision needs (gc never skips a revision)",
                    rev=str(exc.rev),
                ) from exc
            finally:
                other.close()
            for objs in found.values():
                used.update((h.name, h.value) for h in objs if h.value)
        # Resolve the remote before touching anything: a missing or unusable remote must
        # fail with the cache intact.
        remote_odbs: list[tuple[Any, str, str, bool]] = []
        if cloud:
            rem = repo.cloud.get_remote(remote, "gc")
            label = f"remote '{rem.name}'"
            url = redact(str(repo.config["remote"].get(rem.name, {}).get("url", rem.path)))
            for hash_name in ("md5", "md5-dos2unix"):
                odb = repo.cloud.get_remote_odb(remote, "gc", hash_name=hash_name)
                tmp = hash_name == "md5" and rem.fs.protocol in ("local", "ssh", "s3")
                remote_odbs.append((odb, label, url, tmp))
        swept: list[Swept] = []
        seen: list[Any] = []
        for _scheme, odb in repo.cache.by_scheme():
            if not odb or odb in seen:
                continue
            seen.append(odb)
            swept.append(
                _sweep(
                    odb,
                    used,
                    where="cache",
                    location=str(odb.path),
                    dry=dry,
                    tmp=odb.hash_name == "md5",
                    tmp_min_age=tmp_min_age,
                )
            )
        for odb, label, url, tmp in remote_odbs:
            result = _sweep(
                odb, used, where=label, location=url, dry=dry, tmp=tmp, tmp_min_age=tmp_min_age
            )
            if result.objects and not dry:
                get_index(odb).clear()
            swept.append(result)
    return swept


def parse_params(values: Any) -> list[dict[str, list[str]]]:
    """``-p`` values parsed as ``dvc stage add -p`` parses them."""
    from dvc.utils.cli_parse import parse_params as _parse

    groups: list[dict[str, list[str]]] = _parse(values)
    return groups


def pipeline_entry(stage: Any) -> Any:
    """The stage's dvc.yaml entry, as DVC serializes it."""
    from dvc.stage import serialize

    return serialize.to_pipeline_file(stage)[stage.name]


def apply_diff(src: Any, dest: Any) -> None:
    """DVC's in-place update of a round-trip YAML node (keeps comments and order)."""
    from dvc.utils.collections import apply_diff as _apply

    _apply(src, dest)


def is_pipeline_stage(stage: Any) -> bool:
    """A stage of a dvc.yaml (not a ``.dvc`` file)."""
    from dvc.stage import PipelineStage

    return isinstance(stage, PipelineStage)


def is_params_dep(dep: Any) -> bool:
    """A ``params:`` dependency (not a file or directory)."""
    from dvc.dependency.param import ParamsDependency

    return isinstance(dep, ParamsDependency)


def stale_stages(repo: Repo) -> list[str]:
    """Pipeline stages whose dvc.lock entry does not match the params, code and data in
    ``repo``'s work tree: DVC's own ``status`` verdict, with missing data allowed (a
    fresh clone's view: a hash in dvc.lock and no file is not a mismatch)."""
    from dvc.repo import lock_repo
    from dvc.stage import PipelineStage

    with translated(), quiet_info(), lock_repo(repo):
        return [
            s.addressing
            for s in repo.index.stages
            if isinstance(s, PipelineStage) and s.changed(allow_missing=True)
        ]


def pipeline_inputs(repo: Repo) -> set[str]:
    """Absolute paths of what decides whether dvc.lock is still true: every dvc.yaml and
    dvc.lock, each stage's local dependencies (params files included), and the ``.dvc``
    pointers of data those dependencies read."""
    from dvc.stage import PipelineStage

    found: set[str] = set()
    deps: list[str] = []
    with translated():
        stages = list(repo.index.stages)
        for s in stages:
            if not isinstance(s, PipelineStage):
                continue
            found.add(os.path.realpath(s.path))
            found.add(os.path.realpath(Path(s.path).with_name("dvc.lock")))
            for d in s.deps:
                if getattr(d.fs, "protocol", "local") in ("local", "file"):
                    deps.append(os.path.realpath(d.fs_path))
        found.update(deps)
        for s in stages:
            if isinstance(s, PipelineStage):
                continue
            for o in s.outs:
                out = os.path.realpath(o.fs_path)
                if any(_overlaps(out, d) for d in deps):
                    found.add(os.path.realpath(s.path))
    return found


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a + os.sep)


# --- DVC's private per-stage step ---------------------------------------------------
# ``Repo.reproduce(repro_fn=...)`` takes the function that reproduces one stage; DVC's own
# is the private ``dvc.repo.reproduce._reproduce_stage(stage, **kwargs)``. Checked against
# DVC 3.50 to 3.67.1; tests/core/test_dvc_private.py fails loudly if DVC changes it.


def plain_step(stage: Any, **kwargs: Any) -> Any:
    """DVC's own per-stage step, unchanged."""
    from dvc.repo.reproduce import _reproduce_stage

    return _reproduce_stage(stage, **kwargs)


def pulling_step(repo: Repo, remote: str | None) -> Any:
    """DVC's per-stage step, fetching lazily: only for a stage that will run, its missing
    inputs (DVC's --pull --allow-missing alone skips the unchanged stage that produces
    them, and the run then fails), and the run-cache once, before the first such stage.
    An unchanged pipeline therefore moves no data at all."""
    import os

    from dvc.repo.reproduce import _reproduce_stage
    from dvc.stage.cache import RunCacheNotSupported

    pulled_run_cache = False

    def step(stage: Any, **kwargs: Any) -> Any:
        nonlocal pulled_run_cache
        if not (kwargs.get("force") or stage.changed(True, kwargs.get("upstream"))):
            return _reproduce_stage(stage, **kwargs)
        if not pulled_run_cache:
            pulled_run_cache = True
            try:
                repo.stage_cache.pull(remote)
            except RunCacheNotSupported:
                pass
        missing = sorted(
            {
                os.path.relpath(d.fs_path, repo.root_dir)
                for d in stage.deps
                if not is_params_dep(d)
                and getattr(d.fs, "protocol", "local") in ("local", "file")
                and not Path(d.fs_path).exists()
            }
        )
        if missing:
            repo.pull(missing, remote=remote)
        return _reproduce_stage(stage, **{**kwargs, "pull": True})

    return step


TMP_NAME = _TMP_NAME  # dvc-objects' temporary names: f".{secrets.token_urlsafe(16)}.tmp"


def drop_interrupted_tmp(exc: BaseException, within: Path | None) -> list[Path]:
    """Remove the half-written ``.<token>.tmp`` file that an interrupted DVC copy left.

    DVC internals: this walks the frames of dvc-objects' copy (checked against DVC 3.50 to
    3.67.1 with its dvc-objects; tests/core/test_dvc_private.py fails if the names change).

    dvc-objects' ``LocalFileSystem.put_file`` copies to a temporary name and renames it,
    but removes nothing when the copy fails or is interrupted (treeverse/dvc-objects#379).
    So Ctrl-C during ``add`` or a push to a local remote leaves an orphan in the cache or
    the remote. Local copies run one at a time in the main thread, so the orphan is a
    local variable of a frame the exception passed through: only such paths, inside
    ``within``, are removed, never another process's temporary files.
    """
    import traceback as _tb

    if within is None:
        return []
    top = within.resolve()
    removed: list[Path] = []
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        stack += [e for e in (err.__cause__, err.__context__) if e is not None]
        for frame, _ in _tb.walk_tb(err.__traceback__):
            for value in list(frame.f_locals.values()):
                if not isinstance(value, str) or not _TMP_NAME.fullmatch(Path(value).name):
                    continue
                try:
                    p = Path(value).resolve()
                    if p.is_relative_to(top) and p.is_file() and not p.is_symlink():
                        p.unlink()
                        removed.append(p)
                except (OSError, ValueError, RuntimeError):
                    pass
    return removed


# --------------------------------------------------------------- reading project state


class _TreeFS:
    """The part of DVC's filesystem interface its dvc.yaml resolver uses (vars files,
    params.yaml for interpolation), over any tree: git objects at a revision, or the
    workspace. Paths are repository-relative, '/'-separated."""

    sep = "/"

    def __init__(self, read: Any, isdir: Any) -> None:
        self._read = read
        self._isdir = isdir

    def join(self, *parts: str) -> str:
        import posixpath

        return posixpath.join(*[p for p in parts if p]) if any(parts) else ""

    def normpath(self, path: str) -> str:
        import posixpath

        return posixpath.normpath(path) if path else ""

    def relpath(self, path: str, start: str | None = None) -> str:
        import posixpath

        return posixpath.relpath(path, start or ".")

    def suffix(self, path: str) -> str:
        import posixpath

        return posixpath.splitext(path)[1]

    def exists(self, path: str) -> bool:
        return bool(self._isdir(self.normpath(path))) or self._read(self.normpath(path)) is not None

    def isdir(self, path: str) -> bool:
        return bool(self._isdir(self.normpath(path)))

    def open(self, path: str, mode: str = "r", encoding: str | None = None, **_: Any) -> Any:
        import io

        raw = self._read(self.normpath(path))
        if raw is None:
            raise FileNotFoundError(path)
        if "b" in mode:
            return io.BytesIO(raw)
        return io.StringIO(raw.decode(encoding or "utf-8"))


def resolve_dvcyaml(
    data: dict[str, Any], wdir: str, read: Any, isdir: Any, *, display: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``dvc.yaml`` (already parsed) resolved as DVC resolves it: ``vars``, ``foreach``,
    ``matrix`` and ``${...}``, by DVC's own resolver over ``read``/``isdir`` (a file's
    bytes / whether a directory, repository-relative). Returns the resolved document
    (``stages`` by generated name, ``metrics``, ``params``, ``plots``, ``artifacts``) and
    the variables each stage used, per file (what ``dvc params show`` adds)."""
    from types import SimpleNamespace

    from dvc.exceptions import DvcException
    from dvc.parsing import DataResolver

    fs = _TreeFS(read, isdir)
    try:
        resolver = DataResolver(SimpleNamespace(fs=fs, config={}), wdir, data)  # type: ignore[arg-type]
        stages: dict[str, Any] = {}
        for key in resolver.get_keys():
            stages.update(resolver.resolve_one(key))
        doc = {
            "stages": stages,
            "metrics": resolver.resolve_metrics(),
            "params": resolver.resolve_params(),
            "plots": resolver.resolve_plots(),
            "artifacts": resolver.resolve_artifacts(),
        }
    except DvcException as exc:
        raise UsageError(f"{display}: {_pretty(exc)}") from None
    tracked = {
        name: {f: dict(v) for f, v in files.items()}
        for name, files in resolver.tracked_vars.items()
    }
    return doc, tracked


def parse_file(path: str, text: str) -> Any:
    """A params or metrics file parsed as DVC parses it (by suffix: YAML, JSON, TOML,
    Python); DVC's parse error as a UsageError naming the file."""
    import posixpath

    from dvc.exceptions import DvcException
    from dvc.utils.serialize import PARSERS

    parser = PARSERS[posixpath.splitext(path)[1].lower()]
    try:
        return parser(text, path)
    except DvcException as exc:
        raise UsageError(f"{path}: {_pretty(exc)}") from None


def fetch_object(
    root: Path, md5: str, path: str, dest: Path, *, remote: str | None, command: str
) -> None:
    """Copy the DVC object ``md5`` (the file ``path`` at some revision) into ``dest``: from
    the local cache, else from ``remote`` (default: the project's default remote). No
    remote: exit 2 with the fix; a remote that cannot be reached: exit 4 (the endpoint
    probe); a remote that answers without it: exit 3. ``dest`` is not verified here."""
    import shutil

    base = cache_dir(root)
    for cached in (base / "files" / "md5" / md5[:2] / md5[2:], base / md5[:2] / md5[2:]):
        if cached.is_file():  # DVC 3's layout, then DVC 2's
            shutil.copyfile(cached, dest)
            return
    with open_repo(root) as repo, translated():
        name = remote or repo.config.get("core", {}).get("remote")
        if not name:
            raise UsageError(
                f"{path} ({md5}) is not in the local DVC cache, and no DVC remote is "
                "configured in this clone (a default remote set in .dvc/config.local is "
                "not part of a clone)",
                "add one: 'mlopskit remote add NAME URL --default' (or 'dvc remote add -d "
                "NAME URL'), or pass --remote NAME",
            )
        odb = repo.cloud.get_remote_odb(name, command)
        if not odb.exists(md5):
            raise PreconditionError(
                f"{path} ({md5}) is in neither the local DVC cache nor the DVC remote '{name}'",
                "push it from a clone that has it: 'mlopskit data push'",
            )
        odb.fs.get_file(odb.oid_to_path(md5), str(dest))


def cache_dir(root: Path) -> Path:
    """The local cache directory, from DVC's configuration (``.dvc/config``,
    ``config.local``, global and system levels), as ``dvc cache dir`` prints it."""
    files = [root / ".dvc" / "config", root / ".dvc" / "config.local"]
    stamp = tuple(f.stat().st_mtime_ns if f.is_file() else 0 for f in files)
    return _cache_dir(str(root), stamp, os.environ.get("DVC_GLOBAL_CONFIG_DIR", ""))


_CACHE_DIRS: dict[tuple[str, tuple[int, ...], str], Path] = {}


def _cache_dir(root: str, stamp: tuple[int, ...], env: str) -> Path:
    key = (root, stamp, env)
    if key not in _CACHE_DIRS:
        from dvc.config import Config
        from dvc.fs import get_cloud_fs

        with translated():
            config = Config(dvc_dir=str(Path(root) / ".dvc"), validate=True)
            # As dvc.cachemgr.CacheManager picks it (checked against DVC 3.67):
            # ``cache.local = NAME`` (a remote section used as the cache) wins over
            # ``cache.dir``, else ``.dvc/cache``; levels merged system < global < repo
            # < local by Config. (``dvc cache dir`` prints cache.dir and ignores
            # cache.local; the objects live where CacheManager puts them.)
            cache = config.get("cache", {})
            local = cache.get("local")
            settings = (
                {"name": local}
                if local
                else {"url": cache.get("dir") or str(Path(root) / ".dvc" / "cache")}
            )
            cls, _, fs_path = get_cloud_fs(config, **settings)
        if cls.protocol != "local":
            raise UsageError(
                f".dvc/config: cache.local = {local} names a {cls.protocol} remote; "
                "mlopskit reads a cache on this machine only",
                "set a local cache: 'dvc cache dir PATH' and 'dvc config --unset cache.local'",
            )
        _CACHE_DIRS[key] = Path(fs_path).absolute()
    return _CACHE_DIRS[key]


def set_local_cache_dir(dvc_dir: Path, cache: Path) -> None:
    """``dvc cache dir --local CACHE`` in another checkout: the ``[cache]`` section of its
    config.local set (never a second one: DVC refuses a file with two)."""
    from dvc.config import Config

    with translated():
        config = Config(dvc_dir=str(dvc_dir), validate=False)
        with config.edit("local") as conf:
            conf.setdefault("cache", {})["dir"] = str(cache)


def lock_status(repo: Repo) -> tuple[list[str], list[str]]:
    """(stages out of date, stages whose cached outputs are only absent), judged by
    dvc.lock as ``--allow-missing`` judges it: data never pulled is not "out of date"."""
    from dvc.repo import lock_repo

    stale: list[str] = []
    not_pulled: list[str] = []
    with lock_repo(repo):
        for s in repo.index.stages:
            if s.is_data_source or s.is_import:
                continue
            if s.changed(allow_missing=True):
                stale.append(s.addressing)
            elif any(o.use_cache and not Path(o.fs_path).exists() for o in s.outs):
                not_pulled.append(s.addressing)
    return stale, not_pulled


def vega_spec(points: list[dict[str, Any]], name: str, **props: Any) -> dict[str, Any]:
    """A Vega-Lite spec filled from DVC's plot templates, as ``dvc plots`` fills them
    (dvc-render's VegaRenderer; ``props``: template, x, y, title)."""
    from dvc_render.vega import VegaRenderer

    return dict(VegaRenderer(points, name, **props).get_filled_template())


def ignore_patterns(text: str, dirname: str) -> Any:
    """A ``.dvcignore`` as DVC reads it (its gitignore-style patterns, DVC's matcher),
    for the directory ``dirname`` (repository-relative, "" for the root). Call
    ``.matches("/" + parent, name, is_dir)`` with "/"-rooted parents."""
    from dvc.ignore import DvcIgnorePatterns
    from dvc.pathspec_math import PatternInfo

    lines = [
        PatternInfo(line, f"{dirname or '.'}/.dvcignore:{i + 1}:{line}")
        for i, line in enumerate(map(str.strip, text.splitlines()))
        if line and not line.startswith("#")
    ]
    return DvcIgnorePatterns(lines, "/" + dirname if dirname else "/", "/")
