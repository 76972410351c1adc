"""Callback-consistency (回访) features: reachability and contradictions with the application.

Only calls placed before T count. A loan with no call yet has cb_n_attempts = 0 and the
rest missing; a book without any callback data has every cb_ column missing (never faked).
"""

from __future__ import annotations

from huishou.core.vocab import WEAK_REPAYMENT_PLANS, sql_list


def callback_sql() -> str:
    """Calls before T compared with the application; a stated income below `$understated` times the
    declared one (features.income_understated_ratio) counts as a contradiction.

    How many attempts the first reached call took, and when it came, are facts about that call
    and the ones before it: worked out once per loan and shown only at snapshots after it.
    """
    return f"""
    WITH first_reach AS (
      SELECT loan_id, min(called_at) AS reached_at, min(attempt) AS attempts
      FROM (SELECT loan_id, called_at, reached,
                   count(*) OVER (PARTITION BY loan_id ORDER BY called_at) AS attempt  -- calls up to this one, ties included
            FROM callbacks)
      WHERE reached GROUP BY loan_id
    ),
    calls AS (
      SELECT s.sid, c.* EXCLUDE (loan_id), a.purpose AS declared_purpose, a.employer AS declared_employer,
             a.declared_income
      FROM spine s
      JOIN callbacks c ON c.loan_id = s.loan_id AND c.called_at < s.snapshot_date
      JOIN applications a ON a.loan_id = s.loan_id
    ),
    agg AS (
      SELECT sid,
        count(*) AS cb_n_attempts,
        max(reached::INTEGER) AS cb_reached,
        max(skipped::INTEGER) AS cb_skipped,
        max((answered_by = 'other')::INTEGER) AS cb_third_party,
        max((identity_verified = false)::INTEGER) AS cb_identity_failed,
        max((stated_purpose <> declared_purpose)::INTEGER) AS cb_purpose_mismatch,
        max(stated_income) / nullif(any_value(declared_income), 0) AS cb_income_ratio,
        max((stated_employer <> declared_employer)::INTEGER) AS cb_employer_mismatch,
        max((repayment_plan_stated IN {sql_list(WEAK_REPAYMENT_PLANS)})::INTEGER) AS cb_weak_repayment_plan,
        sum(call_duration_s) AS cb_call_seconds
      FROM calls GROUP BY sid
    )
    SELECT s.sid,
      coalesce(g.cb_n_attempts, 0) AS cb_n_attempts,
      g.cb_reached,
      CASE WHEN f.reached_at < s.snapshot_date THEN f.attempts END AS cb_attempts_to_reach,
      CASE WHEN f.reached_at < s.snapshot_date THEN date_diff('hour', s.disbursed_at, f.reached_at) / 24.0
      END AS cb_days_to_reach,
      g.cb_skipped, g.cb_third_party,
      g.cb_identity_failed, g.cb_purpose_mismatch, g.cb_income_ratio, g.cb_employer_mismatch,
      g.cb_weak_repayment_plan, g.cb_call_seconds,
      CASE WHEN g.cb_n_attempts IS NULL THEN NULL ELSE
        (1 - g.cb_reached) + coalesce(g.cb_skipped, 0) + coalesce(g.cb_third_party, 0)
        + coalesce(g.cb_identity_failed, 0) + coalesce(g.cb_purpose_mismatch, 0)
        + coalesce(g.cb_employer_mismatch, 0) + coalesce((g.cb_income_ratio < $understated)::INTEGER, 0)
      END AS cb_n_inconsistencies
    FROM spine s
    LEFT JOIN agg g ON g.sid = s.sid
    LEFT JOIN first_reach f ON f.loan_id = s.loan_id
    """
