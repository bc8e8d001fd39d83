"""Malformed YAML everywhere (C4.24-25): a syntax error or a duplicate key in params.yaml,
dvc.yaml, dvc.lock or mlopskit.yaml is exit 2 with one line ``FILE:LINE: message`` from
every command that reads the file, never DVC's "YAML file structure is corrupted", and
nothing in the project changes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlopskit import errors

from ..conftest import Repo, run_cli, run_subprocess

COMMANDS = [
    ("repro",),
    ("repro", "--dry"),
    ("validate",),
    ("stage", "list"),
    ("exp", "run"),
    ("report", "--no-plots"),
    ("metrics", "show"),
    ("metrics", "diff"),
    ("params", "show"),
    ("params", "diff"),
]
# Which of the commands read which file (mlopskit.yaml and dvc.yaml: all of them).
READERS = {
    "params.yaml": [c for c in COMMANDS if c[0] != "metrics"],
    "dvc.yaml": COMMANDS,
    "dvc.lock": [c for c in COMMANDS if c[0] not in ("metrics", "params")],
    "mlopskit.yaml": COMMANDS,
}

_SCALAR_ENTRY = re.compile(r"^( +)([A-Za-z_]+): [^\s>|-].*$")


def break_syntax(path: Path) -> tuple[int, str]:
    """Insert ``oops: a: b`` (a mapping value where none is allowed) as line 4."""
    lines = path.read_text().splitlines()
    lines.insert(3, "oops: a: b")
    path.write_text("\n".join(lines) + "\n")
    return 4, "mapping values are not allowed here"


def duplicate_key(path: Path) -> tuple[int, str]:
    """Repeat the first nested ``key: scalar`` line right after itself."""
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if _SCALAR_ENTRY.match(line))
    key = _SCALAR_ENTRY.match(lines[index])[2]  # type: ignore[index]
    lines.insert(index + 1, lines[index])
    path.write_text("\n".join(lines) + "\n")
    return index + 2, f"duplicate key '{key}'"


def _state(repo: Repo) -> tuple[str, str, str, dict[str, bytes]]:
    watched = ("params.yaml", "dvc.yaml", "dvc.lock", "mlopskit.yaml")
    return (
        repo.status(),
        repo.git("for-each-ref"),
        repo.git("stash", "list"),
        {name: (repo.root / name).read_bytes() for name in watched},
    )


def _check(code: int, err: str, where: str, words: str) -> None:
    assert code == errors.USAGE, err
    assert "Traceback" not in err
    assert "structure is corrupted" not in err
    assert "unable to read" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {where}: "), err
    assert words in lines[0], err


@pytest.mark.parametrize("kind", [break_syntax, duplicate_key], ids=["syntax", "duplicate"])
@pytest.mark.parametrize("name", list(READERS))
def test_every_reader_reports_file_and_line(trained: Repo, name: str, kind: object) -> None:
    line, words = kind(trained.root / name)  # type: ignore[operator]
    before = _state(trained)
    assert f" M {name}" in before[0]
    for command in READERS[name]:
        code, _out, err = run_cli(*command, cwd=trained.root)
        _check(code, err, f"{name}:{line}", words)
        assert _state(trained) == before, command


def test_subprocess_repro_duplicate_param(trained: Repo) -> None:
    """The real ``mlopskit`` process: a param given twice stops repro before any stage."""
    params = trained.root / "params.yaml"
    text = params.read_text()
    params.write_text(text.replace("  C: 1.0\n", "  C: 1.0\n  C: 0.5\n"))
    line = params.read_text().splitlines().index("  C: 0.5") + 1
    before = _state(trained)
    res = run_subprocess("repro", cwd=trained.root, timeout=120)
    _check(res.returncode, res.stderr, f"params.yaml:{line}", "duplicate key 'C'")
    assert _state(trained) == before


@pytest.mark.parametrize("name", ["dvc.lock", "dvc.yaml"])
def test_schema_error_names_the_key_line(trained: Repo, name: str) -> None:
    """Well-formed YAML that breaks DVC's schema: DVC's own validation error, one line."""
    path = trained.root / name
    lines = path.read_text().splitlines()
    stage = lines.index("stages:") + 1  # the first stage's name
    lines.insert(stage + 1, "    bogus: 1")
    path.write_text("\n".join(lines) + "\n")
    before = _state(trained)
    for command in (("repro", "--dry"), ("stage", "list"), ("validate",)):
        code, _out, err = run_cli(*command, cwd=trained.root)
        _check(code, err, f"{name}:{stage + 2}", "extra keys not allowed")
        assert "bogus" in err
        assert _state(trained) == before
