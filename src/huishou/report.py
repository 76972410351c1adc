"""The model report: one self-contained HTML page per train run (images embedded), logged to MLflow.

Sections: headline metrics, ROC, KS / gains table, calibration, lift, SHAP summary of the
LightGBM model, PSI of the score by month against the training reference, the scorecard's IV table.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from huishou.drift import bin_shares, psi  # noqa: E402
from huishou.evaluate import calibration_table, lift_table, roc_points  # noqa: E402
from huishou.train import RiskModel  # noqa: E402

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}h2{border-bottom:2px solid #c33;padding-bottom:4px}img{max-width:100%}"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def _roc(y, probs: Mapping[str, np.ndarray]) -> str:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in probs.items():
        pts = roc_points(y, p)
        ax.plot(pts["fpr"], pts["tpr"], label=name)
    ax.plot([0, 1], [0, 1], "--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend()
    return _png(fig)


def _calibration(y, probs) -> str:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in probs.items():
        t = calibration_table(y, p)
        ax.plot(t["mean_predicted"], t["observed_rate"], marker="o", label=name)
    hi = max(float(np.max(p)) for p in probs.values())
    ax.plot([0, hi], [0, hi], "--", c="grey", lw=0.8)
    ax.set(xlabel="mean predicted", ylabel="observed rate", title="Calibration (deciles)")
    ax.legend()
    return _png(fig)


def _gains(y, probs) -> str:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, p in probs.items():
        t = lift_table(y, p)
        a1.plot(t["decile"] * 10, t["cum_bad_capture"] * 100, marker="o", label=name)
        a2.plot(t["decile"], t["lift"], marker="o", label=name)
    a1.plot([0, 100], [0, 100], "--", c="grey", lw=0.8)
    a1.set(xlabel="% of loans (riskiest first)", ylabel="% of bads captured", title="Cumulative gains")
    a2.set(xlabel="decile (1 = riskiest)", ylabel="lift", title="Lift by decile")
    a1.legend()
    return _png(fig)


def _shap_summary(model: RiskModel, frame: pd.DataFrame, top: int = 15) -> str:
    contrib = model.contributions(frame).drop(columns="bias")
    order = contrib.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(order) + 1.5))
    rng = np.random.default_rng(0)
    for i, col in enumerate(order):
        vals = contrib[col].to_numpy()
        x = frame[col]
        x = x.cat.codes.astype(float) if isinstance(x.dtype, pd.CategoricalDtype) else x.astype(float)
        rank = x.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(vals, i + rng.uniform(-0.3, 0.3, len(vals)), c=rank, cmap="coolwarm", s=4, alpha=0.5)
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, c="grey", lw=0.8)
    ax.set(xlabel="SHAP contribution to log-odds (colour: feature value, blue low / red high)",
           title="SHAP summary, LightGBM")
    return _png(fig)


def psi_by_month(model: RiskModel, frame: pd.DataFrame) -> pd.DataFrame:
    """PSI of the model's score for every snapshot month against the training reference."""
    ref = model.meta["reference"]["score"]
    rows = []
    for snap, g in frame.groupby("snapshot_date"):
        value = psi(ref["shares"], bin_shares(model.predict_proba(g), ref["edges"]))
        rows.append({"snapshot": str(pd.Timestamp(snap).date()), "rows": len(g), "psi": value})
    return pd.DataFrame(rows)


def build_report(title: str, metrics: Mapping[str, Mapping[str, float]], models: Mapping[str, RiskModel],
                 test: pd.DataFrame, all_rows: pd.DataFrame, iv_table: pd.DataFrame | None) -> str:
    """The whole page as a string; `test` is the out-of-time set, `all_rows` every snapshot (for PSI)."""
    y = test["target"].astype(int).to_numpy()
    probs = {name: m.predict_proba(test) for name, m in models.items()}
    headline = pd.DataFrame([{"model": n} | {k: v for k, v in m.items() if isinstance(v, int | float)}
                             for n, m in metrics.items()])
    sample = test.sample(min(len(test), 3000), random_state=0)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Out-of-time metrics</h2>", _table(headline),
        "<h2>ROC</h2>", _roc(y, probs),
        "<h2>KS / gains table (LightGBM)</h2>", _table(lift_table(y, probs["lightgbm"])),
        "<h2>Calibration</h2>", _calibration(y, probs),
        "<h2>Lift and gains</h2>", _gains(y, probs),
        "<h2>SHAP summary</h2>", _shap_summary(models["lightgbm"], sample),
        "<h2>Score stability (PSI by month vs training)</h2>",
        _table(psi_by_month(models["lightgbm"], all_rows)),
    ]
    if iv_table is not None:
        parts += ["<h2>Information value (scorecard binning)</h2>", _table(iv_table)]
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>" \
           f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
