"""A plain pandas-groupby implementation of the population and the repayment family.

Not used by the pipeline: it is the yardstick the benchmark runs in the same process
against the DuckDB build, and a second implementation the tests check the SQL against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.features.population import paid_enough


def _loan_status(inst: pd.DataFrame, dpd: int, tol: float, share: float = 1.0) -> pd.DataFrame:
    default_day = inst["due_date"] + pd.Timedelta(days=dpd)
    full = inst["paid_date"].notna() & paid_enough(inst, tol, share)
    defaults = ~(full & (inst["paid_date"] < default_day))
    first_default = default_day.where(defaults).groupby(inst["loan_id"]).min()
    all_full = full.groupby(inst["loan_id"]).all()
    closed = inst["paid_date"].groupby(inst["loan_id"]).max().where(all_full)
    return pd.DataFrame({"first_default_day": first_default, "closed_day": closed})


def spine(apps: pd.DataFrame, inst: pd.DataFrame, t: pd.Timestamp, dpd: int, tol: float) -> pd.DataFrame:
    status = _loan_status(inst, dpd, tol)
    s = apps[["loan_id", "borrower_id", "disbursed_at"]].join(status, on="loan_id")
    keep = (s["disbursed_at"] < t) & ~(s["first_default_day"] <= t) & ~(s["closed_day"] < t)
    return s.loc[keep, ["loan_id", "borrower_id", "disbursed_at"]].assign(snapshot_date=t)


def repayment(spine_t: pd.DataFrame, inst: pd.DataFrame, t: pd.Timestamp, tol: float) -> pd.DataFrame:
    """A subset of huishou.features.repayment for one snapshot, with built-in groupby reductions only."""
    x = inst[inst["loan_id"].isin(spine_t["loan_id"])]
    seen = (x["paid_date"] < t).to_numpy()
    settled = seen & paid_enough(x, tol).to_numpy()
    is_due = (x["due_date"] < t).to_numpy()
    paid_seen = x["paid_date"].where(seen)
    end = paid_seen.where(settled, t)
    dpd = (end - x["due_date"]).dt.days.clip(lower=0).where(is_due)
    frame = pd.DataFrame(
        {
            "loan_id": x["loan_id"].to_numpy(),
            "seq": x["seq"].to_numpy(),
            "is_due": is_due,
            "dpd": dpd.to_numpy(),
            "late1": (dpd >= 1).to_numpy() & is_due,
            "late7": (dpd >= 7).to_numpy() & is_due,
            "paid_due": np.where(is_due & seen, x["amount_paid"].to_numpy(), 0.0),
            "amount_due_due": np.where(is_due, x["amount_due"].to_numpy(), 0.0),
            "paid_amt": np.where(seen, x["amount_paid"].to_numpy(), 0.0),
            "amount_due": x["amount_due"].to_numpy(),
            "open_dpd": (t - x["due_date"]).dt.days.where(is_due & ~settled).to_numpy(),
            "paid_seen": paid_seen.to_numpy(),
            "dpd_90d": dpd.where((t - x["due_date"]).dt.days <= 90).to_numpy(),
        }
    )
    g = frame.groupby("loan_id", sort=False)
    out = g.agg(
        rp_n_due=("is_due", "sum"),
        rp_dpd_max=("dpd", "max"),
        rp_dpd_mean=("dpd", "mean"),
        rp_n_late_1=("late1", "sum"),
        rp_n_late_7=("late7", "sum"),
        paid=("paid_due", "sum"),
        owed=("amount_due_due", "sum"),
        rp_dpd_now=("open_dpd", "max"),
        last_paid=("paid_seen", "max"),
        paid_all=("paid_amt", "sum"),
        due_all=("amount_due", "sum"),
        rp_dpd_mean_90d=("dpd_90d", "mean"),
    )
    out["rp_paid_ratio"] = out.pop("paid") / out.pop("owed").replace(0, np.nan)
    out["rp_days_since_payment"] = (t - out.pop("last_paid")).dt.days
    out["rp_outstanding"] = out.pop("due_all") - out.pop("paid_all")
    out["rp_dpd_now"] = out["rp_dpd_now"].fillna(0)
    out["rp_dpd_max"] = out["rp_dpd_max"].fillna(0)
    return out.reset_index().assign(snapshot_date=t)
