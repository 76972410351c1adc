"""Worklists: per collector, the day's actions in the order to work them, with why and within which rules."""

from __future__ import annotations

import pandas as pd

COLUMNS = [
    "collector_id",
    "rank",
    "loan_id",
    "borrower_id",
    "stage",
    "action",
    "expected_value",
    "p_paid",
    "risk_score",
    "dpd",
    "overdue_amount",
    "outstanding",
    "broken_promises",
    "p_promise_kept",
    "reason_1",
    "reason_2",
    "reason_3",
    "rule_path",
    "time_window",
    "timezone",
    "language",
    "policy",
    "arm",
    "propensity",
]


def worklist(cand: pd.DataFrame, reasons: pd.DataFrame, risk: pd.Series) -> pd.DataFrame:
    """Per collector, a ranked list of the day's actions (AUTO: automated channels); `none` rows are left out.

    Accounts with a broken promise come first (a broken promise raises the account's priority), then by
    expected value. `time_window` is the borrower's local time; `timezone` their zone; `language` the one
    they are collected in (the collector speaks it).
    """
    acting = cand[cand["action"] != "none"].copy()
    acting["risk_score"] = acting["loan_id"].map(risk)
    acting = acting.join(reasons, on="loan_id")
    acting["broken"] = acting["broken_promises"] > 0
    acting = acting.sort_values(
        ["collector_id", "broken", "expected_value", "loan_id"], ascending=[True, False, False, True]
    )
    acting["rank"] = acting.groupby("collector_id").cumcount() + 1
    out = acting.reindex(columns=COLUMNS)
    out["expected_value"] = out["expected_value"].round(2)
    out[["p_paid", "risk_score", "p_promise_kept"]] = out[["p_paid", "risk_score", "p_promise_kept"]].round(4)
    return out.reset_index(drop=True)
