"""The comprehensive annualised cost of every loan against a ceiling (China: NFRA 金规〔2025〕9号, in force
2025-10-01: at most 24 % a year, fees included).

A loan's annualised cost is the internal rate of return of its contractual cash flows: the amount
disbursed (less any upfront fee the book declares in `applications.upfront_fee`) on the disbursal date
against every scheduled installment (`amount_due`, which carries interest and periodic fees) on its due
date, compounded on the actual day count (a year of 365 days): the effective annual rate. The nominal form,
12 x the IRR per monthly period (the IRR method of the PBoC's 2021 No. 3 announcement on disclosing annualised
rates, as lenders publish them), is lower for the same loan: a 24 % nominal annuity is 26.8 % effective.
`portfolio.cost_ceiling.method` picks the one checked (assumption: nominal, the published form); the
report carries both. Pure functions; the portfolio stage writes the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def annualised_cost(applications: pd.DataFrame, installments: pd.DataFrame) -> pd.DataFrame:
    """Per disbursed loan with a schedule: loan_id, disbursed_at, amount, term_months, stated rate, the
    effective annual cost (IRR on the day count) and its nominal form (12 x the monthly rate); NaN when the
    flows have no rate (no installment, nothing lent)."""
    apps = applications[applications["disbursed_at"].notna()]
    if "status" in apps:
        apps = apps[apps["status"].fillna("approved") == "approved"]
    net = apps["amount"].to_numpy(float) - (
        apps["upfront_fee"].fillna(0).to_numpy(float) if "upfront_fee" in apps else 0.0
    )
    inst = installments[installments["loan_id"].isin(apps["loan_id"])]
    index = pd.Index(apps["loan_id"].to_numpy())
    row = index.get_indexer(inst["loan_id"].to_numpy())
    years = (inst["due_date"].to_numpy() - apps["disbursed_at"].to_numpy()[row]) / np.timedelta64(365, "D")
    due = inst["amount_due"].to_numpy(float)
    rate = _irr(net, row, years.astype(float), due, len(apps))
    periods = np.round(years * 12) / 12  # whole months: the nominal rate is per period, as a schedule counts
    nominal = 12 * ((1 + _irr(net, row, periods.astype(float), due, len(apps))) ** (1 / 12) - 1)
    out = pd.DataFrame(
        {
            "loan_id": apps["loan_id"].to_numpy(),
            "disbursed_at": apps["disbursed_at"].to_numpy(),
            "amount": apps["amount"].to_numpy(float),
            "term_months": apps["term_months"].to_numpy(),
            "stated_rate": apps["rate"].to_numpy(float) if "rate" in apps else np.nan,
            "effective_cost": rate,
            "nominal_cost": nominal,
        }
    )
    return out


def _irr(net: np.ndarray, row: np.ndarray, years: np.ndarray, due: np.ndarray, n: int) -> np.ndarray:
    """The r solving net = sum(due / (1 + r) ** years) for every loan at once (bisection on [-0.99, 50]: the
    present value falls as r rises, so the root is unique when the flows repay more than was lent)."""
    lo, hi = np.full(n, -0.99), np.full(n, 50.0)
    total = np.bincount(row, weights=due, minlength=n)
    for _ in range(80):
        mid = (lo + hi) / 2
        pv = np.bincount(row, weights=due * (1 + mid[row]) ** -years, minlength=n)
        above = pv > net  # the rate is too low
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    rate = (lo + hi) / 2
    return np.where((total > 0) & (net > 0) & (hi < 50.0), rate, np.nan)


def ceiling_report(
    cost: pd.DataFrame, ceiling: float, in_force: str, method: str, as_of: pd.Timestamp
) -> tuple[dict, pd.DataFrame]:
    """(the summary, the share above the ceiling by disbursal month): loans whose `method` cost
    ("nominal" or "effective") is above `ceiling`, all and those disbursed since the rule's `in_force` date
    (the ones it governs), by count and by amount."""
    column = f"{method}_cost"
    known = cost[cost[column].notna()].assign(annualised_cost=lambda f: f[column])
    above = known["annualised_cost"] > ceiling + 1e-9
    governed = known["disbursed_at"] >= pd.Timestamp(in_force)
    r = lambda v: None if v is None or v != v else round(float(v), 4)  # noqa: E731
    summary = {
        "ceiling": ceiling,
        "method": method,
        "in_force": in_force,
        "as_of": str(as_of.date()),
        "loans": int(len(known)),
        "loans_without_a_rate": int(len(cost) - len(known)),
        "above_ceiling": int(above.sum()),
        "share_above": r(above.mean()) if len(known) else None,
        "amount_share_above": r(known.loc[above, "amount"].sum() / known["amount"].sum()) if len(known) else None,
        "governed_loans": int(governed.sum()),
        "governed_above_ceiling": int((above & governed).sum()),
        "median_cost": r(known["annualised_cost"].median()),
        "max_cost": r(known["annualised_cost"].max()),
        "effective_above_ceiling": int((known["effective_cost"] > ceiling + 1e-9).sum()),
        "verdict": (
            "no loan disbursed since the rule took force costs more than the ceiling"
            if not (above & governed).any()
            else f"{int((above & governed).sum())} loan(s) disbursed since {in_force} cost more than "
            f"{ceiling:.0%} a year: reprice or refund them"
        ),
    }
    month = known["disbursed_at"].dt.to_period("M").dt.to_timestamp()
    by_month = (
        known.assign(month=month, above=above, above_amount=known["amount"].where(above, 0.0))
        .groupby("month")
        .agg(
            loans=("loan_id", "size"),
            above=("above", "sum"),
            amount=("amount", "sum"),
            above_amount=("above_amount", "sum"),
            median_cost=("annualised_cost", "median"),
        )
        .reset_index()
    )
    by_month["share_above"] = by_month["above"] / by_month["loans"]
    return summary, by_month


def above_ceiling(cost: pd.DataFrame, ceiling: float, method: str, in_force: str) -> pd.DataFrame:
    """The loans the rule governs (disbursed since `in_force`) above the ceiling, costliest first (loan ids
    and terms: no personal data)."""
    column = f"{method}_cost"
    rows = cost[(cost[column] > ceiling + 1e-9) & (cost["disbursed_at"] >= pd.Timestamp(in_force))]
    return rows.sort_values([column, "loan_id"], ascending=[False, True]).reset_index(drop=True)
