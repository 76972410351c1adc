"""Lawful collection: rule profiles, their sources, and one evaluation used by the planner and the workbench.

A profile (params.yaml strategy.compliance) sets the numbers a jurisdiction's rules carry; the house rules
(strategy.*: contact cap, non-contact first, visits as a last resort, plans from a DPD) apply under every
profile. Rules are evaluated at borrower level (contacts, hardship, wrong numbers and preferences across all
of a borrower's loans) and in the borrower's local time. Each rule names its source:

* China: China Banking Association, 金融机构个人消费类贷款催收工作指引(试行) (2026-01-30): no collection
  22:00-08:00 without the debtor's consent; unanswered attempts to the same contact method at most 6 a day;
  third parties only when the debtor is unreachable, never with debt information; the first contact states
  the institution's identity; outsourced agencies from a published white list. GB/T 45251-2025 (post-loan
  collection risk control): complaints handling, personal-information protection. Credit-card rules (2011,
  art. 68): collection records kept at least 2 years.
* United States: Regulation F, 12 CFR 1006: 1006.6(b)(1)(i) contact only 08:00-21:00 local time;
  1006.14(b)(2) more than 7 calls in 7 days, or a call within 7 days after a telephone conversation, is
  presumed harassment; 1006.6(c) a written cease-communication stops contact; 1006.6(e) an opt-out for
  electronic channels; 1006.100 records kept 3 years; 1006.6(b)(2) a consumer represented by an attorney is
  contacted through the attorney; FDCPA 1692g(b) a disputed debt is not collected until it is verified.
* Massachusetts (us_ma; binds creditors): 940 CMR 7.04(1)(f) at most two telephone communications (calls
  and texts) in each seven-day period to the debtor's own numbers, for each debt; 8 a.m.-9 p.m.; at most
  one in-person visit in 30 days.
* New York DFS (us_ny_dfs; third-party collectors): 23 NYCRR 1: at most 3 attempted calls and 1 completed
  call in 7 days per debt; email and text only with the consumer's revocable written consent.

The conversation prong (no call within N days of a conversation) counts every conversation: a call,
visit, plan or settlement talk that reached the borrower (`is_conversation`, the same rule in the
planner's SQL, `conversation_sql`, and at record time).

`evaluate` returns, for every candidate row and action, whether it is lawful today, the rules that block
it (with their source: the audit log records them), the path of rules it passed, and the window (borrower
local time) it may happen in. `violations` re-checks a finished plan row by row, independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from huishou.core.vocab import (
    ACTIONS,
    CONTACTS,
    CONVERSATIONS,
    ELECTRONIC,
    NONCONTACT,
    REACHED,
    STAGE_ACTIONS,
    sql_list,
)

MESSAGES = NONCONTACT  # sms, app push, letters: sent by the system
# rule id -> (what it says, the actions it restricts, source per profile; "house" rules hold under every profile)
RULES: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "contact_hours": (
        "contact only inside the allowed hours, borrower local time",
        CONTACTS,
        {
            "cn_cba_2026": "CBA guideline 2026-01-30: no collection 22:00-08:00 without the debtor's consent",
            "us_reg_f": "12 CFR 1006.6(b)(1)(i): only 08:00-21:00 at the consumer's location",
            "us_ma": "940 CMR 7.04(1): no communication before 8 a.m. or after 9 p.m.",
            "us_ny_dfs": "12 CFR 1006.6(b)(1)(i) (binds New York's third-party collectors): 08:00-21:00",
        },
    ),
    "unanswered_per_method_day": (
        "unanswered attempts to the same contact method per day",
        ("call",),
        {
            "cn_cba_2026": "CBA guideline 2026-01-30: unanswered attempts to the same method at most 6 a day",
        },
    ),
    "calls_7d": (
        "calls (and, where the profile counts them, texts) in any 7 days",
        ("call", "sms"),
        {
            "us_reg_f": "12 CFR 1006.14(b)(2)(i): more than 7 calls in 7 days is presumed harassment",
            "us_ma": "940 CMR 7.04(1)(f): in excess of two telephone communications (calls or texts) in each "
            "seven-day period, for each debt",
            "us_ny_dfs": "23 NYCRR 1: more than 3 attempted calls in 7 days, for each debt",
        },
    ),
    "call_after_conversation": (
        "no call within days of a conversation",
        ("call",),
        {
            "us_reg_f": "12 CFR 1006.14(b)(2)(ii): a call within 7 days after a telephone conversation",
            "us_ny_dfs": "23 NYCRR 1: more than 1 completed call in 7 days, for each debt",
        },
    ),
    "visits_30d": (
        "in-person visits in any 30 days",
        ("visit",),
        {"us_ma": "940 CMR 7.04(1)(f), 7.05(3)(d): at most one in-person visit in 30 days"},
    ),
    "electronic_consent": (
        "texts and app messages only with the borrower's written consent in force",
        ELECTRONIC,
        {"us_ny_dfs": "23 NYCRR 1: email and text only with the consumer's revocable written consent"},
    ),
    "dispute": (
        "a disputed debt is not collected until it is verified",
        CONTACTS,
        {
            "us_reg_f": "15 USC 1692g(b): collection stops on a dispute until verification is mailed",
            "us_ny_dfs": "15 USC 1692g(b): collection stops on a dispute until verification is mailed",
            "house": "house rule (GB/T 45251-2025 complaints handling): a dispute is verified before collection resumes",
        },
    ),
    "attorney": (
        "a borrower represented by a lawyer is contacted through the lawyer only",
        CONTACTS,
        {
            "us_reg_f": "12 CFR 1006.6(b)(2): no communication with a consumer represented by an attorney",
            "us_ny_dfs": "12 CFR 1006.6(b)(2): no communication with a consumer represented by an attorney",
            "house": "house rule: a borrower represented by a lawyer is contacted through the lawyer",
        },
    ),
    "cease": (
        "a cease request stops every contact",
        CONTACTS,
        {
            "us_reg_f": "12 CFR 1006.6(c): written cease-communication",
            "cn_cba_2026": "house rule (PIPL art. 24, debtor's objection): a cease request is honoured",
            "us_ma": "house rule: a cease request is honoured",
            "us_ny_dfs": "12 CFR 1006.6(c): written cease-communication",
        },
    ),
    "opt_out": (
        "no contact on a channel the borrower opted out of",
        CONTACTS,
        {
            "us_reg_f": "12 CFR 1006.6(e): opt-out of electronic communications",
            "cn_cba_2026": "house rule (GB/T 45251-2025 personal-information protection)",
            "us_ma": "house rule: a requested channel restriction is honoured",
            "us_ny_dfs": "23 NYCRR 1: consent to email or text is revocable; 12 CFR 1006.6(e)",
        },
    ),
    "complaint_hold": (
        "no contact while a complaint is being handled",
        CONTACTS,
        {
            "cn_cba_2026": "GB/T 45251-2025: complaint management",
            "us_reg_f": "house rule: contact paused while a complaint is investigated",
            "us_ma": "house rule: contact paused while a complaint is investigated",
            "us_ny_dfs": "house rule: contact paused while a complaint is investigated",
        },
    ),
    "do_not_visit": ("no visit the borrower asked not to get", ("visit",), {"house": "house rule"}),
    "hardship": (
        "hardship gets a repayment plan, never escalation",
        tuple(a for a in CONTACTS if a != "repayment_plan"),
        {"house": "house rule: hardship (illness, family crisis) gets a plan, never escalation"},
    ),
    "wrong_number": (
        "no call or visit after a wrong number in the episode",
        ("call", "visit"),
        {
            "cn_cba_2026": "CBA guideline 2026-01-30: unrelated third parties never reached with debt information",
            "us_reg_f": "12 CFR 1006.6(d): no communication with third parties about the debt",
            "us_ma": "house rule: no disclosure of the debt to third parties",
            "us_ny_dfs": "12 CFR 1006.6(d): no communication with third parties about the debt",
        },
    ),
    "contact_cap": (
        "contacts to the borrower in any 7 days, the planned one included",
        CONTACTS,
        {"house": "house rule: strategy.max_contacts_7d"},
    ),
    "noncontact_first": (
        "non-contact attempts in the episode before a call",
        ("call",),
        {"house": "house rule: strategy.min_noncontact_before_call"},
    ),
    "visit_last_resort": (
        "a visit only as a last resort: after messages and calls were tried, for a large long-overdue account "
        "or a borrower who stays unreachable or evasive (a broken promise)",
        ("visit",),
        {"house": "lenders' rule (collection-rules.md): strategy.visit_min_*; recovery stage only"},
    ),
    "plan_threshold": (
        "repayment plans from a DPD, or in hardship",
        ("repayment_plan",),
        {"house": "house rule: strategy.plan_min_dpd"},
    ),
    "promise_pending": (
        "no contact while a promise to pay is pending (a reminder the day before is allowed)",
        CONTACTS,
        {"house": "house rule: strategy.promise_grace_days"},
    ),
    "stage_actions": (
        "only the actions of the account's stage (pre-due: gentle reminders)",
        CONTACTS,
        {"house": "house rule: the collection lifecycle"},
    ),
    "pre_due_cap": (
        "at most the set number of reminders per installment",
        ("sms", "app_push"),
        {"house": "house rule: strategy.pre_due_max_reminders"},
    ),
    "settlement_policy": (
        "settlements only in recovery, within the discount cap of the DPD band",
        ("settlement",),
        {"house": "house rule: strategy.settlement_discounts"},
    ),
    "emergency_contact": (
        "an emergency contact only to locate a borrower who is unreachable (a wrong number, or 3 unanswered calls "
        "in a row), never told of the debt, never again once they ask",
        ("locate",),
        {
            "cn_cba_2026": "CBA guideline 2026-01-30: third parties only when the debtor is unreachable, only to "
            "obtain contact details, no debt information, stop if they ask",
            "us_reg_f": "12 CFR 1006.10: location communications only, no debt information",
            "us_ny_dfs": "12 CFR 1006.10: location communications only, no debt information",
            "house": "house rule: emergency contacts only to locate an unreachable borrower, no debt information",
        },
    ),
    "agency_whitelist": (
        "placement only with a white-listed agency, from a DPD",
        ("agency",),
        {
            "cn_cba_2026": "CBA guideline 2026-01-30: outsourced agencies from a published white list",
            "us_reg_f": "house rule: vetted agencies only",
            "us_ma": "house rule: vetted agencies only",
            "us_ny_dfs": "house rule: vetted agencies only",
        },
    ),
}


@dataclass(frozen=True)
class Profile:
    """The numbers of the active profile (params.yaml strategy.compliance), overrides applied.

    Parameters
    ----------
    name : the profile's name (cn_cba_2026, us_reg_f, or a custom one)
    contact_start, contact_end : "HH:MM", the lawful contact hours in the borrower's local time
    unanswered_per_method_day : most unanswered attempts to one contact method a day (None: no such rule)
    calls_7d : most calls in any 7 days (None: no such rule)
    call_gap_after_conversation_days : no call this many days after a conversation (None: no rule)
    record_retention_days : how long the audit log is kept
    call_channels : the channels `calls_7d` counts and limits together (us_ma: calls and texts)
    visits_30d : most in-person visits in any 30 days (None: no such rule)
    electronic_consent : texts and app messages only with the borrower's written consent in force
    """

    name: str
    contact_start: str
    contact_end: str
    unanswered_per_method_day: int | None
    calls_7d: int | None
    call_gap_after_conversation_days: int | None
    record_retention_days: int
    call_channels: tuple[str, ...] = ("call",)
    visits_30d: int | None = None
    electronic_consent: bool = False

    @classmethod
    def from_settings(cls, compliance: dict) -> Profile:
        name = compliance["profile"]
        values = dict(compliance["profiles"][name]) | dict(compliance.get("overrides") or {})
        if "call_channels" in values:
            values["call_channels"] = tuple(values["call_channels"])
        return cls(name=name, **values)

    def source(self, rule: str) -> str:
        sources = RULES[rule][2]
        return sources.get(self.name) or sources.get("house") or next(iter(sources.values()))

    def applies(self, rule: str) -> bool:
        sources = RULES[rule][2]
        return "house" in sources or self.name in sources or not self.name.startswith(("cn_", "us_"))


def minutes(text: str) -> int:
    h, m = str(text).split(":")
    return int(h) * 60 + int(m)


_HHMM = np.array([f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)], dtype=object)  # minute of the day


def hhmm(value: float) -> str:
    return _HHMM[int(round(value)) % (24 * 60)]


def _windows_text(start, end) -> np.ndarray:
    """'HH:MM-HH:MM' per row where the window is open (end > start), '' elsewhere (`hhmm` on arrays)."""
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    open_ = end > start
    at = lambda v: _HHMM[np.rint(np.where(open_, v, 0.0)).astype(np.int64) % (24 * 60)]  # noqa: E731
    return np.where(open_, at(start) + "-" + at(end), "")


@dataclass
class Evaluation:
    allowed: pd.DataFrame  # rows x ACTIONS: lawful today
    blocked: pd.DataFrame  # one row per (candidate, action, rule) that forbids it: index, action, rule, source
    paths: pd.DataFrame  # rows x ACTIONS: the rules passed, in words ('' where not allowed)
    windows: pd.DataFrame  # rows x ACTIONS: "HH:MM-HH:MM" borrower local time ('' where not allowed)


def is_conversation(channel: str, outcome: str) -> bool:
    """A contact that was a conversation with the borrower: the conversation prong counts it."""
    return channel in CONVERSATIONS and outcome in REACHED


def conversation_sql(alias: str) -> str:
    """`is_conversation` as a SQL condition on a collection_actions alias (vocabulary constants only)."""
    return f"{alias}.channel IN {sql_list(CONVERSATIONS)} AND {alias}.outcome IN {sql_list(REACHED)}"


def _getter(ctx) -> tuple[int, object]:
    """(rows, column -> float array) of a frame, or of a mapping of equal-length arrays (one row: length 1)."""
    if isinstance(ctx, pd.DataFrame):
        return len(ctx), lambda name: ctx[name].to_numpy(dtype=float)
    n = len(ctx["stage"])
    return n, lambda name: np.asarray(ctx[name], dtype=float)


def window(ctx, profile: Profile, cfg, action: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (minutes, borrower local time) of when `action` may happen today; empty when start >= end.

    Lawful hours (or the borrower's consent window, which replaces them), and for a collector's action the
    collectors' shift (lender time) moved into the borrower's zone. `ctx`: a frame or a mapping of arrays.
    """
    n, col = _getter(ctx)
    start = np.full(n, float(minutes(profile.contact_start)))
    end = np.full(n, float(minutes(profile.contact_end)))
    consent_start, consent_end = col("consent_start"), col("consent_end")
    consent = ~np.isnan(consent_start)
    start = np.where(consent, consent_start, start)
    end = np.where(consent, consent_end, end)
    if cfg.minutes.get(action, 0) > 0:
        offset = col("tz_offset_min")
        start = np.maximum(start, minutes(cfg.collector_shift[0]) + offset)
        end = np.minimum(end, minutes(cfg.collector_shift[1]) + offset)
    return start, end


