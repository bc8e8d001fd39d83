"""The registry state equals GTO's: the real ``gto show --json`` and ``gto history --json``
(subprocesses) against mlopskit's reader, over histories of every GTO event kind.

Histories are written with plain git (and, in one case, with the ``gto`` CLI itself):
registrations, numbered and simple-notation assignments, unassignments, deregistrations,
deprecations, assignments to unregistered commits, several artifacts, stages outside
``registry.stages``, and events in the same second. Random histories come from fixed
seeds, so a failure is reproducible.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlopskit import _gto
from mlopskit.registry import tags as registry

from ..conftest import git, run_cli

GTO = str(Path(sys.executable).parent / "gto")
T0 = 1_760_000_000


def gto_json(root: Path, *args: str) -> object:
    res = subprocess.run(
        [GTO, *args, "--json"], cwd=root, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@dataclass
class History:
    root: Path
    commits: list[str] = field(default_factory=list)
    clock: int = T0 + 1000

    def commit(self, when: int) -> str:
        env = {
            **os.environ,
            "GIT_COMMITTER_DATE": f"@{when} +0000",
            "GIT_AUTHOR_DATE": f"@{when} +0000",
        }
        n = len(self.commits)
        (self.root / "f.txt").write_text(f"{n}\n")
        subprocess.run(["git", "add", "f.txt"], cwd=self.root, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", f"c{n}"], cwd=self.root, check=True, env=env)
        sha = git(self.root, "rev-parse", "HEAD").strip()
        self.commits.append(sha)
        return sha

    def tag(self, name: str, commit: str, *, when: int | None = None, light: bool = False) -> None:
        if when is None:
            self.clock += 1
            when = self.clock
        env = {**os.environ, "GIT_COMMITTER_DATE": f"@{when} +0000"}
        args = ["git", "tag"] if light else ["git", "tag", "-a", "-m", f"event {name}"]
        subprocess.run([*args, "--", name, commit], cwd=self.root, check=True, env=env)


def new_history(tmp_path: Path, n_commits: int = 6) -> History:
    root = tmp_path / "reg"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".dvc").mkdir()  # mlopskit finds the project by it; GTO needs only git
    h = History(root)
    for i in range(n_commits):
        h.commit(T0 + i * 10)
    return h


def _epoch(stamp: str) -> int:
    return int(dt.datetime.fromisoformat(stamp).timestamp())


def assert_equal_to_gto(root: Path) -> None:
    ours = _gto.build(root)
    theirs = gto_json(root, "show")
    assert isinstance(theirs, dict)
    expected = {
        name: {**d, "stage": {s: v for s, v in d["stage"].items() if v is not None}}
        for name, d in theirs.items()
    }
    assert _gto.show(ours) == expected
    events = gto_json(root, "history")
    assert isinstance(events, list)
    for e in events:
        e["timestamp"] = _epoch(e["timestamp"])
    assert _gto.history(ours) == events
    # What mlopskit prints is that state: latest, stages, deprecated.
    code, out, err = run_cli("model", "list", "--json", cwd=root)
    assert code == 0, err
    listed = {row["artifact"]: row for row in json.loads(out)}
    for name, d in expected.items():
        assert listed[name]["latest"] == d["version"]
        assert listed[name]["stages"] == d["stage"]
        assert listed[name]["deprecated"] is False
    for name in set(listed) - set(expected):
        assert listed[name]["deprecated"] is True


# --------------------------------------------------------------------------- named histories


def test_unassign_falls_back_to_the_previous_assignment(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits
    h.tag("m@v1.0.0", c[0])
    h.tag("m@v1.1.0", c[1])
    h.tag("m#prod#1", c[0])
    h.tag("m#prod#2", c[1])
    h.tag("m#prod!#3", c[1])
    assert_equal_to_gto(h.root)
    assert registry.state(h.root)["m"].stages == {"prod": "v1.0.0"}


def test_mlopskit_unpromote_reports_the_fallback(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits
    h.tag("m@v1.0.0", c[0])
    h.tag("m@v1.1.0", c[1])
    h.tag("m#prod#1", c[0])
    h.tag("m#prod#2", c[1])
    (h.root / "mlopskit.yaml").write_text("project:\n  name: t\n")
    code, out, err = run_cli("model", "unpromote", "m", "--stage", "prod", cwd=h.root)
    assert code == 0, err
    assert "m@v1.1.0 left prod" in out and "prod is now m@v1.0.0" in out
    assert_equal_to_gto(h.root)


def test_simple_notation_beats_older_numbered_tags(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits
    h.tag("m@v1.0.0", c[0])
    h.tag("m@v2.0.0", c[1])
    h.tag("m#prod#7", c[0])
    h.tag("m#prod", c[1])  # newer, counter-less
    assert_equal_to_gto(h.root)
    assert registry.state(h.root)["m"].stages == {"prod": "v2.0.0"}


def test_deregistration_deprecation_and_unregistered_commits(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits
    h.tag("a@v1.0.0", c[0])
    h.tag("a@v1.1.0", c[1])
    h.tag("a#staging#1", c[1])
    h.tag("a@v1.1.0!", c[1])  # deregistered: its stage goes with it
    h.tag("b@v0.1.0", c[2])
    h.tag("b@deprecated", c[2])
    h.tag("c#qa#1", c[3])  # an assignment to a commit nobody registered
    h.tag("d@v1.0.0", c[4])
    h.tag("d@deprecated", c[4])
    h.tag("d@v1.0.1", c[5])  # registering again revives it, in GTO
    h.tag("e@v1.0.0", c[5], light=True)  # lightweight: not GTO's
    assert_equal_to_gto(h.root)
    st = registry.state(h.root)
    assert st["a"].latest == "v1.0.0" and st["a"].stages == {}
    assert st["b"].deprecated and not st["d"].deprecated
    assert st["c"].stages == {"qa": c[3]}
    code, _, err = run_cli("model", "get", "c#qa", cwd=h.root)
    assert code == 2 and "no registered version" in err


def test_same_second_events(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits
    t = h.clock + 5
    h.tag("m@v1.0.0", c[0], when=t)
    h.tag("m#dev#1", c[0], when=t)
    h.tag("m#dev!#2", c[0], when=t)
    h.tag("m@v1.1.0", c[1], when=t + 1)
    h.tag("m#prod#3", c[0], when=t + 1)
    h.tag("m#prod#4", c[1], when=t + 1)
    h.tag("n@v1.0.0", c[2], when=t + 2)
    h.tag("n@deprecated", c[2], when=t + 2)
    h.tag("o@v1.0.0", c[3], when=t + 3)
    h.tag("o@v1.0.0!", c[3], when=t + 3)
    assert_equal_to_gto(h.root)


def test_a_burst_of_mlopskit_events_reads_back_in_the_order_made(tmp_path: Path) -> None:
    """promote, unpromote and promote again within one second: GTO orders by the tags'
    creation second, so with git's own time the unassignment and the new assignment tie and
    `gto show` said "no stage". mlopskit dates each event after the artifact's newest tag:
    gto and mlopskit both see prod at v1.0.0, and the next unpromote finds it."""
    h = new_history(tmp_path)
    (h.root / "mlopskit.yaml").write_text("project:\n  name: t\n")
    h.tag("m@v1.0.0", h.commits[0], when=int(time.time()))
    for args in (["promote", "m", "v1.0.0"], ["unpromote", "m"], ["promote", "m", "v1.0.0"]):
        code, out, err = run_cli("model", *args, "--stage", "prod", cwd=h.root)
        assert code == 0, err
    stamps = [
        int(git(h.root, "for-each-ref", "--format=%(creatordate:unix)", f"refs/tags/{t}"))
        for t in ("m@v1.0.0", "m#prod#1", "m#prod!#2", "m#prod#3")
    ]
    assert stamps == sorted(set(stamps)), stamps  # strictly increasing
    assert gto_json(h.root, "show")["m"]["stage"]["prod"] == "v1.0.0"  # type: ignore[index]
    assert_equal_to_gto(h.root)
    code, out, err = run_cli("model", "unpromote", "m", "--stage", "prod", cwd=h.root)
    assert code == 0 and "m@v1.0.0 left prod (m#prod!#4)" in out, err
    assert_equal_to_gto(h.root)


def test_tags_written_by_gto_itself(tmp_path: Path) -> None:
    h = new_history(tmp_path)
    c = h.commits

    def run(*args: str) -> None:
        res = subprocess.run([GTO, *args], cwd=h.root, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr

    git(h.root, "config", "user.name", "gto user")  # dulwich ignores GIT_CONFIG_GLOBAL
    git(h.root, "config", "user.email", "gto@example.invalid")
    run("register", "m", c[0], "--version", "v1.0.0")
    run("register", "m", c[1], "--version", "v1.1.0")
    run("assign", "m", "--version", "v1.0.0", "--stage", "prod", "--simple", "true")
    run("assign", "m", "--version", "v1.1.0", "--stage", "canary")
    run("deprecate", "m", "v1.1.0", "canary")  # GTO's unassign
    run("register", "x", c[2], "--version", "v0.0.1")
    run("deprecate", "x", "v0.0.1")  # GTO's deregistration
    run("register", "y", c[3], "--version", "v0.0.1")
    run("deprecate", "y")
    tags = set(git(h.root, "tag", "-l").split())
    assert {"m#prod", "m#canary!#2", "x@v0.0.1!", "y@deprecated"} <= tags, tags
    assert_equal_to_gto(h.root)


def test_our_patterns_are_gtos() -> None:
    assert (_gto.NAME_RE.pattern, _gto.TAG_RE.pattern) == _gto.gto_patterns()


@pytest.mark.parametrize(
    "versions",
    [
        ["v1.0.0", "v1.0.0-rc.1", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta"],
        ["v1.0.0-beta.11", "v1.0.0-beta.2", "v1.0.0-beta", "v1.0.0-rc.1", "v0.9.9"],
        ["v2.0.0", "v10.0.0", "v1.10.0", "v1.9.0", "v1.0.0-1", "v1.0.0-a1"],
    ],
)
def test_semver_order_is_semvers(versions: list[str]) -> None:
    import semver  # GTO's own dependency

    ours = sorted(versions, key=_gto.SemVer)
    theirs = sorted(versions, key=lambda v: semver.Version.parse(v[1:]))
    assert ours == theirs


# --------------------------------------------------------------------------- random histories


def _random_history(h: History, rnd: random.Random) -> None:
    stages = ["dev", "staging", "prod", "qa", "canary-eu"]
    for a in ("alpha", "beta", "team/gamma"):
        registered: dict[str, str] = {}
        counter = 0
        for _ in range(rnd.randint(4, 14)):
            kind = rnd.choices(
                ["register", "assign", "simple", "unassign", "deregister", "deprecate", "light"],
                weights=[5, 6, 2, 3, 1, 1, 1],
            )[0]
            commit = rnd.choice(h.commits)
            same = rnd.random() < 0.15  # share the previous event's second
            when = h.clock if same else None
            counter += 1
            if kind == "register":
                v = f"v{rnd.randint(0, 2)}.{rnd.randint(0, 3)}.{rnd.randint(0, 2)}"
                if rnd.random() < 0.1:
                    v += "-rc.1"
                if v in registered or commit in registered.values():
                    continue
                registered[v] = commit
                h.tag(f"{a}@{v}", commit, when=when)
            elif kind in ("assign", "simple", "unassign"):
                target = (
                    rnd.choice(list(registered.values()))
                    if registered and rnd.random() < 0.9
                    else commit
                )
                st = rnd.choice(stages)
                bang = "!" if kind == "unassign" else ""
                name = f"{a}#{st}{bang}" + ("" if kind == "simple" else f"#{counter}")
                if kind == "simple" and git(h.root, "tag", "-l", name).strip():
                    continue
                h.tag(name, target, when=when)
            elif kind == "deregister" and registered:
                v = rnd.choice(list(registered))
                if git(h.root, "tag", "-l", f"{a}@{v}!").strip():
                    continue
                h.tag(f"{a}@{v}!", registered[v], when=when)
            elif kind == "deprecate":
                if git(h.root, "tag", "-l", f"{a}@deprecated").strip():
                    continue
                h.tag(f"{a}@deprecated", commit, when=when)
            elif kind == "light":
                h.tag(f"{a}#prod#{counter}", commit, light=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_random_histories_equal_gto(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    h = new_history(tmp_path, n_commits=5)
    # a commit newer than some tags: GTO counts commit times when deciding deprecation
    h.commit(h.clock + rnd.randint(0, 40))
    _random_history(h, rnd)
    assert_equal_to_gto(h.root)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_mlopskits_own_commands_equal_gto(tmp_path: Path, seed: int) -> None:
    """promote / unpromote / deprecate as fast as mlopskit runs them (many events share a
    second), on versions registered with GTO's tags, then compared with gto."""
    from mlopskit import errors as err
    from mlopskit.project import Project

    rnd = random.Random(seed)
    h = new_history(tmp_path)
    (h.root / "mlopskit.yaml").write_text("project:\n  name: t\n")
    for i, commit in enumerate(h.commits[:4]):
        h.tag(f"m@v1.{i}.0", commit)
    project = Project(root=h.root)
    for _ in range(12):
        op = rnd.choice(["promote", "promote", "unpromote", "deprecate"])
        stage = rnd.choice(["dev", "prod", "qa"])
        try:
            if op == "promote":
                registry.promote(project, "m", f"v1.{rnd.randint(0, 3)}.0", stage)
            elif op == "unpromote":
                registry.unpromote(project, "m", stage)
            else:
                registry.deprecate(project, "m")
                if not git(h.root, "tag", "-l", "m@v2.0.0").strip():
                    # a newer event revives it, in GTO (mlopskit's tags carry the real time)
                    h.tag("m@v2.0.0", h.commits[4], when=int(time.time()) + 1)
        except (err.UsageError, err.PreconditionError):
            continue  # refused (already there, nothing to unpromote...): nothing written
    stage_tags = [t for t in git(h.root, "tag", "-l").split() if "#" in t]
    assert len(stage_tags) >= 4, stage_tags
    assert_equal_to_gto(h.root)
