"""The quality gate: rules over metrics, absolute bounds and regressions against a base.

Rules read the same in ``mlopskit.yaml`` (``gates:``) and on the command line:

    accuracy >= 0.9              absolute bound (>=, <=, >, <)
    rmse <= 3.0
    accuracy: max_drop 0.01      at most 0.01 lower than at the base
    rmse: max_increase 5%        at most 5 % higher than at the base

A metric is named by its key (``accuracy``, ``eval.loss``) or ``file:key`` when two
files hold the same key. The gate fails closed: a missing, non-numeric, NaN or
infinite value fails its rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import at_revision, dotted, metrics, project_lock, scm
from ..errors import UsageError
from ..project import Project
from ..rules import Rule, parse_rule

_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Outcome:
    rule: str
    metric: str
    passed: bool
    value: Any
    base: Any
    reason: str


@dataclass(frozen=True)
class GateResult:
    base: str | None
    outcomes: list[Outcome]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]


def _lookup(values: dict[str, dict[str, Any]], name: str) -> tuple[bool, Any]:
    """(found, value) for ``key`` or ``file:key`` across metrics files."""
    if ":" in name:
        file, key = name.split(":", 1)
        if file in values and key in values[file]:
            return True, values[file][key]
        return False, None
    hits = [v[name] for v in values.values() if name in v]
    if len(hits) > 1:
        files = [f for f, v in values.items() if name in v]
        raise UsageError(
            f"gate: metric '{name}' is in {', '.join(files)}", f"name it as '{files[0]}:{name}'"
        )
    return (True, hits[0]) if hits else (False, None)


def _describe(value: Any) -> str:
    return "NaN" if isinstance(value, float) and value != value else repr(value)


def evaluate(
    rules: list[Rule],
    head: dict[str, dict[str, Any]],
    base: dict[str, dict[str, Any]] | None,
    base_name: str | None,
    *,
    unreachable: dict[str, str] | None = None,
) -> GateResult:
    """``unreachable``: declared metrics files with no values, and why (a rule on a
    missing metric names the ones that may hold it)."""
    out: list[Outcome] = []
    for rule in rules:
        found, raw = _lookup(head, rule.metric)
        value = dotted.number(raw)
        base_raw = None
        if not found:
            reason = "metric is missing"
            file = rule.metric.split(":", 1)[0] if ":" in rule.metric else None
            named = [f"{p} is {n}" for p, n in (unreachable or {}).items() if file in (None, p)]
            if named:
                reason += ": " + "; ".join(named)
            out.append(Outcome(rule.text, rule.metric, False, None, None, reason))
            continue
        if value is None:
            out.append(
                Outcome(
                    rule.text,
                    rule.metric,
                    False,
                    raw,
                    None,
                    f"value {_describe(raw)} is not a finite number",
                )
            )
            continue
        if not rule.needs_base:
            ok = _OPS[rule.kind](value, rule.threshold)
            reason = "" if ok else f"{value:g} is not {rule.kind} {rule.threshold:g}"
            out.append(Outcome(rule.text, rule.metric, ok, value, None, reason))
            continue
        bfound, base_raw = _lookup(base or {}, rule.metric)
        base_value = dotted.number(base_raw)
        if not bfound or base_value is None:
            why = (
                f"no value at the base {base_name}"
                if not bfound
                else f"base value {_describe(base_raw)} is not a finite number"
            )
            out.append(Outcome(rule.text, rule.metric, False, value, base_raw, why))
            continue
        delta = value - base_value if rule.kind == "max_increase" else base_value - value
        limit = rule.threshold * abs(base_value) / 100 if rule.percent else rule.threshold
        ok = delta <= limit + 1e-12
        word = "rose" if rule.kind == "max_increase" else "dropped"
        shown = f"{rule.threshold:g}%" if rule.percent else f"{rule.threshold:g}"
        reason = (
            "" if ok else f"{word} by {delta:g} (from {base_value:g} to {value:g}), limit {shown}"
        )
        out.append(Outcome(rule.text, rule.metric, ok, value, base_value, reason))
    return GateResult(base=base_name, outcomes=out)


def default_base(project: Project) -> str:
    """The merge-base of HEAD with the main branch (origin's copy when there is one)."""
    main = project.config.git.main_branch
    root = project.root
    for ref in (f"origin/{main}", main):
        if scm.resolve(root, ref):
            res = scm.git(root, "merge-base", "HEAD", ref, check=False)
            if res.returncode == 0 and res.out.strip():
                return res.out.strip()
    return "HEAD"


_ZERO = re.compile(r"^0{40}$")


def previous_tip(project: Project, before: str | None) -> str:
    """CT's base: the tip of the branch before the push (``github.event.before``), or,
    when that is missing, all zeros (a new branch) or unknown here, the last commit
    before HEAD whose dvc.lock changed (what the previous training produced)."""
    root = project.root
    if before and not _ZERO.match(before):
        sha = scm.resolve(root, f"{before}^{{commit}}")
        if sha:
            return sha
    if scm.resolve(root, "HEAD^"):
        res = scm.git(root, "log", "-1", "--format=%H", "HEAD^", "--", "dvc.lock", check=False)
        if res.returncode == 0 and res.out.strip():
            return res.out.strip()
        return scm.resolve(root, "HEAD^") or "HEAD"
    return "HEAD"


REPRO_OUTCOMES = ("success", "failure", "cancelled", "skipped")
PASSED, FAILED, NOT_EVALUATED, NO_GATE = "passed", "failed", "not evaluated", "no gate"
NO_REMOTE_FIX = (
    "mlopskit remote add storage s3://BUCKET/PATH --default (or gs://, azure://, ssh://), "
    "set ci.remote.kind in mlopskit.yaml to match, && mlopskit ci generate, then commit "
    "and store the remote's credentials as the secrets ci generate names"
)


@dataclass(frozen=True)
class Verdict:
    """What a run may claim: ``passed`` only when this run reproduced the pipeline (or,
    outside CI, was not asked to), dvc.lock matches and every rule holds."""

    state: str  # passed, failed, not evaluated, no gate
    reason: str = ""
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.state == PASSED


def verdict(
    result: GateResult | None,
    *,
    repro: str = "",
    fork: bool = False,
    remote_kind: str = "",
    lock_in_sync: bool | None = None,
    out_of_sync: list[str] | None = None,
) -> Verdict:
    """The verdict of a CI run (``repro``: the outcome of its Reproduce step, "" outside
    CI) or of a local check."""
    if repro and repro != "success":
        if remote_kind == "none":
            return Verdict(
                NOT_EVALUATED,
                "CI cannot reach a DVC remote (ci.remote.kind: none), so a fresh clone has "
                f"no DVC-tracked data to reproduce the pipeline from (Reproduce: {repro})",
                NO_REMOTE_FIX,
            )
        if fork:
            why = (
                "pull requests from forks do not run the pipeline on this repository's runners"
                if repro == "skipped"
                else "pull requests from forks get no credentials for the DVC remote, and "
                f"this run could not reproduce the pipeline (Reproduce: {repro})"
            )
            return Verdict(
                NOT_EVALUATED,
                why,
                "a maintainer pushes the branch to this repository to run the gate",
            )
        return Verdict(
            FAILED,
            f"this run did not reproduce the pipeline (Reproduce: {repro}); "
            "the committed metrics are not evidence",
            "see the Reproduce step's log (is the DVC remote reachable, are its credentials set?)",
        )
    if lock_in_sync is False:
        stale = ", ".join((out_of_sync or [])[:8])
        if repro:
            return Verdict(FAILED, f"dvc.lock does not match the workspace after repro: {stale}")
        return Verdict(
            NOT_EVALUATED,
            f"dvc.lock is out of date ({stale}): the metrics are not from this workspace",
            "run mlopskit repro",
        )
    if result is None:
        return Verdict(NO_GATE)
    if result.passed:
        return Verdict(PASSED)
    return Verdict(FAILED, "; ".join(f"{o.rule}: {o.reason}" for o in result.failed))


_ABSENT = ("deleted", "not in cache")


def _stale(changes: Any) -> bool:
    """Whether a stage's ``dvc status`` entry says dvc.lock does not describe it: a changed
    dep, param, command or output; a dep or output that is merely absent (a CI run pulls
    only what the stages it runs need) leaves the lock true."""
    for change in changes if isinstance(changes, list) else [changes]:
        if not isinstance(change, dict):
            return True
        for key, value in change.items():
            if key in ("changed deps", "changed outs") and isinstance(value, dict):
                if any(v not in _ABSENT for v in value.values()):
                    return True
            else:
                return True
    return False


def lock_status(project: Project) -> tuple[bool | None, list[str]]:
    """(dvc.lock matches the workspace, the stages and files that do not)."""
    from .. import _dvc
    from ..errors import MlopskitError

    try:
        with _dvc.open_repo(project.root) as repo, _dvc.translated():
            status = repo.status()
    except MlopskitError:
        return None, []
    stale = sorted(name for name, changes in status.items() if _stale(changes))
    return not stale, stale


def check(
    project: Project,
    *,
    base: str | None = None,
    rules: list[str] | None = None,
    config_rules: bool = True,
) -> GateResult:
    """Evaluate the gate on the workspace's metrics against ``base`` (default: merge-base)."""
    parsed = [parse_rule(r) for r in (rules or [])]
    if config_rules:
        parsed = [parse_rule(r) for r in project.config.gates] + parsed
    if not parsed:
        raise UsageError(
            "gate: no rules",
            "add one to gates: in mlopskit.yaml with 'mlopskit gate add RULE', or pass --rule",
        )
    root: Path = project.root
    # Read as `dvc metrics diff` reads them: a cached metrics file that was not pulled
    # (a fresh clone) from the cache, else the remote; one read from nowhere is named.
    head = metrics.reach(root, None, need_remote=False)
    base_values = None
    base_name = None
    if any(r.needs_base for r in parsed):
        base_name = base or default_base(project)
        sha = at_revision.resolve_rev(root, base_name)
        base_values = metrics.reach(root, sha, need_remote=False).values
    return evaluate(parsed, head.values, base_values, base_name, unreachable=head.notes())


@dataclass(frozen=True)
class GateEdit:
    changed: list[str]  # rules added (gate add) or removed (gate remove)
    rules: list[str]  # every rule in mlopskit.yaml afterwards
    notes: list[str]  # warnings worth showing (a rule that reads against its metric)
    commit: str | None = None


def _rule_key(rule: Any) -> str:
    r = parse_rule(rule)
    return f"{r.metric} {r.kind} {r.threshold!r}{'%' if r.percent else ''}"


def _load_config_doc(project: Project) -> tuple[Path, str | None, Any]:
    from ruamel.yaml.comments import CommentedMap

    from .. import config, yamlio

    path = project.root / config.FILENAME
    text = path.read_text(encoding="utf-8") if path.exists() else None
    doc = yamlio.load(path, display=config.FILENAME, missing_ok=True)
    if doc is None:
        doc = CommentedMap()
    config.parse(doc)  # a broken mlopskit.yaml is reported before it is edited
    return path, text, doc


def _write_config_doc(
    project: Project, path: Path, text: str | None, doc: Any, *, commit: bool, message: str
) -> str | None:
    from .. import config, project_lock, yamlio

    config.parse(doc)
    with project_lock.held(project.tmp_dir):
        yamlio.dump(path, doc, like=text)
        if not commit:
            return None
        project.require_branch("gate --commit")
        return scm.commit_paths(
            project.root, [path.name], message, max_file_mb=project.config.git.max_file_mb
        )


def _metric_names(values: dict[str, dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for file, keys in values.items():
        for key in keys:
            names += [key, f"{file}:{key}"]
    return names


def _notes(rule: Rule, project: Project) -> list[str]:
    from .. import config

    direction = project.config.metrics.direction(rule.metric)
    if direction == config.LOWER and rule.kind == "max_drop":
        return [
            f"'{rule.metric}' is lower-is-better: '{rule.text}' limits how much it may fall; "
            f"to stop it getting worse, use '{rule.metric}: max_increase ...'"
        ]
    if direction == config.HIGHER and rule.kind == "max_increase":
        return [
            f"'{rule.metric}' is higher-is-better: '{rule.text}' limits how much it may rise; "
            f"to stop it getting worse, use '{rule.metric}: max_drop ...'"
        ]
    return []


def add_rules(
    project: Project,
    rules: list[str],
    *,
    force: bool = False,
    commit: bool = False,
    wait: bool = False,
) -> GateEdit:
    """Add rules to ``gates:`` in mlopskit.yaml (keeping its comments). A rule naming a
    metric the workspace's metrics files do not hold is refused (did-you-mean) unless
    ``force``; with no metrics produced yet, any metric is accepted."""
    import difflib

    parsed = [parse_rule(r) for r in rules]
    if not parsed:
        raise UsageError("gate add: no rule given", "for example: mlopskit gate add 'rmse <= 3.0'")
    # Read as `metrics show` reads them: a cached metrics file not pulled counts too.
    known = _metric_names(metrics.reach(project.root, None, need_remote=False).values)
    if known and not force:
        for r in parsed:
            if r.metric not in known:
                close = difflib.get_close_matches(r.metric, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else f"metrics: {', '.join(known)}; "
                raise UsageError(
                    f"gate rule '{r.text}': no metric '{r.metric}' in the metrics files",
                    f"{hint}pass --force to add it anyway",
                )
    with project_lock.held(project.tmp_dir, wait=wait):  # read, change and write as one
        return _add(project, parsed, commit=commit)


def _add(project: Project, parsed: list[Rule], *, commit: bool) -> GateEdit:
    from ruamel.yaml.comments import CommentedSeq

    from .. import config, yamlio

    path, text, doc = _load_config_doc(project)
    gates = doc.get("gates")
    if gates is None:
        gates = doc["gates"] = CommentedSeq()
    if not isinstance(gates, CommentedSeq):
        raise UsageError(f"{config.FILENAME}: 'gates' must be a list of rules")
    have = {_rule_key(g) for g in gates}
    added: list[str] = []
    notes: list[str] = []
    for r in parsed:
        if _rule_key(r.text) in have:
            continue
        yamlio.append(doc, "gates", r.text)
        have.add(_rule_key(r.text))
        added.append(r.text)
        notes += _notes(r, project)
    sha = None
    if added:
        sha = _write_config_doc(
            project, path, text, doc, commit=commit, message="gate: add " + "; ".join(added)
        )
    return GateEdit(added, [str(g) for g in dotted.plain(gates)], notes, sha)


def remove_rules(
    project: Project, rules: list[str], *, commit: bool = False, wait: bool = False
) -> GateEdit:
    """Remove rules from ``gates:`` in mlopskit.yaml; an unknown rule is exit 2."""
    with project_lock.held(project.tmp_dir, wait=wait):  # read, change and write as one
        return _remove(project, rules, commit=commit)


def _remove(project: Project, rules: list[str], *, commit: bool) -> GateEdit:
    import difflib

    from .. import config, yamlio

    path, text, doc = _load_config_doc(project)
    gates = doc.get("gates") or []
    current = [parse_rule(g).text for g in gates]
    removed: list[str] = []
    for rule in rules:
        key = _rule_key(rule)
        idx = next((i for i, g in enumerate(gates) if _rule_key(g) == key), None)
        if idx is None:
            close = difflib.get_close_matches(rule, current, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see 'mlopskit gate list'"
            raise UsageError(f"{config.FILENAME}: no gate rule '{rule}'", hint)
        removed.append(parse_rule(gates[idx]).text)
        yamlio.delete(doc, "gates", idx)
    sha = None
    if removed:
        sha = _write_config_doc(
            project, path, text, doc, commit=commit, message="gate: remove " + "; ".join(removed)
        )
    return GateEdit(removed, [parse_rule(g).text for g in gates], [], sha)
