"""Pictures a person would rather look at than read: ROC, calibration, gains and lift (headless).

Each function takes the long tables from huishou.metrics (with a `model` column) and returns a
matplotlib figure; `save_png` writes it to a file, the report embeds it.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def roc_figure(roc: pd.DataFrame, title: str = "ROC, out-of-time test"):
    """`roc` has columns model, fpr, tpr."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for model, g in roc.groupby("model"):
        ax.plot(g["fpr"], g["tpr"], label=model)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend()
    return fig


def calibration_figure(cal: pd.DataFrame):
    """`cal` has columns model, mean_predicted, observed_rate."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for model, g in cal.groupby("model"):
        ax.plot(g["mean_predicted"], g["observed_rate"], marker="o", label=model)
    hi = float(max(cal["mean_predicted"].max(), cal["observed_rate"].max()))
    ax.plot([0, hi], [0, hi], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed 30+ DPD rate", title="Calibration (deciles)")
    ax.legend()
    return fig


def gains_figure(lift: pd.DataFrame):
    """`lift` has columns model, decile, cum_bad_capture, lift: cumulative gains and lift by decile."""
    fig, (gains, by_decile) = plt.subplots(1, 2, figsize=(10, 4))
    for model, g in lift.groupby("model"):
        gains.plot([0, *(g["decile"] * 10)], [0, *(g["cum_bad_capture"] * 100)], marker="o", label=model)
        by_decile.plot(g["decile"], g["lift"], marker="o", label=model)
    gains.plot([0, 100], [0, 100], ls="--", c="grey", lw=0.8)
    gains.set(xlabel="% of loans worked (riskiest first)", ylabel="% of 30+ DPD captured", title="Cumulative gains")
    by_decile.set(xlabel="decile (1 = riskiest)", ylabel="lift", title="Lift by decile")
    gains.legend()
    return fig


def save_png(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def inline_png(fig) -> str:
    """An <img> tag with the figure embedded (base64), for self-contained HTML."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
