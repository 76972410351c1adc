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
    """Installments of each spine loan with their as-of-T payment state and DPD."""
    return f"""
    SELECT s.loan_id, s.snapshot_date AS T, i.seq, i.due_date, i.amount_due,
      CASE WHEN i.paid_date < s.snapshot_date THEN i.amount_paid ELSE 0 END AS paid_amt,
      CASE WHEN i.paid_date < s.snapshot_date THEN i.paid_date END AS paid_seen,
      {settled_before("s.snapshot_date")} AS settled
    FROM spine s JOIN installments i ON i.loan_id = s.loan_id
    """


def repayment_sql() -> str:
    late = ",\n".join(f"count(*) FILTER (dpd >= {k}) AS rp_n_late_{k}" for k in LATE_THRESHOLDS)
    last_k = ",\n".join(
        f"avg(dpd) FILTER (rk <= {k}) AS rp_dpd_mean_last{k}, count(*) FILTER (rk <= {k} AND dpd >= 1) AS rp_n_late_last{k}"
        for k in LAST_K
    )
    return f"""
    WITH inst AS ({_as_of_T_sql()}),
    due AS (
      SELECT *, greatest(date_diff('day', due_date, CASE WHEN settled THEN paid_seen ELSE T END), 0) AS dpd,
             row_number() OVER (PARTITION BY loan_id, T ORDER BY seq DESC) AS rk
      FROM inst WHERE due_date < T
    ),
    due_agg AS (
      SELECT loan_id, T,
        count(*) AS rp_n_due,
        max(CASE WHEN settled THEN 0 ELSE date_diff('day', due_date, T) END) AS rp_dpd_now,
        max(dpd) AS rp_dpd_max, avg(dpd) AS rp_dpd_mean,
        {late},
        sum(paid_amt) / sum(amount_due) AS rp_paid_ratio,
        count(*) FILTER (paid_amt > 0 AND NOT settled) AS rp_n_partial,
        avg(date_diff('day', due_date, paid_seen)) FILTER (settled) AS rp_days_paid_vs_due_mean,
        {last_k},
        regr_slope(dpd, seq) AS rp_dpd_slope
      FROM due GROUP BY loan_id, T
    ),
    all_agg AS (
      SELECT loan_id, T,
        date_diff('day', max(paid_seen), T) AS rp_days_since_payment,
        date_diff('day', T, min(due_date) FILTER (due_date >= T)) AS rp_days_to_next_due,
        count(*) FILTER (due_date >= T) AS rp_n_remaining,
        count(*) FILTER (due_date >= T AND settled) AS rp_n_prepaid,
        sum(amount_due - paid_amt) AS rp_outstanding
      FROM inst GROUP BY loan_id, T
    )
    SELECT s.loan_id, s.snapshot_date,
      coalesce(d.rp_n_due, 0) AS rp_n_due, coalesce(d.rp_dpd_now, 0) AS rp_dpd_now,
      coalesce(d.rp_dpd_max, 0) AS rp_dpd_max, d.rp_dpd_mean,
      {", ".join(f"coalesce(d.rp_n_late_{k}, 0) AS rp_n_late_{k}" for k in LATE_THRESHOLDS)},
      d.rp_paid_ratio, coalesce(d.rp_n_partial, 0) AS rp_n_partial, d.rp_days_paid_vs_due_mean,
      {", ".join(f"d.rp_dpd_mean_last{k}, coalesce(d.rp_n_late_last{k}, 0) AS rp_n_late_last{k}" for k in LAST_K)},
      d.rp_dpd_mean_last3 - d.rp_dpd_mean AS rp_dpd_trend, d.rp_dpd_slope,
      a.rp_days_since_payment, a.rp_days_to_next_due, a.rp_n_remaining, a.rp_n_prepaid, a.rp_outstanding
    FROM spine s
    LEFT JOIN due_agg d ON d.loan_id = s.loan_id AND d.T = s.snapshot_date
    LEFT JOIN all_agg a ON a.loan_id = s.loan_id AND a.T = s.snapshot_date
    """


def earlier_loans_sql() -> str:
    """The borrower's loans disbursed before this one, as seen at T."""
    return f"""
    WITH prev AS (
      SELECT s.loan_id, s.snapshot_date AS T, p.loan_id AS prev_loan_id, i.amount_due,
        CASE WHEN i.paid_date < s.snapshot_date THEN i.amount_paid ELSE 0 END AS paid_amt,
        greatest(date_diff('day', i.due_date,
          CASE WHEN {settled_before("s.snapshot_date")} THEN i.paid_date ELSE s.snapshot_date END), 0) AS dpd
      FROM spine s
      JOIN applications p ON p.borrower_id = s.borrower_id AND p.disbursed_at < s.disbursed_at
      JOIN installments i ON i.loan_id = p.loan_id AND i.due_date < s.snapshot_date
    )
    SELECT s.loan_id, s.snapshot_date,
      count(DISTINCT prev.prev_loan_id) AS pl_n_loans_seen,
      max(prev.dpd) AS pl_dpd_max, avg(prev.dpd) AS pl_dpd_mean,
      avg((prev.dpd >= 1)::DOUBLE) AS pl_late_rate,
      max((prev.dpd >= 30)::INTEGER) AS pl_ever_30,
      sum(prev.paid_amt) / nullif(sum(prev.amount_due), 0) AS pl_paid_ratio
    FROM spine s LEFT JOIN prev ON prev.loan_id = s.loan_id AND prev.T = s.snapshot_date
    GROUP BY s.loan_id, s.snapshot_date
    """
