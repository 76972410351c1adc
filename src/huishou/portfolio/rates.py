"""The portfolio reports collections teams run: roll and flow rates between DPD buckets month over month,
vintage curves, entry into collections, cure rate by DPD day, recovery after default, and the operations
KPIs of the collection log. Pure functions over the raw tables (DuckDB SQL over the frames); every figure
as of the extract date uses only events before it.

Definitions (one loan's DPD at a month end T: days since its oldest installment due before T and not
settled before T; 0 when none is overdue):
* buckets: current (DPD 0), 1-30, 31-60, 61-90, 90+, closed (every installment settled);
* roll rate from bucket a to b: of the loans in a at one month end, the share in b at the next;
  flow rates: current -> 1-30 -> 31-60 -> 61-90 -> 90+ month by month;
* vintage: loans disbursed in a month; the share that has ever been 30+ (90+) days past due by each month
  on book (only months the extract has seen);
* entry rate: of the installments falling due in a month, the share not settled by their due date;
* cure rate at DPD d: of the installments still unpaid d days after their due date, the share settled
  before the default DPD (features.default_dpd);
* recovery rate: of the amount outstanding when loans defaulted, the share paid within recovery_days;
* operations (per month of the log): reach rate (calls and visits that reached the borrower), promise
  rate (promises per conversation), promise-kept rate (a payment on the loan by the promised date plus
  the grace days; promises whose deadline has not passed are not judged), contacts per cure, and cost
  to collect (action costs per CNY paid late).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from huishou.core.engine import duckdb_connect
from huishou.core.vocab import REACHED, VOICE
from huishou.features.population import paid_enough, settled_before

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+", "closed")
FLOWS = (("current", "1-30"), ("1-30", "31-60"), ("31-60", "61-90"), ("61-90", "90+"))


def month_ends(first: pd.Timestamp, as_of: pd.Timestamp) -> list[pd.Timestamp]:
    """The first day of each month from `first`'s next month up to `as_of` (a month's end, exclusive)."""
    start = pd.Timestamp(first).to_period("M").to_timestamp() + pd.offsets.MonthBegin(1)
    return list(pd.date_range(start, pd.Timestamp(as_of), freq="MS"))


def bucket_history(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    tol: float,
    share: float,
    memory_limit: str | None = None,
    threads: int | None = None,
    spill_to: str | None = None,
) -> pd.DataFrame:
    """loan_id, month (the month end T), dpd, bucket: every disbursed loan at every month end before as_of
    (DuckDB with `memory_limit` and `threads`, spilling into `spill_to`)."""
    apps = tables["applications"]
    apps = apps[apps["disbursed_at"].notna()][["loan_id", "disbursed_at"]]
    inst = tables["installments"][["loan_id", "due_date", "amount_due", "paid_date", "amount_paid"]]
    if apps.empty:
        return pd.DataFrame(columns=["loan_id", "month", "dpd", "bucket"])
    months = pd.DataFrame({"t": month_ends(apps["disbursed_at"].min(), as_of)})
    con = duckdb_connect(threads=threads, memory_limit=memory_limit, spill_to=spill_to)
    con.register("apps", apps)
    con.register("inst", inst)
    con.register("months", months)
    sql = f"""
        WITH active AS (
            SELECT a.loan_id, m.t FROM apps a JOIN months m ON a.disbursed_at < m.t
        ), state AS (
            SELECT i.loan_id, m.t,
                   min(CASE WHEN i.due_date < m.t AND NOT {settled_before("m.t")} THEN i.due_date END) AS oldest,
                   bool_and({settled_before("m.t")}) AS closed
            FROM inst i JOIN months m ON true
            JOIN apps a ON a.loan_id = i.loan_id AND a.disbursed_at < m.t
            GROUP BY 1, 2
        )
        SELECT a.loan_id, a.t AS month,
               coalesce(date_diff('day', s.oldest, a.t), 0) AS dpd,
               coalesce(s.closed, false) AS closed
        FROM active a LEFT JOIN state s USING (loan_id, t)
    """
    out = con.execute(sql, {"share": share, "tol": tol}).df()
    con.close()
    out["bucket"] = np.select(
        [out["closed"], out["dpd"] <= 0, out["dpd"] <= 30, out["dpd"] <= 60, out["dpd"] <= 90],
        ["closed", "current", "1-30", "31-60", "61-90"],
        "90+",
    )
    return out.drop(columns="closed").sort_values(["month", "loan_id"]).reset_index(drop=True)


def roll_counts(history: pd.DataFrame) -> pd.Series:
    """Loans moving from one bucket at a month end to another at the next (never from closed), by (month,
    bucket, bucket_next): the roll and flow rates' counts, which add up over borrower buckets."""
    nxt = history.assign(month=history["month"] - pd.offsets.MonthBegin(1))[["loan_id", "month", "bucket"]]
    pairs = history.merge(nxt, on=["loan_id", "month"], suffixes=("", "_next"))
    pairs = pairs[pairs["bucket"] != "closed"]
    return pairs.groupby(["month", "bucket", "bucket_next"]).size().rename("loans")


