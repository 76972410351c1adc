"""Real-data check: the pipeline on the UCI Taiwan credit-card data vs the data set's reference model.

Run `make taiwan` first (adapt, validate, features, train, evaluate with params_taiwan.yaml). This
script fits the reference (scikit-learn HistGradientBoosting on the raw columns, as in the data
set's README) on exactly the same train+valid clients and scores the same held-out test clients,
then writes benchmarks/results/taiwan.json next to the pipeline's own test metrics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from huishou.artifacts import evaluation_dir, load_features, model_path  # noqa: E402
from huishou.config import load_settings  # noqa: E402
from huishou.io import write_json  # noqa: E402
from huishou.model import RiskModel  # noqa: E402


def main(csv: str = str(ROOT.parent / "shared" / "data" / "taiwan_default" / "UCI_Credit_Card_named.csv")) -> dict:
    settings = load_settings(ROOT / "params_taiwan.yaml")
    feats = load_features(Path(settings.data.features_dir) / "features.parquet")
    raw = pd.read_csv(csv)
    split = feats.set_index("loan_id")["split"]
    raw["split"] = raw["ID"].map(split)
    y_col = "default.payment.next.month"
    x_cols = [c for c in raw.columns if c not in ("ID", y_col, "split")]
    fit = raw[raw["split"].isin(["train", "valid"])]
    test = raw[raw["split"] == "test"]
    reference = HistGradientBoostingClassifier(random_state=0).fit(fit[x_cols], fit[y_col])
    ref_auc = roc_auc_score(test[y_col], reference.predict_proba(test[x_cols])[:, 1])
    ours = json.loads((evaluation_dir(settings.data.models_dir) / "metrics.json").read_text())
    test_feats = feats[feats["split"] == "test"].merge(raw[["ID", y_col]], left_on="loan_id", right_on="ID")
    model = RiskModel.load(model_path(settings.data.models_dir, "lightgbm"))
    ours_vs_label = roc_auc_score(test_feats[y_col], model.predict_proba(test_feats))
    report = {
        "clients": len(raw),
        "in_population": int(feats["loan_id"].nunique()),
        "test_clients": len(test_feats),
        "target_agrees_with_label": float((test_feats["target"] == test_feats[y_col]).mean()),
        "reference_hgb_raw_columns_test_auc": ref_auc,
        "reference_readme_5fold_auc": 0.782,
        "huishou_lightgbm_test_auc": ours["lightgbm"]["auc"],
        "huishou_lightgbm_test_auc_vs_original_label": ours_vs_label,
        "huishou_logistic_test_auc": ours["logistic"]["auc"],
        "huishou_scorecard_test_auc": ours["scorecard"]["auc"],
    }
    write_json(report, ROOT / "benchmarks" / "results" / "taiwan.json")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(*sys.argv[1:])
