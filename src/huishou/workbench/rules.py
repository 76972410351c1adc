"""The rules at record time: the planner's context for the loan, brought up to the minute with the contacts
recorded today, checked by huishou.compliance (the same module the planner uses) and against the clock.

The plan's context counts events before the worklist date; a contact recorded today adds to the 7-day
contact and call counts, the unanswered attempts of the day, the episode's non-contact attempts and
conversations, and may report hardship, a wrong number or a promise (which then is pending).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from huishou.compliance import Profile, evaluate, window
from huishou.core.clock import minute_now
from huishou.core.vocab import NONCONTACT, OUTCOMES_BY_ACTION, REACHED, VOICE

# What a collector may record (automated channels are sent by the system; agency placement is the plan's)
RECORDABLE = ("call", "visit", "repayment_plan", "settlement", "sms", "email_letter")
# The outcomes the workbench offers: the log's outcomes, and hardship (logged as reached + hardship_reported)
FORM_OUTCOMES = ("no_answer", "reached", "promise_to_pay", "paid", "refused", "wrong_number", "hardship")


@dataclass(frozen=True)
class Refusal:
    rule: str
    source: str


def outcome_allowed(channel: str, outcome: str) -> bool:
    if outcome == "hardship":
        return "reached" in OUTCOMES_BY_ACTION.get(channel, ())
    return outcome in OUTCOMES_BY_ACTION.get(channel, ())


def context_now(context: dict, today: Iterable[dict]) -> dict:
    """The plan's context for the loan with today's recorded contacts (of the same borrower) added."""
    ctx = dict(context)
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
        if outcome in REACHED:
            ctx["episode_reached"] = ctx.get("episode_reached", 0) + 1
            if channel in VOICE:
                ctx["days_since_conversation"] = 0.0
        if c.get("hardship"):
            ctx["hardship_reported"] = 1.0
        if outcome == "wrong_number":
            ctx["wrong_number"] = 1.0
        if outcome == "promise_to_pay":
            ctx["pending_promise"], ctx["promise_reminder_day"] = 1.0, 0.0
    return ctx


def check_contact(
    context: dict, today: Iterable[dict], channel: str, now: dt.datetime, zone: str, cfg, profile: Profile
) -> list[Refusal]:
    """Every rule that forbids recording `channel` now (empty: lawful). `now` is timezone-aware."""
    ctx = pd.DataFrame([context_now(context, today)])
    rules = evaluate(ctx, cfg, profile, explain=False)
    out = [Refusal(r.rule, r.source) for r in rules.blocked.itertuples() if r.action == channel]
    start, end = window(ctx, profile, cfg, channel)
    minute = minute_now(now, zone)
    if not out or all(r.rule != "contact_hours" for r in out):
        if not (start[0] <= minute < end[0]):
            out.append(Refusal("contact_hours", profile.source("contact_hours")))
    return out


def window_text(context: dict, channel: str, cfg, profile: Profile) -> str:
    """When `channel` may happen today, borrower local time ("HH:MM-HH:MM"; empty: not today)."""
    ctx = pd.DataFrame([context])
    start, end = window(ctx, profile, cfg, channel)
    if end[0] <= start[0]:
        return ""
    return f"{int(start[0]) // 60:02d}:{int(start[0]) % 60:02d}-{int(end[0]) // 60:02d}:{int(end[0]) % 60:02d}"