def roll_rates(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the pooled roll-rate matrix, from-bucket rows and to-bucket columns; the flow rates per month)."""
    return roll_rates_from(roll_counts(history))


def roll_rates_from(counts: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`roll_rates` from `roll_counts` (of the whole book, or added over its borrower buckets)."""
    pooled = counts.groupby(level=["bucket", "bucket_next"]).sum()
    matrix = (
        pooled.unstack(fill_value=0)
        .reindex(index=[b for b in BUCKETS if b != "closed"], columns=list(BUCKETS), fill_value=0)
        .rename_axis(index="bucket", columns="bucket_next")
    )
    matrix = matrix.div(matrix.sum(axis=1).replace(0, np.nan), axis=0)
    flows = []
    for month, g in counts.groupby(level="month"):
        g = g.droplevel("month")
        row = {"month": (month + pd.offsets.MonthBegin(1)).strftime("%Y-%m")}
        for a, b in FLOWS:
            base = g[g.index.get_level_values("bucket") == a].sum()
            row[f"{a}_to_{b}"] = float(g.get((a, b), 0) / base) if base else np.nan
        flows.append(row)
    return matrix, pd.DataFrame(flows)


def last_month(history: pd.DataFrame) -> pd.DataFrame:
    """The latest month end's open (not closed) loans and those more than 30 days past due (one row, indexed
    by that month): what the headline reads, added up over borrower buckets (the same month in every one)."""
    if history.empty:
        return pd.DataFrame(columns=["open", "over_30"], index=pd.DatetimeIndex([], name="month"))
    last = history[history["month"] == history["month"].max()]
    open_ = last[last["bucket"] != "closed"]
    return pd.DataFrame(
        {"open": [len(open_)], "over_30": [int((open_["dpd"] > 30).sum())]},
        index=pd.DatetimeIndex([history["month"].max()], name="month"),
    )


def vintages(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, max_mob: int = 24
) -> pd.DataFrame:
    """cohort (YYYY-MM), mob, loans, ever_30, ever_90: the share of the cohort ever 30+ / 90+ DPD by each
    month on book the extract has seen."""
    return vintages_from(vintage_counts(tables, as_of, tol, share, max_mob))


def vintage_counts(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, max_mob: int = 24
) -> pd.DataFrame:
    """By (cohort, mob): the cohort's loans and how many had been 30+ / 90+ DPD by then (counts)."""
    apps = tables["applications"]
    apps = apps[apps["disbursed_at"].notna()][["loan_id", "disbursed_at"]]
    inst = tables["installments"]
    late_by = {}
    for days in (30, 90):
        cut = inst["due_date"] + pd.Timedelta(days=days)
        settled = inst["paid_date"].notna() & (inst["paid_date"] <= cut) & paid_enough(inst, tol, share)
        reached = cut + pd.Timedelta(days=1)
        reached = reached.where(~settled & (reached <= as_of))
        late_by[days] = reached.groupby(inst["loan_id"]).min()
    frame = apps.assign(
        cohort=apps["disbursed_at"].dt.to_period("M"),
        ever30=apps["loan_id"].map(late_by[30]),
        ever90=apps["loan_id"].map(late_by[90]),
    )
    rows = []
    for cohort, g in frame.groupby("cohort"):
        start = cohort.to_timestamp()
        for mob in range(1, max_mob + 1):
            horizon = start + pd.DateOffset(months=mob)
            if horizon > as_of:
                break
            rows.append(
                {
                    "cohort": str(cohort),
                    "mob": mob,
                    "loans": len(g),
                    "ever_30": int((g["ever30"] < horizon).sum()),
                    "ever_90": int((g["ever90"] < horizon).sum()),
                }
            )
    return pd.DataFrame(rows, columns=["cohort", "mob", "loans", "ever_30", "ever_90"]).set_index(["cohort", "mob"])