def _blocking(ctx, cfg, profile: Profile, actions) -> tuple[dict, list, dict]:
    """The rules themselves, over arrays: (action -> blocked mask, [(rows, action, rule)] in order of the
    first rule that blocks, action -> window). `actions`: the contacts to check (the planner: all)."""
    n, col = _getter(ctx)
    blocked = {a: np.zeros(n, dtype=bool) for a in ACTIONS}
    reasons: list[tuple[np.ndarray, str, str]] = []
    check = set(actions)

    def block(rule: str, action: str, mask) -> None:
        if action not in check:
            return
        mask = np.asarray(mask, dtype=bool) & ~blocked[action]
        if profile.applies(rule) and mask.any():
            blocked[action] |= mask
            reasons.append((np.flatnonzero(mask), action, rule))

    stage = np.asarray(ctx["stage"])
    dpd, hardship, wrong = col("dpd"), col("hardship_reported") > 0, col("wrong_number") > 0
    windows = {}
    zeros = np.zeros(n)
    for action in CONTACTS:
        if action not in check:
            continue
        block("stage_actions", action, ~np.isin(stage, [s for s, acts in STAGE_ACTIONS.items() if action in acts]))
        block("cease", action, col("cease") > 0)
        block("attorney", action, col("attorney") > 0)
        block("dispute", action, col("dispute") > 0)
        block("complaint_hold", action, col("complaint_hold") > 0)
        block("opt_out", action, col(f"opt_out_{action}") > 0 if f"opt_out_{action}" in ctx else zeros)
        if profile.electronic_consent and action in ELECTRONIC:
            block("electronic_consent", action, ~(col(f"consent_{action}") > 0))
        reminder = np.isin(action, ("sms", "app_push")) & (col("promise_reminder_day") > 0)
        block("promise_pending", action, (col("pending_promise") > 0) & ~reminder)
        block("contact_cap", action, col("contacts_7d") + 1 > cfg.max_contacts_7d)
        start, end = window(ctx, profile, cfg, action)
        need = max(cfg.minutes.get(action, 0), 1)
        block("contact_hours", action, end - start < need)
        windows[action] = (start, end)
        if action != "repayment_plan":
            block("hardship", action, hardship)
    for action in ("sms", "app_push"):
        block("pre_due_cap", action, (stage == "pre_due") & (col("pre_due_reminders") >= cfg.pre_due_max_reminders))
    if profile.unanswered_per_method_day is not None:
        block(
            "unanswered_per_method_day", "call", col("unanswered_calls_today") + 1 > profile.unanswered_per_method_day
        )
    if profile.calls_7d is not None:
        phoned = col("calls_7d") + (col("sms_7d") if "sms" in profile.call_channels else 0)
        for action in profile.call_channels:
            block("calls_7d", action, phoned + 1 > profile.calls_7d)
    if profile.call_gap_after_conversation_days is not None:
        block(
            "call_after_conversation", "call", col("days_since_conversation") < profile.call_gap_after_conversation_days
        )
    if profile.visits_30d is not None:
        block("visits_30d", "visit", col("visits_30d") + 1 > profile.visits_30d)
    block("noncontact_first", "call", col("episode_noncontact") < cfg.min_noncontact_before_call)
    block("wrong_number", "call", wrong)
    block("wrong_number", "visit", wrong)
    block("do_not_visit", "visit", col("do_not_visit") > 0)
    if "visit" in check:
        block("visit_last_resort", "visit", ~visit_is_last_resort(stage, dpd, col, cfg))
    block("plan_threshold", "repayment_plan", ~(hardship | (dpd >= cfg.plan_min_dpd)))
    block("settlement_policy", "settlement", ~((stage == "recovery") & (settlement_discount(dpd, cfg) > 0)))
    block("agency_whitelist", "agency", ~((dpd >= cfg.agency_min_dpd) & (len(cfg.agencies) > 0)))
    return blocked, reasons, windows


