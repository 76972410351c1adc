"""Decision context: what was known about a loan at the moment of a collection decision.

Used twice with the same code: for every logged legacy decision (to learn action effects) and for every
candidate on a worklist date D (to plan). Only events before the decision time t count. The episode is
the earliest installment not settled before t: one already due (early and recovery stages), or, for a
pre-due decision, the next one falling due (`upcoming`). Contacts, hardship, wrong numbers, promises and
the borrower's contact preferences are read across all of the borrower's loans (the rules hold per
person), and the borrower's time zone gives the offset of their local time from the lender's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from huishou.compliance import conversation_sql
from huishou.core.clock import offset_minutes
from huishou.core.engine import duckdb_connect
from huishou.core.vocab import CONTACTS, ELECTRONIC, NONCONTACT, REACHED, sql_list
from huishou.features import open_book
from huishou.features.population import paid_before, paid_enough, settled_before

# what the effect models see (the rest of the context serves the rules)
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
    "broken_promises",
]
RULE_COLUMNS = [
    "calls_7d",
    "sms_7d",
    "visits_30d",
    "days_since_conversation",
    "unanswered_calls_today",
    "unanswered_in_row",
    "pending_promise",
    "promise_reminder_day",
    "pre_due_reminders",
    "cease",
    "complaint_hold",
    "do_not_visit",
    "dispute",
    "attorney",
    *[f"opt_out_{c}" for c in CONTACTS],
    *[f"consent_{c}" for c in ELECTRONIC],
    "consent_start",
    "consent_end",
    "tz_offset_min",
]


def decision_context(
    tables: Mapping[str, pd.DataFrame | Path],
    decisions: pd.DataFrame,
    tol: float,
    share: float,
    step_days: Sequence[int],
    *,
    upcoming: bool = False,
    grace_days: int = 3,
    lender_zone: str = "Asia/Shanghai",
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """One row per decision (columns decision_id, loan_id, t) with CONTEXT_FEATURES and RULE_COLUMNS.

    Decisions with no episode get dpd NULL (callers drop them). `tol` and `share` are the settlement rule
    (features.paid_tolerance, settle_share); `step` counts how many of `step_days` (days past due) after
    the first one the DPD has reached. With `upcoming`, the episode is the next installment not yet due
    and dpd is negative (days before its due date); a boolean column `upcoming` in `decisions` says it per
    decision instead (one query for every stage of a day). A promise is pending until its date plus
    `grace_days`. `con`: a connection that already sees the book (`open_book(tables)`); it is closed here.
    """
    if "upcoming" not in decisions:
        decisions = decisions.assign(upcoming=bool(upcoming))
    # payments carry a date only: one dated on the decision day is not known at decision time
    day = "CAST(d.t AS DATE)"
    settled = settled_before(day)
    due_filter = f"CASE WHEN d.upcoming THEN i.due_date >= {day} ELSE i.due_date < d.t END"
    sql = f"""
    WITH inst AS (
      SELECT d.decision_id, min(i.due_date) FILTER ({due_filter} AND NOT {settled}) AS open_due,
        sum(i.amount_due - {paid_before(day)}) FILTER (i.due_date < d.t AND NOT {settled}) AS past_due_amount,
        sum(i.amount_due - {paid_before(day)}) AS outstanding,
        count(*) FILTER (i.due_date < d.t AND (i.paid_date IS NULL OR i.paid_date > i.due_date)
                         AND i.due_date < d.t - INTERVAL 30 DAY) AS prior_late_installments
      FROM decisions d JOIN installments i ON i.loan_id = d.loan_id
      GROUP BY d.decision_id
    ),
    episode AS (  -- the open episode's installment amount (pre-due: the one falling due)
      SELECT inst.decision_id, sum(i.amount_due - {paid_before(day)}) AS open_amount
      FROM inst JOIN decisions d USING (decision_id)
      JOIN installments i ON i.loan_id = d.loan_id AND i.due_date = inst.open_due
      GROUP BY inst.decision_id
    ),
    acts AS (  -- this loan's episode
      SELECT d.decision_id,
        count(*) FILTER (c.action_at >= inst.open_due AND c.channel <> 'none') AS episode_contacts,
        count(*) FILTER (c.action_at >= inst.open_due AND c.channel IN {sql_list(NONCONTACT)}) AS episode_noncontact,
        count(*) FILTER (c.action_at >= inst.open_due AND c.outcome IN {sql_list(REACHED)}) AS episode_reached,
        count(*) FILTER (c.channel IN ('sms', 'app_push') AND c.action_at >= inst.open_due - INTERVAL 7 DAY)
          AS pre_due_reminders,
        max((c.outcome = 'promise_to_pay' AND c.action_at >= inst.open_due
             AND CAST(coalesce(c.promised_date, c.action_at) AS DATE) + CAST($grace AS INTEGER) >= {day})::INTEGER)
          AS pending_promise,
        max((c.outcome = 'promise_to_pay' AND c.action_at >= inst.open_due
             AND CAST(coalesce(c.promised_date, c.action_at) AS DATE) - 1 = {day})::INTEGER) AS promise_reminder_day,
        count(*) FILTER (c.outcome = 'promise_to_pay' AND c.action_at >= inst.open_due
             AND CAST(coalesce(c.promised_date, c.action_at) AS DATE) + CAST($grace AS INTEGER) < {day})
          AS broken_promises
      FROM decisions d JOIN inst USING (decision_id)
      JOIN collection_actions c ON c.loan_id = d.loan_id AND c.action_at < d.t
      GROUP BY d.decision_id
    ),
    person AS (  -- the borrower, across all their loans
      SELECT d.decision_id,
        count(*) FILTER (c.action_at >= d.t - INTERVAL 7 DAY AND c.channel <> 'none') AS contacts_7d,
        count(*) FILTER (c.action_at >= d.t - INTERVAL 7 DAY AND c.channel = 'call') AS calls_7d,
        count(*) FILTER (c.action_at >= d.t - INTERVAL 7 DAY AND c.channel = 'sms') AS sms_7d,
        count(*) FILTER (c.action_at >= d.t - INTERVAL 30 DAY AND c.channel = 'visit') AS visits_30d,
        date_diff('day', max(c.action_at) FILTER ({conversation_sql("c")}), d.t) AS days_since_conversation,
        count(*) FILTER (c.channel = 'call' AND c.outcome = 'no_answer' AND CAST(c.action_at AS DATE) = {day})
          AS unanswered_calls_today,
        max(c.hardship_reported::INTEGER) AS hardship_reported,
        max((c.outcome = 'wrong_number' AND c.action_at >= inst.open_due)::INTEGER) AS wrong_number
      FROM decisions d JOIN inst USING (decision_id)
      JOIN applications a ON a.loan_id = d.loan_id
      JOIN applications b ON b.borrower_id = a.borrower_id
      JOIN collection_actions c ON c.loan_id = b.loan_id AND c.action_at < d.t
      GROUP BY d.decision_id, d.t
    ),
    reach AS (  -- the borrower's last conversation or reply, any loan
      SELECT d.decision_id, max(c.action_at) FILTER (c.outcome IN {sql_list(REACHED)}) AS last_reached
      FROM decisions d JOIN applications a ON a.loan_id = d.loan_id
      JOIN applications b ON b.borrower_id = a.borrower_id
      JOIN collection_actions c ON c.loan_id = b.loan_id AND c.action_at < d.t
      GROUP BY d.decision_id
    ),
    streak AS (  -- unanswered calls in a row since then, in this episode (CBA: 3 in a row = unreachable)
      SELECT d.decision_id, count(*) AS unanswered_in_row
      FROM decisions d JOIN inst USING (decision_id)
      LEFT JOIN reach USING (decision_id)
      JOIN applications a ON a.loan_id = d.loan_id
      JOIN applications b ON b.borrower_id = a.borrower_id
      JOIN collection_actions c ON c.loan_id = b.loan_id AND c.action_at < d.t
      WHERE c.channel = 'call' AND c.outcome = 'no_answer' AND c.action_at >= inst.open_due
        AND (reach.last_reached IS NULL OR c.action_at > reach.last_reached)
      GROUP BY d.decision_id
    ),
    borrower_of AS MATERIALIZED (  -- each decision's borrower first: joined to the preferences by borrower,
      -- never decisions x preferences by date (a plan DuckDB picked over pandas frames: 3.6e9 rows at 1e6 loans)
      SELECT d.decision_id, d.t, a.borrower_id FROM decisions d JOIN applications a ON a.loan_id = d.loan_id
    ),
    wishes AS (  -- the borrower's contact preferences in force at t
      SELECT d.decision_id,
        max((p.kind = 'cease')::INTEGER) AS cease,
        max((p.kind = 'complaint_hold')::INTEGER) AS complaint_hold,
        max((p.kind = 'do_not_visit')::INTEGER) AS do_not_visit,
        max((p.kind = 'dispute')::INTEGER) AS dispute,
        max((p.kind = 'attorney')::INTEGER) AS attorney,
        {
        ", ".join(
            f"max((p.kind = 'electronic_consent' AND coalesce(p.channel, '{c}') = '{c}')::INTEGER) AS consent_{c}"
            for c in ELECTRONIC
        )
    },
        {", ".join(f"max((p.kind = 'opt_out' AND p.channel = '{c}')::INTEGER) AS opt_out_{c}" for c in CONTACTS)},
        arg_max(p.window_start, p.valid_from) FILTER (p.kind = 'consent_window') AS consent_start_text,
        arg_max(p.window_end, p.valid_from) FILTER (p.kind = 'consent_window') AS consent_end_text
      FROM borrower_of d
      JOIN contact_preferences p ON p.borrower_id = d.borrower_id AND p.valid_from <= d.t
        AND (p.valid_until IS NULL OR p.valid_until > d.t)
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
    SELECT d.decision_id, d.loan_id, d.t, a.borrower_id, a.timezone, a.language,
      date_diff('day', inst.open_due, {day}) AS dpd,
      inst.open_due,
      CASE WHEN d.upcoming THEN episode.open_amount ELSE inst.past_due_amount END AS overdue_amount,
      inst.outstanding, a.amount, a.age, (a.device_os = 'ios')::INTEGER AS ios, a.rate,
      a.declared_income, a.city_tier, a.phone_age_months,
      coalesce(calls.cb_mismatches, 0) AS cb_mismatches, coalesce(calls.cb_unreached, 1) AS cb_unreached,
      inst.prior_late_installments,
      coalesce(acts.episode_contacts, 0) AS episode_contacts, coalesce(acts.episode_noncontact, 0) AS episode_noncontact,
      coalesce(acts.episode_reached, 0) AS episode_reached, coalesce(acts.pre_due_reminders, 0) AS pre_due_reminders,
      coalesce(acts.pending_promise, 0) AS pending_promise,
      coalesce(acts.promise_reminder_day, 0) AS promise_reminder_day,
      coalesce(acts.broken_promises, 0) AS broken_promises,
      coalesce(person.contacts_7d, 0) AS contacts_7d, coalesce(person.calls_7d, 0) AS calls_7d,
      coalesce(person.sms_7d, 0) AS sms_7d, coalesce(person.visits_30d, 0) AS visits_30d,
      person.days_since_conversation, coalesce(person.unanswered_calls_today, 0) AS unanswered_calls_today,
      coalesce(streak.unanswered_in_row, 0) AS unanswered_in_row,
      coalesce(person.hardship_reported, 0) AS hardship_reported, coalesce(person.wrong_number, 0) AS wrong_number,
      coalesce(wishes.cease, 0) AS cease, coalesce(wishes.complaint_hold, 0) AS complaint_hold,
      coalesce(wishes.do_not_visit, 0) AS do_not_visit,
      coalesce(wishes.dispute, 0) AS dispute, coalesce(wishes.attorney, 0) AS attorney,
      {", ".join(f"coalesce(wishes.consent_{c}, 0) AS consent_{c}" for c in ELECTRONIC)},
      {", ".join(f"coalesce(wishes.opt_out_{c}, 0) AS opt_out_{c}" for c in CONTACTS)},
      wishes.consent_start_text, wishes.consent_end_text
    FROM decisions d
    JOIN applications a ON a.loan_id = d.loan_id
    LEFT JOIN inst ON inst.decision_id = d.decision_id
    LEFT JOIN episode ON episode.decision_id = d.decision_id
    LEFT JOIN acts ON acts.decision_id = d.decision_id
    LEFT JOIN person ON person.decision_id = d.decision_id
    LEFT JOIN streak ON streak.decision_id = d.decision_id
    LEFT JOIN wishes ON wishes.decision_id = d.decision_id
    LEFT JOIN calls ON calls.decision_id = d.decision_id
    ORDER BY d.decision_id
    """
    if con is None:
        con = open_book(tables)
    con.register("decisions", decisions)
    out = con_df(con, sql, {"tol": tol, "share": share, "grace": grace_days})
    dpd = out["dpd"] = out["dpd"].astype(float)
    out["step"] = sum((dpd >= s).astype(int) for s in step_days[1:]).where(dpd.notna())
    out["consent_start"] = out.pop("consent_start_text").map(_minutes)
    out["consent_end"] = out.pop("consent_end_text").map(_minutes)
    out["tz_offset_min"] = offset_minutes(out["timezone"], out["t"], lender_zone)
    for col in [*CONTEXT_FEATURES, *RULE_COLUMNS]:
        out[col] = out[col].astype(float)
    return out


def _minutes(text) -> float:
    if not isinstance(text, str) or ":" not in text:
        return np.nan
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def con_df(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pd.DataFrame:
    try:
        return con.execute(sql, params).df()
    finally:
        con.close()


def logged_decisions(
    tables: Mapping[str, pd.DataFrame | Path],
    before: pd.Timestamp,
    response_days: int,
    tol: float,
    share: float,
    step_days: Sequence[int],
    *,
    stage: str = "early",
    grace_days: int = 3,
    lender_zone: str = "Asia/Shanghai",
    max_decisions: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The legacy policy's decisions of one stage before `before`, with context, action, propensity, outcome.

    paid = the episode's installment was paid in full within `response_days` of the decision (pre-due: by
    its due date, i.e. on time). `tables` holds frames or parquet paths (read in place by DuckDB: the whole
    log need not fit in memory). Beyond `max_decisions` the decisions of whole loans chosen by a hash of
    (loan, `seed`) are kept, up to that many (see `stage_actions`).
    """
    acts = stage_actions(tables["collection_actions"], stage, before, max_decisions, seed)
    decisions = pd.DataFrame({"decision_id": range(len(acts)), "loan_id": acts["loan_id"], "t": acts["action_at"]})
    ctx = decision_context(
        tables,
        decisions,
        tol,
        share,
        step_days,
        upcoming=stage == "pre_due",
        grace_days=grace_days,
        lender_zone=lender_zone,
    )
    ctx["action"] = acts["channel"].to_numpy()
    ctx["propensity"] = acts["propensity"].to_numpy()
    columns = ["loan_id", "due_date", "paid_date", "amount_due", "amount_paid"]
    inst = rows_of(tables["installments"], columns, ctx["loan_id"].unique())
    paid = ctx[["decision_id", "loan_id", "t", "open_due"]].merge(inst, on="loan_id")
    day = paid["t"].dt.normalize()
    if stage == "pre_due":
        window = paid["paid_date"] <= paid["due_date"]
    else:
        window = (paid["paid_date"] >= day) & (paid["paid_date"] < day + pd.Timedelta(days=response_days))
    hit = (paid["due_date"] == paid["open_due"]) & window & paid_enough(paid, tol, share)
    ctx["paid"] = ctx["decision_id"].isin(paid.loc[hit, "decision_id"]).astype(int)
    return ctx[ctx["dpd"].notna()].reset_index(drop=True)


def stage_actions(
    actions: pd.DataFrame | Path, stage: str, before: pd.Timestamp, max_decisions: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The log's actions of one lifecycle stage before `before` (loan_id, action_at, channel, propensity), in the
    log's order. Beyond `max_decisions`: the actions of whole loans taken in the order of a hash of (loan,
    `seed`) while their count stays within it (every decision of a loan kept: the cross-fitting folds split by
    loan), ordered by time, loan and channel. A parquet log is filtered by DuckDB, never read whole."""
    columns = ["loan_id", "action_at", "channel", "propensity"]
    if isinstance(actions, pd.DataFrame):
        mine = actions[(actions["policy_stage"] == stage) & (actions["action_at"] < before)].reset_index(drop=True)
        if not max_decisions or len(mine) <= max_decisions:
            return mine
    con = duckdb_connect()
    try:
        if isinstance(actions, pd.DataFrame):
            con.register("log", mine[columns])
        else:
            con.execute(
                "CREATE TEMP TABLE log AS SELECT loan_id, action_at, channel, propensity FROM read_parquet($path) "
                "WHERE policy_stage = $stage AND action_at < $before",
                {"path": str(actions), "stage": stage, "before": pd.Timestamp(before).to_pydatetime()},
            )
        n = con.execute("SELECT count(*) FROM log").fetchone()[0]
        if not max_decisions or n <= max_decisions:
            return con.execute("SELECT * FROM log").df()
        return con.execute(
            """
            WITH loans AS (SELECT loan_id, count(*) AS n FROM log GROUP BY loan_id),
            upto AS (SELECT loan_id, sum(n) OVER (ORDER BY hash(loan_id, $seed), loan_id) AS upto FROM loans)
            SELECT l.* FROM log l SEMI JOIN (SELECT loan_id FROM upto WHERE upto <= $cap) k USING (loan_id)
            ORDER BY l.action_at, l.loan_id, l.channel
            """,
            {"seed": int(seed), "cap": int(max_decisions)},
        ).df()
    finally:
        con.close()


def promises_made(actions: pd.DataFrame | Path) -> pd.DataFrame:
    """The log's promises to pay (loan_id, action_at, promised_date) in the log's order: a frame filtered, a
    parquet log filtered by DuckDB (never read whole)."""
    columns = ["loan_id", "action_at", "promised_date"]
    if isinstance(actions, pd.DataFrame):
        return actions.loc[actions["outcome"] == "promise_to_pay", columns]
    con = open_book({"collection_actions": actions})  # an absent optional column (promised_date) reads as missing
    return con_df(
        con, "SELECT loan_id, action_at, promised_date FROM collection_actions WHERE outcome = 'promise_to_pay'", {}
    )


def rows_of(table: pd.DataFrame | Path, columns: list[str], loans) -> pd.DataFrame:
    """`columns` of a table (a frame, or a parquet file DuckDB filters) for the loans `loans` (a frame: every row)."""
    if isinstance(table, pd.DataFrame):
        return table[columns]
    con = duckdb_connect()
    try:
        con.register("wanted", pd.DataFrame({"loan_id": np.asarray(loans)}))
        cols = ", ".join(f't."{c}"' for c in columns)  # the contract's column names (constants), never user input
        return con.execute(
            f"SELECT {cols} FROM read_parquet($path) t SEMI JOIN wanted USING (loan_id)", {"path": str(table)}
        ).df()
    finally:
        con.close()
