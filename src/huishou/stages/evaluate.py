"""`huishou evaluate`: out-of-time metrics of every model, the oracle side by side, plots and the model report.

Reads data.features_dir/features.parquet (the test split; beyond evaluate.max_test_rows labelled rows a
sample stratified by snapshot and outcome: metrics.json's test_rows says how many), the saved models, run.json
and champion.json in models/trained/ (the by-group table and the report's champion section) and, on the
simulated book, data.truth_dir/oracle.parquet. Publishes models/evaluation/ as one unit: metrics.json (DVC
metrics), plots/{roc,calibration,lift}.{csv,png} (DVC plots) and report.html; adds the test metrics and files
to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from huishou.book.truth import load_oracle
from huishou.core import plots, tracking
from huishou.core.errors import DataValidationError, ModelNotFoundError
from huishou.core.io import path_md5, publish, read_json, rounded, write_csv, write_json, write_text
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
from huishou.features.store import evaluation_keys, feature_files, split_windows
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
from huishou.risk.report import add_month_counts, build_report, month_score_counts

PARAMS = (
    "data.features_dir",
    "data.models_dir",
    "data.truth_dir",
    "evaluate",
    "tracking.default_uri",
    "tracking.experiment",
    "tracking.registered_model",
)


def _provenance(run_info: dict, settings, windows: dict, source: Path) -> dict:
    """Where the numbers come from: the run and model version, the commit, the data and the split windows."""
    out = {
        "registered model": f"{settings.tracking.registered_model} version {run_info.get('model_version')}",
        "MLflow run": run_info.get("run_id"),
        "tracking store": run_info.get("tracking_uri"),
        "features file MD5": path_md5(source),
    }
    for split, w in sorted(windows.items()):
        out[f"{split} snapshots"] = f"{w['from']} .. {w['to']} ({w['snapshots']}, {w['rows']:,} rows)"
    return out


SHAP_ROWS = 3000  # test rows of the report's SHAP summary


def _score_parts(
    source: Path, loaded: dict, chosen: pd.MultiIndex | None = None
) -> tuple[pd.DataFrame, dict, dict, pd.DataFrame]:
    """Every model's probabilities on the labelled test rows (`chosen`: only those keys, a sample), read one part
    of the feature table at a time (a file is one part): (the test rows' keys, target, age and the LightGBM
    reference's watched features, each model's probabilities, the LightGBM score's bin counts per snapshot of
    every split for PSI by month (every row, sampled or not), the SHAP sample: the SHAP_ROWS test rows with
    the smallest hash of loan and snapshot, every feature). Only these, never the whole table, are held; rows
    come back in the spine's order."""
    lightgbm = loaded["lightgbm"].contract
    watched = list(loaded["lightgbm"].meta.get("reference", {}).get("features", {}))
    keep = ["loan_id", "snapshot_date", "target", "app_age", *watched]
    tests, probs, months, sample = [], {name: [] for name in loaded}, {}, None
    files = feature_files(source)
    for path in progress_bar(files, desc="evaluate: score", unit="part"):
        part = pd.read_parquet(path)
        scores = loaded["lightgbm"].predict_proba(part)
        months = add_month_counts(months, month_score_counts(loaded["lightgbm"], part, scores))
        is_test = ((part["split"] == "test") & part["target"].notna()).to_numpy()
        if chosen is not None:
            is_test = is_test & pd.MultiIndex.from_frame(part[["loan_id", "snapshot_date"]]).isin(chosen)
        test = part[is_test]
        for name, model in loaded.items():
            probs[name].append(scores[is_test] if name == "lightgbm" else model.predict_proba(test))
        slim = test[[c for c in dict.fromkeys(keep) if c in test.columns]].copy()
        categorical = [c for c in watched if c in lightgbm.categories]
        if categorical:  # the training levels: codes agree across parts
            aligned = lightgbm.align(test)
            for col in categorical:
                slim[col] = aligned[col]
        tests.append(slim)
        key = pd.util.hash_pandas_object(test[["loan_id", "snapshot_date"]], index=False).to_numpy()
        first = test.assign(_key=key).nsmallest(SHAP_ROWS, "_key")
        sample = first if sample is None else pd.concat([sample, first]).nsmallest(SHAP_ROWS, "_key")
    test = pd.concat(tests, ignore_index=True)
    joined = {name: np.concatenate(p) for name, p in probs.items()}
    if len(files) > 1:  # parts hold borrower buckets: back to the spine's order
        order = np.lexsort((test["loan_id"].to_numpy(), test["snapshot_date"].to_numpy()))
        test = test.iloc[order].reset_index(drop=True)
        joined = {name: p[order] for name, p in joined.items()}
    sample = sample.sort_values(["snapshot_date", "loan_id"], ignore_index=True)
    return test, joined, months, lightgbm.align(sample).assign(target=sample["target"].to_numpy())


def run(settings) -> dict:
    """Score the out-of-time test split with every model and write the evaluation files."""
    cfg = settings.evaluate
    source = features_path(settings.data.features_dir)
    models_dir = Path(settings.data.models_dir)
    trained = trained_dir(models_dir)
    names = [n for n in MODEL_NAMES if model_path(models_dir, n).exists()]
    if "lightgbm" not in names or not (trained / "run.json").exists():
        raise ModelNotFoundError(f"{trained}: no trained LightGBM model and run.json; run `huishou train` first")
    loaded = {name: RiskModel.load(model_path(models_dir, name)) for name in names}
    available, chosen = evaluation_keys(source, cfg.max_test_rows, cfg.sample_seed)
    test, predicted, months, sample = _score_parts(source, loaded, chosen)
    if test.empty:
        raise DataValidationError(
            f"{source}: the out-of-time test split is empty or unlabelled; check features.test_from in params.yaml"
        )
    metrics, roc, cal, lift = {}, [], [], []
    y = test["target"].astype(int).to_numpy()
    for name in loaded:
        p = predicted[name]
        metrics[name] = classification_metrics(y, p, cfg.lift_top_fraction, cfg.calibration_bins)
        roc.append(roc_points(y, p).assign(model=name))
        cal.append(calibration_table(y, p, cfg.calibration_bins).assign(model=name))
        lift.append(lift_table(y, p).assign(model=name))
    metrics["oracle"] = compare_to_oracle(test, load_oracle(settings.data.truth_dir))
    if metrics["oracle"]:
        metrics["oracle"]["lightgbm_gap_to_oracle_auc"] = metrics["oracle"]["oracle_auc"] - metrics["lightgbm"]["auc"]
    metrics["test_snapshots"] = sorted(str(d.date()) for d in test["snapshot_date"].unique())
    metrics["test_rows"] = {"used": len(test), "available": available, "max_test_rows": cfg.max_test_rows}
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
        predicted,
        months,
        sample,
        pd.read_csv(iv_path) if iv_path.exists() else None,
        provenance=_provenance(run_info, settings, split_windows(source, splits=None), source)
        | (
            {
                "metrics computed on": f"{len(test):,} of {available:,} labelled test rows (evaluate.max_test_rows: "
                "a sample stratified by snapshot and outcome)"
            }
            if chosen is not None
            else {}
        ),
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
