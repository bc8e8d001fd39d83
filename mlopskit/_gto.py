"""The one gateway to GTO: its tag grammar and its rules for the registry state.

GTO's own reader (``gto.api.show``) costs about 3 s on 1,500 tags (it builds pydantic
objects and re-reads every version's commit; benchmarks/p9_registry.py measures it), so
this module ports GTO's state rules (gto/base.py, gto/tag.py, gto/index.py, GTO 1.10)
onto one ``git for-each-ref`` and one ``git log --no-walk``. The port keeps GTO's data
structures, sort keys and list orders (Python's sorts are stable, so ties at the same
second resolve exactly as in GTO); tests/registry/test_registry_gto.py proves the result equal to
``gto show --json`` and ``gto history --json`` on generated histories of every event kind.

The rules, in short: events are ordered by their tag's timestamp (seconds), not by the
``#N`` counter; a stage belongs to the version whose latest still-active assignment is
newest, so unassigning the current version falls back to the previous one; an assignment
to a commit with no registered version names the commit; a deregistered version drops out
with its stages; an artifact is deprecated while ``@deprecated`` is its newest event.
``gto`` itself is imported only by the tests (and :func:`gto_tag_re` for them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import scm

# gto.constants (1.10), copied so that reading the registry does not import pydantic;
# tests/registry/test_registry_gto.py checks both patterns against gto's own.
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_FULLNAME_IN_TAG = f"(?P<dirname>[a-zA-Z0-9-_./]+=)?(?P<name>{_NAME})"
NAME_RE = re.compile(f"^{_NAME}$")
TAG_RE = re.compile(
    f"^(?P<artifact>{_FULLNAME_IN_TAG})(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))"
    r"(?P<cancel>!?))|@((?P<deprecated>deprecated)|(?P<created>created)))(#(?P<counter>[0-9]+))?$"
)

DEPRECATION = "deprecation"
REGISTRATION = "registration"
DEREGISTRATION = "deregistration"
ASSIGNMENT = "assignment"
UNASSIGNMENT = "unassignment"
COMMIT = "commit"
PRIORITY = {
    COMMIT: 0,
    DEPRECATION: 2,
    REGISTRATION: 3,
    DEREGISTRATION: 4,
    ASSIGNMENT: 5,
    UNASSIGNMENT: 6,
}
_ADDITION = {COMMIT, REGISTRATION, ASSIGNMENT}


def gto_patterns() -> tuple[str, str]:
    """GTO's own name and tag patterns (for the test that keeps the copies above honest)."""
    from gto.constants import name_re, tag_re

    return name_re.pattern, tag_re.pattern


# --------------------------------------------------------------------------- semver


def _ident_key(part: str) -> tuple[int, int, str]:
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


@dataclass(frozen=True, order=False)
class SemVer:
    """SemVer 2.0 precedence (build metadata ignored), as the ``semver`` package GTO uses."""

    text: str

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        m = re.match(f"^v{_SEMVER}$", self.text)
        assert m is not None
        pre = m["prerelease"]
        parts = tuple(_ident_key(p) for p in pre.split(".")) if pre else ()
        return (int(m["major"]), int(m["minor"]), int(m["patch"]), 0 if pre else 1, parts)

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    @staticmethod
    def valid(text: str) -> bool:
        return re.match(f"^v{_SEMVER}$", text) is not None


# --------------------------------------------------------------------------- raw git data


@dataclass(frozen=True)
class RawTag:
    name: str
    target: str
    time: int
    tagger: str
    email: str
    message: str
    annotated: bool