def evaluate(ctx: pd.DataFrame, cfg, profile: Profile, explain: bool = True) -> Evaluation:
    """Which actions are lawful today for every candidate row (columns: see huishou.strategy.context).

    explain=False leaves `paths` and `windows` empty.
    """
    blocked, reasons, windows = _blocking(ctx, cfg, profile, CONTACTS)
    allowed = pd.DataFrame({a: ~blocked[a] for a in ACTIONS}, index=ctx.index)
    blocked_frame = _blocked_rows(ctx.index, reasons, profile)
    if not explain:
        return Evaluation(allowed, blocked_frame, pd.DataFrame(index=ctx.index), pd.DataFrame(index=ctx.index))
    paths, window_text = _paths(ctx, cfg, profile, allowed, windows)
    return Evaluation(allowed, blocked_frame, paths, window_text)


def _blocked_rows(index: pd.Index, reasons: list, profile: Profile) -> pd.DataFrame:
    """One row per (candidate row, action, rule) that blocked it, in the order the rules ran."""
    reasons = [(np.asarray(idx), action, rule) for idx, action, rule in reasons if len(idx)]
    if not reasons:
        return pd.DataFrame(columns=["row", "action", "rule", "source"])
    sizes = [len(idx) for idx, _, _ in reasons]
    repeat = lambda values: np.repeat(np.array(values, dtype=object), sizes)  # noqa: E731
    return pd.DataFrame(
        {
            "row": index.to_numpy()[np.concatenate([idx for idx, _, _ in reasons])],
            "action": repeat([action for _, action, _ in reasons]),
            "rule": repeat([rule for _, _, rule in reasons]),
            "source": repeat([profile.source(rule) for _, _, rule in reasons]),
        }
    )


