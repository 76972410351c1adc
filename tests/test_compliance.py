"""Lawful collection: every rule of every profile on hand-made contexts and books, the independent re-check,
sources, custom overrides, and a property test over random simulated books per profile with the audit log."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huishou.compliance import RULES, Profile, evaluate, lawful, violations
from huishou.core.settings import load_settings
from huishou.core.vocab import ACTIONS, CONTACTS, STAGE_ACTIONS
from huishou.strategy.context import decision_context

from builders import CN, MA, NY, US, action, application, book, ctx_row, preference, profile, random_ctx, schedule

PARAMS = load_settings("params.yaml")
CFG = PARAMS.strategy
SETTLE = (PARAMS.features.paid_tolerance, PARAMS.features.settle_share)
STEPS = CFG.decision_step_days


def allowed_for(prof: Profile = CN, cfg=CFG, **kw) -> pd.Series:
    return evaluate(pd.DataFrame([ctx_row(**kw)]), cfg, prof).allowed.iloc[0]


def blocked_rules(prof: Profile = CN, cfg=CFG, **kw) -> dict[str, set[str]]:
    blocked = evaluate(pd.DataFrame([ctx_row(**kw)]), cfg, prof).blocked
    return blocked.groupby("action")["rule"].apply(set).to_dict()


RECOVERY_VISIT = dict(  # messages and calls tried; large, long overdue, never reached
    stage="recovery",
    dpd=float(CFG.visit_min_dpd),
    outstanding=CFG.visit_min_amount,
    episode_noncontact=float(CFG.visit_min_unreached_attempts),
    episode_contacts=float(CFG.visit_min_unreached_attempts + CFG.visit_min_call_attempts),
    episode_reached=0.0,
)

# ---------------------------------------------------------------- every rule, both profiles


@pytest.mark.parametrize("prof", [CN, US], ids=lambda p: p.name)
def test_doing_nothing_is_always_lawful(prof):
    worst = dict(contacts_7d=9, hardship_reported=1, wrong_number=1, cease=1, complaint_hold=1, pending_promise=1)
    assert allowed_for(prof, **worst)["none"]


def test_contact_hours_are_the_borrowers_local_time():
    # collectors work 09:00-18:00 lender time; a borrower 13 hours behind would be called 20:00-05:00 locally
    far = allowed_for(CN, tz_offset_min=-13 * 60.0, episode_noncontact=2)
    assert not far["call"] and far["sms"]  # the system sends messages inside the lawful hours, any zone
    assert "contact_hours" in blocked_rules(CN, tz_offset_min=-13 * 60.0, episode_noncontact=2)["call"]
    near = evaluate(pd.DataFrame([ctx_row(tz_offset_min=-60.0, episode_noncontact=2)]), CFG, CN)
    assert near.allowed.iloc[0]["call"] and near.windows.iloc[0]["call"] == "08:00-17:00"
    assert near.windows.iloc[0]["sms"] == f"{CN.contact_start}-{CN.contact_end}"


def test_profiles_set_their_own_hours_and_a_consent_window_replaces_them():
    assert CN.contact_start == "08:00" and CN.contact_end == "22:00"
    assert US.contact_start == "08:00" and US.contact_end == "21:00"
    consent = evaluate(pd.DataFrame([ctx_row(consent_start=12 * 60.0, consent_end=13 * 60.0 + 30)]), CFG, US)
    assert consent.windows.iloc[0]["sms"] == "12:00-13:30" and consent.windows.iloc[0]["call"] == "12:00-13:30"
    closed = evaluate(pd.DataFrame([ctx_row(consent_start=19 * 60.0, consent_end=22 * 60.0)]), CFG, US)
    assert closed.allowed.iloc[0]["sms"] and not closed.allowed.iloc[0]["call"]  # after the collectors' shift


def test_custom_overrides_change_the_numbers_and_keep_the_sources():
    strict = profile("cn_cba_2026", contact_end="20:00", unanswered_per_method_day=2)
    assert strict.contact_end == "20:00" and strict.unanswered_per_method_day == 2
    assert not allowed_for(strict, unanswered_calls_today=2)["call"]
    assert allowed_for(CN, unanswered_calls_today=2)["call"]
    assert strict.source("unanswered_per_method_day") == CN.source("unanswered_per_method_day")


def test_unanswered_attempts_per_method_a_day_cn():
    limit = CN.unanswered_per_method_day
    assert allowed_for(CN, unanswered_calls_today=limit - 1)["call"]
    assert not allowed_for(CN, unanswered_calls_today=limit)["call"]
    assert allowed_for(CN, unanswered_calls_today=limit)["sms"]  # another method


def test_seven_calls_in_seven_days_us_only():
    assert allowed_for(US, calls_7d=US.calls_7d - 1)["call"]
    assert not allowed_for(US, calls_7d=US.calls_7d)["call"]
    assert "calls_7d" in blocked_rules(US, calls_7d=US.calls_7d)["call"]
    assert allowed_for(CN, calls_7d=US.calls_7d)["call"]  # not a rule of the Chinese guideline


def test_no_call_within_seven_days_of_a_conversation_us_only():
    gap = US.call_gap_after_conversation_days
    assert not allowed_for(US, days_since_conversation=gap - 1)["call"]
    assert allowed_for(US, days_since_conversation=gap)["call"]
    assert allowed_for(US, days_since_conversation=gap - 1)["sms"]
    assert allowed_for(CN, days_since_conversation=1)["call"]


@pytest.mark.parametrize("prof", [CN, US], ids=lambda p: p.name)
@pytest.mark.parametrize("column", ["cease", "complaint_hold"])
def test_cease_and_complaint_hold_stop_every_contact(prof, column):
    ok = allowed_for(prof, **{column: 1, "stage": "recovery", "dpd": 90.0})
    assert ok["none"] and not any(ok[a] for a in CONTACTS)


def test_opt_out_is_per_channel():
    ok = allowed_for(CN, opt_out_sms=1)
    assert not ok["sms"] and ok["app_push"] and ok["email_letter"]
    assert blocked_rules(US, opt_out_sms=1)["sms"] == {"opt_out"}


def test_do_not_visit():
    assert allowed_for(CN, **RECOVERY_VISIT)["visit"]
    assert not allowed_for(CN, **RECOVERY_VISIT, do_not_visit=1)["visit"]


@pytest.mark.parametrize("stage", ["early", "recovery"])
def test_hardship_gets_a_plan_never_escalation(stage):
    ok = allowed_for(CN, hardship_reported=1, stage=stage, dpd=2.0 if stage == "early" else 70.0)
    assert ok["repayment_plan"] and not any(ok[a] for a in CONTACTS if a != "repayment_plan")


def test_hardship_before_the_due_date_gets_no_reminder():
    ok = allowed_for(CN, hardship_reported=1, stage="pre_due", dpd=-2.0)
    assert not ok["sms"] and not ok["app_push"]


def test_wrong_number_blocks_calls_and_visits():
    ok = allowed_for(CN, **RECOVERY_VISIT, wrong_number=1)
    assert not ok["call"] and not ok["visit"] and ok["sms"]


def test_contact_cap_counts_the_borrower_across_loans():
    assert allowed_for(CN, contacts_7d=CFG.max_contacts_7d - 1)["sms"]
    capped = allowed_for(CN, contacts_7d=CFG.max_contacts_7d)
    assert not any(capped[a] for a in CONTACTS)


def test_non_contact_channels_before_calls():
    assert not allowed_for(CN, episode_noncontact=0)["call"]
    assert allowed_for(CN, episode_noncontact=CFG.min_noncontact_before_call)["call"]


def test_visit_only_as_a_last_resort_for_large_old_or_unreachable_or_evasive_accounts():
    """collection-rules (the lenders' rule): a home visit only as a last resort: once messages and calls were
    tried, for a large, long-overdue account, or a borrower who stays unreachable or evasive."""
    assert allowed_for(CN, **RECOVERY_VISIT)["visit"]
    small, young, reached = (
        {"outstanding": CFG.visit_min_amount - 1},
        {"dpd": CFG.visit_min_dpd - 1.0},
        {"episode_reached": 1.0},
    )
    assert allowed_for(CN, **(RECOVERY_VISIT | small | young))["visit"]  # unreachable: enough on its own
    assert allowed_for(CN, **(RECOVERY_VISIT | reached))["visit"]  # large and long overdue: enough on its own
    evasive = RECOVERY_VISIT | small | young | reached | {"broken_promises": 1.0}
    assert allowed_for(CN, **evasive)["visit"]  # a broken promise: evasive
    for change in (
        {"stage": "early", "dpd": 25.0},
        {"episode_noncontact": CFG.visit_min_unreached_attempts - 1.0},  # messages not tried
        {"episode_contacts": float(CFG.visit_min_unreached_attempts + CFG.visit_min_call_attempts - 1)},  # calls
        small | reached,  # reached, small, no broken promise
        young | reached,  # reached, not long overdue, no broken promise
        {"do_not_visit": 1.0},
    ):
        assert not allowed_for(CN, **(RECOVERY_VISIT | change))["visit"], change
        assert "visit_last_resort" in blocked_rules(CN, **(RECOVERY_VISIT | change)).get("visit", set()) or (
            change == {"do_not_visit": 1.0}
        )


def test_repayment_plan_threshold():
    assert not allowed_for(CN, dpd=CFG.plan_min_dpd - 1.0)["repayment_plan"]
    assert allowed_for(CN, dpd=float(CFG.plan_min_dpd))["repayment_plan"]


def test_a_pending_promise_suppresses_contact_but_the_day_before_allows_a_reminder():
    pending = allowed_for(CN, pending_promise=1)
    assert not any(pending[a] for a in CONTACTS)
    eve = allowed_for(CN, pending_promise=1, promise_reminder_day=1)
    assert eve["sms"] and eve["app_push"] and not eve["call"] and not eve["email_letter"]


def test_each_stage_has_its_own_actions():
    for stage, dpd in (("pre_due", -3.0), ("early", 20.0), ("recovery", 90.0)):
        ok = allowed_for(CN, stage=stage, dpd=dpd, episode_noncontact=3.0, outstanding=9e4)
        assert {a for a in ACTIONS if ok[a]} <= set(STAGE_ACTIONS[stage]), stage
    assert not allowed_for(CN, stage="pre_due", dpd=-3.0)["call"]
    assert not allowed_for(CN, stage="recovery", dpd=90.0)["app_push"]  # frozen accounts get no push


def test_pre_due_reminders_are_capped_per_installment():
    row = dict(stage="pre_due", dpd=-2.0)
    assert allowed_for(CN, **row, pre_due_reminders=CFG.pre_due_max_reminders - 1)["sms"]
    capped = allowed_for(CN, **row, pre_due_reminders=CFG.pre_due_max_reminders)
    assert not capped["sms"] and not capped["app_push"]


def test_settlements_only_in_recovery_within_the_band_discount():
    first_band = min(int(k) for k in CFG.settlement_discounts)
    assert allowed_for(CN, stage="recovery", dpd=float(first_band))["settlement"]
    assert not allowed_for(CN, stage="recovery", dpd=first_band - 1.0)["settlement"]
    assert not allowed_for(CN, stage="early", dpd=25.0)["settlement"]


def test_agency_placement_only_with_a_white_listed_agency_from_its_dpd():
    row = dict(stage="recovery", dpd=float(CFG.agency_min_dpd))
    assert allowed_for(CN, **row)["agency"]
    assert not allowed_for(CN, **(row | {"dpd": CFG.agency_min_dpd - 1.0}))["agency"]
    assert not allowed_for(CN, dataclasses.replace(CFG, agencies=[]), **row)["agency"]


def test_every_rule_names_its_source_and_sources_differ_by_profile():
    for rule, (_, restricted, sources) in RULES.items():
        assert sources and set(restricted) <= {*ACTIONS, "locate"}, rule  # locate: the workbench's, never planned
        for prof in (CN, US):
            if prof.applies(rule):
                assert prof.source(rule), (rule, prof.name)
    assert "CBA" in CN.source("contact_hours") and "1006.6" in US.source("contact_hours")
    blocked = evaluate(pd.DataFrame([ctx_row(cease=1)]), CFG, US).blocked
    early = blocked[blocked["action"].isin(STAGE_ACTIONS["early"])]  # the rest are not early-stage actions
    assert set(early["rule"]) == {"cease"} and (early["source"] == US.source("cease")).all()
    assert set(early["action"]) == set(STAGE_ACTIONS["early"]) - {"none"}


def test_rule_path_names_the_rules_passed_and_the_window():
    ev = evaluate(pd.DataFrame([ctx_row(episode_contacts=0.0, episode_noncontact=1.0)]), CFG, CN)
    path = ev.paths.iloc[0]["call"]
    assert "borrower only" in path and "first contact: state the lender's identity" in path
    assert "cn_cba_2026 hours" in path and ev.paths.iloc[0]["visit"] == ""  # not allowed: no path


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["cn_cba_2026", "us_reg_f", "us_ma", "us_ny_dfs"]))
def test_the_independent_re_check_agrees_with_the_evaluation_on_every_action(seed, name):
    """Two implementations of the rules (vectorised for planning, row by row for checking) agree exactly."""
    prof = profile(name)
    ctx = random_ctx(np.random.default_rng(seed), 60)
    allowed = evaluate(ctx, CFG, prof).allowed
    for a in ACTIONS:
        flagged = {v.split(":")[0] for v in violations(ctx, pd.Series(a, index=ctx.index), CFG, prof)}
        forbidden = {f"{ctx.at[i, 'loan_id']}/{a}" for i in ctx.index if not allowed.at[i, a]}
        assert flagged == forbidden, a


# ---------------------------------------------------------------- the context the rules read, from books


def _context_at(tables, loan_id: int, t: str, **kw) -> pd.Series:
    decisions = pd.DataFrame({"decision_id": [0], "loan_id": [loan_id], "t": [pd.Timestamp(t)]})
    return decision_context(tables, decisions, *SETTLE, STEPS, **kw).iloc[0]


def _allowed(ctx: pd.Series, prof: Profile = CN, stage: str = "early") -> pd.Series:
    return evaluate(pd.DataFrame([ctx.to_dict() | {"stage": stage}]), CFG, prof).allowed.iloc[0]


def test_hardship_reported_on_another_loan_of_the_borrower_blocks_escalation():
    tables = book(
        [application(1, borrower_id=7), application(2, borrower_id=7, disbursed="2025-02-01 10:00")],
        schedule(1, "2025-01-31") + schedule(2, "2025-03-01"),
        actions=[action(1, "2025-02-08 10:00", "call", "reached", hardship=True)],
    )
    ctx = _context_at(tables, 2, "2025-03-12 09:00")
    assert ctx["dpd"] == 11 and ctx["hardship_reported"] == 1
    ok = _allowed(ctx)
    assert ok[["sms", "app_push", "email_letter", "call", "visit"]].sum() == 0 and ok["repayment_plan"]


def test_contacts_on_every_loan_of_the_borrower_count_towards_the_caps():
    tables = book(
        [application(1, borrower_id=7), application(2, borrower_id=7)],
        schedule(1, "2025-01-31") + schedule(2, "2025-01-31"),
        actions=[
            action(1, "2025-02-06 10:00", "sms", "no_answer"),
            action(1, "2025-02-07 11:00", "call", "no_answer"),
            action(1, "2025-02-08 09:00", "call", "no_answer"),
            action(1, "2025-02-08 09:30", "call", "no_answer"),
        ],
    )
    ctx = _context_at(tables, 2, "2025-02-08 15:00")
    assert ctx["contacts_7d"] == 4 and ctx["calls_7d"] == 3 and ctx["unanswered_calls_today"] == 2
    assert not _allowed(ctx)["sms"]  # the borrower's cap, though loan 2 itself was never contacted


def test_a_conversation_blocks_calls_for_seven_days_under_reg_f():
    tables = book(
        [application(1)],
        schedule(1, "2025-01-31"),
        actions=[action(1, "2025-02-03 10:00", "sms", "no_answer"), action(1, "2025-02-05 10:00", "call", "reached")],
    )
    soon, later = _context_at(tables, 1, "2025-02-09 10:00"), _context_at(tables, 1, "2025-02-13 10:00")
    assert soon["days_since_conversation"] == 4 and not _allowed(soon, US)["call"] and _allowed(soon, CN)["call"]
    assert _allowed(later, US)["call"]


def test_a_wrong_number_earlier_in_the_episode_blocks_calls_after_later_contacts():
    tables = book(
        [application(1, amount=60_000.0)],
        schedule(1, "2025-01-31", amount=10_000.0),
        actions=[
            action(1, "2025-02-01 10:00", "sms", "no_answer"),
            action(1, "2025-02-08 10:00", "call", "wrong_number"),
            action(1, "2025-02-15 10:00", "visit", "no_answer"),
        ],
    )
    ctx = _context_at(tables, 1, "2025-02-22 09:00")
    ok = _allowed(ctx)
    assert ctx["wrong_number"] == 1 and not ok["call"] and not ok["visit"] and ok["sms"]


def test_a_wrong_number_in_an_earlier_episode_does_not_block_a_new_one():
    tables = book(
        [application(1)],
        schedule(1, "2025-01-31", paid={1: ("2025-02-20", 1000.0)}),
        actions=[action(1, "2025-02-08 10:00", "call", "wrong_number")],
    )
    ctx = _context_at(tables, 1, "2025-03-10 09:00")  # installment 2 (due 2025-03-02) opened a new episode
    assert ctx["dpd"] == 8 and ctx["wrong_number"] == 0


def test_promise_lifecycle_pending_reminder_then_broken():
    grace = PARAMS.features.promise_grace_days
    tables = book(
        [application(1)],
        schedule(1, "2025-01-31"),
        actions=[action(1, "2025-02-05 10:00", "call", "promise_to_pay", promised=1000.0, promised_date="2025-02-10")],
    )
    at = lambda t: _context_at(tables, 1, t, grace_days=grace)  # noqa: E731
    assert at("2025-02-05 09:00")["pending_promise"] == 0  # not made yet
    assert at("2025-02-07 10:00")["pending_promise"] == 1 and at("2025-02-07 10:00")["promise_reminder_day"] == 0
    eve = at("2025-02-09 10:00")
    assert eve["pending_promise"] == 1 and eve["promise_reminder_day"] == 1 and _allowed(eve)["sms"]
    assert not _allowed(eve)["call"]
    last = pd.Timestamp("2025-02-10") + pd.Timedelta(days=grace)
    assert at(f"{last.date()} 10:00")["pending_promise"] == 1
    after = at(f"{(last + pd.Timedelta(days=1)).date()} 10:00")
    assert after["pending_promise"] == 0 and after["broken_promises"] == 1 and _allowed(after)["sms"]


def test_preferences_hold_from_when_they_were_made_until_they_end():
    tables = book(
        [application(1, borrower_id=3)],
        schedule(1, "2025-01-31"),
        actions=[action(1, "2025-02-02 10:00", "sms", "no_answer")],
        preferences=[
            preference(3, "opt_out", "2025-02-05", channel="sms"),
            preference(3, "complaint_hold", "2025-02-10", until="2025-02-20"),
            preference(3, "consent_window", "2025-01-01", window=("18:00", "21:30")),
        ],
    )
    before, opted = _context_at(tables, 1, "2025-02-04 10:00"), _context_at(tables, 1, "2025-02-06 10:00")
    assert before["opt_out_sms"] == 0 and opted["opt_out_sms"] == 1 and not _allowed(opted)["sms"]
    hold, over = _context_at(tables, 1, "2025-02-12 10:00"), _context_at(tables, 1, "2025-02-21 10:00")
    assert hold["complaint_hold"] == 1 and not _allowed(hold)["app_push"] and over["complaint_hold"] == 0
    assert over["consent_start"] == 18 * 60 and over["consent_end"] == 21 * 60 + 30


def test_the_borrowers_time_zone_gives_the_offset_from_the_lender():
    tables = book(
        [application(1, timezone="America/New_York"), application(2, timezone="Asia/Urumqi"), application(3)],
        schedule(1, "2025-01-31") + schedule(2, "2025-01-31") + schedule(3, "2025-01-31"),
    )
    offsets = [
        _context_at(tables, i, "2025-02-10 10:00", lender_zone="Asia/Shanghai")["tz_offset_min"] for i in (1, 2, 3)
    ]
    assert offsets == [-13 * 60, -2 * 60, 0]  # New York (EST) is 13 h behind Shanghai in February
    summer = _context_at(tables, 1, "2025-07-10 10:00", lender_zone="Asia/Shanghai")["tz_offset_min"]
    assert summer == -12 * 60  # daylight saving time


def test_a_pre_due_decision_looks_at_the_next_installment():
    tables = book(
        [application(1)],
        schedule(1, "2025-01-31", paid={1: ("2025-01-30", 1000.0)}),
        actions=[action(1, "2025-02-27 10:00", "sms", "no_answer", stage="pre_due")],
    )
    ctx = _context_at(tables, 1, "2025-02-28 10:00", upcoming=True)
    assert ctx["dpd"] == -2 and ctx["open_due"] == pd.Timestamp("2025-03-02") and ctx["pre_due_reminders"] == 1


# ---------------------------------------------------------------- the conversation prong, shared


def test_every_conversation_counts_for_the_conversation_prong_in_the_planner_and_at_record_time():
    """Reg F 1006.14(b)(2)(ii): "within a period of seven days after engaging in a telephone conversation".
    A plan or settlement talk that reached the borrower is a conversation as a call is, for the planner's
    SQL and the workbench's running context alike (one rule: compliance.is_conversation); a call that
    reached a third party, a text or an unanswered call is not."""
    from huishou.compliance import is_conversation
    from huishou.workbench.rules import context_now

    cases = [
        ("repayment_plan", "reached", True),
        ("settlement", "promise_to_pay", True),
        ("call", "refused", True),
        ("visit", "reached", True),
        ("call", "third_party", False),
        ("call", "no_answer", False),
        ("sms", "reached", False),
    ]
    for channel, outcome, talk in cases:
        tables = book(
            [application(1)],
            schedule(1, "2025-01-31"),
            actions=[
                action(1, "2025-02-03 10:00", "sms", "no_answer"),
                action(1, "2025-02-05 10:00", channel, outcome),
            ],
        )
        planner = _context_at(tables, 1, "2025-02-09 10:00")
        assert bool(planner["days_since_conversation"] == 4) is talk, (channel, outcome)
        assert is_conversation(channel, outcome) is talk
        assert bool(not _allowed(planner, US)["call"]) is talk, (channel, outcome)
        before = _context_at(
            book(
                [application(1)], schedule(1, "2025-01-31"), actions=[action(1, "2025-02-03 10:00", "sms", "no_answer")]
            ),
            1,
            "2025-02-05 09:00",
        )
        at_record = context_now(before.to_dict() | {"stage": "early"}, [{"channel": channel, "outcome": outcome}])
        assert bool(at_record["days_since_conversation"] == 0) is talk, (channel, outcome)


# ---------------------------------------------------------------- us_ma, us_ny_dfs, and requests under every profile


def test_us_ma_two_telephone_communications_in_seven_days_calls_and_texts_alike():
    """940 CMR 7.04(1)(f): "Initiating a communication with any debtor via telephone, either in person or via
    text messaging or recorded audio message, in excess of two such communications in each seven-day period"."""
    assert allowed_for(MA, calls_7d=1.0, sms_7d=0.0)["call"] and allowed_for(MA, calls_7d=1.0)["sms"]
    assert not allowed_for(MA, calls_7d=1.0, sms_7d=1.0)["call"]
    assert not allowed_for(MA, calls_7d=1.0, sms_7d=1.0)["sms"]
    assert blocked_rules(MA, calls_7d=2.0)["call"] == {"calls_7d"}
    assert "940 CMR 7.04(1)(f)" in MA.source("calls_7d")
    assert allowed_for(US, calls_7d=2.0, sms_7d=3.0)["call"]  # Reg F counts calls only, up to 7


def test_us_ma_hours_and_one_visit_in_thirty_days():
    """940 CMR 7.04(1): no communication before 8 a.m. or after 9 p.m.; at most one in-person visit in 30 days."""
    assert (MA.contact_start, MA.contact_end) == ("08:00", "21:00")
    visit = RECOVERY_VISIT | {"visits_30d": 0.0}
    assert allowed_for(MA, **visit)["visit"] and not allowed_for(MA, **(visit | {"visits_30d": 1.0}))["visit"]
    assert allowed_for(CN, **(visit | {"visits_30d": 3.0}))["visit"]


def test_us_ny_dfs_three_attempted_and_one_completed_call_in_seven_days():
    """23 NYCRR 1: "1 completed call and 3 attempted calls per 7 days per debt"."""
    assert allowed_for(NY, calls_7d=2.0)["call"] and not allowed_for(NY, calls_7d=3.0)["call"]
    assert not allowed_for(NY, calls_7d=1.0, days_since_conversation=6.0)["call"]
    assert allowed_for(NY, calls_7d=1.0, days_since_conversation=7.0)["call"]


def test_us_ny_dfs_texts_only_with_written_consent_which_an_opt_out_revokes():
    """23 NYCRR 1: "email / SMS only with revocable written consent"."""
    assert not allowed_for(NY)["sms"] and not allowed_for(NY)["app_push"]
    assert blocked_rules(NY)["sms"] == {"electronic_consent"}
    assert allowed_for(NY, consent_sms=1.0)["sms"] and not allowed_for(NY, consent_sms=1.0)["app_push"]
    assert not allowed_for(NY, consent_sms=1.0, opt_out_sms=1.0)["sms"]
    assert allowed_for(NY)["email_letter"] and allowed_for(CN)["sms"]  # a letter needs no consent


def test_consent_to_electronic_messages_comes_from_the_preferences():
    tables = book(
        [application(1)],
        schedule(1, "2025-01-31"),
        preferences=[preference(1, "electronic_consent", "2025-01-10 09:00", channel="sms")],
    )
    ctx = _context_at(tables, 1, "2025-02-05 10:00")
    assert ctx["consent_sms"] == 1 and ctx["consent_app_push"] == 0


@pytest.mark.parametrize("prof", [CN, US, MA, NY], ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["dispute", "attorney"])
def test_a_dispute_or_a_lawyer_stops_every_contact_under_every_profile(prof, kind):
    ok = allowed_for(prof, **{kind: 1.0, "consent_sms": 1.0, "consent_app_push": 1.0})
    assert ok[list(CONTACTS)].sum() == 0 and ok["none"]
    assert blocked_rules(prof, **{kind: 1.0})["call"] == {kind}


def test_the_collection_rules_document_lists_every_profiles_rule_with_its_source():
    """docs/collection-rules.md is the rule book a compliance officer reads: every rule of every profile, in
    the words and with the source the code enforces."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "collection-rules.md").read_text()
    for name in ("cn_cba_2026", "us_reg_f", "us_ma", "us_ny_dfs"):
        prof = profile(name)
        for rule in RULES:
            if prof.applies(rule):
                assert f"| {name} | {rule} | {prof.source(rule)} |" in doc, (name, rule)


@pytest.mark.parametrize("days_before", [0, 7, 14])
def test_no_plan_under_reg_f_calls_within_seven_days_after_any_conversation(book, settings, days_before):
    """Bar of issue 25: 0 violations of the conversation prong under us_reg_f, checked independently from the
    log with pandas (any call, visit, plan or settlement talk that reached the borrower, on any of their loans)."""
    from huishou.strategy.plan import plan_day
    from workbench_helpers import book_rules

    cfg = dataclasses.replace(settings.strategy, compliance=settings.strategy.compliance | {"profile": "us_reg_f"})
    tables = book.raw_tables()
    day = settings.simulate.as_of - pd.Timedelta(days=days_before)
    result = plan_day(
        tables,
        day,
        {},
        cfg,
        Profile.from_settings(cfg.compliance),
        book_rules(settings),
        np.random.default_rng(days_before),
    )
    cand = result.candidates
    calls = cand.loc[cand["action"] == "call", ["loan_id", "borrower_id"]]
    assert len(calls) > 0
    log = tables["collection_actions"].merge(tables["applications"][["loan_id", "borrower_id"]], on="loan_id")
    talks = log[
        log["channel"].isin(["call", "visit", "repayment_plan", "settlement"])
        & log["outcome"].isin(["reached", "promise_to_pay", "paid", "refused"])
        & (log["action_at"] < day)
    ]
    last = talks.groupby("borrower_id")["action_at"].max().dt.normalize()
    # the conversation's day is the first of the 7-consecutive-day period (Reg F commentary 14(b)(2)(ii))
    since = (day.normalize() - calls["borrower_id"].map(last)).dt.days
    assert not (since < 7).any(), calls[since < 7]
    plan_talks = log[log["channel"].isin(["repayment_plan", "settlement"]) & (log["action_at"] < day)]
    assert len(plan_talks) > 0  # the book has plan and settlement talks the old rule did not count


def test_lawful_looks_up_each_rows_own_action():
    rng = np.random.default_rng(3)
    allowed = pd.DataFrame(rng.random((200, len(ACTIONS))) < 0.5, columns=list(ACTIONS), index=rng.permutation(200))
    actions = rng.choice(list(ACTIONS), 200)
    expected = [allowed.at[i, a] for i, a in zip(allowed.index, actions, strict=True)]
    assert lawful(allowed, actions).tolist() == expected
    assert lawful(allowed, pd.Series(actions, index=allowed.index)).tolist() == expected
    with pytest.raises(KeyError, match="hug"):
        lawful(allowed, ["hug"] * 200)
