"""Pictures a person would rather look at than read: ROC, calibration, gains and lift (headless).

Each function takes the long tables from huishou.risk.metrics (with a `model` column) and returns a
matplotlib figure; `save_png` writes it to a file, the report embeds it.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
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


# ---------------------------------------------------------------- the portfolio


def flow_figure(flows: pd.DataFrame):
    """`flows` has month and one column per transition (flow rates)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for col in [c for c in flows.columns if c != "month"]:
        ax.plot(flows["month"], flows[col] * 100, marker="o", ms=3, label=col.replace("_to_", " → "))
    ax.set(ylabel="% of the bucket rolling forward", title="Flow rates month over month")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend(fontsize=8)
    return fig


def roll_figure(matrix: pd.DataFrame):
    """The roll-rate matrix as a heat map (rows: this month's bucket; columns: next month's)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow(matrix.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    for (i, j), v in pd.DataFrame(matrix.to_numpy()).stack().items():
        ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=8, color="white" if v > 0.5 else "black")
    ax.set(xlabel="next month", ylabel="this month", title="Roll rates (pooled)")
    return fig


def vintage_figure(vintages: pd.DataFrame, column: str = "ever_30"):
    """Cumulative share ever 30+ (or 90+) DPD by month on book, one line per disbursal cohort."""
    fig, ax = plt.subplots(figsize=(8, 4))
    cohorts = sorted(vintages["cohort"].unique())
    cmap = plt.get_cmap("viridis", max(len(cohorts), 2))
    for k, (cohort, g) in enumerate(vintages.groupby("cohort")):
        ax.plot(g["mob"], g[column] * 100, color=cmap(k), lw=1, label=cohort if k % 3 == 0 else None)
    label = column.replace("ever_", "") + "+ DPD"
    ax.set(xlabel="months on book", ylabel=f"% of the cohort ever {label}", title=f"Vintages: ever {label}")
    ax.legend(fontsize=7, ncol=2, title="disbursed")
    return fig


def cure_figure(cure: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(cure["dpd"], cure["cure_rate"] * 100)
    ax.set(xlabel="days past due", ylabel="% cured before default", title="Cure rate by DPD day")
    return fig


def cost_figure(cost: pd.DataFrame, summary: dict):
    """Loans by annualised cost, disbursed before and since the ceiling took force, with the ceiling."""
    fig, ax = plt.subplots(figsize=(7, 4))
    column = f"{summary['method']}_cost"
    known = cost[cost[column].notna()]
    since = known["disbursed_at"] >= pd.Timestamp(summary["in_force"])
    bins = np.linspace(0, max(known[column].max() * 100, summary["ceiling"] * 100) + 2, 40) if len(known) else 10
    ax.hist(known.loc[~since, column] * 100, bins=bins, alpha=0.6, label="disbursed before")
    ax.hist(known.loc[since, column] * 100, bins=bins, alpha=0.6, label=f"since {summary['in_force']}")
    ax.axvline(summary["ceiling"] * 100, color="crimson", lw=2, label=f"ceiling {summary['ceiling']:.0%}")
    ax.set(
        xlabel=f"annualised cost, % a year ({summary['method']} IRR)",
        ylabel="loans",
        title="Comprehensive annualised cost of every loan",
    )
    ax.legend()
    return fig


def operations_figure(ops: pd.DataFrame):
    fig, (rates, money) = plt.subplots(1, 2, figsize=(10, 4))
    if ops.empty:  # a book without a collection log: say so rather than leave the plot out
        for ax in (rates, money):
            ax.text(0.5, 0.5, "no collection log", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return fig
    for col in ("reach_rate", "promise_rate", "promise_kept_rate"):
        rates.plot(ops["month"], ops[col] * 100, marker="o", ms=3, label=col.replace("_", " "))
    rates.set(ylabel="%", title="Reach, promise and promise-kept rates")
    rates.legend(fontsize=8)
    money.plot(ops["month"], ops["contacts_per_cure"], marker="o", ms=3, label="contacts per cure")
    twin = money.twinx()
    twin.plot(ops["month"], ops["cost_to_collect"] * 100, color="tab:red", marker="o", ms=3, label="cost to collect")
    money.set(ylabel="contacts per cure", title="Effort and cost")
    twin.set_ylabel("cost per 100 CNY collected")
    for ax in (rates, money):
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    return fig


# ---------------------------------------------------------------- DVC plots that render offline

OFFLINE_SNIPPET = """
const __embed = vegaEmbed;
window.__views = [];
window.vegaEmbed = (el, spec, opt) => __embed(el, spec, Object.assign({renderer: "svg", actions: false}, opt || {}))
  .then((r) => { window.__views.push(r.view); return r; });
"""


def offline_page_template() -> str:
    """An HTML page template for `dvc plots show/diff` with Vega, Vega-Lite and Vega-Embed inline
    (vl-convert-python's bundle), so the page renders without a network: DVC's own page loads them from a
    CDN. Charts render as SVG; `window.__views` holds the Vega views (the browser test reads them)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(OFFLINE_SNIPPET).replace("</script", "<\\/script")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n{refresh_tag}\n<meta charset="utf-8">\n<title>huishou: DVC plots</title>\n'
        f"<script>{bundle}</script>\n"
        "<style>body{font-family:system-ui,sans-serif} table{border-spacing:15px}</style>\n"
        "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )
