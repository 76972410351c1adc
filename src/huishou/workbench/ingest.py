"""Recorded contacts as collection_actions rows, and refusals and contacts as audit-log rows."""

from __future__ import annotations

import pandas as pd

from huishou.book.contracts import KEYS

COLUMNS = [
    "loan_id",
    "action_at",
    "channel",
    "outcome",
    "collector_id",
    "promised_amount",
    "hardship_reported",
    "propensity",
    "policy_stage",
    "promised_date",
]


def action_rows(contacts: list[dict]) -> pd.DataFrame:
    """The contracts' collection_actions rows of recorded contacts (propensity: the plan's for the planned
    action; an off-plan contact is the collector's own choice and is logged with propensity 1)."""
    frame = pd.DataFrame(contacts)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.DataFrame(
        {
            "loan_id": frame["loan_id"].astype("int64"),
            "action_at": pd.to_datetime(frame["action_at"]).astype("datetime64[us]"),
            "channel": frame["channel"].astype(str),
            "outcome": frame["outcome"].astype(str),
            "collector_id": frame["collector_id"].astype(str),
            "promised_amount": frame["amount"].where(frame["outcome"] == "promise_to_pay").astype(float),
            "hardship_reported": frame["hardship"].astype(bool),
            "propensity": frame["propensity"].astype(float),
            "policy_stage": frame["policy_stage"].astype(str),
            "promised_date": pd.to_datetime(frame["promised_date"]).astype("datetime64[us]"),
        }
    )
    return out


def append_new(existing: pd.DataFrame | None, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`existing` with the rows of `new` whose key (loan, time, channel) it lacks; and how many were added."""
    key = KEYS["collection_actions"]
    if existing is None or existing.empty:
        fresh = new.drop_duplicates(key)
        return fresh.reset_index(drop=True), len(fresh)
    have = pd.MultiIndex.from_frame(existing[key].astype({"action_at": "datetime64[us]"}))
    mask = ~pd.MultiIndex.from_frame(new[key]).isin(have)
    fresh = new[mask].drop_duplicates(key)
    if fresh.empty:
        return existing, 0
    cols = list(existing.columns)
    for c in cols:
        if c not in fresh:
            fresh = fresh.assign(**{c: pd.NA})
    both = pd.concat([existing, fresh[cols].astype(existing.dtypes.to_dict())], ignore_index=True)
    return both, len(fresh)


def audit_rows(contacts: list[dict], refusals: list[dict], profile: str) -> pd.DataFrame:
    """The audit log's rows of a workbench day: every refused attempt (per rule) and every recorded contact."""
    rows = []
    for r in refusals:
        for rule, source in r["rules"]:
            rows.append(
                {
                    "date": r["worklist_date"],
                    "profile": profile,
                    "event": "refused_at_record",
                    "loan_id": int(r["loan_id"]),
                    "at": _utc_naive(r["at"]),
                    "collector_id": r["collector_id"],
                    "action": r["channel"],
                    "rule": rule,
                    "source": source,
                }
            )
    rows += [
        {
            "date": c["worklist_date"],
            "profile": profile,
            "event": "recorded",
            "loan_id": int(c["loan_id"]),
            "at": _utc_naive(c["recorded_at"]),
            "collector_id": c["collector_id"],
            "action": c["channel"],
            "rule": "",
            "source": "",
        }
        for c in contacts
    ]
    return pd.DataFrame(
        rows, columns=["date", "profile", "event", "loan_id", "at", "collector_id", "action", "rule", "source"]
    )


def _utc_naive(value) -> pd.Timestamp:
    """A UTC instant without its zone (SQLite hands back naive UTC, PostgreSQL aware)."""
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t
