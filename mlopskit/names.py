"""The one place that says which names mlopskit accepts.

Every name a user gives (a DVC stage, a registry artifact or stage, an experiment, a
params key, a file to version) is checked here, before DVC, git or GTO see it, and a bad
one is exit 2 naming it and what is allowed:

- DVC stage names: letters, digits, ``-``, ``_`` and ``.`` (no path or shell characters,
  not starting with ``-`` or ``.``);
- registry names (artifacts and stages): GTO's own rule (:data:`mlopskit._gto.NAME_RE`);
  artifacts also git's ref rule, a length limit and no case-only collisions;
- experiment names: GTO's rule without ``/`` (one ref component);
- params keys: dot-separated, no empty part;
- file names: ones a ``.gitignore`` line can match exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from . import paths, scm
from ._gto import NAME_RE
from .errors import OperationFailed, UsageError

MAX_ARTIFACT_NAME = 200  # bytes
_STAGE_FORBIDDEN = frozenset("/\\:@#$;`'\"!&|<>(){}[]*?~ \t\n\r")
REGISTRY_RULE = "use letters, digits, '-', '_' and '/', starting and ending with a letter or digit"


def is_registry_name(name: object) -> bool:
    """GTO's rule for artifact and stage names."""
    return isinstance(name, str) and NAME_RE.match(name) is not None


def is_experiment_name(name: object) -> bool:
    """GTO's rule, one component: letters, digits, ``-`` and ``_``."""
    return is_registry_name(name) and "/" not in str(name)


def check_stage_name(name: str) -> None:
    """A DVC stage name (``stage add``)."""
    bad = set(name) & _STAGE_FORBIDDEN
    if not name or bad or name.startswith(("-", ".")):
        raise UsageError(
            f"stage name {name!r}: use letters, digits, '-', '_' and '.' only",
            "for example 'train' or 'train-large'",
        )


def check_registry_stage(stage: str) -> None:
    """A registry stage name (``model promote --stage``)."""
    if not is_registry_name(stage or ""):
        raise UsageError(f"stage {stage!r} is not a valid stage name", REGISTRY_RULE)


def tag_name(name: str) -> str:
    """An artifact's name as GTO writes it in a tag: ``sub:model`` (declared in
    ``sub/dvc.yaml``) is ``sub=model`` (git refuses ':' in a tag)."""
    return name.replace(":", "=")


_DIRNAME = re.compile(r"^[a-zA-Z0-9-_./]+$")  # GTO's dirname of a nested dvc.yaml


def check_artifact_name(root: Path, name: str, *, known: list[str] | None = None) -> None:
    """GTO's name rule (``NAME``, or ``DIR:NAME`` for one in ``DIR/dvc.yaml``), git's ref
    rule, a length limit and no case-only collisions."""
    dirname, _, base = (name or "").rpartition(":")
    if not is_registry_name(base) or (":" in name and not _DIRNAME.match(dirname)):
        raise UsageError(f"artifact name {name!r} is not valid", REGISTRY_RULE)
    if len(name.encode()) > MAX_ARTIFACT_NAME:
        raise UsageError(f"artifact name is longer than {MAX_ARTIFACT_NAME} bytes")
    res = scm.git(root, "check-ref-format", f"refs/tags/{tag_name(name)}@v0.0.0", check=False)
    if res.returncode != 0:
        raise UsageError(
            f"artifact name {name!r} is not a valid git tag name",
            "avoid '//', '..' and names ending in '.lock'",
        )
    for other in known or []:
        if other != name and other.lower() == name.lower():
            raise UsageError(
                f"artifact name {name!r} differs only in case from {other!r}",
                "tags that differ only in case collide on macOS and Windows",
            )


def is_params_key(key: str) -> bool:
    """A dotted params key with no empty part (``train.C``, not ``train.`` or ``.C``)."""
    return bool(key) and all(part for part in key.split("."))


