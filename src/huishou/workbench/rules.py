"""The rules at record time: the planner's context for the loan, brought up to the minute with the contacts
recorded today and the requests the borrower made, checked by huishou.compliance (the same rules the
planner runs, `check_one`, over the one borrower without building a frame) and against the clock.

The plan's context counts events before the worklist date; a contact recorded today adds to the 7-day
contact, call, text and visit counts, the unanswered attempts of the day, the episode's non-contact
attempts and conversations (`compliance.is_conversation`, the planner's own rule), and may report
hardship, a wrong number or a promise (which then is pending). A spoken request (cease, opt-out,
do-not-visit, dispute, lawyer) is in force from the moment it is recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from huishou.compliance import Profile, check_one, is_conversation, window
from huishou.core.clock import minute_now
from huishou.core.vocab import NONCONTACT, OUTCOMES_BY_ACTION, REACHED, SPOKEN_REQUESTS, THIRD_PARTY

# What a collector may record (automated channels are sent by the system; agency placement is the plan's)
RECORDABLE = ("call", "visit", "repayment_plan", "settlement", "sms", "email_letter")
# The outcomes the workbench offers: the log's outcomes; hardship and the borrower's spoken requests (logged
# as reached: the borrower said it) and a third party answering (logged as such: no conversation, no debt told)
SAID = ("hardship", *SPOKEN_REQUESTS)
FORM_OUTCOMES = ("no_answer", "reached", "promise_to_pay", "paid", "refused", "wrong_number", THIRD_PARTY, *SAID)
# Context columns a context stored before a rule existed may lack (their "nothing known" value)
_DEFAULTS = {"sms_7d": 0.0, "visits_30d": 0.0, "dispute": 0.0, "attorney": 0.0, "unanswered_in_row": 0.0}


@dataclass(frozen=True)
class Refusal:
    rule: str
    source: str


def outcome_allowed(channel: str, outcome: str) -> bool:
    if outcome in SAID:
        return "reached" in OUTCOMES_BY_ACTION.get(channel, ())
    return outcome in OUTCOMES_BY_ACTION.get(channel, ())


def logged_outcome(outcome: str) -> str:
    """The collection log's outcome of a form outcome (hardship and requests: the borrower was reached)."""
    return "reached" if outcome in SAID else outcome


def context_now(context: dict, today: Iterable[dict], in_force: Iterable[dict] = ()) -> dict:
    """The plan's context for the loan with today's recorded contacts (of the same borrower) and the
    borrower's requests in force (wb_requests rows: kind, channel) added."""
    ctx = _DEFAULTS | dict(context)
    for c in today:
        channel, outcome = c["channel"], c["outcome"]
        ctx["contacts_7d"] = ctx.get("contacts_7d", 0) + 1
        ctx["episode_contacts"] = ctx.get("episode_contacts", 0) + 1
        if channel in NONCONTACT:
            ctx["episode_noncontact"] = ctx.get("episode_noncontact", 0) + 1
        if channel == "call":
            ctx["calls_7d"] = ctx.get("calls_7d", 0) + 1
            if outcome == "no_answer":
                ctx["unanswered_calls_today"] = ctx.get("unanswered_calls_today", 0) + 1
                ctx["unanswered_in_row"] = ctx.get("unanswered_in_row", 0) + 1
        if channel == "sms":
            ctx["sms_7d"] = ctx.get("sms_7d", 0) + 1
        if channel == "visit":
            ctx["visits_30d"] = ctx.get("visits_30d", 0) + 1
        if outcome in REACHED:
            ctx["episode_reached"] = ctx.get("episode_reached", 0) + 1
            ctx["unanswered_in_row"] = 0.0
        if is_conversation(channel, outcome):
            ctx["days_since_conversation"] = 0.0
        if c.get("hardship"):
            ctx["hardship_reported"] = 1.0
        if outcome == "wrong_number":
            ctx["wrong_number"] = 1.0
        if outcome == "promise_to_pay":
            ctx["pending_promise"], ctx["promise_reminder_day"] = 1.0, 0.0
    for r in in_force:
        ctx[f"opt_out_{r['channel']}" if r["kind"] == "opt_out" else r["kind"]] = 1.0
    return ctx


def check_contact(
    context: dict,
    today: Iterable[dict],
    channel: str,
    now: dt.datetime,
    zone: str,
    cfg,
    profile: Profile,
    in_force: Iterable[dict] = (),
) -> list[Refusal]:
    """Every rule that forbids recording `channel` now (empty: lawful). `now` is timezone-aware."""
    ctx = context_now(context, today, in_force)
    out = [Refusal(rule, profile.source(rule)) for rule in check_one(ctx, channel, cfg, profile)]
    if all(r.rule != "contact_hours" for r in out):
        start, end = window(_one(ctx), profile, cfg, channel)
        if not (start[0] <= minute_now(now, zone) < end[0]):
            out.append(Refusal("contact_hours", profile.source("contact_hours")))
    return out


def window_text(context: dict, channel: str, cfg, profile: Profile) -> str:
    """When `channel` may happen today, borrower local time ("HH:MM-HH:MM"; empty: not today)."""
    start, end = window(_one(context), profile, cfg, channel)
    if end[0] <= start[0]:
        return ""
    return f"{int(start[0]) // 60:02d}:{int(start[0]) % 60:02d}-{int(end[0]) // 60:02d}:{int(end[0]) % 60:02d}"


def _one(context: dict) -> dict:
    keys = ("stage", "consent_start", "consent_end", "tz_offset_min")
    return {k: [float("nan") if context.get(k) is None else context[k]] for k in keys}
