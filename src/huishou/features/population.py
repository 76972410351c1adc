"""Who is scored at snapshot T, and the target.

Time semantics (all dates are midnight; a snapshot T sees events strictly before T):

* An installment is *settled before D* when at least `settle_share` of its amount due (1.0
  for instalment loans; a card's minimum-payment share for revolving credit) was paid, within
  `paid_tolerance`, on a day < D. Its row holds the final state of the extract, so a payment on or after D
  is invisible at D, as it must be.
* It *defaults* on due_date + default_dpd unless settled before that day.
* The population at T: loans disbursed before T, not closed (some installment not
  settled before T), and never defaulted on or before T.
* target = 1 when the loan first defaults in (T, T + horizon]. It is NULL when the
  extract (as_of) does not yet cover T + horizon.
"""

from __future__ import annotations

PAID_ENOUGH = "(i.amount_paid >= i.amount_due * $share - $tol)"


def paid_enough(installments, tol: float, share: float = 1.0):
    """The same rule as PAID_ENOUGH on a pandas frame of installments (boolean Series)."""
    return installments["amount_paid"] >= installments["amount_due"] * share - tol


def paid_before(day_expr: str) -> str:
    """SQL: the amount installment `i` had been paid strictly before `day_expr` (0 when paid later or not at all)."""
    return f"CASE WHEN i.paid_date < {day_expr} THEN i.amount_paid ELSE 0 END"


def settled_before(day_expr: str) -> str:
    """SQL predicate: installment `i` paid (enough to settle it) strictly before `day_expr`."""
    return f"(i.paid_date IS NOT NULL AND i.paid_date < {day_expr} AND {PAID_ENOUGH})"


def loan_status_sql() -> str:
    """Per loan: the contractual schedule (annuity, installments, total due), the day it first defaults
    (NULL: never, as of the extract), the day it closed.

    The two days are used only through comparisons that are decided before T: `first_default_day <= T`
    depends on payments before that day, and `closed_day < T` on payments before T.
    """
    default_day = "i.due_date + to_days(CAST($dpd AS INTEGER))"
    return f"""
    SELECT i.loan_id, avg(i.amount_due) AS annuity, count(*) AS n_installments, sum(i.amount_due) AS total_due,
      min({default_day}) FILTER (NOT {settled_before(default_day)}) AS first_default_day,
      CASE WHEN bool_and(i.paid_date IS NOT NULL AND {PAID_ENOUGH})
           THEN max(i.paid_date) END AS closed_day
    FROM installments i GROUP BY i.loan_id
    """


def spine_sql() -> str:
    """One row per (loan, snapshot) in the population: disbursed before T, not closed, never defaulted.

    Kept narrow (numbering wide rows costs a wide sort); families join what else they need.
    """
    return """
    SELECT row_number() OVER (ORDER BY s.snapshot_date, a.loan_id) AS sid, a.loan_id, a.borrower_id, a.disbursed_at,
      s.snapshot_date
    FROM applications a
    JOIN loan_status l ON l.loan_id = a.loan_id
    JOIN snapshots s ON a.disbursed_at < s.snapshot_date
    WHERE NOT coalesce(l.first_default_day <= s.snapshot_date, false)
      AND NOT coalesce(l.closed_day < s.snapshot_date, false)
    """


def origination_spine_sql() -> str:
    """Origination mode: one row per application, decided at T = applied_at (approved, pending or declined).

    The spine's `disbursed_at` is the decision time, so families that measure from disbursal (calls,
    earlier loans) measure from the decision instead, and nothing after it is seen.
    """
    return """
    SELECT row_number() OVER (ORDER BY a.applied_at, a.loan_id) AS sid, a.loan_id, a.borrower_id,
      a.applied_at AS disbursed_at, a.applied_at AS snapshot_date
    FROM applications a
    WHERE a.applied_at < $as_of
    """


def keys_sql(origination: bool = False) -> str:
    """The identifying columns of each spine row (the loan's real disbursal time; empty if not approved);
    in origination mode also the application's status at the extract (not a feature)."""
    status = ", a.status" if origination else ""
    return f"""
    SELECT s.sid, s.loan_id, s.borrower_id, a.disbursed_at, s.snapshot_date{status}
    FROM spine s JOIN applications a ON a.loan_id = s.loan_id
    """


def target_sql(origination: bool = False) -> str:
    """target per spine row: first default in (T, T + horizon]; NULL when the extract's as_of does not cover it.

    Origination: first default within `horizon` days of disbursal (NULL for applications not approved).
    A given label (the outcomes table) overrides the derived one: matched on (loan, snapshot), or on the
    loan alone in origination mode. `target_source` says which one a row carries.
    """
    if origination:
        end = "a.disbursed_at + to_days(CAST($horizon AS INTEGER))"
        derived = f"""CASE WHEN a.disbursed_at IS NULL OR {end} > $as_of THEN NULL
           ELSE coalesce(l.first_default_day <= {end}, false)::INTEGER END"""
        match = "o.loan_id = s.loan_id"
    else:
        end = "s.snapshot_date + to_days(CAST($horizon AS INTEGER))"
        derived = f"""CASE WHEN {end} > $as_of THEN NULL
           ELSE coalesce(l.first_default_day <= {end}, false)::INTEGER END"""
        match = "o.loan_id = s.loan_id AND o.snapshot_date = s.snapshot_date"
    return f"""
    SELECT s.sid, coalesce(o.target, {derived}) AS target,
      CASE WHEN o.target IS NOT NULL THEN 'given' WHEN ({derived}) IS NOT NULL THEN 'derived' END AS target_source
    FROM spine s
    JOIN applications a ON a.loan_id = s.loan_id
    LEFT JOIN loan_status l ON l.loan_id = s.loan_id
    LEFT JOIN outcomes o ON {match}
    """


def population_sql() -> str:
    """Per snapshot: how many loans are in the population and why every other application is not.

    Reasons, in this order: applied on or after T; not approved; disbursed on or after T; no
    schedule; already defaulted on or before T; closed before T.
    """
    return """
    SELECT s.snapshot_date,
      count(*) FILTER (reason = 'in population') AS in_population,
      count(*) FILTER (reason = 'not yet applied') AS not_yet_applied,
      count(*) FILTER (reason = 'not approved') AS not_approved,
      count(*) FILTER (reason = 'not yet disbursed') AS not_yet_disbursed,
      count(*) FILTER (reason = 'no schedule') AS no_schedule,
      count(*) FILTER (reason = 'already defaulted') AS already_defaulted,
      count(*) FILTER (reason = 'closed') AS closed
    FROM (
      SELECT s.snapshot_date, CASE
          WHEN a.applied_at >= s.snapshot_date THEN 'not yet applied'
          WHEN a.status <> 'approved' THEN 'not approved'
          WHEN a.disbursed_at >= s.snapshot_date THEN 'not yet disbursed'
          WHEN l.loan_id IS NULL THEN 'no schedule'
          WHEN l.first_default_day <= s.snapshot_date THEN 'already defaulted'
          WHEN l.closed_day < s.snapshot_date THEN 'closed'
          ELSE 'in population' END AS reason
      FROM applications a CROSS JOIN snapshots s LEFT JOIN loan_status l ON l.loan_id = a.loan_id
    ) s
    GROUP BY s.snapshot_date ORDER BY s.snapshot_date
    """
