"""The model report: one self-contained HTML page per train run (images embedded), logged to MLflow.

Sections: headline metrics, ROC, KS / gains table, calibration, lift, SHAP summary of the
LightGBM model, PSI of the score by month against the training reference, the scorecard's IV table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from huishou.drift import bin_shares, psi  # noqa: E402
from huishou.metrics import calibration_table, lift_table, roc_points  # noqa: E402
from huishou.model import RiskModel  # noqa: E402
from huishou.plots import calibration_figure, gains_figure, inline_png, roc_figure  # noqa: E402

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}h2{border-bottom:2px solid #c33;padding-bottom:4px}img{max-width:100%}"""


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def _long(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([t.assign(model=name) for name, t in tables.items()], ignore_index=True)


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
    ax.set(
        xlabel="SHAP contribution to log-odds (colour: feature value, blue low / red high)",
        title="SHAP summary, LightGBM",
    )
    return inline_png(fig)


def psi_by_month(model: RiskModel, frame: pd.DataFrame) -> pd.DataFrame:
    """PSI of the model's score for every snapshot month against the training reference."""
    ref = model.meta["reference"]["score"]
    rows = []
    for snap, g in frame.groupby("snapshot_date"):
        value = psi(ref["shares"], bin_shares(model.predict_proba(g), ref["edges"]))
        rows.append({"snapshot": str(pd.Timestamp(snap).date()), "rows": len(g), "psi": value})
    return pd.DataFrame(rows)


def build_report(
    title: str,
    metrics: Mapping[str, Mapping[str, float]],
    models: Mapping[str, RiskModel],
    test: pd.DataFrame,
    all_rows: pd.DataFrame,
    iv_table: pd.DataFrame | None,
) -> str:
    """The whole page as a string; `test` is the out-of-time set, `all_rows` every snapshot (for PSI)."""
    y = test["target"].astype(int).to_numpy()
    probs = {name: m.predict_proba(test) for name, m in models.items()}
    headline = pd.DataFrame(
        [{"model": n} | {k: v for k, v in m.items() if isinstance(v, int | float)} for n, m in metrics.items()]
    )
    sample = test.sample(min(len(test), 3000), random_state=0)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Out-of-time metrics</h2>",
        _table(headline),
        "<h2>ROC</h2>",
        inline_png(roc_figure(_long({n: roc_points(y, p) for n, p in probs.items()}))),
        "<h2>KS / gains table (LightGBM)</h2>",
        _table(lift_table(y, probs["lightgbm"])),
        "<h2>Calibration</h2>",
        inline_png(calibration_figure(_long({n: calibration_table(y, p) for n, p in probs.items()}))),
        "<h2>Lift and gains</h2>",
        inline_png(gains_figure(_long({n: lift_table(y, p) for n, p in probs.items()}))),
        "<h2>SHAP summary</h2>",
        _shap_summary(models["lightgbm"], sample),
        "<h2>Score stability (PSI by month vs training)</h2>",
        _table(psi_by_month(models["lightgbm"], all_rows)),
    ]
    if iv_table is not None:
        parts += ["<h2>Information value (scorecard binning)</h2>", _table(iv_table)]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
