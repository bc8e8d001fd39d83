"""Every command and option the CLI has is documented in a README command table, and
every command and option a table documents exists: the click tree is walked, the tables'
first cells are parsed, and the two must agree. Each option is also used by some test."""

from __future__ import annotations

import re
from pathlib import Path

import click

from mlopskit.cli import cli

ROOT = Path(__file__).resolve().parents[2]
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def click_commands() -> dict[str, click.Command]:
    """'data add' -> its click command, every visible leaf of the tree."""
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                if not sub.hidden:
                    walk(sub, [*path, name])
        else:
            out[" ".join(path)] = cmd

    walk(cli, [])
    return out


def spellings(cmd: click.Command) -> list[list[str]]:
    """Each visible option of ``cmd`` as the list of its spellings (-h/--help left out)."""
    return [
        [*p.opts, *p.secondary_opts]
        for p in cmd.params
        if isinstance(p, click.Option) and not p.hidden and "--help" not in p.opts
    ]


def readme_rows() -> list[tuple[str, list[str], str]]:
    """(command, signature options, whole row) for each command a README table documents:
    a row whose first cell starts with `mlopskit ...`; further spans in that cell
    (`gate remove RULE...`) belong to the first span's group."""
    commands = click_commands()
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("| `mlopskit "):
            continue
        first = line.split(" | ", 1)[0]
        group = ""
        spans = []
        for span in re.findall(r"`([^`]+)`", first):
            words = span.removeprefix("mlopskit ").split()
            # `data push\|pull ...` documents both commands.
            alt = next((i for i, w in enumerate(words[:2]) if "\\|" in w), None)
            if alt is None:
                spans.append((span, words))
            else:
                for w in words[alt].split("\\|"):
                    spans.append((span, [*words[:alt], w, *words[alt + 1 :]]))
        for span, words in spans:
            candidates = [words, [group, *words]] if group else [words]
            for ws in candidates:
                found = [
                    " ".join(ws[:n]) for n in range(len(ws), 0, -1) if " ".join(ws[:n]) in commands
                ]
                if found:
                    name = found[0]
                    group = name.split()[0]
                    rest = " ".join(words[len(name.split()) - (ws is not words) :])
                    rows.append((name, OPTION.findall(rest), line))
                    break
            else:
                raise AssertionError(f"README documents `{span}`, which is no command: {line}")
    return rows


def test_every_command_is_documented_and_every_documented_command_exists() -> None:
    documented = {name for name, _, _ in readme_rows()}
    assert documented, "no command table found in README.md"
    missing = sorted(set(click_commands()) - documented)
    assert missing == [], f"commands with no README table row: {missing}"


def locking_commands() -> set[str]:
    """The commands README's Commands section says hold the project lock (each takes
    `--wait`): `data add/push/pull` names three."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"Commands that change the repository \((.*?)\) hold a project lock", text, re.S)
    assert m, "README no longer says which commands hold the project lock"
    out = set()
    for span in re.findall(r"`([^`]+)`", m.group(1)):
        *group, last = span.split()
        out |= {" ".join([*group, w]) for w in last.split("/")}
    return out


def test_every_option_is_documented_and_every_documented_option_exists() -> None:
    commands = click_commands()
    rows: dict[str, str] = {}
    problems = []
    locking = locking_commands()
    for name, cmd in commands.items():
        takes_wait = any("--wait" in sp for sp in spellings(cmd))
        if takes_wait != (name in locking):
            problems.append(
                f"{name} --wait: takes it {takes_wait}, README's lock list says {not takes_wait}"
            )
    for name, opts, line in readme_rows():
        rows[name] = rows.get(name, "") + line
        known = {o for sp in spellings(commands[name]) for o in sp}
        problems += [f"{name} {o}: documented, not an option" for o in opts if o not in known]
    for name, cmd in commands.items():
        for sp in spellings(cmd):
            if sp == ["--wait"]:
                continue  # checked against the lock list above
            if not any(o in OPTION.findall(rows[name]) for o in sp):
                problems.append(f"{name} {'/'.join(sp)}: an option, not in its README row")
    assert problems == []


# Options no test passes yet. This list may only shrink: the test fails when one here
# gets a test (take it off) as when one not here has none.
UNTESTED: set[str] = set()


def test_every_option_is_passed_by_some_test() -> None:
    """A weak check (the option's spelling as a quoted argument somewhere under tests/),
    but it names the options nothing exercises."""
    tests = "".join(
        p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_documented.py"
    )
    unused = set()
    for name, cmd in click_commands().items():
        for sp in spellings(cmd):
            if not any(re.search(rf"[\"']{re.escape(o)}[\"'=]", tests) for o in sp):
                unused.add(f"{name} {'/'.join(sp)}")
    assert unused == UNTESTED
