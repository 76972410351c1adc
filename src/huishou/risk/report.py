"""The model report: one self-contained HTML page per train run (images embedded), logged to MLflow.

Sections: headline metrics, ROC, KS / gains table, calibration, lift, SHAP summary of the
LightGBM model, PSI of the score by month against the training reference, the scorecard's IV table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from huishou.core.plots import calibration_figure, gains_figure, inline_png, roc_figure  # noqa: E402
from huishou.risk.drift import bin_counts, psi  # noqa: E402
from huishou.risk.metrics import calibration_table, lift_table, roc_points  # noqa: E402
from huishou.risk.model import RiskModel  # noqa: E402

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}h2{border-bottom:2px solid #c33;padding-bottom:4px}img{max-width:100%}"""


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A table; whole-number columns (counts) print as integers, not 1844.0000."""
    frame = frame.copy()
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_float_dtype(s) and s.notna().any() and (s.dropna() == s.dropna().round()).all():
            frame[col] = s.astype("Int64")
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, na_rep="–")


def _champion_section(champion: Mapping[str, Any] | None) -> list[str]:
    """Which model is the champion and why; on a small book, each model's cross-validated AUC."""
    if not champion:
        return []
    parts = ["<h2>Champion</h2>", f"<p><b>{html.escape(champion['champion'])}</b>: {html.escape(champion['why'])}.</p>"]
    if champion.get("cross_validation"):
        parts.append(_table(pd.DataFrame(champion["cross_validation"])))
    return parts


def _ks_figure(y: np.ndarray, p: np.ndarray):
    """Cumulative shares of bads and goods by score (riskiest first) and the KS gap."""
    order = np.argsort(-p)
    ys = y[order]
    bads = np.concatenate([[0], np.cumsum(ys) / max(ys.sum(), 1)])
    goods = np.concatenate([[0], np.cumsum(1 - ys) / max((1 - ys).sum(), 1)])
    share = np.linspace(0, 1, len(bads))
    k = int(np.argmax(bads - goods))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(share, bads, label="bads (30+ DPD)")
    ax.plot(share, goods, label="goods")
    ax.vlines(share[k], goods[k], bads[k], colors="crimson", linestyles="--", label=f"KS {bads[k] - goods[k]:.3f}")
    ax.set(xlabel="share of loans, riskiest first", ylabel="cumulative share", title="KS curve, LightGBM")
    ax.legend()
    return fig


def feature_psi(model: RiskModel, test: pd.DataFrame, scores: np.ndarray, top: int = 15) -> pd.DataFrame:
    """PSI of each watched feature between training (the model's reference) and the test split (`scores`: the
    model's probabilities on it)."""
    from huishou.risk.drift import drift_report

    ref = model.meta.get("reference")
    if not ref or not ref.get("features"):
        return pd.DataFrame(columns=["feature", "psi", "status"])
    report = drift_report(ref, scores, test, 0.1, 0.25)
    rows = [{"feature": k, "psi": v["psi"], "status": v["status"]} for k, v in report["features"].items()]
    return pd.DataFrame(rows).sort_values("psi", ascending=False).head(top)


def woe_bins(points: pd.DataFrame, iv_table: pd.DataFrame | None, top: int = 8) -> str:
    """Per bin of the scorecard's strongest variables: rows, bad rate, WoE and (integer) points."""
    kept = iv_table[iv_table["decision"] == "kept"]["variable"].head(top).tolist() if iv_table is not None else []
    parts = []
    for var in kept or points["variable"].unique()[:top]:
        g = points[points["variable"] == var].copy()
        g["bin"] = np.where(
            g["kind"] == "interval",
            "[" + g["lower"].astype(str) + ", " + g["upper"].astype(str) + ")",
            g["categories"].fillna(g["kind"]).astype(str),
        )
        parts.append(
            f"<h3>{html.escape(str(var))}</h3>" + _table(g[["bin", "kind", "count", "event_rate", "woe", "points"]])
        )
    return "".join(parts)


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


