"""`huishou portfolio`: the portfolio reports collections teams run.

Reads the raw book (data.source, as validated); publishes data.models_dir/portfolio/ as one unit:
portfolio.json (headline numbers; DVC metrics), roll_rates.csv, flow_rates.csv, vintages.csv,
entry_rates.csv, cure_curve.csv, operations.csv, annualised_cost.csv (loans above the cost ceiling by
disbursal month), above_cost_ceiling.csv (the loans the ceiling governs above it: ids, terms, costs), plots/*.png (DVC plots) and
portfolio.html; MLflow gets the headline numbers and the HTML report (aggregates only). A book of more
than portfolio.rows_per_partition loans is split by borrower and every report counted bucket by bucket
(portfolio.engine local: one after another here; dask: one task per bucket) and added up.
"""

from __future__ import annotations

import html
import logging
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd

from huishou import portfolio
from huishou.book.buckets import partition_tables, partitions_for, split_book
from huishou.book.files import read_table
from huishou.book.source import BookSource
from huishou.core import plots, tracking
from huishou.core.engine import dask_tasks, spill_directory, threads
from huishou.core.io import publish, write_csv, write_json, write_text
from huishou.core.progress import progress_bar
from huishou.core.settings import SOURCE_PARAMS

log = logging.getLogger("huishou.portfolio")

PARAMS = (
    "compute",
    *SOURCE_PARAMS,
    "data.models_dir",
    "features.default_dpd",
    "features.paid_tolerance",
    "features.settle_share",
    "features.promise_grace_days",
    "strategy.costs",
    "portfolio",
    "tracking.default_uri",
    "tracking.portfolio_experiment",
)


REPORTS = ("roll rates", "vintages", "entry rates", "cure curve", "recovery rate", "operations KPIs", "annualised cost")


