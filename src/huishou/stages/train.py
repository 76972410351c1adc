"""`huishou train`: fit LightGBM, the logistic challenger and the points scorecard; register the champion candidate.

Reads data.features_dir/features.parquet (train and valid splits) and data.raw_dir (hashes only,
for the data version). Writes models/{lightgbm,logistic,scorecard}.joblib, feature_list.json,
train_metrics.json (validation metrics; DVC metrics), scorecard/ (IV table, points, JSON, SQL),
plots/valid_roc.png and run.json; logs one MLflow run and registers the LightGBM model with the
alias `challenger`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou import plots, tracking
from huishou.artifacts import features_path, load_features, model_path
from huishou.drift import build_reference
from huishou.errors import DataValidationError
from huishou.features import feature_columns
from huishou.io import atomic_path, dir_md5, file_md5, write_csv, write_json
from huishou.metrics import classification_metrics, roc_points
from huishou.model import RiskModel
from huishou.train import fit_lightgbm, fit_lightgbm_dask, fit_logistic, fit_scorecard_model, top_features

PARAMS = (
    "data.features_dir",
    "data.raw_dir",
    "data.models_dir",
    "train",
    "scorecard",
    "tracking.default_uri",
    "tracking.experiment",
    "tracking.registered_model",
)


def run(settings) -> dict:
    """Fit the three models on train, calibrate on valid, save them, log to MLflow."""
    cfg = settings.train
    source = features_path(settings.data.features_dir)
    frame = load_features(source)
    columns = feature_columns(frame)
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    _require_labels(train, "train", source)
    _require_labels(valid, "valid", source)
    fit = fit_lightgbm_dask if cfg.engine == "dask" else fit_lightgbm
    models = {"lightgbm": fit(train, valid, columns, cfg), "logistic": fit_logistic(train, valid, columns, cfg)}
    models["scorecard"], iv_table = fit_scorecard_model(train, valid, columns, settings.scorecard, cfg.seed)
    watched = top_features(models["lightgbm"], cfg.reference_features)
    for model in models.values():
        model.meta["reference"] = build_reference(model.predict_proba(train), train, watched, cfg.reference_bins)
    out = Path(settings.data.models_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics, curves = {}, []
    for name, model in models.items():
        model.save(model_path(out, name))
        p = model.predict_proba(valid)
        for key, value in classification_metrics(valid["target"], p).items():
            metrics[f"valid_{name}_{key}"] = value
        curves.append(roc_points(valid["target"], p).assign(model=name))
    metrics["lightgbm_best_iteration"] = models["lightgbm"].meta["best_iteration"]
    write_json({"features": columns}, out / "feature_list.json")
    card_files = _write_scorecard(models["scorecard"], iv_table, out / "scorecard")
    write_json(metrics, out / "train_metrics.json")
    roc_png = plots.save_png(plots.roc_figure(pd.concat(curves), "ROC, validation"), out / "plots" / "valid_roc.png")
    data_version = {"features": file_md5(source)} | {f"raw/{k}": v for k, v in dir_md5(settings.data.raw_dir).items()}
    run_info = tracking.log_train_run(
        settings.tracking,
        params=settings.declared_values(),
        metrics=metrics,
        data_version=data_version,
        features=columns,
        artifacts={"plots": roc_png, "logistic": model_path(out, "logistic")} | card_files,
        model_path=model_path(out, "lightgbm"),
    )
    write_json(run_info, out / "run.json")
    return metrics | run_info


def _write_scorecard(model: RiskModel, iv_table: pd.DataFrame, folder: Path) -> dict:
    """IV table, points table, the card as JSON (reloadable) and as SQL, for analysts and for MLflow."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(iv_table, folder / "iv_table.csv")
    write_csv(model.estimator.points, folder / "points.csv")
    with atomic_path(folder / "scorecard.json") as tmp:
        model.estimator.to_json(tmp)
    with atomic_path(folder / "scorecard.sql") as tmp:
        tmp.write_text(model.estimator.to_sql() + ";\n")
    return {"scorecard": folder}


def _require_labels(frame: pd.DataFrame, split: str, source: Path) -> None:
    if frame.empty or frame["target"].isna().any() or frame["target"].nunique() < 2:
        raise DataValidationError(
            f"{source}: the {split} split needs labelled rows of both classes (rule: column 'target' has 0 and 1, "
            "no missing); check features.valid_from / test_from / snapshot dates in params.yaml against the "
            "extract date"
        )
