"""How borrowers answer the way they are contacted: opt-outs, cease requests, consent windows, do-not-visit
requests, and complaints, whose chance rises with contact intensity and unsocial or unwanted contact.

Complaints give harassment a true cost in the simulated world: the legacy policy ignores borrowers' time
zones, sometimes calls late in the evening and keeps contacting after an opt-out or a cease request, and
every such contact makes a complaint likelier (`complaint_probability`). The lender sees the requests and
the complaints as the contact_preferences table (a complaint opens a complaint hold); the complaint
probabilities themselves are ground truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.core.clock import local_hours
from huishou.core.vocab import NONCONTACT, VOICE
from huishou.simulate.collection import complaint_probability

LENDER_ZONE = "Asia/Shanghai"  # the simulated lender's clock: every timestamp in the book is its local time
OPT_OUT_RATE = 0.01  # after a message, the chance the borrower opts out of that channel
CEASE_RATE = 0.004  # after a call or visit that reached them, the chance of a written cease request
DO_NOT_VISIT_SHARE = 0.003
CONSENT_WINDOW_SHARE = 0.02
CONSENT_WINDOWS = (("12:00", "13:30"), ("18:00", "21:30"), ("19:00", "22:30"))
COMPLAINT_HOLD_DAYS = 30


def _next_midnight(times: pd.Series) -> pd.Series:
    return (times.dt.normalize() + pd.Timedelta(days=1)).astype("datetime64[us]")


def preferences_and_complaints(
    rng: np.random.Generator, actions: pd.DataFrame, applications: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The contact_preferences table the lender holds, and the truth about every contact's complaint."""
    loans = applications.set_index("loan_id")
    contacts = actions[actions["channel"] != "none"].copy()
    contacts["borrower_id"] = contacts["loan_id"].map(loans["borrower_id"])
    contacts["timezone"] = contacts["loan_id"].map(loans["timezone"])
    contacts = contacts.sort_values(["borrower_id", "action_at"], ignore_index=True)
    n = len(contacts)
    starts = applications.groupby("borrower_id")["disbursed_at"].min()

    prefs = []
    message = contacts["channel"].isin(NONCONTACT).to_numpy()
    opt = message & (rng.random(n) < OPT_OUT_RATE)
    prefs.append(
        pd.DataFrame(
            {
                "borrower_id": contacts.loc[opt, "borrower_id"],
                "kind": "opt_out",
                "channel": contacts.loc[opt, "channel"],
                "valid_from": _next_midnight(contacts.loc[opt, "action_at"]),
            }
        )
    )
    voice = contacts["channel"].isin(VOICE).to_numpy() & (contacts["outcome"] != "no_answer").to_numpy()
    cease = voice & (rng.random(n) < CEASE_RATE)
    prefs.append(
        pd.DataFrame(
            {
                "borrower_id": contacts.loc[cease, "borrower_id"],
                "kind": "cease",
                "valid_from": _next_midnight(contacts.loc[cease, "action_at"]),
            }
        )
    )
    people = starts.index.to_numpy()
    dnv = people[rng.random(people.size) < DO_NOT_VISIT_SHARE]
    prefs.append(
        pd.DataFrame(
            {"borrower_id": dnv, "kind": "do_not_visit", "valid_from": starts.loc[dnv].dt.normalize().to_numpy()}
        )
    )
    consent = people[rng.random(people.size) < CONSENT_WINDOW_SHARE]
    windows = np.asarray(CONSENT_WINDOWS, dtype=object)[rng.integers(0, len(CONSENT_WINDOWS), consent.size)]
    prefs.append(
        pd.DataFrame(
            {
                "borrower_id": consent,
                "kind": "consent_window",
                "valid_from": starts.loc[consent].dt.normalize().to_numpy(),
                "window_start": [w[0] for w in windows],
                "window_end": [w[1] for w in windows],
            }
        )
    )

    # contacts to the same borrower in the 7 days before each contact
    t = contacts["action_at"].to_numpy().astype("datetime64[s]").astype(np.int64)
    key = contacts["borrower_id"].to_numpy().astype(np.int64) * 10**10 + t
    before = np.arange(n) - np.searchsorted(key, key - 7 * 86400, side="left")
    hour = local_hours(contacts["action_at"], contacts["timezone"], LENDER_ZONE)
    unsocial = (hour < 8) | (hour >= 21)
    against = _against_wishes(contacts, pd.concat(prefs, ignore_index=True), hour)
    reported = contacts["hardship_reported"].astype(int)  # told on an earlier contact of the same borrower:
    hardship_known = (reported.groupby(contacts["borrower_id"]).cumsum() - reported > 0).to_numpy()
    p = complaint_probability(before, unsocial, against, hardship_known)
    complained = rng.random(n) < p
    holds = contacts.loc[complained]
    prefs.append(
        pd.DataFrame(
            {
                "borrower_id": holds["borrower_id"],
                "kind": "complaint_hold",
                "valid_from": _next_midnight(holds["action_at"]),
                "valid_until": _next_midnight(holds["action_at"]) + pd.Timedelta(days=COMPLAINT_HOLD_DAYS),
            }
        )
    )
    table = pd.concat(prefs, ignore_index=True)
    table = table.drop_duplicates(["borrower_id", "kind", "channel", "valid_from"]).sort_values(
        ["borrower_id", "valid_from", "kind"], ignore_index=True
    )
    for col in ("kind", "channel", "window_start", "window_end"):
        table[col] = table[col].astype("str").where(table[col].notna(), None)
    for col in ("valid_from", "valid_until"):
        table[col] = pd.to_datetime(table[col]).astype("datetime64[us]")
    table["borrower_id"] = table["borrower_id"].astype(np.int64)
    truth = contacts[["loan_id", "borrower_id", "action_at", "channel"]].assign(
        contacts_7d_before=before, unsocial=unsocial, against_wishes=against, p_complaint=p, complained=complained
    )
    return table[["borrower_id", "kind", "channel", "valid_from", "valid_until", "window_start", "window_end"]], truth


def _against_wishes(contacts: pd.DataFrame, prefs: pd.DataFrame, hour: np.ndarray) -> np.ndarray:
    """A contact after the borrower's cease request, on a channel they opted out of, a visit they asked not
    to get, or outside the window they consented to."""
    out = np.zeros(len(contacts), dtype=bool)
    for kind, match in (("cease", None), ("opt_out", "channel"), ("do_not_visit", None), ("consent_window", None)):
        rows = prefs[prefs["kind"] == kind]
        if rows.empty:
            continue
        first = rows.groupby(["borrower_id", *([match] if match else [])])["valid_from"].min()
        keys = [contacts["borrower_id"], *([contacts[match]] if match else [])]
        since = pd.MultiIndex.from_arrays(keys) if match else contacts["borrower_id"]
        start = pd.Series(first.reindex(since).to_numpy(), index=contacts.index)
        active = (contacts["action_at"] >= start).to_numpy().copy()
        if kind == "do_not_visit":
            active &= (contacts["channel"] == "visit").to_numpy()
        if kind == "consent_window":
            window = rows.set_index("borrower_id")[["window_start", "window_end"]]
            lo = contacts["borrower_id"].map(window["window_start"]).map(_hours)
            hi = contacts["borrower_id"].map(window["window_end"]).map(_hours)
            active &= (hour < lo.to_numpy()) | (hour >= hi.to_numpy())
        out |= active
    return out


def _hours(text) -> float:
    if not isinstance(text, str):
        return np.nan
    h, m = text.split(":")
    return int(h) + int(m) / 60
