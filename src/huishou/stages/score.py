"""`huishou score`: score every active loan at a snapshot (the nightly job).

Reads data.raw_dir (refused unless unchanged since validation), the validation report and the
model (the registry alias, `champion` by default, or --model-path, a saved model folder). In
origination mode (features.mode) it scores the decision queue instead: every pending application
(with --snapshot D: every application made on day D), at its decision time.
Publishes <out>/<T>/ as one unit: scores.parquet (probability, risk band, reason codes for the
risky bands, model version, the hash of each loan's model inputs: one file, or for a book of more
than score.rows_per_partition loans and with the Dask engine a folder of one part per borrower
partition, scored one partition at a time; pandas, pyarrow and DuckDB read either as one dataset), manifest.json (rows, data hash, model, run timestamp) and drift.json (PSI of the
score and top features). Reason codes of loans whose inputs did not change since the latest
earlier run in <out> (same model) are carried over (score.reasons_reuse).
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

from huishou.book.buckets import partitions_for
from huishou.book.source import BookSource
from huishou.core import tracking
from huishou.core.engine import threads
from huishou.core.errors import ConfigError, DataValidationError, DriftFlaggedError, NothingToScoreError
from huishou.core.io import file_md5, publish, read_json, write_json, write_parquet
from huishou.core.paths import scores_unit
from huishou.core.settings import FEATURE_BUILD_PARAMS, SOURCE_PARAMS
from huishou.risk.drift import drift_from_counts
from huishou.risk.model import RiskModel
from huishou.risk.scoring import (
    ReasonCache,
    data_hash_hex,
    explained_bands,
    features_local,
    reason_key,
    score_dask,
    score_partitions,
    score_rows,
)

PARAMS = (
    "compute",
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
    root = Path(out or cfg.nightly_dir)
    unit = scores_unit(root, t)
    with publish(unit, what="huishou score") as tmp:
        model, info = _load_model(settings, model_path, alias)
        n_threads = threads(settings.compute.threads)
        model.num_threads = n_threads
        kwargs = settings.features.build_kwargs(as_of) | {"spill_to": settings.compute.spill_directory}
        engine = engine or cfg.engine
        origination = kwargs["mode"] == "origination"
        if engine == "dask" and source.kind != "parquet":
            raise ConfigError("score.engine dask reads partitions of parquet files; data.source is a database")
        if engine == "dask" and origination:
            raise ConfigError("score.engine dask scores active loans; origination mode scores on one machine (local)")
        key = reason_key(model, info["model_version"], cfg.reasons_min_band)
        cache_path = _reason_source(root, t, key) if cfg.reasons_reuse else None
        if engine == "dask":
            totals, partitions = score_dask(
                tables,
                t,
                kwargs,
                cfg,
                model,
                info,
                tmp / "scores.parquet",
                cache_path,
                scheduler=scheduler or settings.compute.scheduler,
                workers=n_threads,
            )
        elif (
            source.kind == "parquet"
            and not origination
            and partitions_for(tables["applications"], cfg.rows_per_partition) > 1
        ):  # one partition at a time in this process: memory is a partition's, not the book's
            totals, partitions = score_partitions(
                tables, t, kwargs, cfg, model, info, tmp / "scores.parquet", cache_path, threads=n_threads
            )
        else:
            features = features_local(
                tables, t, kwargs | {"memory_limit": cfg.duckdb_memory_limit, "threads": n_threads}
            )
            if origination:
                queue = (
                    features["status"] == "pending"
                    if snapshot is None
                    else features["snapshot_date"].dt.normalize() == t
                )
                features = features[queue].reset_index(drop=True)
            totals, partitions = None, 1
            if len(features):
                cache = ReasonCache.read(cache_path, explained_bands(cfg)) if cache_path else None
                scores, totals = score_rows(features, model, info, cfg, cache, progress=True)
                write_parquet(scores, tmp / "scores.parquet")
        if totals is None:
            what = (
                ("no application is pending" if snapshot is None else f"no application was made on {t.date()}")
                if origination
                else f"no loan is active at {t.date()} (disbursed before it, not closed, not defaulted)"
            )
            raise NothingToScoreError(f"{settings.data.raw_dir}: {what}; nothing was scored and nothing written")
        data_hash = data_hash_hex(totals["data_hash"])
        manifest = {
            "snapshot": str(t.date()),
            "rows": totals["rows"],
            "model_name": info["model_name"],
            "model_version": info["model_version"],
            "feature_data_hash": data_hash,
            "reason_key": key,
            "bands": dict(zip(cfg.band_labels, totals["bands"], strict=True)),
            "run_timestamp": _existing_timestamp(unit / "manifest.json", info["model_version"], data_hash)
            or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        drift = drift_from_counts(model.meta["reference"], totals["drift"], cfg.psi_warn, cfg.psi_flag)
        write_json(manifest, tmp / "manifest.json")
        write_json(drift, tmp / "drift.json")
    _warn_on_drift(drift)
    reasons = totals["reasons"]
    summary = {
        "snapshot": str(t.date()),
        "rows": totals["rows"],
        "path": str(unit),
        "engine": engine,
        "partitions": partitions,
        "drift_status": drift["status"],
        "score_psi": drift["score"]["psi"],
        "reasons_explained": reasons["explained"],
        "reasons_computed": reasons["computed"],
        "reasons_reused": reasons["reused"],
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
    return tracking.load_registered(settings.tracking, alias, RiskModel.load)


def _reason_source(root: Path, t: pd.Timestamp, key: str) -> Path | None:
    """The scores of the latest run in `root` at or before `t` whose reasons were made with `key`
    (same model, band and words): the one whose reasons can be carried over."""
    runs = []
    for folder in root.glob("????-??-??") if root.is_dir() else []:
        try:
            day = pd.Timestamp(folder.name)
        except ValueError:
            continue
        if day <= t and (folder / "manifest.json").is_file() and (folder / "scores.parquet").exists():
            runs.append((day, folder))
    for _, folder in sorted(runs, reverse=True):
        try:
            same = read_json(folder / "manifest.json").get("reason_key") == key
        except ValueError:
            same = False
        if same:
            return folder / "scores.parquet"
    return None


def _existing_timestamp(path: Path, model_version: str, data_hash: str) -> str | None:
    """Re-running an unchanged job keeps the first run's timestamp so the outputs are byte-identical."""
    if not path.is_file():
        return None
    try:
        old = read_json(path)
    except ValueError:
        return None
    if old.get("model_version") == model_version and old.get("feature_data_hash") == data_hash:
        return old.get("run_timestamp")
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
