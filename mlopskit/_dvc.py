"""The one gateway to DVC.

DVC is used in-process through its Python API: it saves a second interpreter start
on every call (see benchmarks/). DVC's exceptions are turned into mlopskit errors
here, and only here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import yamlio
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


def translate(exc: BaseException) -> MlopskitError | None:  # noqa: PLR0911
    """The mlopskit error for a DVC exception, or None when it is not DVC's."""
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
    return None


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except MlopskitError:
        raise
    except Exception as exc:
        err = translate(exc)
        if err is None:
            raise
        raise err from exc


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

        repo = Repo(str(root))
        repo.scm_context.quiet = True
        try:
            yield repo
        finally:
            repo.close()


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
