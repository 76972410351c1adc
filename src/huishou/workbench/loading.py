"""The published worklist as workbench accounts: the collectors' rows with the plan's context per loan
(the rule columns the record-time check starts from), the pending promise's date and the contact details."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from huishou.core.io import plain
from huishou.core.vocab import AUTO
from huishou.strategy.context import CONTEXT_FEATURES, RULE_COLUMNS
from huishou.strategy.worklist import COLUMNS as WORKLIST_COLUMNS

CONTEXT = list(dict.fromkeys(["loan_id", "borrower_id", "stage", *CONTEXT_FEATURES, *RULE_COLUMNS]))
COPIED = [c for c in WORKLIST_COLUMNS if c != "arm"]  # the worklist as published (the arm stays with the plan)


def account_rows(
    worklist: pd.DataFrame,
    candidates: pd.DataFrame,
    details: pd.DataFrame | None,
    actions: pd.DataFrame | None,
) -> list[dict]:
    """One account per collector row of the worklist (automated rows stay with the system)."""
    rows = worklist[worklist["collector_id"] != AUTO].copy()
    if rows.empty:
        return []
    day = str(rows["worklist_date"].iloc[0])
    ctx = candidates.set_index("loan_id", drop=False).reindex(rows["loan_id"])
    # the rule columns already name some opt-outs: each column once (to_dict warns and drops duplicates)
    shown = list(dict.fromkeys([*CONTEXT, *(c for c in ctx.columns if c.startswith("opt_out_"))]))
    rows["context"] = [json.dumps({k: plain(v) for k, v in rec.items()}) for rec in ctx[shown].to_dict("records")]
    rows["promise_due"] = _promise_due(rows, ctx, actions, day)
    if details is not None and len(details):
        d = details.drop_duplicates("borrower_id").set_index("borrower_id")
        for col in ("name", "phone", "address"):
            rows[col] = rows["borrower_id"].map(d[col]) if col in d else None
    else:
        rows[["name", "phone", "address"]] = None
    rows["planned_collector_id"] = rows["collector_id"]
    rows["worklist_date"] = day
    out = rows[[*COPIED, "planned_collector_id", "worklist_date", "context", "promise_due", "name", "phone", "address"]]
    return [{k: plain(v) for k, v in r.items()} for r in out.to_dict("records")]


def _promise_due(rows: pd.DataFrame, ctx: pd.DataFrame, actions: pd.DataFrame | None, day: str) -> list:
    """The promised date of the latest promise before the day, where the plan saw a pending promise."""
    if actions is None or "promised_date" not in actions or actions.empty:
        return [None] * len(rows)
    before = actions[(actions["outcome"] == "promise_to_pay") & (actions["action_at"] < pd.Timestamp(day))]
    last = before.sort_values("action_at").groupby("loan_id")["promised_date"].last()
    pending = ctx["pending_promise"].to_numpy() > 0 if "pending_promise" in ctx else np.zeros(len(rows), bool)
    due = rows["loan_id"].map(last)
    return [str(pd.Timestamp(d).date()) if p and pd.notna(d) else None for d, p in zip(due, pending, strict=True)]


def emergency_rows(worklist: pd.DataFrame, table: pd.DataFrame | None, details: pd.DataFrame | None) -> list[dict]:
    """The emergency contacts (book table: borrower, slot, relation) of the collectors' borrowers, with the
    names and phones of the contact details (emergency_<slot>_name, emergency_<slot>_phone)."""
    if table is None or table.empty:
        return []
    mine = worklist.loc[worklist["collector_id"] != AUTO, "borrower_id"]
    rows = table[table["borrower_id"].isin(mine)][["borrower_id", "slot", "relation"]].copy()
    d = details.drop_duplicates("borrower_id").set_index("borrower_id") if details is not None else pd.DataFrame()
    for key in ("name", "phone"):
        rows[key] = [
            d.at[b, f"emergency_{s}_{key}"] if f"emergency_{s}_{key}" in d and b in d.index else None
            for b, s in zip(rows["borrower_id"], rows["slot"], strict=True)
        ]
    return [{k: plain(v) for k, v in r.items()} for r in rows.to_dict("records")]
