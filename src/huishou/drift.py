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


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares per bin: len(edges) + 1 value bins, then one bin for missing values."""
    values = np.asarray(values, dtype=float)
    missing = ~np.isfinite(values)
    idx = np.searchsorted(np.asarray(edges), values[~missing], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return (counts / max(len(values), 1)).tolist()


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


def drift_report(reference: dict, scores: np.ndarray, features: pd.DataFrame, warn: float, flag: float) -> dict:
    """PSI of the score and of each reference feature; status ok / warn / flag for each and overall."""

    def status(value: float) -> str:
        return "flag" if value > flag else "warn" if value > warn else "ok"

    score_psi = psi(reference["score"]["shares"], bin_shares(np.asarray(scores, float), reference["score"]["edges"]))
    per_feature = {}
    for col, entry in reference["features"].items():
        value = psi(entry["shares"], bin_shares(_numeric(features[col]), entry["edges"]))
        per_feature[col] = {"psi": value, "status": status(value)}
    worst = max([score_psi, *(v["psi"] for v in per_feature.values())])
    return {
        "score": {"psi": score_psi, "status": status(score_psi)},
        "features": per_feature,
        "status": status(worst),
        "thresholds": {"warn": warn, "flag": flag},
    }
