"""Model metrics: discrimination, calibration and lift, as risk analysts read them.

Pure functions: arrays in, numbers or DataFrames out. `compare_to_oracle` takes the simulator's
true probabilities as a frame; only the evaluation stage reads the simulator's truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from huishou.core.errors import DataValidationError


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: max distance between the score CDFs of bads and goods."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean |observed rate - mean predicted| over equal-frequency bins."""
    table = calibration_table(y, p, bins)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-frequency bins of the predicted probability with observed default rates."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    return out.reset_index()


def lift_table(y: np.ndarray, p: np.ndarray, groups: int = 10) -> pd.DataFrame:
    """KS/gains table by score decile (decile 1 = riskiest): bads, rates, cumulative capture, lift, KS."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["decile"] = groups - pd.qcut(frame["p"].rank(method="first"), groups, labels=False)
    table = (
        frame.groupby("decile")
        .agg(n=("y", "size"), bads=("y", "sum"), min_score=("p", "min"), max_score=("p", "max"))
        .sort_index()
    )
    total_bads, total_goods = table["bads"].sum(), (table["n"] - table["bads"]).sum()
    table["bad_rate"] = table["bads"] / table["n"]
    table["cum_bad_capture"] = table["bads"].cumsum() / total_bads
    table["cum_good_capture"] = (table["n"] - table["bads"]).cumsum() / total_goods
    table["ks"] = table["cum_bad_capture"] - table["cum_good_capture"]
    table["lift"] = table["bad_rate"] / (total_bads / table["n"].sum())
    table["cum_lift"] = table["cum_bad_capture"] / (table["n"].cumsum() / table["n"].sum())
    return table.reset_index()


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float) -> float:
    """Bad rate among the top `fraction` by score, over the overall bad rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    k = max(1, int(round(fraction * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def classification_metrics(y: np.ndarray, p: np.ndarray, lift_fraction: float = 0.1, bins: int = 10) -> dict:
    """Every headline metric of a probability model on one labelled set."""
    y = np.asarray(y, dtype=int)
    auc = roc_auc_score(y, p)
    return {
        "auc": float(auc),
        "gini": float(2 * auc - 1),
        "ks": ks_statistic(y, p),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, bins),
        f"lift_top_{int(round(lift_fraction * 100))}pct": lift_at(y, p, lift_fraction),
        "bad_rate": float(y.mean()),
        "mean_predicted": float(np.mean(p)),
        "n": len(y),
    }


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """A thinned ROC curve (fpr, tpr) small enough for `dvc plots`."""
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})


def compare_to_oracle(test: pd.DataFrame, oracle: pd.DataFrame | None) -> dict:
    """Oracle AUC on exactly the scored test rows (simulated books only)."""
    if oracle is None:
        return {}
    joined = test[["loan_id", "snapshot_date", "target"]].merge(oracle, on=["loan_id", "snapshot_date"], how="left")
    if joined["p_true"].isna().any():
        raise DataValidationError(
            f"oracle is missing {int(joined['p_true'].isna().sum())} test rows; re-run `huishou simulate`"
        )
    y = joined["target"].astype(int)
    return {
        "oracle_auc": float(roc_auc_score(y, joined["p_true"])),
        "oracle_brier": float(brier_score_loss(y, joined["p_true"])),
    }


AGE_BANDS = (18, 25, 35, 45, 55, 65)  # 18-24, 25-34, ..., 55-64, 65+


def age_band(age: pd.Series) -> pd.Series:
    """Age in bands (`18-24` ... `65+`; missing stays missing)."""
    edges = [*AGE_BANDS, np.inf]
    labels = [f"{a}-{b - 1}" for a, b in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)] + [f"{AGE_BANDS[-1]}+"]
    return pd.cut(pd.to_numeric(age, errors="coerce"), edges, right=False, labels=labels)


def performance_by_group(y: np.ndarray, p: np.ndarray, groups: pd.Series, top_fraction: float) -> pd.DataFrame:
    """The model's performance per group (a table for fair-lending review, never an input of the model): rows,
    observed and predicted bad rate, AUC within the group, and the share of the group among the riskiest
    `top_fraction` of all loans (the ones escalated first), against the group's share of the book."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    cutoff = np.quantile(p, 1 - top_fraction) if len(p) else np.inf
    flagged = p >= cutoff
    g = pd.Series(np.asarray(groups, dtype=object), dtype=object).fillna("missing").astype(str)
    rows = []
    for name in sorted(g.unique()):
        mask = (g == name).to_numpy()
        ys, ps = y[mask], p[mask]
        both = 0 < ys.sum() < len(ys)
        rows.append(
            {
                "group": name,
                "rows": int(mask.sum()),
                "share_of_book": mask.mean(),
                "bad_rate": ys.mean(),
                "mean_predicted": ps.mean(),
                "auc": roc_auc_score(ys, ps) if both else np.nan,
                "flagged_rate": flagged[mask].mean(),
                "share_of_flagged": flagged[mask].sum() / max(flagged.sum(), 1),
            }
        )
    return pd.DataFrame(rows)
