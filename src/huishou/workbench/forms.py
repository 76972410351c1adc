"""The contact form's own rules, checked before the law's (huishou.workbench.rules)."""

from __future__ import annotations

import datetime as dt

from huishou.workbench.rules import FORM_OUTCOMES, RECORDABLE, outcome_allowed

OPT_OUT_CHANNELS = ("sms", "app_push", "email_letter", "call", "visit")  # what a borrower may ask to stop


def request_channel(outcome: str, channel: str, stopped: str) -> tuple[str | None, str | None]:
    """(the problem's key, the channel an opt-out stops: the one named, else the contact's own)."""
    if outcome != "opt_out":
        return None, None
    stopped = stopped or channel
    return (None, stopped) if stopped in OPT_OUT_CHANNELS else ("bad_form", None)


def check_form(channel, outcome, amount, promised_date, day, max_days) -> tuple[str | None, float | None, str | None]:
    """(the problem in words' key, the amount, the promised date): the form's own rules before the law's."""
    if channel not in RECORDABLE or outcome not in FORM_OUTCOMES:
        return "bad_form", None, None
    if not outcome_allowed(channel, outcome):
        return "bad_outcome", None, None
    value = None
    if amount.strip():
        try:
            value = float(amount)
        except ValueError:
            return "bad_form", None, None
        if not (0 < value < 1e9) or value != value:
            return "bad_form", None, None
    promised = None
    if outcome == "promise_to_pay":
        if value is None or not promised_date:
            return "need_amount", None, None
        try:
            when = dt.date.fromisoformat(promised_date)
        except ValueError:
            return "bad_date", None, None
        start = dt.date.fromisoformat(day)
        if not (start <= when <= start + dt.timedelta(days=max_days)):
            return "bad_date", None, None
        promised = when.isoformat()
    return None, value, promised
