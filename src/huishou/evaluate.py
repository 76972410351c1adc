"""Model evaluation: discrimination, calibration and lift, as risk analysts read them.

Pure metric functions (arrays in, numbers or DataFrames out) plus `evaluate_models`,
the evaluation-only step that also reports the oracle AUC from the simulator's truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve


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
    table = frame.groupby("decile").agg(n=("y", "size"), bads=("y", "sum"), min_score=("p", "min"),
                                        max_score=("p", "max")).sort_index()
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


# ---------------------------------------------------------------- stage entry point


def compare_to_oracle(test: pd.DataFrame, oracle: pd.DataFrame | None) -> dict:
    """Oracle AUC on exactly the scored test rows (simulated books only)."""
    if oracle is None:
        return {}
    joined = test[["loan_id", "snapshot_date", "target"]].merge(oracle, on=["loan_id", "snapshot_date"], how="left")
    if joined["p_true"].isna().any():
        raise ValueError(f"oracle is missing {int(joined['p_true'].isna().sum())} test rows; re-run `huishou simulate`")
    y = joined["target"].astype(int)
    return {"oracle_auc": float(roc_auc_score(y, joined["p_true"])),
            "oracle_brier": float(brier_score_loss(y, joined["p_true"]))}


def run(settings) -> dict:
    """`huishou evaluate`: out-of-time metrics of both models, the oracle side by side, DVC plots."""
    import json
    from pathlib import Path

    from huishou import plots, tracking
    from huishou.features import FEATURES_FILE, load_features
    from huishou.io import write_csv, write_json
    from huishou.train import RiskModel
    from huishou.truth import load_oracle

    cfg = settings.evaluate
    frame = load_features(Path(settings.data.features_dir) / FEATURES_FILE)
    test = frame[frame["split"] == "test"]
    if test.empty or test["target"].isna().any():
        raise ValueError("the out-of-time test split is empty or unlabelled; check features.test_from in params.yaml")
    models_dir = Path(settings.data.models_dir)
    metrics, roc, cal, lift = {}, [], [], []
    names = [n for n in ("lightgbm", "logistic", "scorecard") if (models_dir / f"{n}.joblib").exists()]
    loaded = {name: RiskModel.load(models_dir / f"{name}.joblib") for name in names}
    for name, model in loaded.items():
        p = model.predict_proba(test)
        y = test["target"].astype(int).to_numpy()
        metrics[name] = classification_metrics(y, p, cfg.lift_top_fraction, cfg.calibration_bins)
        roc.append(roc_points(y, p).assign(model=name))
        cal.append(calibration_table(y, p, cfg.calibration_bins).assign(model=name))
        lift.append(lift_table(y, p).assign(model=name))
    metrics["oracle"] = compare_to_oracle(test, load_oracle(settings.data.truth_dir))
    if metrics["oracle"]:
        metrics["oracle"]["lightgbm_gap_to_oracle_auc"] = metrics["oracle"]["oracle_auc"] - metrics["lightgbm"]["auc"]
    metrics["test_snapshots"] = sorted(str(d.date()) for d in test["snapshot_date"].unique())
    plot_dir = models_dir / "plots"
    tables = {"roc": pd.concat(roc), "calibration": pd.concat(cal), "lift": pd.concat(lift)}
    for name, table in tables.items():
        write_csv(table, plot_dir / f"{name}.csv")
    pngs = [plots.save_png(plots.roc_figure(tables["roc"]), plot_dir / "roc.png"),
            plots.save_png(plots.calibration_figure(tables["calibration"]), plot_dir / "calibration.png"),
            plots.save_png(plots.gains_figure(tables["lift"]), plot_dir / "lift.png")]
    write_json(metrics, models_dir / "metrics.json")
    report_path = _write_report(settings, metrics, loaded, test, frame)
    run_info = json.loads((models_dir / "run.json").read_text())
    flat = {f"test_{m}_{k}": v for m in names for k, v in metrics[m].items()}
    flat |= {f"test_{k}": v for k, v in metrics["oracle"].items()}
    tracking.log_evaluation(settings.tracking, run_info["run_id"], flat,
                            [*pngs, models_dir / "metrics.json", report_path])
    return metrics


def _write_report(settings, metrics: dict, models: dict, test: pd.DataFrame, frame: pd.DataFrame):
    """models/report.html: the model report of this run (see huishou.report)."""
    from pathlib import Path

    from huishou.io import atomic_path
    from huishou.report import build_report

    models_dir = Path(settings.data.models_dir)
    iv_path = models_dir / "scorecard" / "iv_table.csv"
    iv = pd.read_csv(iv_path) if iv_path.exists() else None
    page = build_report(f"huishou model report: {settings.tracking.registered_model}",
                        {n: metrics[n] for n in models}, models, test, frame, iv)
    path = models_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path
