"""Pictures a person would rather look at than read: ROC, calibration, lift (PNG, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roc_png(roc: pd.DataFrame, path: Path) -> Path:
    """`roc` has columns model, fpr, tpr."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for model, g in roc.groupby("model"):
        ax.plot(g["fpr"], g["tpr"], label=model)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, out-of-time test")
    ax.legend()
    return _save(fig, path)


def calibration_png(cal: pd.DataFrame, path: Path) -> Path:
    """`cal` has columns model, mean_predicted, observed_rate."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for model, g in cal.groupby("model"):
        ax.plot(g["mean_predicted"], g["observed_rate"], marker="o", label=model)
    hi = float(max(cal["mean_predicted"].max(), cal["observed_rate"].max()))
    ax.plot([0, hi], [0, hi], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed 30+ DPD rate", title="Calibration (deciles)")
    ax.legend()
    return _save(fig, path)


def lift_png(lift: pd.DataFrame, path: Path) -> Path:
    """`lift` has columns model, decile, cum_bad_capture."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, g in lift.groupby("model"):
        ax.plot(g["decile"] * 10, g["cum_bad_capture"] * 100, marker="o", label=model)
    ax.plot([0, 100], [0, 100], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="% of loans worked (riskiest first)", ylabel="% of 30+ DPD captured", title="Cumulative gains")
    ax.legend()
    return _save(fig, path)
