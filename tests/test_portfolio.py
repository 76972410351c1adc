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


# ---------------------------------------------------------------- the annualised-cost ceiling


def _annuity_book(rates: dict[int, float], disbursed: str = "2025-11-01", fee: dict[int, float] | None = None):
    import numpy as np

    from huishou.simulate.borrowers import annuity_of

    apps = pd.DataFrame(
        {
            "loan_id": list(rates),
            "disbursed_at": pd.Timestamp(disbursed),
            "amount": 1200.0,
            "term_months": 12,
            "rate": list(rates.values()),
        }
    )
    if fee:
        apps["upfront_fee"] = [fee.get(k, 0.0) for k in rates]
    rows = []
    for loan, rate in rates.items():
        pay = annuity_of(np.array([1200.0]), np.array([rate]), np.array([12]))[0]
        rows += [
            {"loan_id": loan, "due_date": pd.Timestamp(disbursed) + pd.DateOffset(months=k), "amount_due": pay}
            for k in range(1, 13)
        ]
    return apps, pd.DataFrame(rows)


def test_annualised_cost_is_the_irr_of_the_schedule_fees_included():
    """A 12-month annuity at 24 % nominal costs 24 % nominal (12 x the monthly IRR) and about 26.8 %
    effective; an upfront fee of 5 % of the amount lifts the same schedule above the ceiling."""
    apps, inst = _annuity_book({1: 0.24, 2: 0.18, 3: 0.24}, fee={3: 60.0})
    cost = P.annualised_cost(apps, inst).set_index("loan_id")
    assert cost.at[1, "nominal_cost"] == pytest.approx(0.24, abs=0.003)
    assert cost.at[1, "effective_cost"] == pytest.approx((1 + 0.24 / 12) ** 12 - 1, abs=0.004)
    assert cost.at[2, "nominal_cost"] == pytest.approx(0.18, abs=0.003)
    assert cost.at[3, "nominal_cost"] > 0.33  # the fee paid at the start is part of the cost


def test_the_ceiling_report_counts_the_loans_the_rule_governs_and_lists_them():
    """NFRA 金规〔2025〕9号: comprehensive annualised financing cost at most 24 %, fees included, from 2025-10-01."""
    new, new_inst = _annuity_book({1: 0.30, 2: 0.20, 3: 0.2399})
    old, old_inst = _annuity_book({4: 0.36}, disbursed="2025-03-01")
    apps, inst = pd.concat([new, old], ignore_index=True), pd.concat([new_inst, old_inst], ignore_index=True)
    cost = P.annualised_cost(apps, inst)
    summary, by_month = P.ceiling_report(cost, 0.24, "2025-10-01", "nominal", pd.Timestamp("2026-01-01"))
    assert summary["loans"] == 4 and summary["above_ceiling"] == 2 and summary["governed_above_ceiling"] == 1
    assert summary["effective_above_ceiling"] == 3  # 23.99 % nominal is above 24 % effective
    assert "1 loan(s) disbursed since 2025-10-01" in summary["verdict"]
    assert P.above_ceiling(cost, 0.24, "nominal", "2025-10-01")["loan_id"].tolist() == [1]
    assert by_month.set_index("month").loc[pd.Timestamp("2025-03-01"), "share_above"] == 1.0


def test_a_book_without_a_defaulted_loan_has_no_recovery_rate(tiny):
    """Before any loan defaults (an early extract date) the recovery counts are zero and the rate is None."""
    r = P.recovery_rate(tiny, D("2025-01-20"), TOL, SHARE, default_dpd=30, days=60)
    assert r == {"defaulted_loans": 0, "recovery_rate": None}
    assert P.recovery_counts(tiny, D("2025-01-20"), TOL, SHARE, 30, 60).sum() == 0
