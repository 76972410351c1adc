"""Repayment-history features of the loan itself and of the borrower's earlier loans.

In the style of the strongest public Home Credit solutions: DPD statistics, late flags
at several thresholds, paid/due ratios, partial payments, recent windows, trends and
recency. Every installment is seen as of T: a payment dated on or after T does not
exist yet, and only installments due before T count as due.

Recent behaviour: the last due installment exactly (`arg_max` over seq, one scalar state), and
calendar windows (installments due in the last 90 and 180 days) rather than the last k
installments: a window is one filtered aggregate in the same pass, where last-k needs a per-loan
sort or list state (measured ~0.8 s more at a million loans), and it means the same for weekly,
monthly or irregular schedules.
"""

from __future__ import annotations

from collections.abc import Sequence

from huishou.features.population import PAID_ENOUGH, paid_before, settled_before


def _touched_before_T_sql() -> str:
    """Installments of each spine loan that were due or (partly) paid before T, with their as-of-T state.

    The untouched rest (due later, nothing paid yet) adds only to counts and totals that come from the
    loan's schedule, so leaving it out of the aggregation halves its rows on a young book.
    """
    return f"""
    SELECT s.sid, i.seq, i.amount_due, i.due_date < s.snapshot_date AS is_due,
      date_diff('day', i.due_date, s.snapshot_date) AS since_due,
      {paid_before("s.snapshot_date")} AS paid_amt,
      CASE WHEN i.paid_date < s.snapshot_date THEN date_diff('day', i.paid_date, s.snapshot_date) END AS since_paid,
      (i.paid_date < s.snapshot_date AND {PAID_ENOUGH}) AS settled
    FROM spine s JOIN installments i ON i.loan_id = s.loan_id
    WHERE i.due_date < s.snapshot_date OR i.paid_date < s.snapshot_date
    """


def _when(cond: str, value: str = "1") -> str:
    """`value` where `cond` holds, else NULL (which every aggregate skips).

    Used instead of `agg(x) FILTER (cond)`: the same result, measured ~15 % faster over the
    repayment family's ~27 aggregates in DuckDB's hash aggregate.
    """
    return f"CASE WHEN {cond} THEN {value} END"


def _recent_sql(recent_days: Sequence[int]) -> str:
    """The last due installment, and DPD, late count and paid share over each recent window
    (the paid share over the first, shortest window)."""
    parts = [
        "arg_max(dpd, seq) FILTER (is_due) AS rp_dpd_last",
        "arg_max(paid_amt / nullif(amount_due, 0), seq) FILTER (is_due) AS rp_paid_ratio_last",
        "arg_max(amount_due, seq) FILTER (is_due) AS rp_last_amount_due",
    ]
    for d in map(int, recent_days):
        parts += [
            f"avg({_when(f'since_due <= {d}', 'dpd')}) AS rp_dpd_mean_{d}d",
            f"count({_when(f'since_due <= {d} AND dpd >= 1')}) AS rp_n_late_{d}d",
        ]
    window = f"is_due AND since_due <= {int(recent_days[0])}"
    parts.append(
        f"sum({_when(window, 'paid_amt')}) / nullif(sum({_when(window, 'amount_due')}), 0)"
        f" AS rp_paid_ratio_{int(recent_days[0])}d"
    )
    return ",\n        ".join(parts)


def zero_when_untouched(late_thresholds: Sequence[int], recent_days: Sequence[int]) -> tuple[str, ...]:
    """Counts (and DPD maxima) are 0, not missing, for a loan with nothing due or paid yet."""
    return (
        "rp_n_due",
        "rp_dpd_now",
        "rp_dpd_max",
        *(f"rp_n_late_{int(k)}" for k in late_thresholds),
        "rp_n_partial",
        *(f"rp_n_late_{int(d)}d" for d in recent_days),
        "rp_n_prepaid",
        "paid_total",
        "sx",
        "sxx",
        "sxy",
    )


def _slope_sums_sql() -> str:
    """Sums for the least-squares slope of DPD over the installment number (regr_slope costs 10x more)."""
    return (
        f"sum({_when('is_due', 'seq::DOUBLE')}) AS sx, sum({_when('is_due', '(seq * seq)::DOUBLE')}) AS sxx, "
        "sum(seq * dpd) AS sxy"
    )  # dpd is NULL unless due


