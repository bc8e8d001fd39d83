"""Data drift: PSI with KS / chi-square per feature, bad input refused, the PNG report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlopskit.errors import UsageError
from mlopskit.quality import drift

from ..conftest import Repo

N = 3000


def reference() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, N).round(1),
            "income": rng.lognormal(10, 0.5, N),
            "kids": rng.integers(0, 4, N),
            "color": rng.choice(["red", "green", "blue"], N, p=[0.5, 0.3, 0.2]),
            "member": rng.choice([True, False], N),
        }
    )


def bootstrap(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows drawn with replacement: the same distribution as ``frame``."""
    return frame.sample(len(frame), replace=True, random_state=seed).reset_index(drop=True)


def drifted(frame: pd.DataFrame) -> pd.DataFrame:
    """A bootstrap sample with age shifted by one sd and color's frequencies changed."""
    cur = bootstrap(frame, seed=2)
    cur["age"] = cur["age"] + frame["age"].std()
    rng = np.random.default_rng(3)
    cur["color"] = rng.choice(["red", "green", "blue"], N, p=[0.25, 0.3, 0.45])
    return cur


def test_drift_detected_on_exactly_the_changed_features() -> None:
    ref = reference()
    result = drift.detect(ref, drifted(ref))
    assert result.drifted == ["age", "color"] and not result.ok
    f = {x.name: x for x in result.features}
    assert (f["age"].kind, f["age"].test) == ("numeric", "ks")
    assert (f["color"].kind, f["color"].test) == ("categorical", "chi2")
    assert (f["member"].kind, f["kids"].kind) == ("categorical", "numeric")
    assert f["age"].psi > 0.2 and f["age"].p_value < 0.01
    assert "PSI" in f["age"].reason and "KS p-value" in f["age"].reason
    assert f["color"].psi > 0.2 and "chi-square p-value" in f["color"].reason
    for name in ("income", "kids", "member"):
        assert not f[name].drifted and f[name].reason == ""
        assert f[name].psi < 0.05 and f[name].p_value > 0.05
    assert f["age"].n_ref == f["age"].n_cur == N
    shares = f["age"].bins
    assert len(shares) == 10
    assert sum(b.reference for b in shares) == pytest.approx(1)
    assert sum(b.current for b in shares) == pytest.approx(1)


def test_reason_names_the_rule_that_fired() -> None:
    ref = reference()
    result = drift.detect(ref, drifted(ref), psi_threshold=50, columns=["age"])
    (age,) = result.features
    assert age.drifted and age.reason.startswith("KS p-value")
    result = drift.detect(ref, drifted(ref), ks_pvalue=1e-300, columns=["age"])
    assert result.features[0].reason.startswith("PSI")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_bootstrap_of_reference_has_no_drift(seed: int) -> None:
    ref = reference()
    result = drift.detect(ref, bootstrap(ref, seed))
    assert result.drifted == [] and result.ok
    assert max(f.psi for f in result.features) < 0.02


