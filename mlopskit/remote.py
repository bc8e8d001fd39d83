"""DVC remotes: add one (credentials only ever in ``.dvc/config.local``) and list them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import _dvc
from .errors import UsageError
from .journal import barrier
from .project import Project

SCHEMES = (
    "s3",
    "gs",
    "gcs",
    "azure",
    "ssh",
    "http",
    "https",
    "webdav",
    "webdavs",
    "hdfs",
    "oss",
    "gdrive",
    "local",
)
# Option names that carry a secret: these go to config.local and are redacted in output.
SECRET_WORDS = (
    "secret",
    "password",
    "token",
    "key",
    "credential",
    "connection_string",
    "sas",
    "passphrase",
)


def is_secret(option: str) -> bool:
    o = option.lower()
    return any(w in o for w in SECRET_WORDS)


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str
    default: bool
    options: dict[str, str]  # secrets already redacted


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if "://" in url:
        if parts.scheme not in SCHEMES:
            raise UsageError(
                f"remote URL {url!r}: unknown scheme '{parts.scheme}'",
                f"use one of {', '.join(s + '://' for s in SCHEMES[:6])} or a path",
            )
        if parts.password:
            raise UsageError(
                f"remote URL {_dvc.redact(url)}: has a password in it, which would be committed",
                "drop it from the URL and pass --credential password=... instead",
            )


@barrier
def add(
    project: Project,
    name: str,
    url: str,
    *,
    default: bool = False,
    credentials: Mapping[str, str] | None = None,
    local: bool = False,
    force: bool = False,
) -> RemoteInfo:
    """Add a remote to ``.dvc/config`` (or ``config.local``); credentials go to config.local."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise UsageError(f"remote name {name!r}: use letters, digits, '-', '_' or '.'")
    check_url(url)
    creds = dict(credentials or {})
    with _dvc.open_repo(project.root) as repo, _dvc.translated():
        level = "local" if local else "repo"
        existing = repo.config.read(level).get("remote", {})
        if name in existing and not force:
            raise UsageError(f"remote '{name}' already exists", "use --force to replace it")
        with repo.config.edit(level) as conf:
            conf["remote"][name] = {"url": url}
            if default:
                conf["core"]["remote"] = name
        if default and level == "repo" and repo.config.read("local").get("core", {}).get("remote"):
            # A default in config.local would shadow the new one: move it there too.
            with repo.config.edit("local") as conf:
                conf["core"]["remote"] = name
        if creds:
            with repo.config.edit("local") as conf:
                section = conf["remote"].setdefault(name, {})
                section.update(creds)
    return RemoteInfo(name, url, default, {k: "***" for k in creds})


def list_remotes(project: Project) -> list[RemoteInfo]:
    with _dvc.open_repo(project.root) as repo:
        # Merge the levels by hand: the merged config also holds the schema's defaults.
        remotes: dict[str, dict[str, object]] = {}
        default = None
        for level in ("system", "global", "repo", "local"):
            raw = repo.config.read(level)
            default = raw.get("core", {}).get("remote", default)
            for name, section in raw.get("remote", {}).items():
                remotes.setdefault(name, {}).update(section)
        out = []
        for name, section in sorted(remotes.items()):
            options = {
                str(k): ("***" if is_secret(str(k)) else _dvc.redact(str(v)))
                for k, v in section.items()
                if k != "url"
            }
            out.append(
                RemoteInfo(name, _dvc.redact(str(section.get("url", ""))), name == default, options)
            )
        return out
