"""Nightly batch scoring: point-in-time features for every active loan at T, scored in chunks.

The same `build_features` and `score_rows` run locally (DuckDB over the parquet files, one
frame) or on Dask (`score_dask`): the book is split by a hash of borrower_id so that every
partition holds whole borrowers (their earlier loans included); each Dask task builds its
partition's features, scores and explains them, writes its own part of the output dataset and
returns only aggregates (row count, drift bin counts, the data hash's sums, reason-code counts),
so the driver's memory does not grow with the book.

Reason codes (TreeSHAP) are a pure function of the model and a loan's inputs, so a loan whose
inputs hash the same as in an earlier run of the same model keeps that run's reasons
(`ReasonCache`); only the rest are computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from huishou.book.buckets import bucket_book, partition_files, partition_tables, partitions_for
from huishou.book.files import as_files
from huishou.core.engine import close_dask, dask_client
from huishou.core.io import write_parquet
from huishou.core.progress import progress_bar
from huishou.core.settings import ScoreSettings
from huishou.features import build_features
from huishou.risk.drift import add_counts, drift_counts
from huishou.risk.explain import EXPLAIN_COLUMNS, REASON_CODES, REASONS, explain
from huishou.risk.model import RiskModel

REASON_COLUMNS = EXPLAIN_COLUMNS  # three reasons in words, at most four codes, the explanation record (JSON)
SCORE_COLUMNS = [
    "loan_id",
    "borrower_id",
    "snapshot_date",
    "probability",
    "risk_band",
    *REASON_COLUMNS,
    "model_name",
    "model_version",
    "feature_hash",
]
_DATA_HASH_KEYS = ("huishou-data-h1.", "huishou-data-h2.")  # two 16-byte keys: a 128-bit multiset hash


# ---------------------------------------------------------------- pure scoring functions


def score_frame(
    model: RiskModel, features: pd.DataFrame, chunk_size: int = 200_000, progress: bool = False
) -> np.ndarray:
    """Calibrated probabilities, computed chunk by chunk so memory stays bounded by the chunk."""
    out = np.empty(len(features), dtype=float)
    starts = range(0, len(features), max(1, chunk_size))
    for start in progress_bar(starts, desc="scoring", unit="chunk", disable=not progress):
        chunk = features.iloc[start : start + chunk_size]
        out[start : start + len(chunk)] = model.predict_proba(chunk)
    return out


def risk_bands(probability: np.ndarray, thresholds: Sequence[float], labels: Sequence[str]) -> pd.Categorical:
    """Band by upper-open probability thresholds: p < t0 -> labels[0], ..., p >= t_last -> labels[-1]."""
    if len(labels) != len(thresholds) + 1:
        raise ValueError("score.band_labels needs one label more than score.band_thresholds")
    idx = np.searchsorted(np.asarray(thresholds), probability, side="right")
    return pd.Categorical.from_codes(idx, categories=list(labels), ordered=True)


def row_hashes(model: RiskModel, features: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row of the inputs as the model sees them (its columns, its categorical levels):
    equal hashes, equal inputs, hence equal probability and reason codes."""
    return pd.util.hash_pandas_object(model.contract.align(features), index=False).to_numpy(np.uint64)


def data_hash_sums(features: pd.DataFrame, columns: Sequence[str]) -> list[int]:
    """Two 64-bit sums of per-row hashes of (loan_id, snapshot_date, model inputs): a content hash of the
    scored rows that does not depend on their order or on how the book was split (sums add up)."""
    keyed = features[["loan_id", "snapshot_date", *columns]]
    return [
        int(pd.util.hash_pandas_object(keyed, index=False, hash_key=key).to_numpy(np.uint64).sum(dtype=np.uint64))
        for key in _DATA_HASH_KEYS
    ]


def data_hash_hex(sums: Sequence[int]) -> str:
    return "".join(f"{int(s) % 2**64:016x}" for s in sums)