def vintages_from(counts: pd.DataFrame) -> pd.DataFrame:
    """`vintages` from `vintage_counts` (of the whole book, or added over its borrower buckets)."""
    out = counts.sort_index().reset_index()
    out["loans"] = out["loans"].astype(int)
    for col in ("ever_30", "ever_90"):
        out[col] = (out[col] / out["loans"]).astype(float)
    return out[["cohort", "mob", "loans", "ever_30", "ever_90"]]


def entry_rates(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float) -> pd.DataFrame:
    """month, installments due, entry_rate: the share not settled by the due date."""
    return entry_rates_from(entry_counts(tables, as_of, tol, share))


def entry_counts(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float) -> pd.DataFrame:
    """By month: installments falling due and those not settled by their due date (counts)."""
    inst = tables["installments"]
    inst = inst[inst["due_date"] < as_of - pd.Timedelta(days=1)]
    on_time = inst["paid_date"].notna() & (inst["paid_date"] <= inst["due_date"]) & paid_enough(inst, tol, share)
    month = inst["due_date"].dt.strftime("%Y-%m").rename("month")
    return (~on_time).groupby(month).agg(["size", "sum"]).rename(columns={"size": "installments", "sum": "late"})


def entry_rates_from(counts: pd.DataFrame) -> pd.DataFrame:
    """`entry_rates` from `entry_counts` (of the whole book, or added over its borrower buckets)."""
    out = counts.sort_index()
    out = pd.DataFrame(
        {"installments": out["installments"].astype(int), "entry_rate": out["late"] / out["installments"]}
    )
    return out.reset_index(names="month")


def cure_curve(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, default_dpd: int
) -> pd.DataFrame:
    """dpd, installments (still unpaid at that DPD and observed long enough), cure_rate (settled before the
    default DPD)."""
    return cure_curve_from(cure_counts(tables, as_of, tol, share, default_dpd))


def cure_counts(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, default_dpd: int
) -> pd.DataFrame:
    """By DPD day: installments still unpaid then (observed long enough) and those cured (counts)."""
    inst = tables["installments"]
    settled = inst["paid_date"].notna() & paid_enough(inst, tol, share)
    late_days = (inst["paid_date"] - inst["due_date"]).dt.days.where(settled)
    seen = (as_of - inst["due_date"]).dt.days
    rows = []
    for d in range(1, default_dpd):
        unpaid_at_d = (seen >= default_dpd) & ~(late_days < d)  # settled on or after day d, or never
        cured = (late_days >= d) & (late_days < default_dpd) & unpaid_at_d
        rows.append({"dpd": d, "installments": int(unpaid_at_d.sum()), "cured": int(cured.sum())})
    return pd.DataFrame(rows, columns=["dpd", "installments", "cured"]).set_index("dpd")


def cure_curve_from(counts: pd.DataFrame) -> pd.DataFrame:
    """`cure_curve` from `cure_counts` (of the whole book, or added over its borrower buckets)."""
    n = counts["installments"].astype(int)
    rate = (counts["cured"] / n.where(n > 0)).astype(float)
    return pd.DataFrame({"dpd": counts.index.to_numpy(), "installments": n.to_numpy(), "cure_rate": rate.to_numpy()})


