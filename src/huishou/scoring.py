"""Nightly batch scoring: point-in-time features for every active loan at T, scored in chunks.

The same `build_features` and `score_frame` run locally (DuckDB over the parquet files)
or on Dask (`features_dask`): the book is split by borrower so that every partition holds
whole borrowers (their earlier loans included) and each partition runs the very same
functions. No file is written here; the score stage publishes the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from huishou.config import ScoreSettings
from huishou.engine import close_dask, dask_client, duckdb_connect
from huishou.explain import reason_codes
from huishou.features import as_categories, build_features
from huishou.model import RiskModel

SCORE_COLUMNS = [
    "loan_id",
    "borrower_id",
    "snapshot_date",
    "probability",
    "risk_band",
    "reason_1",
    "reason_2",
    "reason_3",
    "model_name",
    "model_version",
    "feature_data_hash",
    "run_timestamp",
]


# ---------------------------------------------------------------- pure scoring functions


def score_frame(
    model: RiskModel, features: pd.DataFrame, chunk_size: int = 200_000, progress: bool = False
) -> np.ndarray:
    """Calibrated probabilities, computed chunk by chunk so memory stays bounded by the chunk."""
    out = np.empty(len(features), dtype=float)
    starts = range(0, len(features), max(1, chunk_size))
    for start in tqdm(starts, desc="scoring", unit="chunk", disable=not progress):
        chunk = features.iloc[start : start + chunk_size]
        out[start : start + len(chunk)] = model.predict_proba(chunk)
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
    """Whole borrowers of one hash partition, read straight from the parquet files (paths and numbers are
    query parameters, never pasted into SQL text)."""
    con = duckdb_connect()
    con.execute(
        "CREATE TEMP TABLE apps AS SELECT * FROM read_parquet($path) WHERE hash(borrower_id) % $n = $part",
        {"path": str(tables["applications"]), "n": int(n_parts), "part": int(part)},
    )
    out = {"applications": con.sql("SELECT * FROM apps").df()}
    for name, path in tables.items():
        if name == "applications":
            continue
        columns = set(
            con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}).df()["column_name"]
        )
        key = "loan_id" if "loan_id" in columns else "borrower_id"  # contact preferences are the borrower's
        query = {
            "loan_id": "SELECT * FROM read_parquet($path) t WHERE t.loan_id IN (SELECT loan_id FROM apps)",
            "borrower_id": "SELECT * FROM read_parquet($path) t WHERE t.borrower_id IN (SELECT borrower_id FROM apps)",
        }[key]
        out[name] = con.execute(query, {"path": str(path)}).df()
    con.close()
    return out


def score_partition(
    tables: Mapping[str, Path],
    part: int,
    n_parts: int,
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    model: RiskModel | None,
) -> pd.DataFrame:
    """One Dask task: features (and probabilities, when a model is given) for one partition."""
    features = build_features(_partition_tables(tables, part, n_parts), [snapshot], threads=1, **feature_kwargs)
    if model is not None:
        model.num_threads = 1  # the cluster gives each single-threaded worker process one core
        features["probability"] = score_frame(model, features)
    return features


def features_dask(
    tables: Mapping[str, Path],
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    cfg: ScoreSettings,
    model: RiskModel | None = None,
    client=None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Same feature (and scoring) functions, one task per borrower partition on a Dask cluster.

    The cluster is `client`, else the one at `scheduler` (default: score.scheduler), else a local
    one of score.dask_workers processes. Workers read the parquet files themselves, so with a
    remote scheduler the paths must be on storage every worker sees.
    """
    own = client is None
    client = client or dask_client(scheduler or cfg.scheduler, cfg.dask_workers)
    try:
        model_future = client.scatter(model, broadcast=True) if model is not None else None
        futures = [
            client.submit(
                score_partition,
                dict(tables),
                k,
                cfg.dask_partitions,
                snapshot,
                feature_kwargs,
                model_future,
                pure=False,
            )
            for k in range(cfg.dask_partitions)
        ]
        parts = client.gather(futures)
    finally:
        if own:
            close_dask(client)
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    frame = as_categories(frame)  # partitions see different levels; concat turns them into plain strings
    return frame.sort_values(["snapshot_date", "loan_id"], ignore_index=True)


def band_reasons(model: RiskModel | None, features: pd.DataFrame, bands: pd.Categorical, min_band: str) -> pd.DataFrame:
    """Top-3 plain-language reasons for loans in `min_band` or riskier ('' elsewhere, and everywhere without a
    model: TreeSHAP costs ~40x a prediction, and the reasons serve collectors and adverse-action notices,
    which concern the risky bands)."""
    out = pd.DataFrame("", index=features.index, columns=["reason_1", "reason_2", "reason_3"])
    risky = np.asarray(bands.codes) >= list(bands.categories).index(min_band)
    if model is not None and risky.any() and model.kind in ("lightgbm", "scorecard"):
        out.loc[risky] = reason_codes(model, features.loc[risky]).to_numpy()
    return out


def assemble_scores(
    features: pd.DataFrame,
    probability: np.ndarray,
    model_info: dict,
    data_hash: str,
    run_timestamp: str,
    cfg: ScoreSettings,
    model: RiskModel | None = None,
) -> pd.DataFrame:
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