def test_files_and_missing_values(tmp_path: Path) -> None:
    ref = reference()
    cur = bootstrap(ref, seed=5)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    result = drift.detect(tmp_path / "ref.csv", str(tmp_path / "cur.parquet"))
    assert result.drifted == [] and result.reference == str(tmp_path / "ref.csv")
    # A third of the values going missing is drift, seen through the missing bin.
    holes = cur.copy()
    holes.loc[: N // 3, "income"] = np.nan
    holes.loc[: N // 3, "color"] = None
    result = drift.detect(ref, holes)
    assert result.drifted == ["income", "color"]
    f = {x.name: x for x in result.features}
    assert f["income"].bins[-1].label == "(missing)" and f["income"].n_cur < N
    assert f["income"].bins[-1].current == pytest.approx((N // 3 + 1) / N)


def test_new_and_rare_categories() -> None:
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    new = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["new"] * 20})
    (c,) = drift.detect(ref, new).features
    assert c.drifted and [b.label for b in c.bins] == ["a", "b", "(other)"]
    many = pd.DataFrame({"c": [f"k{i % 30}" for i in range(300)]})
    (c,) = drift.detect(many, many).features
    assert not c.drifted and len(c.bins) == drift.MAX_CATEGORIES + 1


def test_constant_and_discrete_numeric_columns() -> None:
    ref = pd.DataFrame({"k": [1.0] * 100, "b": [0] * 70 + [1] * 30})
    same = drift.detect(ref, ref)
    assert same.drifted == []
    cur = pd.DataFrame({"k": [1.0] * 50 + [0.5] * 50, "b": [0] * 30 + [1] * 70})
    assert drift.detect(ref, cur).drifted == ["k", "b"]


def test_datetimes_are_numeric() -> None:
    days = pd.Series(pd.date_range("2024-01-01", periods=400, freq="D"))
    ref = pd.DataFrame({"when": days})
    later = pd.DataFrame({"when": days + pd.Timedelta(days=200)})
    (same,) = drift.detect(ref, ref.astype({"when": "str"})).features  # ISO text parses
    assert (same.kind, same.drifted, same.bins[0].label) == ("numeric", False, "< 2024-02-09 21:36")
    (moved,) = drift.detect(ref, later).features
    assert moved.drifted and moved.test == "ks"
    with pytest.raises(UsageError, match="not dates \\('soon' in row 2"):
        drift.detect(ref, pd.DataFrame({"when": ["2024-01-01", "soon"]}))


def bad_inputs() -> list[tuple[object, object, dict[str, object], str]]:
    ref = reference()
    nan_col = ref.copy()
    nan_col["age"] = np.nan
    text = ref.copy()
    text["age"] = text["age"].astype(object)
    text.loc[4, "age"] = "forty"
    return [
        (ref.iloc[0:0], ref, {}, "reference: no rows"),
        (ref, ref.iloc[0:0], {}, "current: no rows"),
        (ref, ref.iloc[:1], {}, "current: only 1 row"),
        (pd.DataFrame(), ref, {}, "reference: no columns"),
        (ref, ref.drop(columns=["age", "kids"]), {}, "current: missing columns 'age', 'kids'"),
        (ref, ref, {"columns": ["age", "height"]}, "reference: missing column 'height'"),
        (ref, ref, {"columns": []}, "no columns to compare"),
        (ref, nan_col, {}, "current: column 'age' has no values"),
        (nan_col, ref, {}, "reference: column 'age' has no values"),
        (ref, text, {}, "current: column 'age' has values that are not numbers ('forty' in row 5"),
        (ref, ref, {"bins": 1}, "bins must be"),
        (ref, ref, {"ks_pvalue": 0}, "ks_pvalue must be between 0 and 1"),
        (ref, ref, {"psi_threshold": -1}, "psi_threshold must be a positive number"),
        (ref, [1, 2], {}, "current: expected a CSV/Parquet path or a pandas DataFrame"),
    ]


@pytest.mark.parametrize(("ref", "cur", "kw", "message"), bad_inputs())
def test_bad_inputs_are_usage_errors(
    ref: object, cur: object, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        drift.detect(ref, cur, **kw)  # type: ignore[arg-type]
    assert message in err.value.message


def test_unreadable_files_are_usage_errors(tmp_path: Path) -> None:
    ref = reference()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    with pytest.raises(UsageError, match="file not found"):
        drift.detect(tmp_path / "ref.csv", tmp_path / "missing.csv")
    (tmp_path / "cur.json").write_text("{}")
    with pytest.raises(UsageError, match="unsupported file type"):
        drift.detect(tmp_path / "ref.csv", tmp_path / "cur.json")


def test_report_markdown_and_png(tmp_path: Path) -> None:
    ref = reference()
    result = drift.detect(ref, drifted(ref))
    md = drift.report_markdown(result, image_dir=tmp_path / "assets")
    png = tmp_path / "assets" / "drift.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "![Distributions of age, color](assets/drift.png)" in md
    assert "**2 of 5 features drifted**: `age`, `color`" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    names = [row.split(" | ")[0].removeprefix("| ") for row in table[1:]]
    assert names[:2] == ["age", "color"] and sorted(names) == sorted(ref.columns)
    assert [f.name for f in drift.ranked(result, 1)] == ["age"]
    # No drift: the chart still shows the features with the highest PSI.
    calm = drift.detect(ref, bootstrap(ref, 11))
    md = drift.report_markdown(calm, top=2, image_dir=tmp_path / "calm", image_link="x.png")
    assert "**No drift** in 5 features" in md and "](x.png)" in md
    assert (tmp_path / "calm" / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert "![" not in drift.report_markdown(calm)


def test_monitor_drift_out_links_its_png_relative_to_the_markdown(tmp_path: Path) -> None:
    """`--out DIR/x.md` writes DIR/x.png and links it as `x.png` (the link used to be
    `DIR/drift.png`, broken from inside DIR, and two reports in DIR shared one PNG)."""
    import re

    from ..conftest import run_cli

    ref = reference()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    drifted(ref).to_csv(tmp_path / "cur.csv", index=False)
    out = tmp_path / "reports" / "weekly.md"
    code, _, err = run_cli(
        "monitor", "drift", "--reference", "ref.csv", "--current", "cur.csv", "--out", str(out)
    )
    assert code == 1 and "weekly.md" in err
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text())
    assert links == ["weekly.png"]
    assert (out.parent / links[0]).read_bytes().startswith(b"\x89PNG")
    assert not (out.parent / "drift.png").exists()


def test_monitor_drift_thresholds_come_from_the_config_even_with_every_path_given(
    repo: Repo,
) -> None:
    """Issue 14: drift defaults are defined once, in the config. `monitor drift` used to
    read `monitor:` only when a path or --columns was missing, so with all three given it
    judged by hard-coded 0.2/0.01 instead of the project's thresholds."""
    from ..conftest import run_cli

    ref = reference()
    ref.to_csv(repo.root / "ref.csv", index=False)
    drifted(ref).to_csv(repo.root / "cur.csv", index=False)
    args = ["monitor", "drift", "--reference", "ref.csv", "--current", "cur.csv"]
    args += ["--columns", "age", "--json"]
    code, out, err = run_cli(*args, cwd=repo.root)
    assert code == 1 and '"age"' in out, err  # the config's defaults: age drifts
    repo.write(
        "mlopskit.yaml",
        "monitor:\n  psi_threshold: 50\n  ks_pvalue: 1.0e-300\n  chi2_pvalue: 1.0e-300\n",
    )
    code, out, err = run_cli(*args, cwd=repo.root)
    assert code == 0, (out, err)
    assert json.loads(out)["drifted"] == []
    assert run_cli(*args, "--threshold", "0.2", cwd=repo.root)[0] == 1  # the flag still wins


def test_monitor_drift_thresholds_and_no_fail_from_the_command_line(tmp_path: Path) -> None:
    """--threshold, --ks-pvalue and --chi2-pvalue each reach their rule (only the rule
    left at its default still fires); --no-fail reports the drift and exits 0."""
    import json

    from mlopskit import errors

    from ..conftest import run_cli

    ref = reference()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    drifted(ref).to_csv(tmp_path / "cur.csv", index=False)
    base = ["monitor", "drift", "--reference", "ref.csv", "--current", "cur.csv", "--json"]
    code, out, _ = run_cli(*base, "--threshold", "50", "--ks-pvalue", "1e-300")
    assert code == errors.FAILED
    f = {x["name"]: x for x in json.loads(out)["features"]}
    assert not f["age"]["drifted"]  # PSI 0.89 < 50 and p 1e-191 > 1e-300
    assert f["color"]["drifted"] and f["color"]["reason"].startswith("chi-square p-value")
    code, out, _ = run_cli(*base, "--threshold", "50", "--chi2-pvalue", "1e-300")
    f = {x["name"]: x for x in json.loads(out)["features"]}
    assert f["age"]["drifted"] and f["age"]["reason"].startswith("KS p-value")
    assert not f["color"]["drifted"] and code == errors.FAILED
    code, out, err = run_cli(
        *base, "--threshold", "50", "--ks-pvalue", "1e-300", "--chi2-pvalue", "1e-300"
    )
    assert code == 0 and json.loads(out)["drifted"] == [], err
    code, out, err = run_cli(*base, "--no-fail")
    assert code == 0, err
    assert json.loads(out)["drifted"] == ["age", "color"]