def recovery_rate(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, default_dpd: int, days: int
) -> dict:
    """Of the amount outstanding when loans defaulted (an installment default_dpd days unpaid), the share
    paid within `days` after; loans whose window the extract has fully seen."""
    return recovery_rate_from(recovery_counts(tables, as_of, tol, share, default_dpd, days))


def recovery_counts(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, tol: float, share: float, default_dpd: int, days: int
) -> pd.Series:
    """defaulted_loans, outstanding_at_default, recovered: the recovery rate's sums."""
    inst = tables["installments"]
    settled = inst["paid_date"].notna() & paid_enough(inst, tol, share)
    gone = inst["due_date"] + pd.Timedelta(days=default_dpd)
    defaulted_at = gone.where(~(settled & (inst["paid_date"] < gone))).groupby(inst["loan_id"]).min()
    defaulted_at = defaulted_at[defaulted_at.notna() & (defaulted_at + pd.Timedelta(days=days) <= as_of)]
    if defaulted_at.empty:  # (pandas cannot map through an empty series of dates)
        return pd.Series({"defaulted_loans": 0.0, "outstanding_at_default": 0.0, "recovered": 0.0})
    x = inst[inst["loan_id"].isin(defaulted_at.index)].assign(d=lambda f: f["loan_id"].map(defaulted_at))
    paid_before = x["amount_paid"].where(x["paid_date"] < x["d"], 0.0)
    window = (x["paid_date"] >= x["d"]) & (x["paid_date"] < x["d"] + pd.Timedelta(days=days))
    return pd.Series(
        {
            "defaulted_loans": float(len(defaulted_at)),
            "outstanding_at_default": float((x["amount_due"] - paid_before).clip(lower=0).sum()),
            "recovered": float(x["amount_paid"].where(window, 0.0).sum()),
        }
    )


def recovery_rate_from(counts: pd.Series) -> dict:
    """`recovery_rate` from `recovery_counts` (of the whole book, or added over its borrower buckets)."""
    if counts["defaulted_loans"] == 0:
        return {"defaulted_loans": 0, "recovery_rate": None}
    outstanding, recovered = float(counts["outstanding_at_default"]), float(counts["recovered"])
    return {
        "defaulted_loans": int(counts["defaulted_loans"]),
        "outstanding_at_default": outstanding,
        "recovered": recovered,
        "recovery_rate": recovered / outstanding if outstanding > 0 else None,
    }


OPERATIONS_COLUMNS = [
    "month",
    "contacts",
    "reach_rate",
    "promise_rate",
    "promise_kept_rate",
    "contacts_per_cure",
    "cost_to_collect",
]


def operations(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    costs: Mapping[str, float],
    grace_days: int,
    tol: float,
    share: float,
    default_dpd: int,
) -> pd.DataFrame:
    """Per month of the collection log: contacts, reach, promise and promise-kept rates, contacts per cure,
    cost to collect."""
    return operations_from(operations_counts(tables, as_of, costs, grace_days, tol, share, default_dpd))


