"""Every feature family and the target on hand-made books with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from huishou.features import build_features

from builders import D, action, application, book, callback, schedule
from conftest import ROOT_SETTINGS

AS_OF = D("2026-01-01")
F = ROOT_SETTINGS.features  # the hand-computed answers assume horizon 60, default 30 DPD, tolerance 0.01


def build(tables, *snaps, as_of=AS_OF):
    return build_features(tables, [D(s) for s in snaps], **F.build_kwargs(as_of))


def test_hand_computed_answers_use_the_documented_params():
    assert (F.horizon_days, F.default_dpd, F.paid_tolerance, F.settle_share) == (60, 30, 0.01, 1.0)
    assert (F.late_thresholds, F.recent_days, F.promise_grace_days) == ([1, 7, 15, 30], [90, 180], 3)


def row(frame, loan_id, snap):
    hit = frame[(frame["loan_id"] == loan_id) & (frame["snapshot_date"] == D(snap))]
    assert len(hit) == 1, f"loan {loan_id} at {snap}: {len(hit)} rows"
    return hit.iloc[0]


@pytest.fixture
def repayment_book():
    late_then_partial = schedule(
        1, "2025-01-31", paid={1: ("2025-01-30", 1000), 2: ("2025-03-12", 1000), 3: ("2025-04-10", 500)}
    )
    cured_day_29 = schedule(
        2,
        "2025-01-31",
        paid={1: ("2025-03-01", 1000)}
        | {s: (str((D("2025-01-31") + pd.Timedelta(days=30 * (s - 1))).date()), 1000) for s in range(2, 7)},
    )
    paid_day_30 = schedule(3, "2025-01-31", paid={1: ("2025-03-02", 1000)})
    closed = schedule(4, "2025-01-31", paid={s: ("2025-01-20", 1000) for s in range(1, 7)})
    apps = [application(i) for i in (1, 2, 3, 4)]
    return book(apps, late_then_partial + cured_day_29 + paid_day_30 + closed)


def test_repayment_features_match_hand_computation(repayment_book):
    r = row(build(repayment_book, "2025-04-15"), 1, "2025-04-15")
    assert (r.rp_n_due, r.rp_dpd_now, r.rp_dpd_max) == (3, 14, 14)
    assert r.rp_dpd_mean == pytest.approx(8.0)
    assert (r.rp_n_late_1, r.rp_n_late_7, r.rp_n_late_15, r.rp_n_late_30) == (2, 2, 0, 0)
    assert r.rp_paid_ratio == pytest.approx(2500 / 3000)
    assert r.rp_n_partial == 1
    assert r.rp_days_paid_vs_due_mean == pytest.approx(4.5)
    assert (r.rp_dpd_last, r.rp_paid_ratio_last, r.rp_last_amount_due) == (14, 0.5, 1000)  # seq 3
    assert r.rp_last_due_to_amount == pytest.approx(1000 / 6000)
    # due 74, 44 and 14 days before T: all three in the 90-day window
    assert (r.rp_dpd_mean_90d, r.rp_dpd_mean_180d, r.rp_n_late_90d) == (pytest.approx(8.0), pytest.approx(8.0), 2)
    assert r.rp_paid_ratio_90d == pytest.approx(2500 / 3000)
    assert r.rp_dpd_trend == pytest.approx(0.0)
    assert r.rp_dpd_slope == pytest.approx(7.0)  # least squares through (1, 0), (2, 10), (3, 14)
    assert r.rp_days_since_payment == 5
    assert r.rp_days_to_next_due == 16
    assert (r.rp_n_remaining, r.rp_n_prepaid) == (3, 0)
    assert r.rp_outstanding == pytest.approx(3500.0)


def test_loan_with_nothing_due_or_paid_yet_has_zero_counts_and_schedule_totals():
    """Nothing due or paid before T: no installment enters the aggregation, counts are 0 (not missing),
    remaining and outstanding come from the schedule, a prepayment counts where it was made."""
    fresh = schedule(1, "2025-03-01")
    prepaid = schedule(2, "2025-03-01", paid={1: ("2025-02-10", 1000), 2: ("2025-02-10", 400)})
    r = row(build(book([application(1), application(2)], fresh + prepaid), "2025-02-15"), 1, "2025-02-15")
    assert (r.rp_n_due, r.rp_dpd_now, r.rp_dpd_max, r.rp_n_late_1, r.rp_n_partial, r.rp_n_prepaid) == (0, 0, 0, 0, 0, 0)
    assert pd.isna(r.rp_dpd_mean) and pd.isna(r.rp_paid_ratio) and pd.isna(r.rp_dpd_slope)
    assert (r.rp_n_remaining, r.rp_outstanding, r.rp_days_to_next_due) == (6, 6000, 14)
    p = row(build(book([application(1), application(2)], fresh + prepaid), "2025-02-15"), 2, "2025-02-15")
    assert (p.rp_n_due, p.rp_n_prepaid, p.rp_n_remaining) == (0, 1, 6)
    assert p.rp_outstanding == pytest.approx(6000 - 1400) and p.rp_days_since_payment == 5


def test_payment_on_or_after_T_is_invisible(repayment_book):
    r = row(build(repayment_book, "2025-03-05"), 1, "2025-03-05")
    assert r.rp_dpd_now == 3  # seq 2 (due Mar 2) is paid on Mar 12, after T
    assert r.rp_paid_ratio == pytest.approx(0.5)


def test_target_is_first_30dpd_within_horizon(repayment_book):
    frame = build(repayment_book, "2025-03-05", "2025-02-15", "2025-04-15")
    assert row(frame, 1, "2025-03-05").target == 1  # seq 3 defaults on May 1, inside (Mar 5, May 4]
    assert row(frame, 1, "2025-04-15").target == 1
    assert row(frame, 2, "2025-02-15").target == 0  # paid on day 29: never 30 DPD
    assert row(frame, 3, "2025-02-15").target == 1  # paid on day 30: reached 30 DPD


def test_defaulted_and_closed_loans_leave_the_population(repayment_book):
    frame = build(repayment_book, "2025-05-02", "2025-07-15")
    assert not ((frame["loan_id"] == 1) & (frame["snapshot_date"] == D("2025-05-02"))).any()  # defaulted May 1
    assert not ((frame["loan_id"] == 4) & (frame["snapshot_date"] == D("2025-07-15"))).any()  # fully repaid
    assert not ((frame["loan_id"] == 1) & (frame["snapshot_date"] == D("2025-07-15"))).any()


def test_target_unknown_when_window_passes_extract_date(repayment_book):
    frame = build(repayment_book, "2025-04-15", as_of=D("2025-05-01"))
    assert pd.isna(row(frame, 1, "2025-04-15").target)


def test_loans_disbursed_on_or_after_T_are_not_scored(repayment_book):
    frame = build(repayment_book, "2025-01-01")
    assert frame.empty


def test_application_ratios():
    tables = book(
        [application(1, amount=6000.0, declared_income=5000.0, disbursed="2025-01-01 10:00")],
        schedule(1, "2025-01-31", amount=1100.0),
    )
    r = row(build(tables, "2025-02-10"), 1, "2025-02-10")
    assert r.app_amount_to_income == pytest.approx(1.2)
    assert r.app_annuity_to_income == pytest.approx(0.22)
    assert r.app_loan_age_days == 40  # Jan 1 -> Feb 10
    assert r.app_hours_to_disburse == 5
    assert r.app_purpose == "consumption"


@pytest.fixture
def callback_book():
    calls = [
        callback(5, "2025-01-01 11:00", reached=False),
        callback(5, "2025-01-02 11:00", purpose="travel", income=4000.0),
        callback(6, "2025-01-01 12:00", answered_by="other"),
    ]
    apps = [application(5), application(6), application(7)]
    return book(apps, schedule(5, "2025-01-31") + schedule(6, "2025-01-31") + schedule(7, "2025-01-31"), calls)


def test_callback_features_see_only_calls_before_T(callback_book):
    early = row(build(callback_book, "2025-01-02"), 5, "2025-01-02")
    assert (early.cb_n_attempts, early.cb_reached, early.cb_n_inconsistencies) == (1, 0, 1)
    assert pd.isna(early.cb_purpose_mismatch)
    late = row(build(callback_book, "2025-01-10"), 5, "2025-01-10")
    assert (late.cb_n_attempts, late.cb_reached, late.cb_attempts_to_reach) == (2, 1, 2)
    assert (late.cb_purpose_mismatch, late.cb_employer_mismatch, late.cb_identity_failed) == (1, 0, 0)
    assert late.cb_income_ratio == pytest.approx(0.8)
    assert late.cb_days_to_reach == pytest.approx(25 / 24)
    assert late.cb_n_inconsistencies == 2  # purpose mismatch + income understated


def test_third_party_answer_and_never_called(callback_book):
    frame = build(callback_book, "2025-01-10")
    other = row(frame, 6, "2025-01-10")
    assert (other.cb_third_party, other.cb_n_inconsistencies) == (1, 1)
    never = row(frame, 7, "2025-01-10")
    assert never.cb_n_attempts == 0 and pd.isna(never.cb_reached)


def test_absent_callback_table_leaves_features_missing_not_faked(callback_book):
    tables = {k: v for k, v in callback_book.items() if k != "callbacks"}
    frame = build(tables, "2025-01-10")
    cb = [c for c in frame.columns if c.startswith("cb_")]
    assert cb and frame[cb].isna().all().all()


def test_collection_features_and_promises():
    inst = schedule(2, "2025-01-31", paid={1: ("2025-03-01", 1000)})
    acts = [
        action(2, "2025-02-01 10:00", channel="sms", outcome="reached", collector=None),
        action(2, "2025-02-05 10:00", channel="none", outcome="none", collector=None),
        action(2, "2025-02-10 10:00", outcome="promise_to_pay", promised=1000.0),
        action(2, "2025-02-26 12:00", outcome="promise_to_pay", promised=1000.0),
    ]
    tables = book([application(2)], inst, actions=acts)
    r = row(build(tables, "2025-03-10"), 2, "2025-03-10")
    assert (r.cl_n_contacts, r.cl_n_contacts_30d, r.cl_n_calls_visits) == (3, 2, 2)
    assert r.cl_reach_rate == pytest.approx(1.0)
    assert (r.cl_promises_kept, r.cl_promises_broken) == (1, 1)
    assert r.cl_days_since_contact == pytest.approx(11.5)
    pending = row(build(tables, "2025-02-28"), 2, "2025-02-28")
    assert (pending.cl_promises_kept, pending.cl_promises_broken) == (0, 1)  # Feb 26 promise still in grace


def test_earlier_loans_seen_as_of_T():
    first = schedule(
        1, "2024-06-01", n=3, paid={1: ("2024-06-11", 1000), 2: ("2024-07-01", 1000), 3: ("2024-07-30", 1000)}
    )
    second = schedule(2, "2024-09-01", n=3)
    apps = [
        application(1, borrower_id=9, disbursed="2024-05-02 10:00"),
        application(2, borrower_id=9, disbursed="2024-08-02 10:00", n_earlier_loans=1),
    ]
    frame = build(book(apps, first + second), "2024-08-15")
    r = row(frame, 2, "2024-08-15")
    assert (r.pl_n_loans_seen, r.pl_dpd_max, r.pl_ever_30) == (1, 10, 0)
    assert r.pl_late_rate == pytest.approx(1 / 3)
    assert not (frame["loan_id"] == 1).any()  # the first loan is repaid, so it is not scored
    assert np.isnan(row(build(book(apps, first + second), "2024-07-15"), 1, "2024-07-15").pl_dpd_max)