def lawful(allowed: pd.DataFrame, actions) -> np.ndarray:
    """Whether each row's action (one per row of `allowed`, in its order) is allowed: `allowed.at[i, actions[i]]`
    for every row at once."""
    columns = allowed.columns.get_indexer(np.asarray(actions, dtype=object))
    if (columns < 0).any():
        unknown = sorted(set(np.asarray(actions, dtype=object)[columns < 0]))
        raise KeyError(f"actions not in the lawful-actions table: {unknown}")
    return allowed.to_numpy(dtype=bool)[np.arange(len(allowed)), columns]


UNREACHABLE_AFTER = 3  # unanswered calls in a row (CBA guideline 2026-01-30)


def may_locate(context: dict, stopped: bool = False) -> bool:
    """Whether an emergency contact may be called now to locate the borrower: the borrower is unreachable (a
    wrong number in the episode, or UNREACHABLE_AFTER unanswered calls in a row) and the contact has not asked
    to stop. The caller says nothing of the debt (the workbench's script)."""
    unreachable = (context.get("wrong_number") or 0) > 0 or (context.get("unanswered_in_row") or 0) >= UNREACHABLE_AFTER
    return unreachable and not stopped


def check_one(context: dict, action: str, cfg, profile: Profile) -> list[str]:
    """The rules that forbid `action` for one borrower's context (a dict of scalars): the planner's own
    rules (`_blocking`) over one-element arrays, without building a frame (the workbench's record-time
    check, a few hundred microseconds)."""
    row = {k: np.array([np.nan if v is None else v]) for k, v in context.items()}
    _, reasons, _ = _blocking(row, cfg, profile, (action,))
    return [rule for _, a, rule in reasons if a == action]


