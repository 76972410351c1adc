"""Who is scored at snapshot T, and the target.

Time semantics (all dates are midnight; a snapshot T sees events strictly before T):

* An installment is *settled before D* when it was paid in full (within `paid_tolerance`)
  on a day < D. Its row holds the final state of the extract, so a payment on or after D
  is invisible at D, as it must be.
* It *defaults* on due_date + default_dpd unless settled before that day.
* The population at T: loans disbursed before T, not closed (some installment not
  settled before T), and never defaulted on or before T.
* target = 1 when the loan first defaults in (T, T + horizon]. It is NULL when the
  extract (as_of) does not yet cover T + horizon.
"""

from __future__ import annotations


def settled_before(day_expr: str, tol: str = "$tol") -> str:
    """SQL predicate: installment `i` paid in full strictly before `day_expr`."""
    return f"(i.paid_date IS NOT NULL AND i.paid_date < {day_expr} AND i.amount_paid >= i.amount_due - {tol})"


def spine_sql() -> str:
    """One row per (loan, snapshot) in the population; needs views applications, installments, snapshots."""
    default_day = "i.due_date + to_days(CAST($dpd AS INTEGER))"
    return f"""
    SELECT a.loan_id, a.borrower_id, a.disbursed_at, s.snapshot_date
    FROM applications a
    JOIN snapshots s ON a.disbursed_at < s.snapshot_date
    JOIN installments i ON i.loan_id = a.loan_id
    GROUP BY ALL
    HAVING NOT bool_or({default_day} <= s.snapshot_date AND NOT {settled_before(default_day)})
       AND NOT bool_and({settled_before("s.snapshot_date")})
    """


def target_sql() -> str:
    """target per spine row: first default in (T, T + horizon]; NULL past the extract's as_of."""
    default_day = "i.due_date + to_days(CAST($dpd AS INTEGER))"
    window_end = "s.snapshot_date + to_days(CAST($horizon AS INTEGER))"
    return f"""
    WITH hit AS (
      SELECT s.loan_id, s.snapshot_date,
        bool_or({default_day} > s.snapshot_date AND {default_day} <= {window_end}
                AND NOT {settled_before(default_day)}) AS defaults_in_window
      FROM spine s JOIN installments i ON i.loan_id = s.loan_id
      GROUP BY s.loan_id, s.snapshot_date
    )
    SELECT loan_id, snapshot_date,
      CASE WHEN snapshot_date + to_days(CAST($horizon AS INTEGER)) > $as_of THEN NULL
           ELSE defaults_in_window::INTEGER END AS target
    FROM hit
    """
