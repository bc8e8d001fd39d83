"""Stage `train`: fit one scikit-learn Pipeline and save it with skops (not pickle)."""

from __future__ import annotations

import pandas as pd
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from src.params import ROOT, load


def build(p: dict) -> Pipeline:
    if p["model"] == "logistic_regression":
        estimator = LogisticRegression(
            C=p["C"], max_iter=p["max_iter"], random_state=p["random_state"]
        )
    elif p["model"] == "random_forest":
        estimator = RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            random_state=p["random_state"],
            n_jobs=1,
        )
    else:
        raise SystemExit(
            f"params.yaml: train.model {p['model']!r} is not "
            "'logistic_regression' or 'random_forest'"
        )
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("model", estimator),
        ]
    )


def main() -> None:
    p = load("train")
    target = load("prepare")["target"]
    df = pd.read_csv(ROOT / "data" / "processed" / "train.csv")
    X, y = df.drop(columns=[target]), df[target]
    model = build(p).fit(X, y)
    out = ROOT / "models" / "model.skops"
    out.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, out)
    print(f"train: {p['model']} fitted on {len(df)} rows -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