def repayment_sql(late_thresholds: Sequence[int], recent_days: Sequence[int]) -> str:
    """One hash aggregation over the touched installments, and the next due date from the untouched ones.

    DPD of a due installment runs to its settling payment, or to T when it is not settled before T.
    `late_thresholds` (days) give the late counts rp_n_late_<k>; `recent_days` the recent windows.
    """
    zero = zero_when_untouched(late_thresholds, recent_days)
    late = ", ".join(f"count({_when(f'dpd >= {int(k)}')}) AS rp_n_late_{int(k)}" for k in late_thresholds)
    zeroed = ", ".join(f"coalesce(g.{c}, 0) AS {c}" for c in zero)
    return f"""
    WITH inst AS ({_touched_before_T_sql()}),
    graded AS (
      SELECT *, CASE WHEN is_due THEN greatest(since_due - CASE WHEN settled THEN since_paid ELSE 0 END, 0) END::DOUBLE AS dpd
      FROM inst
    ),
    agg AS (
      SELECT sid,
        count(dpd) AS rp_n_due,
        max({_when("is_due AND NOT settled", "since_due")}) AS rp_dpd_now,
        max(dpd) AS rp_dpd_max, avg(dpd) AS rp_dpd_mean,
        {late},
        sum({_when("is_due", "paid_amt")}) / sum({_when("is_due", "amount_due")}) AS rp_paid_ratio,
        count({_when("is_due AND paid_amt > 0 AND NOT settled")}) AS rp_n_partial,
        avg({_when("is_due AND settled", "since_due - since_paid")}) AS rp_days_paid_vs_due_mean,
        {_recent_sql(recent_days)},
        {_slope_sums_sql()},
        min(since_paid) AS rp_days_since_payment,
        count({_when("NOT is_due AND settled")}) AS rp_n_prepaid,
        sum(paid_amt) AS paid_total
      FROM graded GROUP BY sid
    ),
    next_due AS (
      SELECT s.sid, min(i.due_date) AS due_date
      FROM spine s JOIN installments i ON i.loan_id = s.loan_id AND i.due_date >= s.snapshot_date
      GROUP BY s.sid
    ),
    out AS (
      SELECT s.sid, g.* EXCLUDE (sid, {", ".join(zero)}), {zeroed},
        date_diff('day', s.snapshot_date, n.due_date) AS rp_days_to_next_due,
        l.n_installments - coalesce(g.rp_n_due, 0) AS rp_n_remaining,
        l.total_due - coalesce(g.paid_total, 0) AS rp_outstanding
      FROM spine s
      JOIN loan_status l ON l.loan_id = s.loan_id
      LEFT JOIN agg g ON g.sid = s.sid
      LEFT JOIN next_due n ON n.sid = s.sid
    )
    SELECT * EXCLUDE (paid_total, sx, sxx, sxy),
      (rp_n_due * sxy - sx * rp_dpd_mean * rp_n_due) / nullif(rp_n_due * sxx - sx * sx, 0) AS rp_dpd_slope,
      rp_dpd_mean_{int(recent_days[0])}d - rp_dpd_mean AS rp_dpd_trend
    FROM out
    """


def earlier_loans_sql() -> str:
    """The borrower's loans disbursed before this one, as seen at T (aggregated over the matches only:
    most loans have no earlier loan, and a per-spine DISTINCT count over them all is the costly part)."""
    return f"""
    WITH prev AS (
      SELECT s.sid, p.loan_id AS prev_loan_id, i.amount_due,
        {paid_before("s.snapshot_date")} AS paid_amt,
        greatest(date_diff('day', i.due_date,
          CASE WHEN {settled_before("s.snapshot_date")} THEN i.paid_date ELSE s.snapshot_date END), 0) AS dpd
      FROM spine s
      JOIN applications p ON p.borrower_id = s.borrower_id AND p.disbursed_at < s.disbursed_at
      JOIN installments i ON i.loan_id = p.loan_id AND i.due_date < s.snapshot_date
    ),
    agg AS (
      SELECT sid,
        count(DISTINCT prev_loan_id) AS pl_n_loans_seen,
        max(dpd) AS pl_dpd_max, avg(dpd) AS pl_dpd_mean,
        avg((dpd >= 1)::DOUBLE) AS pl_late_rate,
        max((dpd >= 30)::INTEGER) AS pl_ever_30,
        sum(paid_amt) / nullif(sum(amount_due), 0) AS pl_paid_ratio
      FROM prev GROUP BY sid
    )
    SELECT s.sid, coalesce(g.pl_n_loans_seen, 0) AS pl_n_loans_seen, g.* EXCLUDE (sid, pl_n_loans_seen)
    FROM spine s LEFT JOIN agg g ON g.sid = s.sid
    """