def check_ignorable(rel: str, *, where: str = "") -> None:
    """Refuse (exit 2) a file name that a .gitignore line cannot match exactly.

    ``.gitignore`` is read line by line: a newline in the name splits its entry in two
    (neither ignores the file, and each may ignore others), and git drops a carriage
    return at the end of a line. DVC writes its pointer and .gitignore as UTF-8.
    ``where`` names the file and entry the name comes from (``dvc.yaml: stage 's': output``).
    """
    name = PurePosixPath(rel).name
    shown = f"{where} {rel!r}" if where else repr(rel)
    if "\n" in name:
        raise UsageError(
            f"{shown}: a newline in a file name cannot be written to .gitignore",
            "rename the file without the newline",
        )
    if name.endswith("\r"):
        raise UsageError(
            f"{shown}: git drops a carriage return at the end of a .gitignore line, so it "
            "cannot ignore this name",
            "rename the file without the trailing carriage return",
        )
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{shown}: the name is not valid UTF-8, which DVC's files and .gitignore need",
            "rename the file to a UTF-8 name",
        ) from None


def gitignore_of(rel: str) -> str:
    """The .gitignore DVC writes ``rel``'s line to: the one in its folder."""
    parent = PurePosixPath(rel).parent.as_posix()
    return ".gitignore" if parent == "." else f"{parent}/.gitignore"


def escape_gitignore(
    root: Path, rels: Sequence[str], *, before: Mapping[str, bytes | None] | None = None
) -> list[str]:
    """DVC escapes git's wildcards in the .gitignore lines it writes, but not trailing
    spaces, which git strips: its line then ignores another name. Replace each such line
    for ``rels`` by the escaped one (gitignore(5): "quoted with backslash"), once.

    ``before``: a .gitignore's bytes before the operation (by path); a line it already
    held is the user's and stays. Returns the .gitignore files rewritten."""
    from .journal import replace_bytes

    rewritten: list[str] = []
    for rel in rels:
        name = PurePosixPath(rel).name
        if not name.endswith(" "):
            continue
        gitignore = gitignore_of(rel)
        f = root / gitignore
        if not f.is_file():
            continue
        old = set(((before or {}).get(gitignore) or b"").splitlines())
        dvc_line = paths.dvc_gitignore_entry(name).encode("utf-8")
        want = paths.gitignore_entry(name).encode("utf-8")
        lines = f.read_bytes().splitlines()
        fixed: list[bytes] = []
        for line in lines:
            if line == dvc_line and line not in old:
                line = want
            if line == want and want in fixed:
                continue  # DVC's check missed the escaped line and wrote its own again
            fixed.append(line)
        if fixed != lines:
            replace_bytes(f, b"".join(line + b"\n" for line in fixed))
            rewritten.append(gitignore)
    return list(dict.fromkeys(rewritten))


def ignored(root: Path, rels: Sequence[str]) -> set[str]:
    """The paths git ignores (``git check-ignore``, whatever the index holds)."""
    res = scm.git(
        root,
        "check-ignore",
        "--no-index",
        "-z",
        "--stdin",
        input="".join(f"{r}\0" for r in rels).encode("utf-8", "surrogateescape"),
        check=False,
    )
    return {p for p in res.out.split("\0") if p}


def ignore_exactly(
    root: Path,
    rels: Sequence[str],
    *,
    before: Mapping[str, bytes | None] | None = None,
    hint: str,
) -> list[str]:
    """:func:`escape_gitignore`, then ask git that it ignores every one of ``rels`` with
    the lines written for it; else OperationFailed (exit 1) naming the ones it does not,
    with ``hint``. Returns the .gitignore files rewritten."""
    rewritten = escape_gitignore(root, rels, before=before)
    if not rels:
        return rewritten
    found = ignored(root, rels)
    missed = [r for r in rels if r not in found]
    if missed:
        raise OperationFailed(
            f"git would not ignore {', '.join(repr(m) for m in missed)} with the .gitignore "
            "lines written for it",
            hint,
        )
    return rewritten
