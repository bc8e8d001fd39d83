"""The generated project's validate stage: bad data stops repro before training."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlopskit import data, errors

from ..conftest import Repo, run_cli

pytestmark = pytest.mark.slow


def test_corrupt_column_fails_repro_at_validate(trained: Repo) -> None:
    raw = trained.root / "data" / "raw" / "data.csv"
    df = pd.read_csv(raw)
    df.loc[3:9, "mean radius"] = -5.0
    df.to_csv(raw, index=False)
    data.add(trained.project(), ["data/raw/data.csv"], message="bad data")
    model_before = (trained.root / "models" / "model.skops").read_bytes()
    code, out, err = run_cli("repro", cwd=trained.root)
    assert code == errors.FAILED
    assert "failed to reproduce 'validate'" in err
    result = json.loads((trained.root / "reports" / "validation.json").read_text())
    assert result["ok"] is False
    (v,) = result["violations"]
    assert (v["column"], v["rule"], v["count"]) == ("mean radius", "min", 7)
    assert v["rows"][:3] == [4, 5, 6]
    # training never ran: the model is the old one
    assert (trained.root / "models" / "model.skops").read_bytes() == model_before


def test_validate_and_schema_cli(trained: Repo) -> None:
    code, out, err = run_cli(
        "data", "validate", "data/raw/data.csv", "--schema", "data/schema.yaml", cwd=trained.root
    )
    assert code == 0, err
    assert "569 rows match" in out
    code, _, err = run_cli(
        "data", "validate", "nope.csv", "--schema", "data/schema.yaml", cwd=trained.root
    )
    assert code == errors.USAGE
    (trained.root / "broken.yaml").write_text("columns: [\n")
    code, _, err = run_cli(
        "data", "validate", "data/raw/data.csv", "--schema", "broken.yaml", cwd=trained.root
    )
    assert code == errors.USAGE and "broken.yaml" in err
    code, out, _ = run_cli("data", "schema", "infer", "data/raw/data.csv", cwd=trained.root)
    assert code == 0 and "mean radius:" in out


def test_monitor_drift_cli(trained: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = pd.read_csv(trained.root / "data" / "raw" / "data.csv")
    same = raw.sample(frac=1.0, replace=True, random_state=3)
    same.to_csv(tmp_path / "same.csv", index=False)
    shifted = same.copy()
    shifted["mean texture"] = shifted["mean texture"] * 1.6
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    ref = "data/raw/data.csv"
    code, out, err = run_cli(
        "monitor",
        "drift",
        "--reference",
        ref,
        "--current",
        str(tmp_path / "same.csv"),
        cwd=trained.root,
    )
    assert code == 0, err
    code, out, err = run_cli(
        "monitor",
        "drift",
        "--reference",
        ref,
        "--current",
        str(tmp_path / "shifted.csv"),
        "--out",
        str(tmp_path / "r" / "d.md"),
        cwd=trained.root,
    )
    assert code == errors.FAILED and "mean texture" in err
    assert (tmp_path / "r" / "d.png").read_bytes().startswith(b"\x89PNG")
    assert "mean texture" in (tmp_path / "r" / "d.md").read_text()
    one = tmp_path / "one.csv"
    raw.head(1).to_csv(one, index=False)
    code, _, err = run_cli(
        "monitor", "drift", "--reference", ref, "--current", str(one), cwd=trained.root
    )
    assert code == errors.USAGE
    code, _, err = run_cli(
        "monitor",
        "drift",
        "--reference",
        ref,
        "--current",
        str(tmp_path / "same.csv"),
        "--columns",
        "nope",
        cwd=trained.root,
    )
    assert code == errors.USAGE and "nope" in err


def test_check_updates_reports_changed_import(repo: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ..conftest import dvc

    source = tmp_path / "upstream.csv"
    source.write_text("a,b\n1,2\n")
    dvc(repo.root, "import-url", str(source), "prod.csv")
    code, out, _ = run_cli("data", "check-updates", "--json", cwd=repo.root)
    assert code == 0
    (row,) = json.loads(out)
    assert row["changed"] is False and row["path"] == "prod.csv.dvc"
    source.write_text("a,b\n1,2\n3,4\n")
    before = (repo.root / "prod.csv").read_text()
    code, out, _ = run_cli("data", "check-updates", "--json", cwd=repo.root)
    (row,) = json.loads(out)
    assert row["changed"] is True
    assert (repo.root / "prod.csv").read_text() == before  # nothing downloaded


def test_report_has_a_data_quality_section(trained: Repo) -> None:
    from mlopskit.report import build as report
    from mlopskit.report import render as report_render

    raw = trained.root / "data" / "raw" / "data.csv"
    df = pd.read_csv(raw)
    df.loc[0:2, "mean radius"] = -5.0
    df.to_csv(raw, index=False)
    data.add(trained.project(), ["data/raw/data.csv"], message="bad data")
    run_cli("repro", cwd=trained.root)
    md = report_render.markdown(report.build(trained.project(), base="HEAD~1", with_plots=False))
    assert "### Data quality" in md
    assert "❌ `reports/validation.json`: 569 rows (base: 569), 1 violation(s)" in md
    assert "| mean radius | min | &gt;= 5 |" in md


def test_update_reimports_changed_sources(repo: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Imports are frozen: `repro` never refreshes them, `data update` does (retrain.yml)."""
    from ..conftest import dvc

    source = tmp_path / "upstream.csv"
    source.write_text("a,b\n1,2\n")
    dvc(repo.root, "import-url", str(source), "prod.csv")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "import")
    code, out, _ = run_cli("data", "update", cwd=repo.root)
    assert code == 0 and "up to date" in out
    assert repo.status() == ""
    source.write_text("a,b\n1,2\n3,4\n")
    code, out, err = run_cli("data", "update", cwd=repo.root)
    assert code == 0, err
    assert "prod.csv.dvc" in out
    assert (repo.root / "prod.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert repo.status() == " M prod.csv.dvc\n"
    code, out, _ = run_cli("data", "check-updates", "--json", cwd=repo.root)
    assert json.loads(out)[0]["changed"] is False


def test_report_data_quality_reads_nested_dvcyaml_stages_in_their_wdir(trained: Repo) -> None:
    """Issue 12: the data-quality section comes from every dvc.yaml (here a nested one whose
    validate stage runs in a wdir), read through the one reader of DVC state; the root-only
    reader missed it."""
    from mlopskit.report import build as report
    from mlopskit.report import render as report_render

    from ..conftest import dvc

    trained.write(
        "checks/dvc.yaml",
        "stages:\n  check:\n    wdir: ..\n"
        "    cmd: mlopskit data validate data/raw/data.csv --schema data/schema.yaml"
        " --out reports/nested-validation.json\n"
        "    deps: [data/raw/data.csv, data/schema.yaml]\n"
        "    metrics:\n      - reports/nested-validation.json\n",  # DVC-cached
    )
    dvc(trained.root, "repro", "checks/dvc.yaml:check")
    trained.git("add", "-A")
    trained.git("commit", "-qm", "a nested validation")
    raw = trained.root / "data" / "raw" / "data.csv"
    df = pd.read_csv(raw)
    df.loc[0:2, "mean radius"] = -5.0
    df.to_csv(raw, index=False)
    dvc(trained.root, "repro", "checks/dvc.yaml:check", check=False)
    found = {
        q.file: q
        for q in report.data_quality(trained.root, trained.git("rev-parse", "HEAD").strip())
    }
    nested = found["reports/nested-validation.json"]
    assert not nested.ok and nested.rows == 569 and nested.base_rows == 569
    assert nested.violations and nested.violations[0]["column"] == "mean radius"
    assert "reports/validation.json" in found  # the root dvc.yaml's stage still counts
    md = report_render.markdown(report.build(trained.project(), base="HEAD", with_plots=False))
    assert "❌ `reports/nested-validation.json`: 569 rows (base: 569), 1 violation(s)" in md
