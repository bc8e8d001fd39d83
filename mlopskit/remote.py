"""DVC remotes: add one (credentials only ever in ``.dvc/config.local``) and list them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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


# One wording wherever a command needs a DVC remote and the project has none: a clone of
# a project whose default remote lives in .dvc/config.local (never committed) gets here.
NO_REMOTE = (
    "no DVC remote is configured in this clone: a default remote kept in "
    ".dvc/config.local stays on the machine that made the project"
)
NO_REMOTE_HINT = "add one with 'mlopskit remote add NAME URL --default'"


def no_remote_error() -> UsageError:
    return UsageError(NO_REMOTE, NO_REMOTE_HINT)


def _committed(root: Path) -> tuple[str | None, dict[str, str]]:
    """The default remote and each remote's URL as ``.dvc/config`` and then
    ``.dvc/config.local`` set them, read without importing DVC (its INI layout:
    ``[core]`` ``remote = NAME``, ``['remote "NAME"']`` ``url = URL``)."""
    default: str | None = None
    urls: dict[str, str] = {}
    for file in ("config", "config.local"):
        try:
            text = (root / ".dvc" / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line.strip("[]'\" ").strip()
                continue
            if "=" not in line:
                continue
            key, value = (s.strip() for s in line.split("=", 1))
            value = value.strip("'\"")
            if section == "core" and key == "remote" and value:
                default = value
            elif section.startswith("remote ") and key == "url":
                urls[section.split(None, 1)[1].strip("'\" ")] = value
    return default, urls


def plainly_reachable(root: Path, name: str | None) -> bool:
    """True when the project's own config names remote ``name`` (default: the default
    remote) and it is a cloud URL or a folder that exists; False means: ask DVC."""
    default, urls = _committed(root)
    url = urls.get(name or default or "")
    if not url:
        return False
    if "://" in url:
        return not url.startswith(("file://", "local://"))
    return (root / ".dvc" / Path(url).expanduser()).is_dir()


@dataclass(frozen=True)
class Committed:
    """What a fresh clone (a CI runner) sees of the remotes: ``.dvc/config`` alone."""

    default: str | None
    urls: dict[str, str]  # name -> URL (redacted)
    secrets: dict[str, list[str]]  # name -> options holding a secret, committed by mistake


def committed(project: Project) -> Committed:
    """The remotes in the committed ``.dvc/config``, without ``config.local`` or user config."""
    with _dvc.open_repo(project.root) as repo:
        raw = repo.config.read("repo")
    default = raw.get("core", {}).get("remote")
    urls: dict[str, str] = {}
    secrets: dict[str, list[str]] = {}
    for name, section in sorted(raw.get("remote", {}).items()):
        if "url" in section:
            urls[str(name)] = _dvc.redact(str(section["url"]))
        found = sorted(str(k) for k in section if is_secret(str(k)))
        if found:
            secrets[str(name)] = found
    return Committed(str(default) if default else None, urls, secrets)
