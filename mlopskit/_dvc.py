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
        return UsageError(
            "no DVC remote is configured",
            "add one with 'mlopskit remote add NAME URL --default'",
        )
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

        with translated():
            config = Config(dvc_dir=str(Path(root) / ".dvc"), validate=True)
        configured = config.get("cache", {}).get("dir")
        _CACHE_DIRS[key] = (
            Path(configured) if configured else Path(root) / ".dvc" / "cache"
        ).absolute()
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
