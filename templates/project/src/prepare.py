"""Stage `prepare`: split data/raw/data.csv into train and test sets (stratified)."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from src.params import ROOT, load


def main() -> None:
    p = load("prepare")
    df = pd.read_csv(ROOT / "data" / "raw" / "data.csv")
    if p["target"] not in df.columns:
        raise SystemExit(f"data/raw/data.csv: no column {p['target']!r} (prepare.target)")
    df = df.dropna(subset=[p["target"]])
    train, test = train_test_split(
        df,
        test_size=p["test_size"],
        random_state=p["random_state"],
        stratify=df[p["target"]],
    )
    out = ROOT / "data" / "processed"
    out.mkdir(parents=True, exist_ok=True)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)
    print(f"prepare: {len(train)} train rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