def read_tags(root: Path) -> list[RawTag]:
    """Every tag under refs/tags (one git call), lightweight ones marked."""
    fmt = "%1e" + "%00".join(
        [
            "%(refname:strip=2)",
            "%(objecttype)",
            "%(object)",
            "%(objectname)",
            "%(taggername)",
            "%(taggeremail)",
            "%(taggerdate:raw)",
            "%(contents)",
        ]
    )
    out = scm.git(root, "for-each-ref", f"--format={fmt}", "refs/tags").out
    found: list[RawTag] = []
    for record in out.split("\x1e"):
        if not record:
            continue
        fields = record.split("\0", 7)
        if len(fields) != 8:
            continue
        name, otype, target, obj, tagger, email, date, message = fields
        annotated = otype == "tag"
        found.append(
            RawTag(
                name=name,
                target=target if annotated else obj,
                time=int(date.split()[0]) if annotated and date else 0,
                tagger=tagger,
                email=email.strip().removeprefix("<").removesuffix(">"),
                message=message.strip(),
                annotated=annotated,
            )
        )
    return found


def commit_times(root: Path, commits: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(commits))
    if not wanted:
        return {}
    res = scm.git(
        root,
        "log",
        "--no-walk=unsorted",
        "--format=%H %ct",
        "--stdin",
        check=False,
        input="".join(f"{c}\n" for c in wanted).encode(),
    )
    times: dict[str, int] = {}
    for line in res.out.splitlines():
        sha, _, ct = line.partition(" ")
        if ct.strip().isdigit():
            times[sha] = int(ct)
    return times


# --------------------------------------------------------------------------- GTO's objects


@dataclass(eq=False)
class Event:
    kind: str
    artifact: str
    time: int
    commit: str
    author: str = ""
    email: str = ""
    message: str = ""
    tag: str | None = None
    version: str = ""
    stage: str | None = None

    @property
    def priority(self) -> int:
        return PRIORITY[self.kind]

    @property
    def addition(self) -> bool:
        return self.kind in _ADDITION

    @property
    def ref(self) -> str:
        return self.tag or self.commit


def _desc(events: list[Event]) -> list[Event]:
    """GTO's ``sorted(..., key=created_at)[::-1]``: among ties the last added comes first."""
    return sorted(events, key=lambda e: e.time)[::-1]


@dataclass(eq=False)
class VStage:
    version: str
    stage: str
    commit: str
    assignments: list[Event] = field(default_factory=list)
    unassignments: list[Event] = field(default_factory=list)

    def add(self, e: Event) -> None:
        bucket = self.assignments if e.kind == ASSIGNMENT else self.unassignments
        bucket.append(e)
        bucket.sort(key=lambda x: x.time)

    def events(self) -> list[Event]:
        return _desc(self.assignments + self.unassignments)

    @property
    def is_active(self) -> bool:
        ev = self.events()
        return bool(ev) and ev[0].kind == ASSIGNMENT

    @property
    def activated_at(self) -> int | None:
        ev = self.events()
        return ev[0].time if ev and ev[0].kind == ASSIGNMENT else None

    @property
    def created_at(self) -> int:
        adds = [e for e in self.events() if e.addition]
        return (adds or self.events())[0].time


@dataclass(eq=False)
class Version:
    artifact: str
    version: str
    commit: str
    enrichments: list[Event] = field(default_factory=list)
    registrations: list[Event] = field(default_factory=list)
    deregistrations: list[Event] = field(default_factory=list)
    stages: dict[str, VStage] = field(default_factory=dict)

    def add(self, e: Event) -> None:
        if e.kind in (ASSIGNMENT, UNASSIGNMENT):
            assert e.stage is not None
            vs = self.stages.setdefault(e.stage, VStage(self.version, e.stage, self.commit))
            vs.add(e)
            return
        bucket = {
            REGISTRATION: self.registrations,
            DEREGISTRATION: self.deregistrations,
            COMMIT: self.enrichments,
        }[e.kind]
        bucket.append(e)
        bucket.sort(key=lambda x: x.time)

    def events(self, *, direct: bool = True, indirect: bool = True) -> list[Event]:
        found = (self.registrations + self.deregistrations) if direct else []
        if indirect:
            found = found + self.enrichments + [e for s in self.stages.values() for e in s.events()]
        return _desc(found)

    @property
    def is_active(self) -> bool:
        direct = self.events(indirect=False)
        if direct:
            return direct[0].kind == REGISTRATION
        return bool(self.events(direct=False))

    @property
    def is_registered(self) -> bool:
        return bool(self.registrations)

    @property
    def discovered(self) -> bool:
        return not self.events(indirect=False)

    @property
    def authoring(self) -> Event | None:
        adds = [e for e in self.events(indirect=False) if e.addition]
        rest = self.events(direct=False) or self.events()
        return adds[0] if adds else (rest[0] if rest else None)

    @property
    def created_at(self) -> int:
        a = self.authoring
        return a.time if a else 0

    def active_vstages(self, *, ascending: bool = False) -> list[VStage]:
        found = sorted(
            (s for s in self.stages.values() if s.is_active),
            key=lambda s: s.activated_at or 0,
        )
        return found if ascending else found[::-1]


