"""Population stability: the training reference a model carries, and PSI against a scoring run.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%); by the usual
credit-risk convention < 0.1 is stable, 0.1-0.25 deserves a look, > 0.25 is a shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_FLOOR = 1e-4  # keeps empty bins from producing infinite PSI


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner bin edges at the reference quantiles (duplicates dropped for lumpy features)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    return sorted(set(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]).tolist()))


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin: len(edges) + 1 value bins, then one bin for missing values (counts add across
    partitions of a book, shares do not)."""
    values = np.asarray(values, dtype=float)
    missing = ~np.isfinite(values)
    idx = np.searchsorted(np.asarray(edges), values[~missing], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares per bin: len(edges) + 1 value bins, then one bin for missing values."""
    counts = bin_counts(values, edges).astype(float)
    return (counts / max(len(np.asarray(values)), 1)).tolist()


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=float), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.astype(float).where(series.notna()).to_numpy(dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


def build_reference(scores: np.ndarray, features: pd.DataFrame, columns: list[str], bins: int) -> dict:
    """Bin edges and shares of the score and of `columns` on the training data."""
    ref = {"score": _reference_entry(np.asarray(scores, dtype=float), bins), "features": {}}
    for col in columns:
        ref["features"][col] = _reference_entry(_numeric(features[col]), bins)
    return ref


def _reference_entry(values: np.ndarray, bins: int) -> dict:
    edges = quantile_edges(values, bins)
    return {"edges": edges, "shares": bin_shares(values, edges)}


def drift_counts(reference: dict, scores: np.ndarray, features: pd.DataFrame) -> dict:
    """Bin counts of the score and of each reference feature on the reference's edges: what one
    partition of a scoring run contributes (add them up with `add_counts`)."""
    return {
        "rows": len(features),
        "score": bin_counts(np.asarray(scores, float), reference["score"]["edges"]).tolist(),
        "features": {
            col: bin_counts(_numeric(features[col]), entry["edges"]).tolist()
            for col, entry in reference["features"].items()
        },
    }


def add_counts(a: dict, b: dict) -> dict:
    """The counts of two partitions together."""
    return {
        "rows": a["rows"] + b["rows"],
        "score": [x + y for x, y in zip(a["score"], b["score"], strict=True)],
        "features": {
            col: [x + y for x, y in zip(a["features"][col], b["features"][col], strict=True)] for col in a["features"]
        },
    }


def drift_report(reference: dict, scores: np.ndarray, features: pd.DataFrame, warn: float, flag: float) -> dict:
    """PSI of the score and of each reference feature; status ok / warn / flag for each and overall."""
    return drift_from_counts(reference, drift_counts(reference, scores, features), warn, flag)


def drift_from_counts(reference: dict, counts: dict, warn: float, flag: float) -> dict:
    """`drift_report` from bin counts (of a whole run, possibly added up over partitions)."""

    def status(value: float) -> str:
        return "flag" if value > flag else "warn" if value > warn else "ok"

    def shares(c: list[int]) -> list[float]:
        return (np.asarray(c, dtype=float) / max(counts["rows"], 1)).tolist()

    score_psi = psi(reference["score"]["shares"], shares(counts["score"]))
    per_feature = {}
    for col, entry in reference["features"].items():
        value = psi(entry["shares"], shares(counts["features"][col]))
        per_feature[col] = {"psi": value, "status": status(value)}
    worst = max([score_psi, *(v["psi"] for v in per_feature.values())])
    return {
        "score": {"psi": score_psi, "status": status(score_psi)},
        "features": per_feature,
        "status": status(worst),
        "thresholds": {"warn": warn, "flag": flag},
    }


def psi_by_snapshot(reference: dict, frame: pd.DataFrame, date_column: str = "snapshot_date") -> pd.DataFrame:
    """PSI of each reference feature at every snapshot of `frame` against the training reference (the drift
    an analyst plots over time): one row per (snapshot, feature) with the snapshot's rows."""
    rows = []
    for snap, g in frame.groupby(date_column, sort=True):
        for col, entry in reference.get("features", {}).items():
            if col in g.columns:
                value = psi(entry["shares"], bin_shares(_numeric(g[col]), entry["edges"]))
                rows.append({"snapshot": pd.Timestamp(snap), "feature": col, "rows": len(g), "psi": value})
    return pd.DataFrame(rows, columns=["snapshot", "feature", "rows", "psi"])