def visit_is_last_resort(stage: np.ndarray, dpd: np.ndarray, col, cfg) -> np.ndarray:
    """The lenders' rule for a home visit: in recovery, only once messages (strategy.visit_min_unreached_attempts)
    and calls (visit_min_call_attempts) were tried in the episode, and then for a large, long-overdue account
    (visit_min_amount, visit_min_dpd) or a borrower who stayed unreachable (never reached in the episode) or
    evasive (a broken promise)."""
    messages = col("episode_noncontact")
    calls = col("episode_contacts") - messages
    tried = (messages >= cfg.visit_min_unreached_attempts) & (calls >= cfg.visit_min_call_attempts)
    large_and_old = (col("outstanding") >= cfg.visit_min_amount) & (dpd >= cfg.visit_min_dpd)
    unreachable_or_evasive = (col("episode_reached") == 0) | (col("broken_promises") > 0)
    return (stage == "recovery") & tried & (large_and_old | unreachable_or_evasive)


def settlement_discount(dpd: np.ndarray, cfg) -> np.ndarray:
    """The settlement discount policy allows at this DPD (0: none): the cap of the highest band reached."""
    out = np.zeros(len(dpd))
    for band, cap in sorted((int(k), float(v)) for k, v in cfg.settlement_discounts.items()):
        out = np.where(np.asarray(dpd) >= band, cap, out)
    return out


