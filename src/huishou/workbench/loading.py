"""The published worklist as workbench accounts: the collectors' rows with the plan's context per loan
(the rule columns the record-time check starts from), the pending promise's date and the contact details."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from huishou.core.io import plain
from huishou.core.vocab import AUTO, WEAK_REPAYMENT_PLANS
from huishou.strategy.context import CONTEXT_FEATURES, RULE_COLUMNS
from huishou.strategy.worklist import COLUMNS as WORKLIST_COLUMNS

CONTEXT = list(dict.fromkeys(["loan_id", "borrower_id", "stage", *CONTEXT_FEATURES, *RULE_COLUMNS]))
# the worklist as published (the arm stays with the plan; the language rides in the context, so a workbench
# database made before the column existed needs no new column)
COPIED = [c for c in WORKLIST_COLUMNS if c not in ("arm", "language")]


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
    extra = [c for c in ctx.columns if c.startswith("opt_out_") or c == "language"]
    shown = list(dict.fromkeys([*CONTEXT, *extra]))
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


def _iso(value) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat(timespec="microseconds")


def history_rows(
    worklist: pd.DataFrame,
    applications: pd.DataFrame,
    actions: pd.DataFrame | None,
    installments: pd.DataFrame,
    day: str,
    grace_days: int,
) -> list[dict]:
    """The book's collection log of every loan of the collectors' borrowers, before the list's day; each promise
    marked kept (a payment on the loan from the promise to its date plus `grace_days`), broken (none by then)
    or pending (that date not passed yet)."""
    if actions is None or actions.empty:
        return []
    mine = set(worklist.loc[worklist["collector_id"] != AUTO, "borrower_id"])
    loans = applications.loc[applications["borrower_id"].isin(mine), ["loan_id", "borrower_id"]]
    acts = actions[actions["loan_id"].isin(loans["loan_id"]) & (actions["action_at"] < pd.Timestamp(day))]
    acts = acts.merge(loans, on="loan_id")
    promised = pd.to_datetime(acts["promised_date"]) if "promised_date" in acts else pd.Series(pd.NaT, index=acts.index)
    state = pd.Series(None, index=acts.index, dtype=object)
    is_promise = acts["outcome"] == "promise_to_pay"
    if is_promise.any():
        deadline = promised.fillna(acts["action_at"].dt.normalize()) + pd.Timedelta(days=grace_days)
        pays = installments.loc[installments["paid_date"].notna(), ["loan_id", "paid_date"]]
        p = acts.loc[is_promise, ["loan_id", "action_at"]].assign(deadline=deadline[is_promise]).reset_index()
        hit = p.merge(pays, on="loan_id")
        hit = hit[(hit["paid_date"] >= hit["action_at"].dt.normalize()) & (hit["paid_date"] <= hit["deadline"])]
        kept = set(hit["index"])
        for i, d in zip(p["index"], p["deadline"], strict=True):
            state[i] = "kept" if i in kept else ("pending" if d >= pd.Timestamp(day) else "broken")
    out = pd.DataFrame(
        {
            "borrower_id": acts["borrower_id"].astype("int64"),
            "loan_id": acts["loan_id"].astype("int64"),
            "action_at": [_iso(t) for t in acts["action_at"]],
            "channel": acts["channel"].astype(str),
            "outcome": acts["outcome"].astype(str),
            "collector_id": acts["collector_id"].where(acts["collector_id"].notna(), None),
            "promised_amount": acts["promised_amount"].where(is_promise),
            "promised_date": [None if pd.isna(d) else str(pd.Timestamp(d).date()) for d in promised],
            "promise_state": state,
            "hardship": acts["hardship_reported"].fillna(False).astype(bool),
        }
    )
    return [{k: plain(v) for k, v in r.items()} for r in out.to_dict("records")]


def callback_rows(
    worklist: pd.DataFrame, applications: pd.DataFrame, calls: pd.DataFrame | None, understated: float
) -> list[dict]:
    """The verification calls of every loan of the collectors' borrowers: the answers, and the inconsistency
    codes (purpose, employer, income differ from the application; answered by someone else; identity not
    verified; no repayment source; skipped or unreached) the features count as risk signals. A stated
    income below `understated` times the declared one contradicts it (features.income_understated_ratio,
    as for the features)."""
    if calls is None or calls.empty:
        return []
    mine = set(worklist.loc[worklist["collector_id"] != AUTO, "borrower_id"])
    cols = [c for c in ("loan_id", "borrower_id", "purpose", "employer", "declared_income") if c in applications]
    apps = applications.loc[applications["borrower_id"].isin(mine), cols]
    cb = calls.merge(apps, on="loan_id")
    rows = []
    for r in cb.to_dict("records"):
        flags = []
        if not r.get("reached"):
            flags.append("unreached")
        if r.get("skipped"):
            flags.append("skipped")
        if r.get("answered_by") == "other":
            flags.append("answered_by_other")
        if r.get("identity_verified") is False:
            flags.append("identity_not_verified")
        for stated, given, code in (
            ("stated_purpose", "purpose", "purpose_differs"),
            ("stated_employer", "employer", "employer_differs"),
        ):
            if plain(r.get(stated)) is not None and plain(r.get(given)) is not None and r[stated] != r[given]:
                flags.append(code)
        income, declared = r.get("stated_income"), r.get("declared_income")
        if (
            plain(income) is not None
            and plain(declared) is not None
            and declared > 0
            and income < understated * declared
        ):
            flags.append("income_lower")
        if r.get("repayment_plan_stated") in WEAK_REPAYMENT_PLANS:
            flags.append("no_repayment_source")
        answers = {
            k: plain(r.get(k))
            for k in (
                "reached",
                "answered_by",
                "identity_verified",
                "stated_purpose",
                "purpose",
                "stated_income",
                "declared_income",
                "stated_employer",
                "employer",
                "repayment_plan_stated",
            )
        }
        rows.append(
            {
                "borrower_id": int(r["borrower_id"]),
                "loan_id": int(r["loan_id"]),
                "called_at": _iso(r["called_at"]),
                "answers": json.dumps(answers, ensure_ascii=False),
                "flags": json.dumps(flags),
            }
        )
    return rows


def preference_rows(worklist: pd.DataFrame, prefs: pd.DataFrame | None, day: str) -> list[dict]:
    """The book's contact preferences of the collectors' borrowers in force on the list's day."""
    if prefs is None or prefs.empty:
        return []
    mine = set(worklist.loc[worklist["collector_id"] != AUTO, "borrower_id"])
    t = pd.Timestamp(day)
    until = prefs["valid_until"] if "valid_until" in prefs else pd.Series(pd.NaT, index=prefs.index)
    live = prefs[prefs["borrower_id"].isin(mine) & (prefs["valid_from"] < t) & (until.isna() | (until > t))]
    return [
        {
            "borrower_id": int(r["borrower_id"]),
            "kind": str(r["kind"]),
            "channel": None if plain(r.get("channel")) is None else str(r["channel"]),
            "valid_from": _iso(r["valid_from"]),
            "valid_until": _iso(r.get("valid_until")),
        }
        for r in live.to_dict("records")
    ]


def account_context(
    worklist: pd.DataFrame, book: dict, day: str, grace_days: int, understated: float
) -> dict[str, list[dict]]:
    """What the account page shows beyond the plan, for the collectors' borrowers: the collection history
    (promises kept or broken), the verification calls with their inconsistencies, the preferences in force;
    by workbench table name (wb_history, wb_callbacks, wb_preferences)."""
    apps = book.get("applications")
    if apps is None:
        return {}
    out = {"wb_callbacks": callback_rows(worklist, apps, book.get("callbacks"), understated)}
    out["wb_preferences"] = preference_rows(worklist, book.get("contact_preferences"), day)
    if "installments" in book:
        out["wb_history"] = history_rows(
            worklist, apps, book.get("collection_actions"), book["installments"], day, grace_days
        )
    return out
