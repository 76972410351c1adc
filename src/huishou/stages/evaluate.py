"""`huishou evaluate`: out-of-time metrics of every model, the oracle side by side, plots and the model report.

Reads data.features_dir/features.parquet (test split), the saved models, run.json and champion.json in
models/trained/ (the by-group table and the report's champion section) and, on the simulated book, data.truth_dir/oracle.parquet. Publishes
models/evaluation/ as one unit: metrics.json (DVC metrics), plots/{roc,calibration,lift}.{csv,png}
(DVC plots) and report.html; adds the test metrics and files to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book.truth import load_oracle
from huishou.core import plots, tracking
from huishou.core.errors import DataValidationError, ModelNotFoundError
from huishou.core.io import file_md5, publish, read_json, rounded, write_csv, write_json, write_text
from huishou.core.paths import (
    CHAMPION_FILE,
    MODEL_NAMES,
    champion_name,
    evaluation_dir,
    features_path,
    model_path,
    trained_dir,
)
from huishou.core.progress import progress_bar
from huishou.features import load_features
from huishou.risk.metrics import (
    age_band,
    calibration_table,
    classification_metrics,
    compare_to_oracle,
    lift_table,
    performance_by_group,
    roc_points,
)
from huishou.risk.model import RiskModel
from huishou.risk.report import build_report

PARAMS = (
    "data.features_dir",
    "data.models_dir",
    "data.truth_dir",
    "evaluate",
    "tracking.default_uri",
    "tracking.experiment",
    "tracking.registered_model",
)


def _provenance(run_info: dict, settings, frame: pd.DataFrame, source: Path) -> dict:
    """Where the numbers come from: the run and model version, the commit, the data and the split windows."""
    out = {
        "registered model": f"{settings.tracking.registered_model} version {run_info.get('model_version')}",
        "MLflow run": run_info.get("run_id"),
        "tracking store": run_info.get("tracking_uri"),
        "features file MD5": file_md5(source),
    }
    for split, g in frame.groupby("split"):
        dates = g["snapshot_date"]
        out[f"{split} snapshots"] = (
            f"{dates.min().date()} .. {dates.max().date()} ({g['snapshot_date'].nunique()}, {len(g):,} rows)"
        )
    return out


def run(settings) -> dict:
    """Score the out-of-time test split with every model and write the evaluation files."""
    cfg = settings.evaluate
    source = features_path(settings.data.features_dir)
    frame = load_features(source)
    test = frame[(frame["split"] == "test") & frame["target"].notna()]
    if test.empty or test["target"].isna().any():
        raise DataValidationError(
            f"{source}: the out-of-time test split is empty or unlabelled; check features.test_from in params.yaml"
        )
    models_dir = Path(settings.data.models_dir)
    trained = trained_dir(models_dir)
    names = [n for n in MODEL_NAMES if model_path(models_dir, n).exists()]
    if "lightgbm" not in names or not (trained / "run.json").exists():
        raise ModelNotFoundError(f"{trained}: no trained LightGBM model and run.json; run `huishou train` first")
    loaded = {name: RiskModel.load(model_path(models_dir, name)) for name in names}
    metrics, roc, cal, lift = {}, [], [], []
    y = test["target"].astype(int).to_numpy()
    predicted = {}
    for name in progress_bar(list(loaded), desc="evaluate", unit="model"):
        p = predicted[name] = loaded[name].predict_proba(test)
        metrics[name] = classification_metrics(y, p, cfg.lift_top_fraction, cfg.calibration_bins)
        roc.append(roc_points(y, p).assign(model=name))
        cal.append(calibration_table(y, p, cfg.calibration_bins).assign(model=name))
        lift.append(lift_table(y, p).assign(model=name))
    metrics["oracle"] = compare_to_oracle(test, load_oracle(settings.data.truth_dir))
    if metrics["oracle"]:
        metrics["oracle"]["lightgbm_gap_to_oracle_auc"] = metrics["oracle"]["oracle_auc"] - metrics["lightgbm"]["auc"]
    metrics["test_snapshots"] = sorted(str(d.date()) for d in test["snapshot_date"].unique())
    champion_file = trained / CHAMPION_FILE
    champion = read_json(champion_file) if champion_file.exists() else None
    metrics["champion"] = champion_name(models_dir)
    groups = _by_group(y, predicted[metrics["champion"]], test, cfg.lift_top_fraction)
    tables = {"roc": pd.concat(roc), "calibration": pd.concat(cal), "lift": pd.concat(lift)}
    iv_path = trained / "scorecard_files" / "iv_table.csv"
    points_path = trained / "scorecard_files" / "points.csv"
    run_info = read_json(trained / "run.json")
    page = build_report(
        f"huishou model report: {settings.tracking.registered_model}",
        {n: metrics[n] for n in loaded},
        loaded,
        test,
        frame,
        pd.read_csv(iv_path) if iv_path.exists() else None,
        provenance=_provenance(run_info, settings, frame, source),
        oracle=metrics["oracle"],
        points=pd.read_csv(points_path) if points_path.exists() else None,
        champion=champion,
    )
    flat = {f"test_{m}_{k}": v for m in names for k, v in metrics[m].items()}
    flat |= {f"test_{k}": v for k, v in metrics["oracle"].items()}
    with publish(evaluation_dir(models_dir), what="huishou evaluate") as out:
        for name, table in tables.items():  # 8 decimals: threads' last-digit noise must not change the files
            write_csv(table.round(8), out / "plots" / f"{name}.csv")
        pngs = [
            plots.save_png(plots.roc_figure(tables["roc"]), out / "plots" / "roc.png"),
            plots.save_png(plots.calibration_figure(tables["calibration"]), out / "plots" / "calibration.png"),
            plots.save_png(plots.gains_figure(tables["lift"]), out / "plots" / "lift.png"),
        ]
        write_json(rounded(metrics), out / "metrics.json")
        write_csv(groups.round(6), out / "by_group.csv")
        write_text(page, out / "report.html")
        tracking.log_evaluation(
            settings.tracking,
            run_info["run_id"],
            flat,
            [*pngs, out / "metrics.json", out / "report.html", out / "by_group.csv"],
        )
    return metrics


def _by_group(y, p, test: pd.DataFrame, top_fraction: float) -> pd.DataFrame:
    """The champion's test performance by age band (from the application's age, where the book records it); sex
    and other protected characteristics are not carried into the features, so they are not reported here."""
    columns = ["attribute", "group", "rows", "share_of_book", "bad_rate", "mean_predicted", "auc"]
    columns += ["flagged_rate", "share_of_flagged"]
    if "app_age" not in test.columns:
        return pd.DataFrame(columns=columns)
    table = performance_by_group(y, p, age_band(test["app_age"]), top_fraction)
    return table.assign(attribute="age_band")[columns]