def _paths(ctx, cfg, profile, allowed, windows) -> tuple[pd.DataFrame, pd.DataFrame]:
    paths = pd.DataFrame("", index=ctx.index, columns=list(ACTIONS))
    texts = pd.DataFrame("", index=ctx.index, columns=list(ACTIONS))
    cap = "cap " + (ctx["contacts_7d"].astype(int) + 1).astype(str) + f"/{cfg.max_contacts_7d} in 7d"
    first = np.where(ctx["episode_contacts"].to_numpy() == 0, " > first contact: state the lender's identity", "")
    for action in CONTACTS:
        start, end = windows[action]
        window = _windows_text(start, end)
        steps = cap + " > " + ("hardship -> plan" if action == "repayment_plan" else "no hardship")
        if action == "call":
            steps = (
                steps
                + " > "
                + ctx["episode_noncontact"].astype(int).astype(str)
                + " non-contact first > number not wrong"
            )
        if action == "visit":
            steps = steps + " > recovery, large, unreached after " + ctx["episode_noncontact"].astype(int).astype(str)
        steps = steps + " > borrower only" + first + f" > {profile.name} hours " + pd.Series(window, index=ctx.index)
        paths[action] = steps
        texts[action] = window
    paths["none"] = "no contact today"
    return paths.where(allowed, ""), texts.where(allowed, "")


