"""Stage `evaluate`: metrics (flat JSON) and plot data (confusion matrix, ROC)."""

from __future__ import annotations

import json

import pandas as pd
from mlopskit.serve.trust import load_project_file
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from src.params import ROOT, load


def load_model(path):
    """The model, loaded with skops only if every type it holds beyond scikit-learn's
    estimators is listed, by exact name, under serve.trusted_types in mlopskit.yaml
    (reviewed in pull requests, never read from the model file): a tampered file
    cannot run code when it is loaded. `mlopskit serve` uses the same list."""
    from mlopskit.errors import MlopskitError

    try:
        return load_project_file(ROOT, path)
    except MlopskitError as exc:
        raise SystemExit(f"error: {exc}") from None


def main() -> None:
    target = load("prepare")["target"]
    df = pd.read_csv(ROOT / "data" / "processed" / "test.csv")
    X, y = df.drop(columns=[target]), df[target]
    model = load_model(ROOT / "models" / "model.skops")
    pred = model.predict(X)
    binary = y.nunique() == 2
    average = "binary" if binary else "macro"
    metrics = {
        "accuracy": round(float(accuracy_score(y, pred)), 6),
        "f1": round(float(f1_score(y, pred, average=average)), 6),
        "precision": round(float(precision_score(y, pred, average=average, zero_division=0)), 6),
        "recall": round(float(recall_score(y, pred, average=average)), 6),
    }
    plots = ROOT / "reports" / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"actual": y, "predicted": pred}).to_csv(plots / "confusion.csv", index=False)
    if binary:
        scores = model.predict_proba(X)[:, 1]
        metrics["roc_auc"] = round(float(roc_auc_score(y, scores)), 6)
        fpr, tpr, thr = roc_curve(y, scores)
        roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})
    else:
        roc = pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "threshold": [1.0, 0.0]})
    roc.to_csv(plots / "roc.csv", index=False)
    (ROOT / "reports" / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("evaluate: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
