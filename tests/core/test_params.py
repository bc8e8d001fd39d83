"""params show / set / diff, and the strict checks on params files."""

from __future__ import annotations

import json
import re

import pytest

from mlopskit import errors, params

from ..conftest import Repo, run_cli

COMMENTED = """\
# top comment
train:
  lr: 0.1     # learning rate
  epochs: 3
  layers: [64, 32]
zeta: last
alpha: 1
"""


def test_show_flattens(repo: Repo) -> None:
    repo.write("params.yaml", COMMENTED)
    assert params.show(repo.project()) == {
        "train.lr": 0.1,
        "train.epochs": 3,
        "train.layers": [64, 32],
        "zeta": "last",
        "alpha": 1,
    }
    code, out, _ = run_cli("params", "show", "--json", cwd=repo.root)
    assert code == 0 and json.loads(out)["train.epochs"] == 3


def test_set_keeps_comments_order_and_types(repo: Repo) -> None:
    repo.write("params.yaml", COMMENTED)
    code, out, err = run_cli(
        "params",
        "set",
        "train.lr=0.05",
        "train.epochs=10",
        "zeta=true",
        "train.layers=[8, 8]",
        "alpha=abc",
        cwd=repo.root,
    )
    assert code == 0, err
    assert "train.lr: 0.1 -> 0.05" in out
    text = (repo.root / "params.yaml").read_text()
    assert text.startswith("# top comment\n")
    assert re.search(r"lr: 0.05 +# learning rate", text)
    assert text.index("zeta") < text.index("alpha")
    got = params.show(repo.project())
    assert got["train.lr"] == 0.05 and isinstance(got["train.lr"], float)
    assert got["train.epochs"] == 10 and isinstance(got["train.epochs"], int)
    assert got["zeta"] is True
    assert got["train.layers"] == [8, 8]
    assert got["alpha"] == "abc"


def test_set_unknown_key_did_you_mean(repo: Repo) -> None:
    """C4.27 / dvc#6282: a typo is exit 2, params.yaml untouched."""
    before = (repo.root / "params.yaml").read_text()
    code, _, err = run_cli("params", "set", "trian.lr=0.5", cwd=repo.root)
    assert code == errors.USAGE
    assert "unknown key 'trian.lr'" in err and "did you mean 'train.lr'" in err
    assert "--allow-new" in err
    assert (repo.root / "params.yaml").read_text() == before
    code, _, _ = run_cli("params", "set", "train.dropout=0.2", "--allow-new", cwd=repo.root)
    assert code == 0
    assert params.show(repo.project())["train.dropout"] == 0.2


def test_set_other_file_and_bad_assignment(repo: Repo) -> None:
    repo.write("conf.yaml", "a:\n  b: 1\n")
    code, _, err = run_cli("params", "set", "conf.yaml:a.b=2", cwd=repo.root)
    assert code == 0, err
    assert "b: 2" in (repo.root / "conf.yaml").read_text()
    code, _, err = run_cli("params", "set", "novalue", cwd=repo.root)
    assert code == errors.USAGE and "KEY=VALUE" in err


def test_duplicate_keys_rejected(repo: Repo) -> None:
    """C4.25: PyYAML keeps the last one silently; we refuse with file:line."""
    repo.write("params.yaml", "train:\n  lr: 0.1\n  lr: 0.2\n")
    code, _, err = run_cli("params", "set", "train.lr=0.3", cwd=repo.root)
    assert code == errors.USAGE
    assert "params.yaml:3" in err and "duplicate" in err.lower()


@pytest.mark.parametrize("kind", ["directory", "list", "binary", "merge-conflict"])
def test_params_file_wrong_type(repo: Repo, kind: str) -> None:
    """C4.28: a directory, a list at top level, a binary file: exit 2 naming the file."""
    p = repo.root / "params.yaml"
    p.unlink()
    if kind == "directory":
        p.mkdir()
    elif kind == "list":
        p.write_text("- 1\n- 2\n")
    elif kind == "binary":
        p.write_bytes(b"\x00\x01\x02binary")
    else:
        p.write_text("train:\n<<<<<<< HEAD\n  lr: 1\n=======\n  lr: 2\n>>>>>>> other\n")
    code, _, err = run_cli("params", "set", "train.lr=1", cwd=repo.root)
    assert code == errors.USAGE, err
    assert "params.yaml" in err and "Traceback" not in err


def test_diff_against_head_and_rev(repo: Repo) -> None:
    params.set_params(repo.project(), ["train.lr=0.2"])
    changes = params.diff(repo.project())
    assert [(c.key, c.old, c.new, c.status) for c in changes] == [
        ("train.lr", 0.1, 0.2, "modified")
    ]
    repo.git("commit", "-qam", "lr")
    params.set_params(repo.project(), ["train.new=1"], allow_new=True)
    code, out, _ = run_cli("params", "diff", "--base", "HEAD~1", "--md", cwd=repo.root)
    assert code == 0
    assert "| train.lr | 0.1 | 0.2 | modified |" in out
    assert "| train.new | — | 1 | added |" in out
    code, out, _ = run_cli("params", "diff", "--json", cwd=repo.root)
    assert json.loads(out) == [{"key": "train.new", "old": None, "new": 1, "status": "added"}]


def test_diff_unknown_base(repo: Repo) -> None:
    code, _, err = run_cli("params", "diff", "--base", "nope", cwd=repo.root)
    assert code == errors.USAGE and "revision 'nope' not found" in err


def test_show_prints_floats_as_the_file_spells_them(repo: Repo) -> None:
    """`C: 1.0` used to print as `1` (metrics' 6-digit rounding): a float read as an int."""
    repo.write("params.yaml", "train:\n  C: 1.0\n  lr: 0.001\n  tol: 1.0e-05\n  epochs: 3\n")
    code, out, err = run_cli("params", "show", cwd=repo.root)
    assert code == 0, err
    values = dict(line.split() for line in out.splitlines()[2:])
    assert values == {
        "train.C": "1.0",
        "train.lr": "0.001",
        "train.tol": "1e-05",
        "train.epochs": "3",
    }
    code, out, err = run_cli("params", "set", "train.C=2.0", cwd=repo.root)
    assert code == 0 and "train.C: 1.0 -> 2.0" in out, err
    code, out, err = run_cli("params", "diff", cwd=repo.root)
    assert code == 0 and "train.C" in out, err


def test_set_without_a_value_is_a_usage_error(repo: Repo) -> None:
    """`params set train.lr=` (say, an unset shell variable) used to write `lr: ''`."""
    before = (repo.root / "params.yaml").read_text()
    code, out, err = run_cli("params", "set", "train.lr=", cwd=repo.root)
    assert code == errors.USAGE
    assert "'train.lr=': no value for 'train.lr'" in err and "train.lr=0.5" in err
    assert (repo.root / "params.yaml").read_text() == before
    # An empty string stays possible, spelled out as the hint says.
    code, out, err = run_cli("params", "set", "train.lr=''", cwd=repo.root)
    assert code == 0, err
    assert params.show(repo.project())["train.lr"] == ""
