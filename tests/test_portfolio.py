"""Portfolio reports: buckets, roll and flow rates, vintages, entry, cure and recovery on a hand-made book
whose answers are worked out by hand; point in time (events after the extract date change nothing); the
stage's report."""

from __future__ import annotations

import pandas as pd
import pytest

from huishou import portfolio as P

from builders import action, application, book, schedule

D = pd.Timestamp
TOL, SHARE = 1.0, 1.0


@pytest.fixture
def tiny():
    apps = [application(1, disbursed="2024-12-05 10:00"), application(2, disbursed="2024-12-05 10:00")]
    on_time = {k: (d, 1000.0) for k, d in ((1, "2025-01-05"), (2, "2025-02-04"), (3, "2025-03-06"))}
    inst = schedule(1, "2025-01-05", n=3, paid=on_time) + schedule(2, "2025-01-05", n=3)  # loan 2 never pays
    acts = [
        action(
            2, "2025-01-10 10:00", channel="call", outcome="promise_to_pay", promised=1000, promised_date="2025-01-12"
        ),
        action(2, "2025-01-20 10:00", channel="call", outcome="no_answer"),
        action(2, "2025-01-21 10:00", channel="sms", outcome="no_answer"),
    ]
    return book(apps, inst, actions=acts)


def test_buckets_and_roll_rates_by_hand(tiny):
    h = P.bucket_history(tiny, D("2025-05-15"), TOL, SHARE)
    got = h.pivot(index="month", columns="loan_id", values="bucket")
    assert got[1].tolist() == ["current", "current", "current", "closed", "closed"]  # Jan .. May month starts
    assert got[2].tolist() == ["current", "1-30", "31-60", "61-90", "90+"]
    assert (
        h.loc[(h["loan_id"] == 2) & (h["month"] == D("2025-03-01")), "dpd"].item()
        == (D("2025-03-01") - D("2025-01-05")).days
    )
    matrix, flows = P.roll_rates(h)
    assert matrix.loc["1-30", "31-60"] == 1.0 and matrix.loc["61-90", "90+"] == 1.0
    assert matrix.loc["current", "closed"] == pytest.approx(1 / 4)  # loan 1: 3 current months, then closed
    assert flows.set_index("month").loc["2025-03", "1-30_to_31-60"] == 1.0


def test_vintage_entry_cure_and_recovery_by_hand(tiny):
    as_of = D("2025-05-15")
    v = P.vintages(tiny, as_of, TOL, SHARE).set_index("mob")
    # loan 2 is 30+ from 2025-02-05 (Jan 5 + 31 days): by Feb 1 (mob 2) not yet, by Mar 1 (mob 3) yes
    assert v.loc[2, "ever_30"] == 0.0 and v.loc[3, "ever_30"] == 0.5
    assert v.loc[4, "ever_90"] == 0.0 and v.loc[5, "ever_90"] == 0.5  # 90+ from 2025-04-05
    e = P.entry_rates(tiny, as_of, TOL, SHARE).set_index("month")
    assert e.loc["2025-01", "entry_rate"] == 0.5 and e.loc["2025-01", "installments"] == 2
    c = P.cure_curve(tiny, as_of, TOL, SHARE, default_dpd=30)
    assert (c["cure_rate"] == 0).all() and (c["installments"] == 3).all()  # loan 2's three, never cured
    r = P.recovery_rate(tiny, as_of, TOL, SHARE, default_dpd=30, days=60)
    assert r["defaulted_loans"] == 1 and r["recovery_rate"] == 0.0 and r["outstanding_at_default"] == 3000.0


def test_operations_kpis_by_hand(tiny):
    ops = P.operations(tiny, D("2025-05-15"), {"call": 5.0, "sms": 0.1, "none": 0.0}, 1, TOL, SHARE, 30)
    jan = ops.set_index("month").loc["2025-01"]
    assert jan["contacts"] == 3 and jan["reach_rate"] == pytest.approx(1 / 2)  # 2 calls, 1 reached (the promise)
    assert jan["promise_rate"] == 1.0 and jan["promise_kept_rate"] == 0.0  # nothing paid by Jan 12 + 1 day


def test_nothing_after_the_extract_date_changes_the_reports(book, settings):
    tables = book.raw_tables()
    as_of = settings.simulate.as_of - pd.Timedelta(days=120)
    f = settings.features
    inst = tables["installments"]
    cut = dict(tables)
    cut["installments"] = inst.assign(
        paid_date=inst["paid_date"].where(inst["paid_date"] < as_of),
        amount_paid=inst["amount_paid"].where(inst["paid_date"] < as_of, 0.0),
    )
    cut["collection_actions"] = tables["collection_actions"][tables["collection_actions"]["action_at"] < as_of]

    def reports(t):
        h = P.bucket_history(t, as_of, f.paid_tolerance, f.settle_share)
        return (
            h,
            P.roll_rates(h)[0],
            P.vintages(t, as_of, f.paid_tolerance, f.settle_share),
            P.entry_rates(t, as_of, f.paid_tolerance, f.settle_share),
            P.cure_curve(t, as_of, f.paid_tolerance, f.settle_share, f.default_dpd),
            pd.Series(P.recovery_rate(t, as_of, f.paid_tolerance, f.settle_share, f.default_dpd, 60)),
            P.operations(
                t, as_of, settings.strategy.costs, f.promise_grace_days, f.paid_tolerance, f.settle_share, f.default_dpd
            ),
        )

    for full, known in zip(reports(tables), reports(cut), strict=True):
        pd.testing.assert_frame_equal(full, known) if isinstance(
            full, pd.DataFrame
        ) else pd.testing.assert_series_equal(full, known)


def test_simulated_book_reports_are_sane(book, settings):
    tables = book.raw_tables()
    as_of = settings.simulate.as_of
    f = settings.features
    h = P.bucket_history(tables, as_of, f.paid_tolerance, f.settle_share)
    matrix, flows = P.roll_rates(h)
    assert ((matrix.sum(axis=1) - 1).abs() < 1e-9).all()
    assert flows.drop(columns="month").stack().dropna().between(0, 1).all()  # NaN: an empty bucket that month
    cure = P.cure_curve(tables, as_of, f.paid_tolerance, f.settle_share, f.default_dpd)
    assert cure["cure_rate"].iloc[0] > cure["cure_rate"].iloc[-1]  # the longer unpaid, the less likely cured
    v = P.vintages(tables, as_of, f.paid_tolerance, f.settle_share)
    for _, g in v.groupby("cohort"):  # cumulative: never decreasing with months on book
        assert g["ever_30"].is_monotonic_increasing and (g["ever_90"] <= g["ever_30"]).all()
