"""Nightly batch scoring: point-in-time features for every active loan at T, scored in chunks.

The same `build_features` and `score_frame` run locally (DuckDB over the parquet files)
or on Dask (`engine="dask"`): the book is split by borrower so that every partition holds
whole borrowers (their earlier loans included) and each partition runs the very same
functions. Output is written atomically and is byte-identical when re-run unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from huishou.config import ScoreSettings, Settings
from huishou.drift import drift_report
from huishou.features.build import as_categories, build_features
from huishou.train import RiskModel

SCORE_COLUMNS = ["loan_id", "borrower_id", "snapshot_date", "probability", "risk_band", "reason_1", "reason_2",
                 "reason_3", "model_name", "model_version", "feature_data_hash", "run_timestamp"]


# ---------------------------------------------------------------- pure scoring functions


def score_frame(model: RiskModel, features: pd.DataFrame, chunk_size: int = 200_000, progress: bool = False) -> np.ndarray:
    """Calibrated probabilities, computed chunk by chunk so memory stays bounded by the chunk."""
    out = np.empty(len(features), dtype=float)
    starts = range(0, len(features), max(1, chunk_size))
    for start in tqdm(starts, desc="scoring", unit="chunk", disable=not progress):
        chunk = features.iloc[start:start + chunk_size]
        out[start:start + len(chunk)] = model.predict_proba(chunk)
    return out


def risk_bands(probability: np.ndarray, thresholds: Sequence[float], labels: Sequence[str]) -> pd.Categorical:
    """Band by upper-open probability thresholds: p < t0 -> labels[0], ..., p >= t_last -> labels[-1]."""
    if len(labels) != len(thresholds) + 1:
        raise ValueError("score.band_labels needs one label more than score.band_thresholds")
    idx = np.searchsorted(np.asarray(thresholds), probability, side="right")
    return pd.Categorical.from_codes(idx, categories=list(labels), ordered=True)


def feature_data_hash(features: pd.DataFrame, columns: Sequence[str]) -> str:
    """Content hash of the model inputs (row order and values), independent of file encoding."""
    keyed = features[["loan_id", "snapshot_date", *columns]]
    row_hashes = pd.util.hash_pandas_object(keyed, index=False).to_numpy()
    return hashlib.md5(row_hashes.tobytes()).hexdigest()


# ---------------------------------------------------------------- engines


def features_local(tables: Mapping[str, Path], snapshot: pd.Timestamp, feature_kwargs: dict) -> pd.DataFrame:
    return build_features(tables, [snapshot], **feature_kwargs)


def _partition_tables(tables: Mapping[str, Path], part: int, n_parts: int) -> dict[str, pd.DataFrame]:
    """Whole borrowers of one hash partition, read straight from the parquet files."""
    con = duckdb.connect()
    apps_path = Path(tables["applications"]).as_posix()
    con.execute(f"CREATE TEMP TABLE apps AS SELECT * FROM read_parquet('{apps_path}') "
                f"WHERE hash(borrower_id) % {n_parts} = {part}")
    out = {"applications": con.sql("SELECT * FROM apps").df()}
    for name, path in tables.items():
        if name != "applications":
            out[name] = con.sql(f"SELECT * FROM read_parquet('{Path(path).as_posix()}') t "
                                "WHERE t.loan_id IN (SELECT loan_id FROM apps)").df()
    con.close()
    return out


def score_partition(tables: Mapping[str, Path], part: int, n_parts: int, snapshot: pd.Timestamp,
                    feature_kwargs: dict, model: RiskModel | None) -> pd.DataFrame:
    """One Dask task: features (and probabilities, when a model is given) for one partition."""
    features = build_features(_partition_tables(tables, part, n_parts), [snapshot], threads=1, **feature_kwargs)
    if model is not None:
        features["probability"] = score_frame(model, features)
    return features


def dask_client(scheduler: str | None, n_workers: int):
    """A client for `scheduler`, or a local cluster of `n_workers` single-threaded processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster)


def features_dask(tables: Mapping[str, Path], snapshot: pd.Timestamp, feature_kwargs: dict, cfg: ScoreSettings,
                  model: RiskModel | None = None, client=None) -> pd.DataFrame:
    """Same feature (and scoring) functions, one task per borrower partition on a Dask cluster.

    Workers read the parquet files themselves, so with a remote scheduler the paths must be on
    storage every worker sees.
    """
    own = client is None
    client = client or dask_client(cfg.scheduler, cfg.dask_workers)
    try:
        model_future = client.scatter(model, broadcast=True) if model is not None else None
        futures = [client.submit(score_partition, dict(tables), k, cfg.dask_partitions, snapshot, feature_kwargs,
                                 model_future, pure=False) for k in range(cfg.dask_partitions)]
        parts = client.gather(futures)
    finally:
        if own:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    frame = as_categories(frame)  # partitions see different levels; concat turns them into plain strings
    return frame.sort_values(["snapshot_date", "loan_id"], ignore_index=True)


