"""Worklists: per collector, the day's actions in the order to work them, with why and within which rules."""

from __future__ import annotations

import pandas as pd

from huishou.config import StrategySettings


def worklist(cand: pd.DataFrame, reasons: pd.DataFrame, risk: pd.Series, cfg: StrategySettings) -> pd.DataFrame:
    """Per collector, a ranked list of the day's actions (AUTO: automated channels); `none` rows are left out."""
    acting = cand[cand["action"] != "none"].copy()
    acting["risk_score"] = acting["loan_id"].map(risk)
    acting = acting.join(reasons, on="loan_id")
    acting["time_window"] = f"{cfg.quiet_end}-{cfg.quiet_start}"
    acting = acting.sort_values(["collector_id", "expected_value", "loan_id"], ascending=[True, False, True])
    acting["rank"] = acting.groupby("collector_id").cumcount() + 1
    cols = [
        "collector_id",
        "rank",
        "loan_id",
        "borrower_id",
        "action",
        "expected_value",
        "p_paid",
        "risk_score",
        "dpd",
        "overdue_amount",
        "reason_1",
        "reason_2",
        "reason_3",
        "rule_path",
        "time_window",
        "policy",
        "propensity",
    ]
    out = acting.reindex(columns=cols)
    out["expected_value"] = out["expected_value"].round(2)
    out[["p_paid", "risk_score"]] = out[["p_paid", "risk_score"]].round(4)
    return out.reset_index(drop=True)