def sort_versions(versions: list[Version], *, by_time: bool) -> list[Version]:
    """GTO's ``sort_versions`` in descending order."""
    if by_time:
        return sorted(versions, key=lambda v: v.created_at)[::-1]
    sem = sorted((v for v in versions if SemVer.valid(v.version)), key=lambda v: SemVer(v.version))
    other = sorted((v for v in versions if not SemVer.valid(v.version)), key=lambda v: v.version)
    return sem[::-1] + other[::-1]


@dataclass(eq=False)
class GArtifact:
    name: str
    versions: list[Version] = field(default_factory=list)
    deprecations: list[Event] = field(default_factory=list)

    def add(self, e: Event) -> None:
        if e.kind == DEPRECATION:
            self.deprecations.append(e)
            self.deprecations.sort(key=lambda x: x.time)
            return
        self.find_version(e.version, e.commit, create=True).add(e)

    def find_version(self, name: str | None, commit: str, *, create: bool = False) -> Version:
        found = [
            v
            for v in self.versions
            if (v.version == name if name else True) and v.commit == commit and not v.discovered
        ]
        if not found:
            v = Version(self.name, name or commit, commit)
            self.versions.append(v)
            return v
        # GTO raises ManyVersions here (two versions registered on one commit); the
        # first registered one is taken.
        return found[0]

    def events(self) -> list[Event]:
        return _desc(self.deprecations + [e for v in self.versions for e in v.events()])

    @property
    def is_active(self) -> bool:
        ev = self.events()
        return bool(ev) and ev[0].kind != DEPRECATION

    @property
    def is_registered(self) -> bool:
        return any(e.kind != COMMIT for e in self.events())

    def get_versions(
        self, *, include_non_explicit: bool = False, by_time: bool = False
    ) -> list[Version]:
        found = [
            v
            for v in self.versions
            if v.is_active
            and (
                (v.is_registered and not v.discovered)
                or (include_non_explicit and not v.is_registered)
            )
        ]
        return sort_versions(found, by_time=by_time)

    def latest(self) -> Version | None:
        """``gto show``'s "version": the greatest active registered version."""
        found = self.get_versions()
        return found[0] if found else None

    def vstages(self, *, by_time: bool = True) -> dict[str, VStage]:
        """``gto show``'s stages (registered_only=False, one version per stage, by time)."""
        versions = self.get_versions(include_non_explicit=True, by_time=by_time)
        assignments = [a for v in versions for a in v.active_vstages(ascending=True)]
        if by_time:
            assignments = sorted(assignments, key=lambda a: a.created_at)[::-1]
        stages: dict[str, VStage] = {}
        for a in assignments:
            stages.setdefault(a.stage, a)
        return stages


def max_counter(raw: list[RawTag], artifact: str) -> int:
    """The greatest ``#N`` among the artifact's tags, lightweight ones included (GTO's rule
    for the next counter)."""
    best = 0
    for t in raw:
        m = TAG_RE.match(t.name)
        if m and m["counter"] and m["artifact"].replace("=", ":") == artifact:
            best = max(best, int(m["counter"]))
    return best


