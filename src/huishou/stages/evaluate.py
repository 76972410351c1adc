"""`huishou evaluate`: out-of-time metrics of every model, the oracle side by side, plots and the model report.

Reads data.features_dir/features.parquet (test split), models/*.joblib, models/run.json and, on
the simulated book, data.truth_dir/oracle.parquet. Writes models/metrics.json (DVC metrics),
models/plots/{roc,calibration,lift}.{csv,png} (DVC plots) and models/report.html; adds the test
metrics and files to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou import plots, tracking
from huishou.artifacts import MODEL_NAMES, features_path, load_features, model_path
from huishou.book.truth import load_oracle
from huishou.errors import DataValidationError
from huishou.io import atomic_path, read_json, write_csv, write_json
from huishou.metrics import calibration_table, classification_metrics, compare_to_oracle, lift_table, roc_points
from huishou.model import RiskModel
from huishou.report import build_report

PARAMS = (
    "data.features_dir",
    "data.models_dir",
    "data.truth_dir",
    "evaluate",
    "tracking.default_uri",
    "tracking.experiment",
    "tracking.registered_model",
)


def run(settings) -> dict:
    """Score the out-of-time test split with every model and write the evaluation files."""
    cfg = settings.evaluate
    source = features_path(settings.data.features_dir)
    frame = load_features(source)
    test = frame[frame["split"] == "test"]
    if test.empty or test["target"].isna().any():
        raise DataValidationError(
            f"{source}: the out-of-time test split is empty or unlabelled; check features.test_from in params.yaml"
        )
    models_dir = Path(settings.data.models_dir)
    names = [n for n in MODEL_NAMES if model_path(models_dir, n).exists()]
    loaded = {name: RiskModel.load(model_path(models_dir, name)) for name in names}
    metrics, roc, cal, lift = {}, [], [], []
    y = test["target"].astype(int).to_numpy()
    for name, model in loaded.items():
        p = model.predict_proba(test)
        metrics[name] = classification_metrics(y, p, cfg.lift_top_fraction, cfg.calibration_bins)
        roc.append(roc_points(y, p).assign(model=name))
        cal.append(calibration_table(y, p, cfg.calibration_bins).assign(model=name))
        lift.append(lift_table(y, p).assign(model=name))
    metrics["oracle"] = compare_to_oracle(test, load_oracle(settings.data.truth_dir))
    if metrics["oracle"]:
        metrics["oracle"]["lightgbm_gap_to_oracle_auc"] = metrics["oracle"]["oracle_auc"] - metrics["lightgbm"]["auc"]
    metrics["test_snapshots"] = sorted(str(d.date()) for d in test["snapshot_date"].unique())
    plot_dir = models_dir / "plots"
    tables = {"roc": pd.concat(roc), "calibration": pd.concat(cal), "lift": pd.concat(lift)}
    for name, table in tables.items():
        write_csv(table, plot_dir / f"{name}.csv")
    pngs = [
        plots.save_png(plots.roc_figure(tables["roc"]), plot_dir / "roc.png"),
        plots.save_png(plots.calibration_figure(tables["calibration"]), plot_dir / "calibration.png"),
        plots.save_png(plots.gains_figure(tables["lift"]), plot_dir / "lift.png"),
    ]
    write_json(metrics, models_dir / "metrics.json")
    iv_path = models_dir / "scorecard" / "iv_table.csv"
    page = build_report(
        f"huishou model report: {settings.tracking.registered_model}",
        {n: metrics[n] for n in loaded},
        loaded,
        test,
        frame,
        pd.read_csv(iv_path) if iv_path.exists() else None,
    )
    report_path = models_dir / "report.html"
    with atomic_path(report_path) as tmp:
        tmp.write_text(page)
    run_info = read_json(models_dir / "run.json")
    flat = {f"test_{m}_{k}": v for m in names for k, v in metrics[m].items()}
    flat |= {f"test_{k}": v for k, v in metrics["oracle"].items()}
    tracking.log_evaluation(
        settings.tracking, run_info["run_id"], flat, [*pngs, models_dir / "metrics.json", report_path]
    )
    return metrics
