"""mlopskit check: the quality gate fails closed."""

from __future__ import annotations

import json

import pytest

from mlopskit import errors, rules
from mlopskit.report import gate

from ..conftest import Repo, run_cli


def setup_metrics(repo: Repo, base: dict[str, object], head: dict[str, object]) -> None:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("m.json", json.dumps(base))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.write("m.json", json.dumps(head))


@pytest.mark.parametrize(
    ("text", "kind", "threshold", "percent"),
    [
        ("accuracy >= 0.9", ">=", 0.9, False),
        ("rmse<=3", "<=", 3.0, False),
        ("eval.loss < 1e-2", "<", 0.01, False),
        ("accuracy: max_drop 0.01", "max_drop", 0.01, False),
        ("rmse: max_increase 5%", "max_increase", 5.0, True),
        ({"rmse": "max_increase 5%"}, "max_increase", 5.0, True),
        ("m.json:acc >= 0.5", ">=", 0.5, False),
    ],
)
def test_parse_rules(text: object, kind: str, threshold: float, percent: bool) -> None:
    r = rules.parse_rule(text)
    assert (r.kind, r.threshold, r.percent) == (kind, threshold, percent)


@pytest.mark.parametrize(
    "text", ["accuracy", "acc >= high", "acc: max_drop -1", "acc => 1", "acc >= nan", ""]
)
def test_malformed_rules_exit_2(repo: Repo, text: str) -> None:
    setup_metrics(repo, {"acc": 1}, {"acc": 1})
    code, _, err = run_cli("check", "--rule", text, cwd=repo.root)
    assert code == errors.USAGE, err


def test_absolute_and_regression_rules(repo: Repo) -> None:
    setup_metrics(repo, {"accuracy": 0.90, "rmse": 2.0}, {"accuracy": 0.885, "rmse": 2.2})
    code, out, err = run_cli(
        "check",
        "--base",
        "HEAD",
        "--rule",
        "accuracy >= 0.88",
        "--rule",
        "accuracy: max_drop 0.02",
        "--rule",
        "rmse: max_increase 5%",
        cwd=repo.root,
    )
    assert code == errors.FAILED
    assert "rmse: max_increase 5%" in err and "accuracy" not in err.split("rule(s):")[1]
    assert "rose by 0.2" in out
    code, _, _ = run_cli(
        "check",
        "--base",
        "HEAD",
        "--rule",
        "rmse: max_increase 10%",
        "--rule",
        "accuracy: max_drop 0.015",
        cwd=repo.root,
    )
    assert code == 0


@pytest.mark.parametrize("value", ["NaN", "Infinity", '"0.95"', "null", "[1]", "true"])
def test_gate_fails_closed_on_non_numbers(repo: Repo, value: str) -> None:
    """C4.42: a naive gate passes NaN (NaN >= t and NaN < t are both False)."""
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("m.json", '{"accuracy": ' + value + "}")
    for rule in ("accuracy >= 0.9", "accuracy < 0.9"):
        code, _, err = run_cli("check", "--rule", rule, cwd=repo.root)
        assert code == errors.FAILED, (value, rule)
        assert "quality gate failed" in err


def test_missing_metric_and_missing_base_fail(repo: Repo) -> None:
    setup_metrics(repo, {"other": 1}, {"accuracy": 0.95})
    code, out, _ = run_cli(
        "check", "--base", "HEAD", "--rule", "f1 >= 0.1", "--json", cwd=repo.root
    )
    assert code == errors.FAILED
    res = json.loads(out)
    assert res["passed"] is False and res["rules"][0]["reason"] == "metric is missing"
    code, out, _ = run_cli(
        "check", "--base", "HEAD", "--rule", "accuracy: max_drop 0.1", "--json", cwd=repo.root
    )
    assert code == errors.FAILED
    assert "no value at the base" in json.loads(out)["rules"][0]["reason"]


def test_rules_from_config_and_default_base(repo: Repo) -> None:
    repo.write("mlopskit.yaml", "gates:\n  - accuracy >= 0.5\n  - accuracy: max_drop 0.05\n")
    setup_metrics(repo, {"accuracy": 0.9}, {"accuracy": 0.8})
    repo.git("checkout", "-q", "-b", "feature")
    res = gate.check(repo.project())
    assert [o.passed for o in res.outcomes] == [True, False]
    assert res.base == repo.head()  # merge-base with main
    code, _, _ = run_cli("check", "--no-config", "--rule", "accuracy >= 0.5", cwd=repo.root)
    assert code == 0