def _event_from_tag(t: RawTag, m: re.Match[str], artifact: str) -> tuple[str, str, str | None]:
    if m["version"]:
        return (DEREGISTRATION if m["cancel"] else REGISTRATION), m["version"], None
    if m["stage"]:
        return (UNASSIGNMENT if m["cancel"] else ASSIGNMENT), "", m["stage"]
    return DEPRECATION, "", None


def build(root: Path, raw: list[RawTag] | None = None) -> dict[str, GArtifact]:
    """GTO's registry state (GitRegistry.get_state) from the repository's tags."""
    raw = read_tags(root) if raw is None else raw
    arts: dict[str, GArtifact] = {}
    parsed: list[tuple[RawTag, re.Match[str], str]] = []
    for t in sorted(raw, key=lambda t: t.name):
        m = TAG_RE.match(t.name)
        if not m:
            continue
        name = m["artifact"].replace("=", ":")
        if t.annotated and not m["created"]:  # GTO ignores lightweight tags
            parsed.append((t, m, name))
    parsed.sort(key=lambda p: p[0].time)
    order: list[str] = []

    def get(name: str) -> GArtifact:
        if name not in order:
            order.append(name)
        return arts.setdefault(name, GArtifact(name))

    # GTO indexes deprecations, then (de)registrations, then stage tags, each by time.
    for group in ((DEPRECATION,), (REGISTRATION, DEREGISTRATION), (ASSIGNMENT, UNASSIGNMENT)):
        for t, m, name in parsed:
            kind, version, stage = _event_from_tag(t, m, name)
            if kind not in group:
                continue
            art = get(name)
            if stage is not None:
                version = art.find_version(None, t.target, create=True).version
            e = Event(kind, name, t.time, t.target, t.tagger, t.email, t.message, t.name)
            e.version, e.stage = version, stage
            art.add(e)
    commits = [v.commit for a in arts.values() for v in a.versions]
    head = scm.head(root)
    declared = _artifacts_yaml(root, head) if head else []
    times = commit_times(root, [*commits, *([head] if head and declared else [])])
    for name in order:
        for v in arts[name].versions:
            if v.commit in times:
                v.add(Event(COMMIT, name, times[v.commit], v.commit, version=v.version))
    for name in declared:  # artifacts.yaml at HEAD, as GTO's enrichment discovers them
        assert head is not None
        art = get(name)
        v = art.find_version(None, head, create=True)
        v.add(Event(COMMIT, name, times.get(head, 0), head, version=v.version))
    return {n: arts[n] for n in order}


def _artifacts_yaml(root: Path, rev: str) -> list[str]:
    from . import at_revision

    try:
        doc: Any = at_revision.load_structured(root, rev, "artifacts.yaml")
    except Exception:  # a corrupt artifacts.yaml: GTO warns and ignores it
        return []
    return [str(k) for k in doc] if isinstance(doc, dict) else []


def show(arts: dict[str, GArtifact]) -> dict[str, dict[str, Any]]:
    """``gto show --json`` (stages that have no version left out)."""
    return {
        a.name: {
            "version": (a.latest().version if a.latest() else None),  # type: ignore[union-attr]
            "stage": {s: vs.version for s, vs in sorted(a.vstages().items())},
            "registered": a.is_registered,
            "active": a.is_active,
        }
        for a in arts.values()
        if a.is_active
    }


def history(arts: dict[str, GArtifact]) -> list[dict[str, Any]]:
    """``gto history --json`` events, newest first (timestamps as epoch seconds)."""
    events = [
        {
            "timestamp": e.time,
            "artifact": e.artifact,
            "event": e.kind,
            "priority": e.priority,
            "version": e.version or None,
            "stage": e.stage,
            "commit": e.commit,
            "author": e.author,
            "author_email": e.email,
            "message": e.message,
            "ref": e.ref,
        }
        for a in arts.values()
        for e in a.events()
        if e.kind != COMMIT
    ]
    events.sort(key=lambda x: (x["timestamp"], x["priority"]))
    return events[::-1]
