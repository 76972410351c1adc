"""Collection-history features: contacts made before T, reach, promises kept or broken.

Logged `none` decisions (the legacy policy chose to wait) are not contacts and are
skipped. A promise is judged only once its grace period has passed before T.
"""

from __future__ import annotations

from huishou.features.population import settled_before

PROMISE_GRACE_DAYS = 3
REACHED = "('reached', 'promise_to_pay', 'paid', 'refused')"


def collection_sql() -> str:
    kept_payment = settled_before("s.snapshot_date")
    return f"""
    WITH acts AS (
      SELECT s.sid, s.snapshot_date, c.action_at, c.channel, c.outcome, c.hardship_reported
      FROM spine s
      JOIN collection_actions c ON c.loan_id = s.loan_id AND c.action_at < s.snapshot_date AND c.channel <> 'none'
    ),
    due_promises AS (
      SELECT s.sid, s.loan_id, s.snapshot_date, c.action_at, CAST(c.action_at AS DATE) AS promised_on
      FROM spine s
      JOIN collection_actions c ON c.loan_id = s.loan_id AND c.outcome = 'promise_to_pay'
       AND CAST(c.action_at AS DATE) + {PROMISE_GRACE_DAYS} < s.snapshot_date
    ),
    promises AS (  -- kept: an installment paid in full within the grace period, before T
      SELECT p.sid, p.action_at,
        coalesce(bool_or(i.paid_date IS NOT NULL), false) AS kept
      FROM due_promises p
      LEFT JOIN installments i ON i.loan_id = p.loan_id
        AND i.paid_date >= p.promised_on AND i.paid_date <= p.promised_on + {PROMISE_GRACE_DAYS}
        AND {kept_payment.replace("s.snapshot_date", "p.snapshot_date")}
      GROUP BY p.sid, p.action_at
    ),
    agg AS (
      SELECT sid,
        count(*) AS cl_n_contacts,
        count(*) FILTER (action_at >= snapshot_date - INTERVAL 30 DAY) AS cl_n_contacts_30d,
        avg((outcome IN {REACHED})::DOUBLE) AS cl_reach_rate,
        count(*) FILTER (channel IN ('call', 'visit')) AS cl_n_calls_visits,
        count(*) FILTER (outcome = 'refused') AS cl_n_refused,
        max((outcome = 'wrong_number')::INTEGER) AS cl_wrong_number,
        max(hardship_reported::INTEGER) AS cl_hardship_reported,
        date_diff('hour', max(action_at), any_value(snapshot_date)) / 24.0 AS cl_days_since_contact
      FROM acts GROUP BY sid
    ),
    prom AS (
      SELECT sid, count(*) FILTER (kept) AS cl_promises_kept,
             count(*) FILTER (NOT kept) AS cl_promises_broken
      FROM promises GROUP BY sid
    )
    SELECT s.sid,
      coalesce(g.cl_n_contacts, 0) AS cl_n_contacts, coalesce(g.cl_n_contacts_30d, 0) AS cl_n_contacts_30d,
      g.cl_reach_rate, coalesce(g.cl_n_calls_visits, 0) AS cl_n_calls_visits,
      coalesce(g.cl_n_refused, 0) AS cl_n_refused, coalesce(g.cl_wrong_number, 0) AS cl_wrong_number,
      coalesce(g.cl_hardship_reported, 0) AS cl_hardship_reported, g.cl_days_since_contact,
      coalesce(p.cl_promises_kept, 0) AS cl_promises_kept, coalesce(p.cl_promises_broken, 0) AS cl_promises_broken
    FROM spine s
    LEFT JOIN agg g ON g.sid = s.sid
    LEFT JOIN prom p ON p.sid = s.sid
    """