def test_bad_gates_in_config(repo: Repo) -> None:
    repo.write("mlopskit.yaml", "gates:\n  - accuracy is good\n")
    setup_metrics(repo, {"accuracy": 0.9}, {"accuracy": 0.8})
    code, _, err = run_cli("check", cwd=repo.root)
    assert code == errors.USAGE and "accuracy is good" in err


def test_ambiguous_metric_name(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - a.json\n  - b.json\n")
    repo.write("a.json", '{"acc": 1}')
    repo.write("b.json", '{"acc": 0}')
    code, _, err = run_cli("check", "--rule", "acc >= 0.5", cwd=repo.root)
    assert code == errors.USAGE and "a.json:acc" in err
    code, _, _ = run_cli("check", "--rule", "a.json:acc >= 0.5", cwd=repo.root)
    assert code == 0


def test_no_rules_is_usage_error(repo: Repo) -> None:
    setup_metrics(repo, {"a": 1}, {"a": 1})
    code, _, err = run_cli("check", cwd=repo.root)
    assert code == errors.USAGE and "gates:" in err


CONFIG = """\
# my settings
project:
  name: demo

# the gate
gates: []

# after the gate
git:
  main_branch: main
"""


def test_gate_add_and_remove_round_trip(repo: Repo) -> None:
    """`gate add` edits mlopskit.yaml in place; removing every rule restores it byte for byte."""
    repo.write("mlopskit.yaml", CONFIG)
    setup_metrics(repo, {"rmse": 1.0, "r2": 0.8}, {"rmse": 1.0, "r2": 0.8})
    code, out, err = run_cli("gate", "add", "rmse: max_increase 5%", "r2 >= 0.7", cwd=repo.root)
    assert code == 0, err
    assert "rmse: max_increase 5%; r2 >= 0.7" in out
    text = (repo.root / "mlopskit.yaml").read_text()
    want = CONFIG.replace("gates: []\n", "gates:\n  - 'rmse: max_increase 5%'\n  - r2 >= 0.7\n")
    assert text == want
    assert [r.text for r in map(rules.parse_rule, repo.project().config.gates)] == [
        "rmse: max_increase 5%",
        "r2 >= 0.7",
    ]
    assert "Quality gate passed (2 rule(s))" in run_cli("check", cwd=repo.root)[1]
    # The same rule again (spelled differently) changes nothing.
    code, out, _ = run_cli("gate", "add", "r2>=0.7", cwd=repo.root)
    assert code == 0 and "No changes" in out
    assert (repo.root / "mlopskit.yaml").read_text() == want
    code, _, err = run_cli("gate", "remove", "r2 >= 0.8", cwd=repo.root)
    assert code == errors.USAGE and "did you mean 'r2 >= 0.7'" in err
    for rule in ("r2 >= 0.7", "rmse: max_increase 5%"):
        assert run_cli("gate", "remove", rule, cwd=repo.root)[0] == 0
    assert (repo.root / "mlopskit.yaml").read_text() == CONFIG


def test_gate_add_checks_the_metric_and_its_direction(repo: Repo) -> None:
    setup_metrics(repo, {"test": {"rmse": 1.0}}, {"test": {"rmse": 1.1}})
    code, _, err = run_cli("gate", "add", "test.rmsd <= 2", cwd=repo.root)
    assert code == errors.USAGE and "did you mean 'test.rmse'" in err and "--force" in err
    assert not (repo.root / "mlopskit.yaml").exists()
    code, _, err = run_cli("gate", "add", "test.rmse: max_drop 0.1", cwd=repo.root)
    assert code == 0
    assert "lower-is-better" in err and "max_increase" in err
    code, _, err = run_cli("gate", "add", "--force", "later <= 1", "--commit", cwd=repo.root)
    assert code == 0, err
    assert repo.git("show", "--name-only", "--format=%s", "HEAD").split() == [
        "gate:",
        "add",
        "later",
        "<=",
        "1",
        "mlopskit.yaml",
    ]
    assert "m.json" in repo.status()  # nothing else was committed
    code, out, _ = run_cli("gate", "list", cwd=repo.root)
    assert "test.rmse: max_drop 0.1  lower" in out and "later <= 1" in out