@dataclass(frozen=True)
class _Row:
    """One row of a frame's columns (name -> array) read value by value, like a row Series."""

    columns: dict
    k: int

    def __getitem__(self, name: str):
        return self.columns[name][self.k]

    def get(self, name: str, default=None):
        return self.columns[name][self.k] if name in self.columns else default


def violations(ctx: pd.DataFrame, chosen: pd.Series, cfg, profile: Profile) -> list[str]:
    """Independent row-by-row re-check of a finished plan against every rule of the profile."""
    bad = []
    picked = chosen[chosen != "none"]
    columns = {c: ctx[c].to_numpy() for c in ctx.columns}
    for action, k in zip(picked, ctx.index.get_indexer(picked.index), strict=True):
        r = _Row(columns, k)  # the row's values read one by one (ctx.loc[i] built a Series per row: ~50x slower)
        who = f"{r['loan_id']}/{action}"
        start = minutes(profile.contact_start) if pd.isna(r["consent_start"]) else r["consent_start"]
        end = minutes(profile.contact_end) if pd.isna(r["consent_end"]) else r["consent_end"]
        if cfg.minutes.get(action, 0) > 0:
            start = max(start, minutes(cfg.collector_shift[0]) + r["tz_offset_min"])
            end = min(end, minutes(cfg.collector_shift[1]) + r["tz_offset_min"])
        checks = {
            "stage": action in STAGE_ACTIONS[r["stage"]],
            "hours": end - start >= max(cfg.minutes.get(action, 0), 1),
            "cease": not r["cease"] > 0,
            "attorney": not r["attorney"] > 0,
            "dispute": not r["dispute"] > 0,
            "complaint": not r["complaint_hold"] > 0,
            "opt out": not r.get(f"opt_out_{action}", 0) > 0,
            "cap": r["contacts_7d"] + 1 <= cfg.max_contacts_7d,
            "hardship": not (r["hardship_reported"] > 0 and action != "repayment_plan"),
            "promise": not (
                r["pending_promise"] > 0 and not (action in ("sms", "app_push") and r["promise_reminder_day"] > 0)
            ),
        }
        if profile.electronic_consent and action in ELECTRONIC:
            checks["electronic consent"] = r[f"consent_{action}"] > 0
        if profile.calls_7d is not None and action in profile.call_channels:
            phoned = r["calls_7d"] + (r["sms_7d"] if "sms" in profile.call_channels else 0)
            checks["calls 7d"] = phoned + 1 <= profile.calls_7d
        if action == "call":
            checks["call"] = r["episode_noncontact"] >= cfg.min_noncontact_before_call and not r["wrong_number"] > 0
            if profile.call_gap_after_conversation_days is not None:
                checks["conversation"] = not r["days_since_conversation"] < profile.call_gap_after_conversation_days
            if profile.unanswered_per_method_day is not None:
                checks["unanswered"] = r["unanswered_calls_today"] + 1 <= profile.unanswered_per_method_day
        if action == "visit" and profile.visits_30d is not None:
            checks["visits 30d"] = r["visits_30d"] + 1 <= profile.visits_30d
        if action == "visit":
            tried = (
                r["episode_noncontact"] >= cfg.visit_min_unreached_attempts
                and r["episode_contacts"] - r["episode_noncontact"] >= cfg.visit_min_call_attempts
            )
            large_and_old = r["outstanding"] >= cfg.visit_min_amount and r["dpd"] >= cfg.visit_min_dpd
            checks["visit"] = (
                r["stage"] == "recovery"
                and tried
                and (large_and_old or r["episode_reached"] == 0 or r["broken_promises"] > 0)
                and not r["wrong_number"] > 0
                and not r["do_not_visit"] > 0
            )
        if action == "repayment_plan":
            checks["plan"] = r["hardship_reported"] > 0 or r["dpd"] >= cfg.plan_min_dpd
        if action == "settlement":
            checks["settlement"] = r["stage"] == "recovery" and settlement_discount(np.array([r["dpd"]]), cfg)[0] > 0
        if action == "agency":
            checks["agency"] = r["dpd"] >= cfg.agency_min_dpd and len(cfg.agencies) > 0
        if action in ("sms", "app_push") and r["stage"] == "pre_due":
            checks["reminders"] = r["pre_due_reminders"] < cfg.pre_due_max_reminders
        bad += [f"{who}: {name}" for name, ok in checks.items() if not ok]
    return bad
