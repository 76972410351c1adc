"""`huishou score`: score every active loan at a snapshot (the nightly job).

Reads data.raw_dir (refused unless unchanged since validation), the validation report and the
model (the registry alias, `champion` by default, or --model-path, a saved model folder). In
origination mode (features.mode) it scores the decision queue instead: every pending application
(with --snapshot D: every application made on day D), at its decision time.
Publishes <out>/<T>/ as one unit: scores.parquet (probability, risk band, reason codes for the
risky bands, model version, feature hash) and drift.json (PSI of the score and top features).
<out> is score.nightly_dir unless --out says otherwise (the DVC stage writes score.scores_dir);
the drift is logged to the MLflow experiment tracking.scoring_experiment.

Exit codes: 0 scored; 2 bad input or params (nothing written); 3 a PSI crossed score.psi_flag and
--fail-on-drift was given (scores written); 4 no active loan at the snapshot (nothing written);
75 another run is writing the same snapshot (nothing written).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from huishou import tracking
from huishou.artifacts import scores_unit
from huishou.book.source import BookSource
from huishou.config import FEATURE_BUILD_PARAMS, SOURCE_PARAMS
from huishou.drift import drift_report
from huishou.errors import ConfigError, DataValidationError, DriftFlaggedError, NothingToScoreError
from huishou.io import file_md5, publish, write_json, write_parquet
from huishou.model import RiskModel
from huishou.scoring import assemble_scores, feature_data_hash, features_dask, features_local, score_frame

PARAMS = (
    *SOURCE_PARAMS,
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
    out: str | None = None,
    fail_on_drift: bool = False,
) -> dict:
    """Score every active loan at `snapshot` (default: the extract date) and publish the scores."""
    cfg = settings.score
    source = BookSource.from_settings(settings.data)
    report, tables = source.validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    t = _snapshot(snapshot, as_of)
    unit = scores_unit(out or cfg.nightly_dir, t)
    with publish(unit, what="huishou score") as tmp:
        model, info = _load_model(settings, model_path, alias)
        model.num_threads = cfg.num_threads
        kwargs = settings.features.build_kwargs(as_of)
        engine = engine or cfg.engine
        if engine == "dask" and source.kind != "parquet":
            raise ConfigError("score.engine dask reads partitions of parquet files; data.source is a database")
        origination = kwargs["mode"] == "origination"
        if engine == "dask" and origination:
            raise ConfigError("score.engine dask scores active loans; origination mode scores on one machine (local)")
        if engine == "dask":
            features = features_dask(tables, t, kwargs, cfg, model=model, scheduler=scheduler)
        else:
            features = features_local(
                tables, t, kwargs | {"memory_limit": cfg.duckdb_memory_limit, "threads": cfg.num_threads or None}
            )
        if origination:
            queue = (
                features["status"] == "pending" if snapshot is None else features["snapshot_date"].dt.normalize() == t
            )
            features = features[queue].reset_index(drop=True)
        if features.empty:
            what = (
                ("no application is pending" if snapshot is None else f"no application was made on {t.date()}")
                if origination
                else f"no loan is active at {t.date()} (disbursed before it, not closed, not defaulted)"
            )
            raise NothingToScoreError(f"{settings.data.raw_dir}: {what}; nothing was scored and nothing written")
        if engine == "dask":
            probability = features["probability"].to_numpy()
        else:
            probability = score_frame(model, features, cfg.chunk_size, progress=True)
        data_hash = feature_data_hash(features, model.contract.columns)
        stamp = _existing_timestamp(unit / "scores.parquet", info["model_version"], data_hash)
        stamp = stamp or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        scores = assemble_scores(features, probability, info, data_hash, stamp, cfg, model)
        drift = drift_report(model.meta["reference"], probability, features, cfg.psi_warn, cfg.psi_flag)
        write_parquet(scores, tmp / "scores.parquet")
        write_json(drift, tmp / "drift.json")
    _warn_on_drift(drift)
    summary = {
        "snapshot": str(t.date()),
        "rows": len(scores),
        "path": str(unit),
        "engine": engine,
        "drift_status": drift["status"],
        "score_psi": drift["score"]["psi"],
    } | info
    tracking.log_scoring(settings.tracking, summary, drift)
    if fail_on_drift and drift["status"] == "flag":
        flagged = [n for n, e in [("score", drift["score"]), *drift["features"].items()] if e["status"] == "flag"]
        raise DriftFlaggedError(
            f"{unit}: scores written, but PSI above score.psi_flag ({cfg.psi_flag}) for {flagged[:10]}"
        )
    return summary


def _snapshot(snapshot: str | None, as_of: pd.Timestamp) -> pd.Timestamp:
    """The snapshot date: a real date, a midnight, not after the extract date."""
    if snapshot is None:
        return as_of
    try:
        t = pd.Timestamp(snapshot)
    except (ValueError, TypeError):
        raise DataValidationError(f"--snapshot {snapshot!r}: not a date (rule: YYYY-MM-DD)") from None
    if t.tzinfo is not None or t != t.normalize():
        raise DataValidationError(f"--snapshot {snapshot!r}: must be a date without time or zone (a midnight)")
    if t > as_of:
        raise DataValidationError(
            f"--snapshot {t.date()}: after the extract date {as_of.date()} of the validated book (rule: snapshot <= "
            "as_of); events after the extract are not in the book yet"
        )
    return t


def _load_model(settings, model_path: str | None, alias: str) -> tuple[RiskModel, dict]:
    if model_path:
        model = RiskModel.load(model_path)
        digest = file_md5(Path(model_path) / "model.json")
        return model, {"model_name": Path(model_path).name, "model_version": f"file:{digest[:12]}"}
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