def month_score_counts(model: RiskModel, frame: pd.DataFrame, scores: np.ndarray) -> dict:
    """Per snapshot date of `frame`: the bin counts of the model's score (`scores`: its probabilities on
    `frame`) on the training reference's edges. Counts of parts of a table add up (`add_month_counts`)."""
    edges = model.meta["reference"]["score"]["edges"]
    p = np.asarray(scores)
    dates = frame["snapshot_date"].to_numpy()
    return {pd.Timestamp(d): bin_counts(p[dates == d], edges) for d in np.unique(dates)}


def add_month_counts(a: dict, b: dict) -> dict:
    """Two parts' `month_score_counts` together."""
    return {d: a.get(d, 0) + b.get(d, 0) for d in sorted(set(a) | set(b))}


def psi_by_month(model: RiskModel, counts: dict) -> pd.DataFrame:
    """PSI of the model's score for every snapshot month against the training reference, from the months'
    bin counts (`month_score_counts`)."""
    ref = model.meta["reference"]["score"]
    rows = []
    for snap in sorted(counts):
        c = np.asarray(counts[snap], dtype=float)
        value = psi(ref["shares"], (c / max(c.sum(), 1)).tolist())
        rows.append({"snapshot": str(pd.Timestamp(snap).date()), "rows": int(c.sum()), "psi": value})
    return pd.DataFrame(rows)


def build_report(
    title: str,
    metrics: Mapping[str, Mapping[str, float]],
    models: Mapping[str, RiskModel],
    test: pd.DataFrame,
    probs: Mapping[str, np.ndarray],
    month_counts: Mapping,
    sample: pd.DataFrame,
    iv_table: pd.DataFrame | None,
    provenance: Mapping[str, object] | None = None,
    oracle: Mapping[str, float] | None = None,
    points: pd.DataFrame | None = None,
    champion: Mapping[str, Any] | None = None,
) -> str:
    """The whole page as a string; `test` the out-of-time rows (target and the LightGBM reference's watched
    features at least), `probs` each model's probabilities on them, `month_counts` the LightGBM score's bin
    counts per snapshot of every split (`month_score_counts`, for PSI by month), `sample` up to 3,000 test rows
    with every feature (the SHAP summary);
    `provenance` (run, model version, commit, data hashes, split windows), `oracle` (the simulator's true
    probabilities scored like a model), the scorecard's `points` table and `champion` (train's champion.json:
    which model was registered and why, with a small book's cross-validation table) add their sections."""
    y = test["target"].astype(int).to_numpy()
    rows = [{"model": n} | {k: v for k, v in m.items() if isinstance(v, int | float)} for n, m in metrics.items()]
    if oracle:  # the best any model could do on these rows (simulated book only)
        rows.append({"model": "oracle (true probabilities)", "auc": oracle.get("oracle_auc")})
    headline = pd.DataFrame(rows)
    prov = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in (provenance or {}).items()
    )
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Provenance</h2>",
        f"<table class='prov'>{prov}</table>",
        "<h2>Out-of-time metrics</h2>",
        _table(headline),
        *_champion_section(champion),
        "<h2>ROC</h2>",
        inline_png(roc_figure(_long({n: roc_points(y, p) for n, p in probs.items()}))),
        "<h2>KS curve (LightGBM)</h2>",
        inline_png(_ks_figure(y, probs["lightgbm"])),
        "<h2>KS / gains table (LightGBM)</h2>",
        _table(lift_table(y, probs["lightgbm"])),
        "<h2>Calibration</h2>",
        inline_png(calibration_figure(_long({n: calibration_table(y, p) for n, p in probs.items()}))),
        "<h2>Lift and gains</h2>",
        inline_png(gains_figure(_long({n: lift_table(y, p) for n, p in probs.items()}))),
        "<h2>SHAP summary</h2>",
        _shap_summary(models["lightgbm"], sample),
        "<h2>Score stability (PSI by month vs training)</h2>",
        _table(psi_by_month(models["lightgbm"], month_counts)),
        "<h2>Feature stability (PSI, training vs test)</h2>",
        _table(feature_psi(models["lightgbm"], test, probs["lightgbm"])),
    ]
    if iv_table is not None:
        parts += ["<h2>Information value (scorecard binning)</h2>", _table(iv_table)]
    if points is not None:
        parts += ["<h2>Scorecard bins (WoE and points)</h2>", woe_bins(points, iv_table)]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
