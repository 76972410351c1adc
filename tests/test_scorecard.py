"""Scorecard challenger: IV and KS against hand-computed cases, save/reload round trip, SQL export."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from huishou.core.settings import load_settings
from huishou.features import feature_columns
from huishou.risk.metrics import ks_statistic, lift_table
from huishou.risk.scorecard import ScorecardModel, fit_scorecard, points_shortfall, select_features

CFG = load_settings("params.yaml").scorecard


def test_iv_matches_hand_computation():
    # x in {0, 1}: bin 0 has 80 goods / 20 bads, bin 1 has 20 goods / 80 bads
    x = np.r_[np.zeros(100), np.ones(100)]
    y = np.r_[np.zeros(80), np.ones(20), np.zeros(20), np.ones(80)].astype(int)
    g, b = np.array([80, 20]) / 100, np.array([20, 80]) / 100
    hand_iv = float(np.sum((g - b) * np.log(g / b)))  # = 1.6636
    _, table = select_features(pd.DataFrame({"x": x}), y, dataclasses.replace(CFG, min_bin_size=0.1))
    assert table.set_index("variable").loc["x", "iv"] == pytest.approx(hand_iv, rel=1e-6)
    assert "optbinning" in table["binning_method"].iloc[0]


def test_ks_decile_table_matches_hand_computation():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0.1, 10)
    table = lift_table(y, p, groups=5)  # pairs: (1,1) (0,1) (0,0) (0,0) (0,0)
    assert table["bads"].tolist() == [2, 1, 0, 0, 0]
    # after the second group: 3/3 bads captured, 1/7 goods -> KS 6/7
    assert table["ks"].max() == pytest.approx(6 / 7) == ks_statistic(y, p)


@pytest.fixture(scope="module")
def card(features):
    train = features[features["split"] == "train"]
    return fit_scorecard(train, feature_columns(features), CFG)


def test_card_keeps_informative_features_and_scales_points(card, features):
    model, table = card
    kept = table[table["decision"] == "kept"]
    assert set(model.variables) == set(kept["variable"]) and (kept["iv"] >= CFG.min_iv).all()
    test = features[features["split"] == "test"]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test["target"].astype(int), model.probability(test)) > 0.75
    # PDO scaling: a score higher by pdo points halves the bad:good odds
    odds = lambda s: np.exp((s - model.offset) / model.factor)  # noqa: E731
    assert odds(model.base_score + model.pdo) / odds(model.base_score) == pytest.approx(2.0)
    assert odds(model.base_score) == pytest.approx(model.base_odds)


def test_save_and_reload_exactly(card, features, tmp_path):
    model, _ = card
    model.to_json(tmp_path / "card.json")
    again = ScorecardModel.from_json(tmp_path / "card.json")
    np.testing.assert_array_equal(again.score(features), model.score(features))
    pd.testing.assert_frame_equal(again.points, model.points, check_dtype=False)


def test_sql_export_gives_the_same_scores(card, features):
    model, _ = card
    frame = features[["loan_id", "snapshot_date", *model.variables]].head(3000)
    con = duckdb.connect()
    con.register("features", frame)
    sql_scores = con.sql(model.to_sql("features")).df()
    np.testing.assert_allclose(sql_scores["score"].to_numpy(), model.score(frame), rtol=0, atol=1e-9)


def test_points_shortfall_is_zero_in_the_best_bin_and_positive_elsewhere(card, features):
    model, _ = card
    gap = points_shortfall(model, features.head(500))
    assert (gap.to_numpy() >= -1e-12).all() and (gap.to_numpy() > 0).any()


def test_reason_codes_for_both_models_are_plain_words(card, features):
    from huishou.risk.explain import REASONS, reason_codes
    from huishou.risk.model import Calibrator, FeatureContract, RiskModel

    model, _ = card
    wrapped = RiskModel("scorecard", model, Calibrator("none"), FeatureContract.from_frame(features, model.variables))
    risky = features[features["rp_dpd_now"] > 10].head(20)
    reasons = reason_codes(wrapped, risky)
    assert list(reasons.columns) == ["reason_1", "reason_2", "reason_3"]
    assert reasons["reason_1"].isin(set(REASONS.values())).mean() > 0.5
    assert not reasons["reason_1"].str.contains("_").any()


def test_the_card_fitted_beside_the_other_models_is_the_card_fitted_here(card, features):
    """`scorecard_beside` (train fits the card in a process of its own while LightGBM and the logistic fit,
    leaving them one thread fewer) gives the card this process fits: the same bins, points and IV table, and
    a calibration equal to the last bits (BLAS on one thread there); with one thread it fits here."""
    from concurrent.futures import Future

    from huishou.risk.train import fit_scorecard_model, scorecard_beside

    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    columns = feature_columns(features)
    here, here_iv = fit_scorecard_model(train, valid, columns, CFG, 0)
    with scorecard_beside(train, valid, columns, CFG, 0, threads=2) as (fitted, left):
        assert left == 1 and isinstance(fitted.__self__, Future)  # a process's result to wait for
        beside, beside_iv = fitted()
    pd.testing.assert_frame_equal(beside.estimator.points, here.estimator.points)
    pd.testing.assert_frame_equal(beside_iv, here_iv)
    np.testing.assert_allclose(beside.predict_proba(valid), here.predict_proba(valid), rtol=1e-12)
    with scorecard_beside(train, valid, columns, CFG, 0, threads=1) as (fitted, left):
        assert left == 1 and not isinstance(getattr(fitted, "__self__", None), Future)  # fitted here when called
        alone, _ = fitted()
    with scorecard_beside(train, valid, columns, CFG, 0, threads=2, beside=False) as (later, left):
        assert left == 2 and not isinstance(getattr(later, "__self__", None), Future)  # the Dask refit's case
    pd.testing.assert_frame_equal(alone.estimator.points, here.estimator.points)
