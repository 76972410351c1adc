"""The experiment read out on the lender's own outcomes: each archived published decision (with its arm)
joined to the book's payments and complaint holds once its response window has ended."""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.features.population import paid_enough
from huishou.strategy.plan import recovered_share, stake

DECISION_COLUMNS = [
    "date",
    "loan_id",
    "borrower_id",
    "stage",
    "action",
    "arm",
    "propensity",
    "open_due",
    "dpd",
    "overdue_amount",
    "outstanding",
]


def observed_units(
    decisions: pd.DataFrame,
    tables,
    as_of: pd.Timestamp,
    response_days: int,
    cfg,
    tol: float,
    share: float,
) -> pd.DataFrame:
    """What happened after each archived decision whose response window has ended before `as_of`: paid (the
    installment the decision was about settled within strategy.response_days), recovered (paid x the amount
    at stake x the action's share - its cost), a contact, its cost, and a complaint (a complaint hold opened
    for the borrower inside the window). One row per decision, for `readout`."""
    d = decisions.copy()
    d["date"] = pd.to_datetime(d["date"])
    d = d[d["date"] + pd.Timedelta(days=response_days) <= as_of].reset_index(drop=True)
    cols = ["borrower_id", "arm", "recovery", "cured", "contacts", "cost", "complaints"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    inst = tables["installments"]
    settled = inst["paid_date"].notna() & paid_enough(inst, tol, share)
    paid_on = inst.loc[settled, ["loan_id", "due_date", "paid_date"]].rename(columns={"due_date": "open_due"})
    d["open_due"] = pd.to_datetime(d["open_due"]).astype("datetime64[us]")
    paid_on["open_due"] = paid_on["open_due"].astype("datetime64[us]")
    joined = d.merge(paid_on, on=["loan_id", "open_due"], how="left")
    window_end = joined["date"] + pd.Timedelta(days=response_days)
    paid = (joined["paid_date"].notna() & (joined["paid_date"] < window_end)).to_numpy()
    for col in ("overdue_amount", "outstanding"):
        if col not in joined:
            joined[col] = np.nan
    amount = stake(joined).to_numpy(dtype=float)
    kept = recovered_share(joined, cfg).to_numpy()[
        np.arange(len(joined)), recovered_share(joined, cfg).columns.get_indexer(joined["action"])
    ]
    cost = joined["action"].map(cfg.costs).fillna(0.0).to_numpy(dtype=float)
    prefs = tables.get("contact_preferences")
    complaint = np.zeros(len(joined), dtype=bool)
    if prefs is not None and len(prefs):
        holds = prefs[prefs["kind"] == "complaint_hold"][["borrower_id", "valid_from"]]
        hit = joined[["borrower_id", "date"]].reset_index().merge(holds, on="borrower_id")
        hit = hit[
            (hit["valid_from"] >= hit["date"]) & (hit["valid_from"] < hit["date"] + pd.Timedelta(days=response_days))
        ]
        complaint[hit["index"].unique()] = True
    contact = (joined["action"] != "none").to_numpy()
    return pd.DataFrame(
        {
            "borrower_id": joined["borrower_id"].to_numpy(),
            "arm": joined["arm"].to_numpy(),
            "recovery": np.where(paid, np.nan_to_num(amount) * kept, 0.0) - cost,
            "cured": paid.astype(float),
            "contacts": contact.astype(float),
            "cost": cost,
            "complaints": (complaint & contact).astype(float),
        }
    )