def reason_key(model: RiskModel, model_version: str, min_band: str) -> str:
    """What a run's reason codes depend on besides the inputs: the model, the band they start at and the
    words. Reasons are reused only from a run with the same key."""
    doc = [model_version, min_band, REASONS, REASON_CODES, model.meta.get("descriptions", {})]
    return hashlib.md5(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass
class ReasonCache:
    """Reason codes of an earlier run with the same `reason_key` (the caller picks that run), by input hash
    (`feature_hash`)."""

    reasons: pd.DataFrame  # index: feature_hash (unique), columns REASON_COLUMNS

    @classmethod
    def read(cls, path: str | Path, explained_bands: Sequence[str]) -> ReasonCache:
        """The explained rows of an earlier scores dataset (a file, or a folder of parts)."""
        rows = pd.read_parquet(
            path,
            columns=["feature_hash", "risk_band", *REASON_COLUMNS],
            filters=[("risk_band", "in", list(explained_bands))],
        )
        rows = rows.drop_duplicates("feature_hash").set_index("feature_hash")[REASON_COLUMNS]
        return cls(rows)


def band_reasons(
    model: RiskModel | None,
    features: pd.DataFrame,
    bands: pd.Categorical,
    min_band: str,
    hashes: np.ndarray | None = None,
    cache: ReasonCache | None = None,
    model_version: str = "",
) -> tuple[pd.DataFrame, dict]:
    """Top-3 plain-language reasons for loans in `min_band` or riskier ('' elsewhere, and everywhere without a
    model: TreeSHAP costs ~40x a prediction, and the reasons serve collectors and adverse-action notices,
    which concern the risky bands). Loans whose input hash is in `cache` keep its reasons; the counts
    say how many were computed and how many reused."""
    out = pd.DataFrame("", index=features.index, columns=REASON_COLUMNS)
    risky = np.asarray(bands.codes) >= list(bands.categories).index(min_band)
    stats = {"explained": int(risky.sum()), "computed": 0, "reused": 0}
    if model is None or not risky.any() or not model.explains:
        return out, stats | {"explained": 0}
    todo = risky.copy()
    if cache is not None and hashes is not None and len(cache.reasons):
        hit = risky & np.isin(hashes, cache.reasons.index.to_numpy())
        if hit.any():
            out.loc[hit] = cache.reasons.loc[hashes[hit]].to_numpy()
        todo &= ~hit
        stats["reused"] = int(hit.sum())
    if todo.any():
        out.loc[todo] = explain(model, features.loc[todo], model_version)[REASON_COLUMNS].to_numpy()
    stats["computed"] = int(todo.sum())
    return out, stats


def score_rows(
    features: pd.DataFrame,
    model: RiskModel,
    model_info: dict,
    cfg: ScoreSettings,
    cache: ReasonCache | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Scores (SCORE_COLUMNS, sorted by loan_id) of a feature frame and its aggregates (`add_aggregates`
    adds those of several partitions): rows, drift bin counts, the data hash's sums, band and reason counts."""
    inputs = model.contract.align(features)  # once: the prediction and the hashes take it as it is
    probability = score_frame(model, inputs, cfg.chunk_size, progress=progress)
    hashes = row_hashes(model, inputs)
    out = features[["loan_id", "borrower_id", "snapshot_date"]].copy()
    out["probability"] = probability
    out["risk_band"] = risk_bands(probability, cfg.band_thresholds, cfg.band_labels)
    bands = out["risk_band"].array
    version = str(model_info["model_version"])
    reasons, stats = band_reasons(model, features, bands, cfg.reasons_min_band, hashes, cache, version)
    out[REASON_COLUMNS] = reasons.to_numpy()
    out["model_name"] = model_info["model_name"]
    out["model_version"] = model_info["model_version"]
    out["feature_hash"] = hashes
    aggregates = {
        "rows": len(out),
        "drift": drift_counts(model.meta["reference"], probability, features),
        "data_hash": data_hash_sums(features, model.contract.columns),
        "bands": out["risk_band"].value_counts(sort=False).reindex(cfg.band_labels, fill_value=0).tolist(),
        "reasons": stats,
    }
    return out[SCORE_COLUMNS].sort_values("loan_id", ignore_index=True), aggregates


def add_aggregates(a: dict, b: dict) -> dict:
    """The aggregates of two partitions together (the data hash's sums wrap at 2**64)."""
    return {
        "rows": a["rows"] + b["rows"],
        "drift": add_counts(a["drift"], b["drift"]),
        "data_hash": [(x + y) % 2**64 for x, y in zip(a["data_hash"], b["data_hash"], strict=True)],
        "bands": [x + y for x, y in zip(a["bands"], b["bands"], strict=True)],
        "reasons": {k: a["reasons"][k] + b["reasons"][k] for k in a["reasons"]},
    }


# ---------------------------------------------------------------- engines


def features_local(tables: Mapping[str, Path], snapshot: pd.Timestamp, feature_kwargs: dict) -> pd.DataFrame:
    return build_features(tables, [snapshot], **feature_kwargs)


def partition_features(
    tables: Mapping[str, Path],
    part: int,
    n_parts: int,
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    buckets: Path | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """The features of one borrower partition at `snapshot` (default one thread: a Dask worker's core): its
    bucket's files read in place, or, without buckets, its rows filtered from the raw files."""
    if buckets is not None:
        frames = partition_files(tables, part, buckets)
    else:
        frames = partition_tables(tables, part, n_parts, buckets)
    return build_features(frames, [snapshot], **(feature_kwargs | {"threads": threads or None}))


def score_partition(
    tables: Mapping[str, Path],
    part: int,
    n_parts: int,
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    model: RiskModel,
    model_info: dict,
    cfg: ScoreSettings,
    out_dir: Path,
    cache_path: Path | None = None,
    buckets: Path | None = None,
    threads: int = 1,
) -> dict:
    """One partition's features, scores and reasons, written to out_dir/part-<k>.parquet (nothing for an
    empty partition); returns the aggregates only. A Dask task runs it with one thread (the cluster gives
    each single-threaded worker process one core); the local engine with compute.threads."""
    features = partition_features(tables, part, n_parts, snapshot, feature_kwargs, buckets, threads)
    if features.empty:
        return {"rows": 0}
    model.num_threads = threads
    cache = None
    if cache_path is not None:
        cache = ReasonCache.read(cache_path, explained_bands(cfg))
    scores, aggregates = score_rows(features, model, model_info, cfg, cache)
    write_parquet(scores, Path(out_dir) / f"part-{part:05d}.parquet")
    return aggregates


def explained_bands(cfg: ScoreSettings) -> list[str]:
    """The bands whose loans get reason codes: score.reasons_min_band and riskier."""
    return list(cfg.band_labels[cfg.band_labels.index(cfg.reasons_min_band) :])


def score_partitions(
    tables: Mapping[str, Path],
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    cfg: ScoreSettings,
    model: RiskModel,
    model_info: dict,
    out_dir: Path,
    cache_path: Path | None = None,
    client=None,
    threads: int = 1,
) -> tuple[dict | None, int]:
    """Score the book one borrower partition of about score.rows_per_partition loans at a time: one task
    reads every raw file once and splits it by partition, then each partition is built, scored, explained
    and written as its part of the dataset `out_dir`, returning aggregates that are added up as they
    arrive (nobody holds the book's rows). With a Dask `client` the partitions are its tasks; without,
    they run one after another in this process on `threads` threads, so memory is one partition's.
    Returns the total aggregates (None when every partition was empty) and the number of partitions."""
    import shutil

    n_parts = partitions_for(tables["applications"], cfg.rows_per_partition)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buckets = out_dir.parent / f".{out_dir.name}.buckets" if n_parts > 1 else None
    kwargs = feature_kwargs | {"memory_limit": cfg.duckdb_memory_limit}
    tail = (model_info, cfg, out_dir, cache_path, buckets)
    total = None
    bar = progress_bar(total=n_parts, desc="scoring partitions", unit="part", disable=n_parts < 2)
    try:
        if buckets is not None:  # a table the contact log adds to arrives as a frame: DuckDB's split reads files
            tables = as_files(tables, buckets / "tables")
        args = (dict(tables), n_parts, snapshot, kwargs)
        if client is None:
            if buckets is not None:
                bucket_book(tables, n_parts, buckets, cfg.duckdb_memory_limit, spill_to=kwargs.get("spill_to"))
            results = (score_partition(args[0], k, *args[1:], model, *tail, threads=threads) for k in range(n_parts))
        else:
            from dask.distributed import as_completed

            if buckets is not None:
                client.submit(
                    bucket_book,
                    dict(tables),
                    n_parts,
                    buckets,
                    cfg.duckdb_memory_limit,
                    spill_to=kwargs.get("spill_to"),
                    pure=False,
                ).result()
            model_future = client.scatter(model, broadcast=True)
            futures = [
                client.submit(score_partition, args[0], k, *args[1:], model_future, *tail, pure=False)
                for k in range(n_parts)
            ]
            results = (_released(f) for f in as_completed(futures))
        for part in results:
            if part["rows"]:
                total = part if total is None else add_aggregates(total, part)
            bar.update()
    finally:
        bar.close()
        if buckets is not None:
            shutil.rmtree(buckets, ignore_errors=True)
    return total, n_parts


def _released(future) -> dict:
    result = future.result()
    future.release()
    return result


def score_dask(
    tables: Mapping[str, Path],
    snapshot: pd.Timestamp,
    feature_kwargs: dict,
    cfg: ScoreSettings,
    model: RiskModel,
    model_info: dict,
    out_dir: Path,
    cache_path: Path | None = None,
    client=None,
    scheduler: str | None = None,
    workers: int = 2,
) -> tuple[dict | None, int]:
    """`score_partitions` on a Dask cluster: `client`, else the one at `scheduler` (compute.scheduler or
    --scheduler), else a local one of `workers` (compute.threads) single-threaded processes. Workers read
    the parquet files and write the parts themselves, so with a remote scheduler both must be on
    storage every worker sees."""
    own = client is None
    client = client or dask_client(scheduler, workers)
    try:
        return score_partitions(tables, snapshot, feature_kwargs, cfg, model, model_info, out_dir, cache_path, client)
    finally:
        if own:
            close_dask(client)
