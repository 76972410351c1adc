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


PREFERENCE_COLUMNS = ["borrower_id", "kind", "channel", "valid_from", "valid_until", "window_start", "window_end"]


def preference_rows(requests: list[dict]) -> pd.DataFrame:
    """The contracts' contact_preferences rows of the borrowers' spoken requests (lender's local time)."""
    if not requests:
        return pd.DataFrame(columns=PREFERENCE_COLUMNS)
    frame = pd.DataFrame(requests)
    return pd.DataFrame(
        {
            "borrower_id": frame["borrower_id"].astype("int64"),
            "kind": frame["kind"].astype(str),
            "channel": frame["channel"].astype(object).where(frame["channel"].notna(), None),
            "valid_from": pd.to_datetime(frame["valid_from"]).astype("datetime64[us]"),
            "valid_until": pd.to_datetime(frame["valid_until"]).astype("datetime64[us]"),
            "window_start": pd.Series([None] * len(frame), dtype=object),
            "window_end": pd.Series([None] * len(frame), dtype=object),
        }
    )


def upsert_preferences(existing: pd.DataFrame | None, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The contact log's contact_preferences with `new` (the workbench's requests as they stand now): a key
    (borrower, kind, channel, valid_from) already there takes the new row (its valid_until, once a lead
    ended the request); (the table, rows added)."""
    key = KEYS["contact_preferences"]
    if existing is None or existing.empty:
        fresh = new.drop_duplicates(key, keep="last").reset_index(drop=True)
        return fresh, len(fresh)
    old = existing.astype({"valid_from": "datetime64[us]", "valid_until": "datetime64[us]"})
    ids = lambda f: pd.MultiIndex.from_frame(f[key].fillna({"channel": ""}))  # noqa: E731
    added = int((~ids(new.drop_duplicates(key)).isin(ids(old))).sum())
    both = pd.concat([old, new[list(old.columns)]], ignore_index=True)
    both = both[~ids(both).duplicated(keep="last")].reset_index(drop=True)
    return both, added


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


def audit_rows(contacts: list[dict], refusals: list[dict], profile: str, locates: list[dict] = ()) -> pd.DataFrame:
    """The audit log's rows of a workbench day: every refused attempt (per rule), every recorded contact and
    every call to an emergency contact (action 'locate', rule: its outcome)."""
    rows = [
        {
            "date": c["worklist_date"],
            "profile": profile,
            "event": "locate_attempt",
            "loan_id": int(c["loan_id"]),
            "at": _utc_naive(c["recorded_at"]),
            "collector_id": c["collector_id"],
            "action": "locate",
            "rule": c["outcome"],
            "source": "",
        }
        for c in locates
    ]
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