def operations_counts(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    costs: Mapping[str, float],
    grace_days: int,
    tol: float,
    share: float,
    default_dpd: int,
) -> pd.DataFrame:
    """By month: logged actions, contacts, calls and visits, conversations, promises, promises judged and
    kept (by the month they were made), the actions' cost, cures and the amount paid late (by the month of
    payment): the operations KPIs' sums."""
    columns = [
        "actions",
        "contacts",
        "voice",
        "conversations",
        "promises",
        "judged",
        "kept",
        "cost",
        "cures",
        "paid_late",
    ]
    acts = tables.get("collection_actions")
    if acts is None or acts.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="month"), dtype=float)
    acts = acts[acts["action_at"] < as_of]
    inst = tables["installments"]
    inst = inst.assign(paid_date=inst["paid_date"].where(inst["paid_date"] < as_of))  # what is known at as_of
    con = duckdb_connect()
    con.register("acts", acts)  # the promise-kept query needs no costs
    con.register("inst", inst)
    kept = con.execute(
        """
        SELECT a.loan_id, a.action_at, coalesce(bool_or(i.paid_date >= a.action_at
               AND i.paid_date <= coalesce(a.promised_date, date_trunc('day', a.action_at)) + to_days($grace)),
               false) AS kept
        FROM acts a JOIN inst i USING (loan_id)
        WHERE a.outcome = 'promise_to_pay'
          AND coalesce(a.promised_date, date_trunc('day', a.action_at)) + to_days($grace) < $as_of
        GROUP BY 1, 2
        """,
        {"grace": int(grace_days), "as_of": as_of.to_pydatetime()},
    ).df()
    con.close()
    month = acts["action_at"].dt.strftime("%Y-%m").rename("month")
    voice = acts["channel"].isin(VOICE)
    by_action = (
        pd.DataFrame(
            {
                "actions": 1.0,
                "contacts": (acts["channel"] != "none").astype(float),
                "voice": voice.astype(float),
                "conversations": (voice & acts["outcome"].isin(REACHED)).astype(float),
                "promises": (acts["outcome"] == "promise_to_pay").astype(float),
                "cost": acts["channel"].map(costs).fillna(0.0).astype(float),
            }
        )
        .groupby(month)
        .sum()
    )
    kept_by = (
        pd.DataFrame({"judged": 1.0, "kept": kept["kept"].astype(float)})
        .groupby(kept["action_at"].dt.strftime("%Y-%m").rename("month"))
        .sum()
    )
    settled = inst["paid_date"].notna() & paid_enough(inst, tol, share)
    late = (inst["paid_date"] - inst["due_date"]).dt.days
    cured = inst[settled & (late > 0) & (late < default_dpd)]
    cures = cured.groupby(cured["paid_date"].dt.strftime("%Y-%m").rename("month")).size().astype(float)
    paid_late = inst[inst["paid_date"].notna() & (inst["paid_date"] > inst["due_date"])]
    money = paid_late.groupby(paid_late["paid_date"].dt.strftime("%Y-%m").rename("month"))["amount_paid"].sum()
    out = pd.concat([by_action, kept_by, cures.rename("cures"), money.rename("paid_late").astype(float)], axis=1)
    return out.reindex(columns=columns).fillna(0.0).sort_index()


def operations_from(counts: pd.DataFrame) -> pd.DataFrame:
    """`operations` from `operations_counts` (of the whole book, or added over its borrower buckets): the
    months of the log."""
    c = counts[counts["actions"] > 0].sort_index()
    if c.empty:
        return pd.DataFrame(columns=OPERATIONS_COLUMNS)
    ratio = lambda a, b: (a / b.where(b > 0)).astype(float)  # noqa: E731
    out = pd.DataFrame(
        {
            "month": c.index.to_numpy(),
            "contacts": c["contacts"].astype(int).to_numpy(),
            "reach_rate": ratio(c["conversations"], c["voice"]).to_numpy(),
            "promise_rate": ratio(c["promises"], c["conversations"]).to_numpy(),
            "promise_kept_rate": ratio(c["kept"], c["judged"]).to_numpy(),
            "contacts_per_cure": ratio(c["contacts"], c["cures"]).to_numpy(),
            "cost_to_collect": ratio(c["cost"], c["paid_late"]).to_numpy(),
        }
    )
    return out


def add_counts(a, b):
    """Two borrower buckets' counts (any of the *_counts above, or `last_month`) added: rows by their keys,
    a key one of them lacks counting 0."""
    return a.add(b, fill_value=0).sort_index()


__all__ = [
    "BUCKETS",
    "FLOWS",
    "OPERATIONS_COLUMNS",
    "add_counts",
    "bucket_history",
    "cure_counts",
    "cure_curve",
    "cure_curve_from",
    "entry_counts",
    "entry_rates",
    "entry_rates_from",
    "last_month",
    "month_ends",
    "operations",
    "operations_counts",
    "operations_from",
    "recovery_counts",
    "recovery_rate",
    "recovery_rate_from",
    "roll_counts",
    "roll_rates",
    "roll_rates_from",
    "vintage_counts",
    "vintages",
    "vintages_from",
]
