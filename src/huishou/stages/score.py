"""`huishou score`: score every active loan at a snapshot (the nightly job).

Reads data.raw_dir (refused unless unchanged since validation), the validation report and the
model (the registry alias, `champion` by default, or --model-path). Writes
score.scores_dir/scores_<T>.parquet (probability, risk band, reason codes for the risky bands,
model version, feature hash) and drift_<T>.json (PSI of the score and top features); logs the
drift to the MLflow experiment tracking.scoring_experiment.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from huishou import tracking
from huishou.artifacts import drift_path, scores_path
from huishou.book.files import assert_validated, raw_paths
from huishou.config import FEATURE_BUILD_PARAMS
from huishou.drift import drift_report
from huishou.io import file_md5, write_json, write_parquet
from huishou.model import RiskModel
from huishou.scoring import assemble_scores, feature_data_hash, features_dask, features_local, score_frame

PARAMS = (
    "data.raw_dir",
    "data.validated_dir",
    "score",
    *FEATURE_BUILD_PARAMS,
    "tracking.default_uri",
    "tracking.registered_model",
    "tracking.scoring_experiment",
)

log = logging.getLogger("huishou.score")


def run(
    settings,
    snapshot: str | None = None,
    model_path: str | None = None,
    engine: str | None = None,
    alias: str = "champion",
    scheduler: str | None = None,
) -> dict:
    """Score every active loan at `snapshot` (default: the extract date) and write the scores atomically."""
    cfg = settings.score
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    t = pd.Timestamp(snapshot or report["as_of"])
    model, info = _load_model(settings, model_path, alias)
    kwargs = settings.features.build_kwargs(report["as_of"])
    tables = raw_paths(settings.data.raw_dir)
    engine = engine or cfg.engine
    if engine == "dask":
        features = features_dask(tables, t, kwargs, cfg, model=model, scheduler=scheduler)
        probability = features["probability"].to_numpy()
    else:
        features = features_local(tables, t, kwargs | {"memory_limit": cfg.duckdb_memory_limit})
        probability = score_frame(model, features, cfg.chunk_size, progress=True)
    data_hash = feature_data_hash(features, model.contract.columns)
    out_path = scores_path(cfg.scores_dir, t)
    stamp = _existing_timestamp(out_path, info["model_version"], data_hash) or pd.Timestamp.now(tz="UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    scores = assemble_scores(features, probability, info, data_hash, stamp, cfg, model)
    drift = drift_report(model.meta["reference"], probability, features, cfg.psi_warn, cfg.psi_flag)
    write_parquet(scores, out_path)
    write_json(drift, drift_path(cfg.scores_dir, t))
    _warn_on_drift(drift)
    summary = {
        "snapshot": str(t.date()),
        "rows": len(scores),
        "path": str(out_path),
        "engine": engine,
        "drift_status": drift["status"],
        "score_psi": drift["score"]["psi"],
    } | info
    tracking.log_scoring(settings.tracking, summary, drift)
    return summary


def _load_model(settings, model_path: str | None, alias: str) -> tuple[RiskModel, dict]:
    if model_path:
        info = {"model_name": Path(model_path).stem, "model_version": f"file:{file_md5(model_path)[:12]}"}
        return RiskModel.load(model_path), info
    return tracking.load_registered(settings.tracking, alias)


def _existing_timestamp(path: Path, model_version: str, data_hash: str) -> str | None:
    """Re-running an unchanged job keeps the first run's timestamp so the file is byte-identical."""
    if not path.exists():
        return None
    old = pd.read_parquet(path, columns=["model_version", "feature_data_hash", "run_timestamp"])
    if len(old) and old["model_version"].iloc[0] == model_version and old["feature_data_hash"].iloc[0] == data_hash:
        return str(old["run_timestamp"].iloc[0])
    return None


def _warn_on_drift(drift: dict) -> None:
    for name, entry in [("score", drift["score"]), *drift["features"].items()]:
        if entry["status"] != "ok":
            log.warning(
                "PSI %s %.3f for %s (warn > %.2f, flag > %.2f)",
                entry["status"].upper(),
                entry["psi"],
                name,
                drift["thresholds"]["warn"],
                drift["thresholds"]["flag"],
            )
