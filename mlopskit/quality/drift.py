"""Data drift: does the current data still look like the reference data, feature by feature?

Numeric features get the population stability index (PSI) over bins cut at the
reference's quantiles, and the two-sample Kolmogorov-Smirnov test; so do datetime
columns (a datetime dtype: Parquet timestamps, or a DataFrame's parsed dates; a CSV's
dates are text), as seconds. Categorical features (text, booleans, categories) get PSI
over categories and a chi-square test of the two frequency tables. A feature drifts
when its PSI is above ``psi_threshold`` or the test's p-value is below its threshold;
``reason`` says which.

Missing values get a PSI bin of their own (a change in the null rate is drift); the
tests use the non-missing values. Infinite numbers count as missing. Bad input (an
empty table, a missing column, an all-missing column, text in a numeric column) is a
UsageError, never a silent "no drift".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import MonitorConfig
from ..errors import UsageError
from ..formatting import md_table
from ..report import charts
from . import schema

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# The thresholds' defaults are the config's (``monitor:`` in mlopskit.yaml), defined once.
_DEFAULTS = MonitorConfig()
# Empty bins get this share so PSI stays finite.
EPSILON = 1e-4
# Categories beyond the reference's most frequent ones share one bucket.
MAX_CATEGORIES = 20
MISSING = "(missing)"
OTHER = "(other)"
PNG_NAME = "drift.png"


@dataclass(frozen=True)
class Bin:
    label: str
    reference: float  # share of the reference's rows
    current: float


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str  # "numeric" or "categorical"
    psi: float
    test: str  # "ks" (numeric) or "chi2" (categorical)
    statistic: float
    p_value: float
    drifted: bool
    reason: str  # "" when not drifted
    n_ref: int  # non-missing values compared
    n_cur: int
    bins: tuple[Bin, ...]


@dataclass(frozen=True)
class DriftResult:
    reference: str
    current: str
    features: tuple[FeatureDrift, ...]
    psi_threshold: float
    ks_pvalue: float
    chi2_pvalue: float

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def ok(self) -> bool:
        return not self.drifted


def _load(table: Any, role: str) -> tuple[Any, str]:
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table, role
    if isinstance(table, str | Path):
        path = Path(table)
        if path.is_dir():  # a prediction log written by `mlopskit serve --log-dir`
            from . import predictions

            return predictions.read(path), str(path)
        return schema.read_table(path), str(path)
    raise UsageError(f"{role}: expected a CSV/Parquet path or a pandas DataFrame")


def _is_numeric(s: Any) -> bool:
    import pandas as pd
    from pandas.api import types as pt

    dtype = s.dtype
    return bool(
        pt.is_numeric_dtype(dtype)
        and not pt.is_bool_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    )


def _is_datetime(s: Any) -> bool:
    from pandas.api import types as pt

    return bool(pt.is_datetime64_any_dtype(s.dtype))


def _numbers(s: Any, label: str, name: str, ref_label: str, dates: bool) -> Any:
    """Float values of a column that is numeric (``dates``: datetime, as seconds since the
    epoch) in the reference; anything else in it is a UsageError."""
    import numpy as np
    import pandas as pd

    if dates:
        if _is_datetime(s):
            parsed = pd.to_datetime(s, utc=True)
        else:
            parsed = pd.to_datetime(s.astype("str"), errors="coerce", format="ISO8601", utc=True)
        seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        values = seconds.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    elif _is_numeric(s):
        values = s.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    else:
        values = pd.to_numeric(s.astype("object"), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan, copy=True
        )
    bad = np.flatnonzero(s.notna().to_numpy() & np.isnan(values))
    if bad.size:
        example = s.iloc[int(bad[0])]
        kind = "dates" if dates else "numbers"
        raise UsageError(
            f"{label}: column '{name}' has values that are not {kind} ({example!r} in row "
            f"{int(bad[0]) + 1}, {bad.size} in all) but is {kind[:-1]} in {ref_label}",
            "fix the values, or leave the column out with columns=",
        )
    values[~np.isfinite(values)] = np.nan
    return values


@dataclass(frozen=True)
class _Measured:
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    n_ref: int
    n_cur: int
    bins: tuple[Bin, ...]


def _measured(
    kind: str,
    test: str,
    statistic: float,
    p_value: float,
    n_ref: int,
    n_cur: int,
    labels: list[str],
    ref_counts: Any,
    cur_counts: Any,
) -> _Measured:
    """PSI over the bins (with EPSILON for empty ones) and the bins as shares."""
    import numpy as np

    ref_share = ref_counts / max(float(ref_counts.sum()), 1.0)
    cur_share = cur_counts / max(float(cur_counts.sum()), 1.0)
    p, q = np.maximum(ref_share, EPSILON), np.maximum(cur_share, EPSILON)
    psi = float(np.sum((q - p) * np.log(q / p)))
    bins = tuple(
        Bin(label, float(a), float(b))
        for label, a, b in zip(labels, ref_share, cur_share, strict=True)
    )
    return _Measured(kind, psi, test, statistic, p_value, int(n_ref), int(n_cur), bins)


def _with_missing(
    labels: list[str], ref_counts: Any, cur_counts: Any, ref_missing: int, cur_missing: int
) -> tuple[list[str], Any, Any]:
    import numpy as np

    if not (ref_missing or cur_missing):
        return labels, ref_counts, cur_counts
    return (
        [*labels, MISSING],
        np.append(ref_counts, ref_missing),
        np.append(cur_counts, cur_missing),
    )


def _edge(value: float, dates: bool) -> str:
    if not dates:
        return f"{value:.4g}"
    import pandas as pd

    stamp = pd.Timestamp(value, unit="s")
    return str(stamp.strftime("%Y-%m-%d %H:%M" if stamp.hour or stamp.minute else "%Y-%m-%d"))


def _numeric(ref: Any, cur: Any, bins: int, dates: bool) -> _Measured:
    import numpy as np
    from scipy import stats  # type: ignore[import-untyped]

    r, c = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    # Cut at the reference's inner quantiles. With few distinct values the cuts repeat
    # and np.unique leaves one bin per value; a constant column still gets a bin below it.
    cuts = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(cuts, r, side="right"), minlength=cuts.size + 1)
    cur_counts = np.bincount(np.searchsorted(cuts, c, side="right"), minlength=cuts.size + 1)
    edges = [_edge(float(x), dates) for x in cuts]
    labels = [f"< {edges[0]}"]
    labels += [f"[{a}, {b})" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f">= {edges[-1]}")
    labels, ref_counts, cur_counts = _with_missing(
        labels, ref_counts, cur_counts, ref.size - r.size, cur.size - c.size
    )
    test = stats.ks_2samp(r, c)
    return _measured(
        NUMERIC,
        "ks",
        float(test.statistic),
        float(test.pvalue),
        r.size,
        c.size,
        labels,
        ref_counts,
        cur_counts,
    )


def _categorical(ref: Any, cur: Any) -> _Measured:
    import numpy as np
    from scipy import stats  # type: ignore[import-untyped]

    r = ref.dropna().astype("str")
    c = cur.dropna().astype("str")
    ref_freq = r.value_counts()
    top = list(ref_freq.index[:MAX_CATEGORIES])
    ref_counts = ref_freq.reindex(top, fill_value=0).to_numpy(dtype="float64")
    cur_counts = c.value_counts().reindex(top, fill_value=0).to_numpy(dtype="float64")
    labels = [str(t) for t in top]
    ref_other, cur_other = r.size - ref_counts.sum(), c.size - cur_counts.sum()
    if ref_other or cur_other:  # rare reference categories, and categories new in current
        ref_counts = np.append(ref_counts, ref_other)
        cur_counts = np.append(cur_counts, cur_other)
        labels.append(OTHER)
    if ref_counts.size > 1:
        test = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:  # one category on both sides: nothing to test
        statistic, p_value = 0.0, 1.0
    labels, ref_counts, cur_counts = _with_missing(
        labels, ref_counts, cur_counts, ref.size - r.size, cur.size - c.size
    )
    return _measured(
        CATEGORICAL, "chi2", statistic, p_value, r.size, c.size, labels, ref_counts, cur_counts
    )


def _judge(name: str, m: _Measured, psi_threshold: float, p_threshold: float) -> FeatureDrift:
    reasons = []
    if m.psi > psi_threshold:
        reasons.append(f"PSI {m.psi:.3f} > {psi_threshold:g}")
    if m.p_value < p_threshold:
        test = "KS" if m.test == "ks" else "chi-square"
        reasons.append(f"{test} p-value {m.p_value:.2g} < {p_threshold:g}")
    return FeatureDrift(
        name=name,
        kind=m.kind,
        psi=m.psi,
        test=m.test,
        statistic=m.statistic,
        p_value=m.p_value,
        drifted=bool(reasons),
        reason="; ".join(reasons),
        n_ref=m.n_ref,
        n_cur=m.n_cur,
        bins=m.bins,
    )


def _check_table(frame: Any, label: str) -> None:
    if len(frame.columns) == 0:
        raise UsageError(f"{label}: no columns")
    if len(frame) == 0:
        raise UsageError(f"{label}: no rows", "drift needs data on both sides")
    if len(frame) < 2:
        raise UsageError(f"{label}: only {len(frame)} row", "drift needs at least 2 rows")


def _check_options(psi_threshold: float, ks_pvalue: float, chi2_pvalue: float, bins: int) -> None:
    if not (psi_threshold > 0 and math.isfinite(psi_threshold)):
        raise UsageError(f"psi_threshold must be a positive number, got {psi_threshold}")
    for name, value in (("ks_pvalue", ks_pvalue), ("chi2_pvalue", chi2_pvalue)):
        if not 0 < value < 1:
            raise UsageError(f"{name} must be between 0 and 1, got {value}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise UsageError(f"bins must be a whole number >= 2, got {bins!r}")


def _feature(
    name: str,
    r: Any,
    c: Any,
    labels: tuple[str, str],
    options: tuple[float, float, float, int],
) -> FeatureDrift:
    import numpy as np

    psi_threshold, ks_pvalue, chi2_pvalue, bins = options
    ref_label, cur_label = labels
    dates = _is_datetime(r)
    numeric = dates or _is_numeric(r)
    if numeric:
        r_values = _numbers(r, ref_label, name, ref_label, dates)
        c_values = _numbers(c, cur_label, name, ref_label, dates)
        counts = [int(np.count_nonzero(~np.isnan(v))) for v in (r_values, c_values)]
    else:
        counts = [int(r.notna().sum()), int(c.notna().sum())]
    for n, label in zip(counts, labels, strict=True):
        if n == 0:
            raise UsageError(
                f"{label}: column '{name}' has no values (all missing)",
                "drop the column, or leave it out with columns=",
            )
    if numeric:
        return _judge(name, _numeric(r_values, c_values, bins, dates), psi_threshold, ks_pvalue)
    return _judge(name, _categorical(r, c), psi_threshold, chi2_pvalue)


def detect(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    psi_threshold: float = _DEFAULTS.psi_threshold,
    ks_pvalue: float = _DEFAULTS.ks_pvalue,
    chi2_pvalue: float = _DEFAULTS.chi2_pvalue,
    bins: int = 10,
) -> DriftResult:
    """Compare ``current`` with ``reference`` (CSV/TSV/Parquet paths or DataFrames).

    ``columns`` defaults to every column of the reference; each must be in both tables
    (columns only in ``current`` are ignored). A column is numeric when it is numeric in
    the reference; booleans, text and categories are categorical.
    """
    _check_options(psi_threshold, ks_pvalue, chi2_pvalue, bins)
    ref, ref_label = _load(reference, "reference")
    cur, cur_label = _load(current, "current")
    labels = (ref_label, cur_label)
    tables = []
    for table, label in zip((ref, cur), labels, strict=True):
        _check_table(table, label)
        table = table.rename(columns=str)
        dupes = sorted({str(n) for n in table.columns[table.columns.duplicated()]})
        if dupes:
            raise UsageError(f"{label}: column '{dupes[0]}' appears more than once")
        tables.append(table)
    ref, cur = tables
    names = list(ref.columns) if columns is None else [str(c) for c in columns]
    if columns is None and isinstance(current, str | Path) and Path(current).is_dir():
        # A prediction log holds the model's inputs: the reference's label is not there.
        names = [n for n in names if n in cur.columns]
    if not names:
        raise UsageError("drift: no columns to compare", "name at least one column")
    for table, label in zip(tables, labels, strict=True):
        absent = [n for n in names if n not in table.columns]
        if absent:
            shown = ", ".join(repr(n) for n in absent[:5]) + (", ..." if len(absent) > 5 else "")
            raise UsageError(
                f"{label}: missing column{'s' if len(absent) > 1 else ''} {shown}",
                "both tables need the columns compared; pass columns= to compare a subset",
            )
    options = (psi_threshold, ks_pvalue, chi2_pvalue, bins)
    features = tuple(_feature(n, ref[n], cur[n], labels, options) for n in names)
    return DriftResult(
        reference=ref_label,
        current=cur_label,
        features=features,
        psi_threshold=psi_threshold,
        ks_pvalue=ks_pvalue,
        chi2_pvalue=chi2_pvalue,
    )


# --- report -------------------------------------------------------------------------


def ranked(result: DriftResult, top: int) -> list[FeatureDrift]:
    """The features to chart: the ``top`` drifted ones with the highest PSI or, when none
    drifted, the ``top`` features with the highest PSI."""
    pool = [f for f in result.features if f.drifted] or list(result.features)
    return sorted(pool, key=lambda f: -f.psi)[: max(top, 0)]


def chart_spec(features: list[FeatureDrift]) -> dict[str, Any]:
    """Vega-Lite: per feature, the reference and current shares per bin, overlaid."""
    values = [
        {"feature": f.name, "bin": b.label, "order": i, "data": side, "share": share}
        for f in features
        for i, b in enumerate(f.bins)
        for side, share in (("reference", b.reference), ("current", b.current))
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Distributions: reference vs current",
        "data": {"values": values},
        "facet": {
            "row": {
                "field": "feature",
                "type": "nominal",
                "sort": [f.name for f in features],
                "header": {"labelAngle": 0, "labelAlign": "left", "labelFontWeight": "bold"},
                "title": None,
            }
        },
        "spec": {
            "width": 420,
            "height": 140,
            "mark": {"type": "bar", "opacity": 0.55},
            "encoding": {
                "x": {
                    "field": "bin",
                    "type": "ordinal",
                    "sort": {"field": "order"},
                    "axis": {"labelAngle": -40, "title": None},
                },
                "y": {
                    "field": "share",
                    "type": "quantitative",
                    "stack": None,
                    "axis": {"format": "%", "title": "share of rows"},
                },
                "color": {
                    "field": "data",
                    "type": "nominal",
                    "scale": {"domain": ["reference", "current"]},
                    "title": None,
                },
            },
        },
        "resolve": {"scale": {"x": "independent", "y": "independent"}},
    }


def write_png(result: DriftResult, path: Path, *, top: int = 3) -> Path | None:
    """The chart of :func:`ranked` features as a PNG at ``path`` (None when no features)."""
    features = ranked(result, top)
    if not features:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(charts.png(chart_spec(features)))
    return path


def _num(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def report_markdown(
    result: DriftResult,
    *,
    top: int = 3,
    image_dir: Path | None = None,
    image_link: str | None = None,
    png_name: str = PNG_NAME,
) -> str:
    """A Markdown section: the verdict, one row per feature (drifted first) and, with
    ``image_dir``, the distributions of the ``top`` features written to
    ``image_dir/png_name`` and linked as ``image_link`` (default: ``<image_dir name>/png_name``,
    right for a report written beside ``image_dir``)."""
    drifted = result.drifted
    total = len(result.features)
    if drifted:
        verdict = f"**{len(drifted)} of {total} features drifted**: " + ", ".join(
            f"`{n}`" for n in drifted
        )
    else:
        verdict = f"**No drift** in {total} features"
    lines = [
        "## Data drift",
        "",
        f"{verdict} (reference `{result.reference}`, current `{result.current}`; "
        f"PSI > {result.psi_threshold:g}, KS p < {result.ks_pvalue:g} or "
        f"chi-square p < {result.chi2_pvalue:g}).",
        "",
    ]
    rows = [
        [
            f.name,
            f.kind,
            _num(f.psi),
            "KS" if f.test == "ks" else "chi-square",
            _num(f.statistic),
            _num(f.p_value),
            f"{f.n_ref} / {f.n_cur}",
            "yes" if f.drifted else "no",
            f.reason,
        ]
        for f in sorted(result.features, key=lambda f: (not f.drifted, -f.psi))
    ]
    headers = ["feature", "kind", "PSI", "test", "statistic", "p-value", "n (ref / cur)"]
    lines.append(md_table([*headers, "drifted", "reason"], rows))
    if image_dir is not None:
        png = write_png(result, image_dir / png_name, top=top)
        if png is not None:
            link = image_link or (f"{image_dir.name}/{png_name}" if image_dir.name else png_name)
            shown = ", ".join(f.name for f in ranked(result, top))
            lines += [f"![Distributions of {shown}]({link})", ""]
    return "\n".join(lines)


def write_report(result: DriftResult, out: Path, *, top: int = 3) -> Path:
    """The Markdown report at ``out`` and its chart beside it, named after it
    (``DIR/x.md`` -> ``DIR/x.png``, linked as ``x.png``: relative to the Markdown file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    png = f"{out.stem}.png"
    text = report_markdown(result, top=top, image_dir=out.parent, image_link=png, png_name=png)
    out.write_text(text, encoding="utf-8")
    return out
