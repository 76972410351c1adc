"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from huishou.risk.metrics import (
    calibration_table,
    classification_metrics,
    expected_calibration_error,
    ks_statistic,
    lift_at,
    lift_table,
)
from huishou.risk.model import Calibrator

Y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])


def test_ks_hand_computed():
    # cumulative bads captured minus goods captured peaks after 0.6: 3/3 - 1/5 = 0.8
    assert ks_statistic(Y, P) == pytest.approx(0.8)


def test_auc_gini_and_lift_hand_computed():
    m = classification_metrics(Y, P, lift_fraction=0.25, bins=2)
    assert m["auc"] == pytest.approx(14 / 15)  # 14 of 15 bad-good pairs ranked right
    assert m["gini"] == pytest.approx(2 * 14 / 15 - 1)
    assert m["lift_top_25pct"] == pytest.approx(1.0 / (3 / 8))
    assert lift_at(Y, P, 0.5) == pytest.approx((3 / 4) / (3 / 8))


def test_calibration_error_zero_when_perfect_and_positive_otherwise():
    p = np.repeat([0.1, 0.5], 10)
    y = np.concatenate([np.r_[np.ones(1), np.zeros(9)], np.r_[np.ones(5), np.zeros(5)]])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1), bins=2) == pytest.approx(0.2)
    table = calibration_table(y, p, bins=2)
    assert table["n"].tolist() == [10, 10]


def test_lift_table_is_a_ks_table():
    table = lift_table(Y, P, groups=4)
    assert table["bads"].tolist() == [2, 1, 0, 0]
    assert table["cum_bad_capture"].iloc[-1] == pytest.approx(1.0)
    assert table["ks"].max() == pytest.approx(ks_statistic(Y, P))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_fixes_a_biased_score(method):
    rng = np.random.default_rng(0)
    true = rng.uniform(0.01, 0.3, 20_000)
    y = (rng.random(true.size) < true).astype(int)
    biased = 1 / (1 + np.exp(-(np.log(true / (1 - true)) + 1.0)))  # over-confident by one logit
    cal = Calibrator(method).fit(biased, y)
    assert expected_calibration_error(y, biased) > 0.05
    assert expected_calibration_error(y, cal.transform(biased)) < 0.01
    if method == "platt":
        assert pd.Series(cal.transform(biased)).rank().equals(pd.Series(biased).rank())  # keeps the ranking


def test_performance_by_group_counts_each_group_and_its_share_of_the_flagged():
    from huishou.risk.metrics import age_band, performance_by_group

    ages = pd.Series([19, 24, 25, 40, 70, None, 30, 33])
    bands = age_band(ages).astype(object).where(age_band(ages).notna(), "missing").tolist()
    assert bands == ["18-24", "18-24", "25-34", "35-44", "65+", "missing", "25-34", "25-34"]
    y = np.array([1, 0, 1, 0, 0, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.05, 0.6])
    table = performance_by_group(y, p, age_band(ages), top_fraction=0.25).set_index("group")
    assert table["rows"].sum() == 8 and table.loc["25-34", "rows"] == 3 and table.loc["missing", "rows"] == 1
    assert table.loc["18-24", "auc"] == 1.0 and np.isnan(table.loc["35-44", "auc"])  # one outcome: no AUC
    assert table.loc["25-34", "bad_rate"] == pytest.approx(2 / 3)
    # the riskiest quarter (p >= 0.775): one loan of 18-24, one of 25-34
    assert table.loc["18-24", "share_of_flagged"] == 0.5 and table.loc["25-34", "flagged_rate"] == pytest.approx(1 / 3)