# ---------------------------------------------------------------- the stage


def _existing_timestamp(path: Path, model_version: str, data_hash: str) -> str | None:
    """Re-running an unchanged job keeps the first run's timestamp so the file is byte-identical."""
    if not path.exists():
        return None
    old = pd.read_parquet(path, columns=["model_version", "feature_data_hash", "run_timestamp"])
    if len(old) and old["model_version"].iloc[0] == model_version and old["feature_data_hash"].iloc[0] == data_hash:
        return str(old["run_timestamp"].iloc[0])
    return None


def load_model(settings: Settings, model_path: str | None, alias: str) -> tuple[RiskModel, dict]:
    if model_path:
        from huishou.io import file_md5

        return RiskModel.load(model_path), {"model_name": Path(model_path).stem,
                                            "model_version": f"file:{file_md5(model_path)[:12]}"}
    from huishou import tracking

    return tracking.load_registered(settings.tracking, alias)


def band_reasons(model: RiskModel | None, features: pd.DataFrame, bands: pd.Categorical, min_band: str) -> pd.DataFrame:
    """Top-3 plain-language reasons for loans in `min_band` or riskier ('' elsewhere, and everywhere without a
    model: TreeSHAP costs ~40x a prediction, and the reasons serve collectors and adverse-action notices,
    which concern the risky bands)."""
    from huishou.explain import reason_codes

    out = pd.DataFrame("", index=features.index, columns=["reason_1", "reason_2", "reason_3"])
    risky = np.asarray(bands.codes) >= list(bands.categories).index(min_band)
    if model is not None and risky.any() and model.kind in ("lightgbm", "scorecard"):
        out.loc[risky] = reason_codes(model, features.loc[risky]).to_numpy()
    return out


def assemble_scores(features: pd.DataFrame, probability: np.ndarray, model_info: dict, data_hash: str,
                    run_timestamp: str, cfg: ScoreSettings, model: RiskModel | None = None) -> pd.DataFrame:
    out = features[["loan_id", "borrower_id", "snapshot_date"]].copy()
    out["probability"] = probability
    out["risk_band"] = risk_bands(probability, cfg.band_thresholds, cfg.band_labels)
    reasons = band_reasons(model, features, out["risk_band"].array, cfg.reasons_min_band)
    out[["reason_1", "reason_2", "reason_3"]] = reasons.to_numpy()
    out["model_name"] = model_info["model_name"]
    out["model_version"] = model_info["model_version"]
    out["feature_data_hash"] = data_hash
    out["run_timestamp"] = run_timestamp
    return out[SCORE_COLUMNS].sort_values("loan_id", ignore_index=True)


def run(settings: Settings, snapshot: str | None = None, model_path: str | None = None,
        engine: str | None = None, alias: str = "champion") -> dict:
    """`huishou score --snapshot DATE`: score every active loan at DATE, write data/scores/ atomically."""
    from huishou import tracking
    from huishou.io import write_json, write_parquet
    from huishou.validate import assert_validated, raw_paths

    cfg = settings.score
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    t = pd.Timestamp(snapshot or report["as_of"])
    model, info = load_model(settings, model_path, alias)
    f = settings.features
    kwargs = f.build_kwargs(report["as_of"])
    tables = raw_paths(settings.data.raw_dir)
    engine = engine or cfg.engine
    if engine == "dask":
        features = features_dask(tables, t, kwargs, cfg, model=model)
        probability = features["probability"].to_numpy()
    else:
        features = features_local(tables, t, kwargs | {"memory_limit": cfg.duckdb_memory_limit})
        probability = score_frame(model, features, cfg.chunk_size, progress=True)
    data_hash = feature_data_hash(features, model.contract.columns)
    out_path = Path(cfg.scores_dir) / f"scores_{t.date()}.parquet"
    stamp = _existing_timestamp(out_path, info["model_version"], data_hash) or pd.Timestamp.now(tz="UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    scores = assemble_scores(features, probability, info, data_hash, stamp, cfg, model)
    drift = drift_report(model.meta["reference"], probability, features, cfg.psi_warn, cfg.psi_flag)
    write_parquet(scores, out_path)
    write_json(drift, Path(cfg.scores_dir) / f"drift_{t.date()}.json")
    _warn_on_drift(drift)
    summary = {"snapshot": str(t.date()), "rows": len(scores), "path": str(out_path), "engine": engine,
               "drift_status": drift["status"], "score_psi": drift["score"]["psi"]} | info
    tracking.log_scoring(settings.tracking, summary, drift)
    return summary


def _warn_on_drift(drift: dict) -> None:
    import logging

    log = logging.getLogger("huishou.score")
    for name, entry in [("score", drift["score"]), *drift["features"].items()]:
        if entry["status"] != "ok":
            log.warning("PSI %s %.3f for %s (warn > %.2f, flag > %.2f)", entry["status"].upper(), entry["psi"], name,
                        drift["thresholds"]["warn"], drift["thresholds"]["flag"])
