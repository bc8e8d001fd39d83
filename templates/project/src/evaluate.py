"""Stage `evaluate`: metrics (flat JSON) and plot data (confusion matrix, ROC)."""

from __future__ import annotations

import json

import pandas as pd
import skops.io as sio
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from src.params import ROOT, load

# Types a model file may hold. skops refuses to load anything else, so a
# tampered model file cannot run code when it is loaded.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def load_model(path):
    untrusted = sio.get_untrusted_types(file=path)
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if unknown:
        raise SystemExit(f"{path}: refusing to load untrusted types {unknown}")
    return sio.load(path, trusted=untrusted)


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