def run(settings) -> dict:
    p = settings.portfolio
    report, inputs = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    if p.until:
        as_of = min(as_of, pd.Timestamp(p.until))
    n_threads = threads(settings.compute.threads)
    job = _job(settings, as_of, n_threads)
    n_parts = 1
    if isinstance(inputs["applications"], Path):
        n_parts = partitions_for(inputs["applications"], p.rows_per_partition)
    bar = progress_bar(total=n_parts * len(REPORTS), desc="portfolio", unit="report")
    if n_parts == 1:
        tables = {n: read_table(t) if isinstance(t, Path) else t for n, t in inputs.items()}
        counts = _counts(tables, job, bar)
    else:  # one borrower bucket at a time: memory is a bucket's; every report adds up over buckets
        spill = settings.compute.spill_directory
        with tempfile.TemporaryDirectory(prefix="huishou-portfolio-", dir=spill_directory(spill)) as tmp:
            bar.set_postfix_str(f"split the book into {n_parts} borrower buckets")
            paths, buckets = split_book(inputs, n_parts, Path(tmp), p.duckdb_memory_limit, n_threads, spill)
            split = (paths, n_parts, buckets)
            parts = (
                _dask_parts(split, job, settings.compute, bar) if p.engine == "dask" else _local_parts(split, job, bar)
            )
            counts = parts[0]
            for part in parts[1:]:  # in bucket order: the same sums whichever engine counted them
                counts = _add(counts, part)
    matrix, flows = portfolio.roll_rates_from(counts["roll"])
    vint = portfolio.vintages_from(counts["vintages"])
    entry = portfolio.entry_rates_from(counts["entry"])
    cure = portfolio.cure_curve_from(counts["cure"])
    recovery = portfolio.recovery_rate_from(counts["recovery"])
    ops = portfolio.operations_from(counts["operations"])
    ceiling, cost = p.cost_ceiling, counts["cost"]
    cost_summary, cost_by_month = portfolio.ceiling_report(
        cost, float(ceiling["max_rate"]), str(ceiling["in_force"]), ceiling["method"], as_of
    )
    offenders = portfolio.above_ceiling(cost, float(ceiling["max_rate"]), ceiling["method"], str(ceiling["in_force"]))
    bar.close()
    numbers = {k: v for k, v in cost_summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    headline = _headline(counts["last"], flows, entry, cure, recovery, ops, vint, p.kpi_months) | {
        "annualised_cost": numbers  # DVC metrics are numbers; the verdict and the method are in the HTML report
    }
    out_dir = Path(settings.data.models_dir) / "portfolio"
    with publish(out_dir, what="huishou portfolio") as out:
        write_json(headline, out / "portfolio.json")
        write_csv(matrix.reset_index(names="bucket").round(4), out / "roll_rates.csv")
        write_csv(_rounded(cost_by_month), out / "annualised_cost.csv")
        write_csv(_rounded(offenders), out / "above_cost_ceiling.csv")
        for name, frame in (
            ("flow_rates", flows),
            ("vintages", vint),
            ("entry_rates", entry),
            ("cure_curve", cure),
            ("operations", ops),
        ):
            write_csv(_rounded(frame), out / f"{name}.csv")
        figures = {
            "flow_rates": plots.flow_figure(flows),
            "roll_rates": plots.roll_figure(matrix),
            "vintage_30": plots.vintage_figure(vint, "ever_30"),
            "vintage_90": plots.vintage_figure(vint, "ever_90"),
            "cure_curve": plots.cure_figure(cure),
            "operations": plots.operations_figure(ops),
            "annualised_cost": plots.cost_figure(cost, cost_summary),
        }
        for name, fig in figures.items():
            plots.save_png(fig, out / "plots" / f"{name}.png")
        page = _html(headline, matrix, flows, entry, ops, out / "plots", report, as_of, cost_summary)
        write_text(page, out / "portfolio.html")
    tracking.log_run(
        settings.tracking,
        settings.tracking.portfolio_experiment,
        f"portfolio {as_of.date()}",
        headline,
        [out_dir / "portfolio.html"],
    )
    return headline | {"buckets": n_parts}


def _job(settings, as_of: pd.Timestamp, n_threads: int) -> dict:
    """What counting a bucket reads, as plain values (a Dask task ships it)."""
    f, p = settings.features, settings.portfolio
    return {
        "as_of": as_of,
        "tol": f.paid_tolerance,
        "share": f.settle_share,
        "dpd": f.default_dpd,
        "grace": f.promise_grace_days,
        "costs": dict(settings.strategy.costs),
        "max_mob": p.max_mob,
        "recovery_days": p.recovery_days,
        "memory_limit": p.duckdb_memory_limit,
        "threads": n_threads,
        "spill": settings.compute.spill_directory,
    }


def _counts(tables: dict, job: dict, bar=None, where: str = "") -> dict:
    """Every report's counts over `tables` (the whole book, or one borrower bucket of it), and each loan's
    annualised cost."""
    as_of, tol, share, dpd = job["as_of"], job["tol"], job["share"], job["dpd"]
    out = {}
    steps = {
        "roll rates": lambda: _history_counts(tables, job),
        "vintages": lambda: {"vintages": portfolio.vintage_counts(tables, as_of, tol, share, job["max_mob"])},
        "entry rates": lambda: {"entry": portfolio.entry_counts(tables, as_of, tol, share)},
        "cure curve": lambda: {"cure": portfolio.cure_counts(tables, as_of, tol, share, dpd)},
        "recovery rate": lambda: {
            "recovery": portfolio.recovery_counts(tables, as_of, tol, share, dpd, job["recovery_days"])
        },
        "operations KPIs": lambda: {
            "operations": portfolio.operations_counts(tables, as_of, job["costs"], job["grace"], tol, share, dpd)
        },
        "annualised cost": lambda: {"cost": portfolio.annualised_cost(tables["applications"], tables["installments"])},
    }
    for name in REPORTS:
        if bar is not None:
            bar.set_postfix_str(f"{where}{name}")
        out |= steps[name]()
        if bar is not None:
            bar.update()
    return out


def bucket_counts(split: tuple, k: int, job: dict, bar=None) -> dict:
    """Bucket k's counts (`split`: the tables' files, the number of buckets, their folder): one after another
    here, or a Dask task with portfolio.engine dask."""
    paths, n_parts, buckets = split
    return _counts(partition_tables(paths, k, n_parts, buckets), job, bar, f"bucket {k + 1}/{n_parts}: ")


def _local_parts(split: tuple, job: dict, bar) -> list[dict]:
    return [bucket_counts(split, k, job, bar) for k in range(split[1])]


def _dask_parts(split: tuple, job: dict, compute, bar) -> list[dict]:
    """One task per bucket on compute.scheduler (or a local cluster of compute.threads single-threaded
    workers, DuckDB on one thread each); the workers read the buckets, the counts come back."""
    task = partial(bucket_counts, split, job=job | {"threads": 1})
    bar.set_postfix_str(f"{split[1]} buckets on Dask")
    done = lambda: bar.update(len(REPORTS))  # noqa: E731
    return dask_tasks(compute.scheduler, threads(compute.threads), task, [(k,) for k in range(split[1])], done)


def _history_counts(tables: dict, job: dict) -> dict:
    history = portfolio.bucket_history(
        tables, job["as_of"], job["tol"], job["share"], job["memory_limit"], job["threads"], job["spill"]
    )
    return {"roll": portfolio.roll_counts(history), "last": portfolio.last_month(history)}


def _add(a: dict, b: dict) -> dict:
    """Two buckets' counts together; the per-loan costs side by side."""
    return {
        k: pd.concat([a[k], b[k]], ignore_index=True) if k == "cost" else portfolio.add_counts(a[k], b[k]) for k in a
    }


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers to 4 decimals; dates as they are."""
    return frame.round({c: 4 for c in frame.select_dtypes("number").columns})


def _headline(last, flows, entry, cure, recovery, ops, vint, months: int) -> dict:
    """The numbers a collections head reads first, rounded (DVC metrics); `last`: portfolio.last_month."""
    month = last.index.max() if len(last) else None
    open_ = int(last.loc[month, "open"]) if month is not None else 0
    recent = ops.tail(months)
    r = lambda v, d=4: None if v is None or v != v else round(float(v), d)  # noqa: E731
    mature = vint[vint["mob"] == 6]
    return {
        "as_of_month": str(month.date()) if month is not None else None,
        "open_loans": open_,
        "share_30_plus": r(last.loc[month, "over_30"] / open_) if open_ else None,
        "flow_rates_last_month": {k: r(v) for k, v in flows.iloc[-1].drop("month").items()} if len(flows) else {},
        "entry_rate_last_month": r(entry["entry_rate"].iloc[-1]) if len(entry) else None,
        "cure_rate_at_dpd": {
            str(d): r(cure.loc[cure["dpd"] == d, "cure_rate"].max()) for d in (1, 7, 15) if d in set(cure["dpd"])
        },
        "recovery_rate": r(recovery.get("recovery_rate")),
        "defaulted_loans": recovery.get("defaulted_loans", 0),
        "ever_30_at_6_months_latest_cohort": r(mature["ever_30"].iloc[-1]) if len(mature) else None,
        "operations_last_months": {
            k: r(recent[k].mean())
            for k in ("reach_rate", "promise_rate", "promise_kept_rate", "contacts_per_cure", "cost_to_collect")
        }
        if len(recent)
        else {},
    }


def _html(headline, matrix, flows, entry, ops, plot_dir: Path, report: dict, as_of: pd.Timestamp, cost: dict) -> str:
    import base64

    def img(name: str) -> str:
        path = plot_dir / f"{name}.png"
        if not path.exists():
            return ""
        return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'

    def table(frame: pd.DataFrame, pct: bool = True) -> str:
        fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:,.2f}")
        return frame.to_html(index=False, float_format=fmt, na_rep="–", border=0, classes="t")

    kpis = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in headline.items()
        if not isinstance(v, dict)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>huishou portfolio {as_of.date()}</title>
<style>body{{font:14px system-ui,sans-serif;max-width:1100px;margin:2rem auto;color:#1d2733}}
table.t{{border-collapse:collapse}} .t td,.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
img{{max-width:100%}} section{{margin-bottom:2rem}}</style></head><body>
<h1>Portfolio as of {as_of.date()}</h1>
<p>Source: {html.escape(str(report.get("source", "")))}; tables as validated (MD5 in data/validated/report.json).</p>
<section id="headline"><h2>Headline</h2><table class="t">{kpis}</table></section>
<section id="roll"><h2>Roll rates</h2>{img("roll_rates")}{table(matrix.reset_index(names="this month"))}</section>
<section id="flow"><h2>Flow rates</h2>{img("flow_rates")}{table(flows.tail(12))}</section>
<section id="vintages"><h2>Vintages</h2>{img("vintage_30")}{img("vintage_90")}</section>
<section id="entry"><h2>Entry into collections</h2>{table(entry.tail(12).assign(installments=entry["installments"].astype(str)))}</section>
<section id="cure"><h2>Cure rate by DPD day</h2>{img("cure_curve")}</section>
<section id="recovery"><h2>Recovery after default</h2><p>recovery rate {headline["recovery_rate"]} over
{headline["defaulted_loans"]} defaulted loans</p></section>
<section id="cost"><h2>Annualised cost against the ceiling</h2>{img("annualised_cost")}
<p id="cost-verdict"><strong>{html.escape(cost["verdict"])}</strong></p>
<p>{cost["above_ceiling"]} of {cost["loans"]} loans cost more than {cost["ceiling"]:.0%} a year ({cost["method"]} IRR of
the schedule, fees included; {cost["effective_above_ceiling"]} by the effective rate); {cost["governed_above_ceiling"]}
of them disbursed since {cost["in_force"]}, when the ceiling took force: those are listed in
above_cost_ceiling.csv.</p></section>
<section id="operations"><h2>Operations</h2>{img("operations")}{table(ops.tail(12).assign(contacts=ops["contacts"].astype(str)), pct=False) if len(ops) else "<p>no collection log</p>"}</section>
</body></html>"""
