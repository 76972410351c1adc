"""Repayment-history features of the loan itself and of the borrower's earlier loans.

In the style of the strongest public Home Credit solutions: DPD statistics, late flags
at several thresholds, paid/due ratios, partial payments, last-k windows, trends and
recency. Every installment is seen as of T: a payment dated on or after T does not
exist yet, and only installments due before T count as due.
"""

from __future__ import annotations

from huishou.features.population import settled_before

LATE_THRESHOLDS = (1, 7, 15, 30)
LAST_K = (1, 3, 6)


def _as_of_T_sql() -> str:
    """Installments of each spine loan with their as-of-T payment state and DPD (NULL if not yet due)."""
    return f"""
    SELECT s.sid, s.snapshot_date AS T, i.seq, i.due_date, i.amount_due, i.due_date < s.snapshot_date AS is_due,
      CASE WHEN i.paid_date < s.snapshot_date THEN i.amount_paid ELSE 0 END AS paid_amt,
      CASE WHEN i.paid_date < s.snapshot_date THEN i.paid_date END AS paid_seen,
      {settled_before("s.snapshot_date")} AS settled
    FROM spine s JOIN installments i ON i.loan_id = s.loan_id
    """


def repayment_sql() -> str:
    """One aggregation pass; `max_by(dpd, seq, k)` picks the last k due installments without a window sort."""
    late = ", ".join(f"count(*) FILTER (dpd >= {k}) AS rp_n_late_{k}" for k in LATE_THRESHOLDS)
    last_k = ", ".join(
        f"list_avg(max_by(dpd, seq, {k})) AS rp_dpd_mean_last{k}, "
        f"list_count(list_filter(max_by(dpd, seq, {k}), lambda x: x >= 1)) AS rp_n_late_last{k}"
        for k in LAST_K
    )
    return f"""
    WITH inst AS ({_as_of_T_sql()}),
    graded AS (
      SELECT *, CASE WHEN is_due THEN
               greatest(date_diff('day', due_date, CASE WHEN settled THEN paid_seen ELSE T END), 0) END AS dpd
      FROM inst
    ),
    agg AS (
      SELECT sid, T,
        count(dpd) AS rp_n_due,
        coalesce(max(date_diff('day', due_date, T)) FILTER (is_due AND NOT settled), 0) AS rp_dpd_now,
        coalesce(max(dpd), 0) AS rp_dpd_max, avg(dpd) AS rp_dpd_mean,
        {late},
        sum(paid_amt) FILTER (is_due) / sum(amount_due) FILTER (is_due) AS rp_paid_ratio,
        count(*) FILTER (is_due AND paid_amt > 0 AND NOT settled) AS rp_n_partial,
        avg(date_diff('day', due_date, paid_seen)) FILTER (is_due AND settled) AS rp_days_paid_vs_due_mean,
        {last_k},
        regr_slope(dpd, seq) AS rp_dpd_slope,
        list_avg(max_by(paid_amt / nullif(amount_due, 0), seq, 1) FILTER (is_due)) AS rp_paid_ratio_last1,
        list_avg(max_by(paid_amt / nullif(amount_due, 0), seq, 3) FILTER (is_due)) AS rp_paid_ratio_last3,
        list_avg(max_by(amount_due, seq, 1) FILTER (is_due)) AS rp_last_amount_due,
        date_diff('day', max(paid_seen), T) AS rp_days_since_payment,
        date_diff('day', T, min(due_date) FILTER (NOT is_due)) AS rp_days_to_next_due,
        count(*) FILTER (NOT is_due) AS rp_n_remaining,
        count(*) FILTER (NOT is_due AND settled) AS rp_n_prepaid,
        sum(amount_due - paid_amt) AS rp_outstanding
      FROM graded GROUP BY sid, T
    )
    SELECT sid, * EXCLUDE (sid, T),
      rp_dpd_mean_last3 - rp_dpd_mean AS rp_dpd_trend
    FROM agg
    """


def earlier_loans_sql() -> str:
    """The borrower's loans disbursed before this one, as seen at T."""
    return f"""
    WITH prev AS (
      SELECT s.sid, p.loan_id AS prev_loan_id, i.amount_due,
        CASE WHEN i.paid_date < s.snapshot_date THEN i.amount_paid ELSE 0 END AS paid_amt,
        greatest(date_diff('day', i.due_date,
          CASE WHEN {settled_before("s.snapshot_date")} THEN i.paid_date ELSE s.snapshot_date END), 0) AS dpd
      FROM spine s
      JOIN applications p ON p.borrower_id = s.borrower_id AND p.disbursed_at < s.disbursed_at
      JOIN installments i ON i.loan_id = p.loan_id AND i.due_date < s.snapshot_date
    )
    SELECT s.sid,
      count(DISTINCT prev.prev_loan_id) AS pl_n_loans_seen,
      max(prev.dpd) AS pl_dpd_max, avg(prev.dpd) AS pl_dpd_mean,
      avg((prev.dpd >= 1)::DOUBLE) AS pl_late_rate,
      max((prev.dpd >= 30)::INTEGER) AS pl_ever_30,
      sum(prev.paid_amt) / nullif(sum(prev.amount_due), 0) AS pl_paid_ratio
    FROM spine s LEFT JOIN prev ON prev.sid = s.sid
    GROUP BY s.sid
    """
