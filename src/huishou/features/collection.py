"""Collection-history features: contacts made before T, reach, promises kept or broken.

Logged `none` decisions (the legacy policy chose to wait) are not contacts and are
skipped. A promise is judged only once its grace period has passed before T.
"""

from __future__ import annotations

from huishou.core.vocab import REACHED, VOICE, sql_list
from huishou.features.population import PAID_ENOUGH

GRACE = "CAST($grace AS INTEGER)"  # days: features.promise_grace_days


def collection_sql() -> str:
    """Contacts before T, and promises whose grace period (`$grace` days) ended before T.

    Whether a promise was kept is settled by payments inside its grace period, all before T
    once it is judged, so it is worked out once per promise rather than once per snapshot.
    """
    promised_on = "CAST(c.action_at AS DATE)"
    return f"""
    WITH acts AS (
      SELECT s.sid, s.snapshot_date, c.action_at, c.channel, c.outcome, c.hardship_reported
      FROM spine s
      JOIN collection_actions c ON c.loan_id = s.loan_id AND c.action_at < s.snapshot_date AND c.channel <> 'none'
    ),
    promises AS (  -- kept: an installment settled within the grace period
      SELECT c.loan_id, c.action_at, {promised_on} AS promised_on, bool_or(i.loan_id IS NOT NULL) AS kept
      FROM collection_actions c
      LEFT JOIN installments i ON i.loan_id = c.loan_id
        AND i.paid_date >= {promised_on} AND i.paid_date <= {promised_on} + {GRACE} AND {PAID_ENOUGH}
      WHERE c.outcome = 'promise_to_pay'
      GROUP BY c.loan_id, c.action_at
    ),
    agg AS (
      SELECT sid,
        count(*) AS cl_n_contacts,
        count(*) FILTER (action_at >= snapshot_date - INTERVAL 30 DAY) AS cl_n_contacts_30d,
        avg((outcome IN {sql_list(REACHED)})::DOUBLE) AS cl_reach_rate,
        count(*) FILTER (channel IN {sql_list(VOICE)}) AS cl_n_calls_visits,
        count(*) FILTER (outcome = 'refused') AS cl_n_refused,
        max((outcome = 'wrong_number')::INTEGER) AS cl_wrong_number,
        max(hardship_reported::INTEGER) AS cl_hardship_reported,
        date_diff('hour', max(action_at), any_value(snapshot_date)) / 24.0 AS cl_days_since_contact
      FROM acts GROUP BY sid
    ),
    prom AS (
      SELECT s.sid, count(*) FILTER (p.kept) AS cl_promises_kept, count(*) FILTER (NOT p.kept) AS cl_promises_broken
      FROM spine s JOIN promises p ON p.loan_id = s.loan_id AND p.promised_on + {GRACE} < s.snapshot_date
      GROUP BY s.sid
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
