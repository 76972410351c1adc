"""Decision context: what was known about a delinquent loan at the moment of a collection decision.

Used twice with the same code: for every logged legacy decision (to learn action effects)
and for every delinquent loan on a worklist date D (to plan). Only events before the
decision time t count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pandas as pd

from huishou.features import open_book
from huishou.features.population import paid_before, paid_enough, settled_before
from huishou.vocab import NONCONTACT, REACHED, sql_list

CONTEXT_FEATURES = [
    "dpd",
    "step",
    "overdue_amount",
    "outstanding",
    "amount",
    "age",
    "ios",
    "rate",
    "declared_income",
    "city_tier",
    "phone_age_months",
    "cb_mismatches",
    "cb_unreached",
    "prior_late_installments",
    "episode_contacts",
    "episode_noncontact",
    "episode_reached",
    "contacts_7d",
    "hardship_reported",
    "wrong_number",
]


def _connect(tables: Mapping[str, pd.DataFrame], decisions: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = open_book(tables)
    con.register("decisions", decisions)
    return con


def decision_context(
    tables: Mapping[str, pd.DataFrame], decisions: pd.DataFrame, tol: float, share: float, step_days: Sequence[int]
) -> pd.DataFrame:
    """One row per decision (columns decision_id, loan_id, t) with CONTEXT_FEATURES.

    The open episode is the earliest installment due before t and not paid in full before t;
    decisions with no open episode get dpd NULL (callers drop them). `tol` and `share` are the
    settlement rule (features.paid_tolerance, settle_share); `step` counts how many of
    `step_days` (strategy.decision_step_days, days past due) after the first one the DPD has reached.
    """
    # payments carry a date only: one dated on the decision day is not known at decision time
    settled = settled_before("CAST(d.t AS DATE)")
    sql = f"""
    WITH inst AS (
      SELECT d.decision_id, min(i.due_date) FILTER (i.due_date < d.t AND NOT {settled}) AS open_due,
        sum(i.amount_due - {paid_before("CAST(d.t AS DATE)")})
          FILTER (i.due_date < d.t AND NOT {settled}) AS overdue_amount,
        sum(i.amount_due - {paid_before("CAST(d.t AS DATE)")}) AS outstanding,
        count(*) FILTER (i.due_date < d.t AND (i.paid_date IS NULL OR i.paid_date > i.due_date)
                         AND i.due_date < d.t - INTERVAL 30 DAY) AS prior_late_installments
      FROM decisions d JOIN installments i ON i.loan_id = d.loan_id
      GROUP BY d.decision_id
    ),
    acts AS (
      SELECT d.decision_id,
        count(*) FILTER (c.action_at >= inst.open_due AND c.channel <> 'none') AS episode_contacts,
        count(*) FILTER (c.action_at >= inst.open_due AND c.channel IN {sql_list(NONCONTACT)}) AS episode_noncontact,
        count(*) FILTER (c.action_at >= inst.open_due AND c.outcome IN {sql_list(REACHED)}) AS episode_reached,
        count(*) FILTER (c.action_at >= d.t - INTERVAL 7 DAY AND c.channel <> 'none') AS contacts_7d
      FROM decisions d JOIN inst USING (decision_id)
      JOIN collection_actions c ON c.loan_id = d.loan_id AND c.action_at < d.t
      GROUP BY d.decision_id
    ),
    person AS (  -- facts about the borrower, from any of their loans: hardship ever reported, and a
                 -- wrong number since this loan's episode began (the number is the person's, not the loan's)
      SELECT d.decision_id,
        max(c.hardship_reported::INTEGER) AS hardship_reported,
        max((c.outcome = 'wrong_number' AND c.action_at >= inst.open_due)::INTEGER) AS wrong_number
      FROM decisions d JOIN inst USING (decision_id)
      JOIN applications a ON a.loan_id = d.loan_id
      JOIN applications b ON b.borrower_id = a.borrower_id
      JOIN collection_actions c ON c.loan_id = b.loan_id AND c.action_at < d.t
      GROUP BY d.decision_id
    ),
    calls AS (
      SELECT d.decision_id,
        sum((cb.stated_purpose <> a.purpose)::INTEGER + (cb.stated_employer <> a.employer)::INTEGER
            + (cb.answered_by = 'other')::INTEGER + coalesce((cb.identity_verified = false)::INTEGER, 0)) AS cb_mismatches,
        1 - max(cb.reached::INTEGER) AS cb_unreached
      FROM decisions d JOIN applications a ON a.loan_id = d.loan_id
      JOIN callbacks cb ON cb.loan_id = d.loan_id AND cb.called_at < d.t
      GROUP BY d.decision_id
    )
    SELECT d.decision_id, d.loan_id, d.t, a.borrower_id,
      date_diff('day', inst.open_due, CAST(d.t AS DATE)) AS dpd,
      inst.open_due,
      inst.overdue_amount, inst.outstanding, a.amount, a.age, (a.device_os = 'ios')::INTEGER AS ios, a.rate,
      a.declared_income, a.city_tier, a.phone_age_months,
      coalesce(calls.cb_mismatches, 0) AS cb_mismatches, coalesce(calls.cb_unreached, 1) AS cb_unreached,
      inst.prior_late_installments,
      coalesce(acts.episode_contacts, 0) AS episode_contacts, coalesce(acts.episode_noncontact, 0) AS episode_noncontact,
      coalesce(acts.episode_reached, 0) AS episode_reached, coalesce(acts.contacts_7d, 0) AS contacts_7d,
      coalesce(person.hardship_reported, 0) AS hardship_reported, coalesce(person.wrong_number, 0) AS wrong_number
    FROM decisions d
    JOIN applications a ON a.loan_id = d.loan_id
    LEFT JOIN inst ON inst.decision_id = d.decision_id
    LEFT JOIN acts ON acts.decision_id = d.decision_id
    LEFT JOIN person ON person.decision_id = d.decision_id
    LEFT JOIN calls ON calls.decision_id = d.decision_id
    ORDER BY d.decision_id
    """
    out = con_df(_connect(tables, decisions), sql, {"tol": tol, "share": share})
    dpd = out["dpd"]
    out["step"] = sum((dpd >= s).astype(int) for s in step_days[1:]).where(dpd.notna())
    for col in CONTEXT_FEATURES:
        out[col] = out[col].astype(float)
    return out


def con_df(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pd.DataFrame:
    try:
        return con.execute(sql, params).df()
    finally:
        con.close()


def logged_decisions(
    tables: Mapping[str, pd.DataFrame],
    before: pd.Timestamp,
    response_days: int,
    tol: float,
    share: float,
    step_days: Sequence[int],
) -> pd.DataFrame:
    """Early-stage legacy decisions before `before` with context, action, propensity and outcome.

    paid = the loan's open installment was paid in full within `response_days` of the decision.
    """
    acts = tables["collection_actions"]
    acts = acts[(acts["policy_stage"] == "early") & (acts["action_at"] < before)].reset_index(drop=True)
    decisions = pd.DataFrame({"decision_id": range(len(acts)), "loan_id": acts["loan_id"], "t": acts["action_at"]})
    ctx = decision_context(tables, decisions, tol, share, step_days)
    ctx["action"] = acts["channel"].to_numpy()
    ctx["propensity"] = acts["propensity"].to_numpy()
    inst = tables["installments"][["loan_id", "due_date", "paid_date", "amount_due", "amount_paid"]]
    paid = ctx[["decision_id", "loan_id", "t", "open_due"]].merge(inst, on="loan_id")
    day = paid["t"].dt.normalize()
    hit = (
        (paid["due_date"] == paid["open_due"])
        & (paid["paid_date"] >= day)
        & (paid["paid_date"] < day + pd.Timedelta(days=response_days))
        & paid_enough(paid, tol, share)
    )
    ctx["paid"] = ctx["decision_id"].isin(paid.loc[hit, "decision_id"]).astype(int)
    return ctx[ctx["dpd"].notna()].reset_index(drop=True)
