"""Tabulated TreeSHAP gives LightGBM's own pred_contrib values: numeric splits with missing values, exact
zeros and values on a threshold (each missing_type), categorical splits with missing categories, rows in
threads, the fallback for paths too long to tabulate, and RiskModel.contributions on both sides of its
switch; linear trees are refused, as pred_contrib refuses them."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from huishou.risk import model as risk_model
from huishou.risk import treeshap
from huishou.risk.treeshap import TreeShap, lightgbm_matrix


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 6, n).astype(float),  # many exact zeros
            "c": rng.exponential(size=n),
            "d": rng.normal(size=n).round(1),
            "e": pd.Categorical(rng.choice(list("pqrstu"), n), categories=list("pqrstu")),
        }
    )
    x.loc[rng.random(n) < 0.15, "a"] = np.nan
    x.loc[rng.random(n) < 0.10, "c"] = np.nan
    x.loc[rng.random(n) < 0.05, "e"] = np.nan
    logit = x["a"].fillna(1.5) - 0.5 * x["b"] + np.log1p(x["c"].fillna(3)) + x["e"].cat.codes.isin([1, 4]) * 1.2
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 0.5)))).astype(int)
    return x, y.to_numpy()


@pytest.mark.parametrize(
    "extra",
    [
        {},  # missing_type NaN where a feature had NaN, None elsewhere
        {"zero_as_missing": True},  # missing_type Zero: zeros take the default side
        {"use_missing": False},  # NaN treated as zero
    ],
)
def test_tabulated_treeshap_equals_lightgbm_pred_contrib(extra):
    x, y = _data(4000, 1)
    params = {"objective": "binary", "num_leaves": 31, "max_depth": 5, "min_data_in_leaf": 5, "verbose": -1}
    booster = lgb.train(params | extra, lgb.Dataset(x, y), num_boost_round=60)
    new, _ = _data(3000, 2)  # other rows: values between the training ones, NaN, zeros
    new.loc[:9, "b"] = -0.0
    splits = booster.trees_to_dataframe().query("decision_type == '<='")
    for column in ("a", "c", "d"):  # values exactly on a threshold go left (x <= t)
        on = splits.loc[splits["split_feature"] == column, "threshold"].astype(float).to_numpy()[:200]
        new.loc[new.index[-len(on) :], column] = on
    expected = booster.predict(new, pred_contrib=True)
    explainer = TreeShap(booster)
    got = explainer.contributions(lightgbm_matrix(new), num_threads=1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert explainer.coding[4].cuts is None and explainer.coding[0].cuts is not None  # e by category, a by cuts


def test_row_ranges_in_threads_and_the_deep_path_fallback_give_the_same_values(monkeypatch):
    """Rows split over threads (each range its own columns of the sums) and a model whose paths are too
    long to tabulate (LightGBM's own TreeSHAP then) both give pred_contrib's values."""
    x, y = _data(9000, 3)  # 9,000 rows on 3 threads: three ranges of 3,000
    booster = lgb.train({"objective": "binary", "max_depth": 5, "verbose": -1}, lgb.Dataset(x, y), 30)
    matrix = lightgbm_matrix(x)
    expected = booster.predict(x, pred_contrib=True)
    np.testing.assert_allclose(TreeShap(booster).contributions(matrix, num_threads=3), expected, rtol=0, atol=1e-10)
    monkeypatch.setattr(treeshap, "MAX_PATH_FEATURES", 1)
    deep = TreeShap(booster)
    assert deep.too_deep
    np.testing.assert_allclose(deep.contributions(matrix), expected, rtol=0, atol=1e-12)


def test_risk_model_contributions_agree_on_both_sides_of_the_switch(monkeypatch):
    """Few rows go to pred_contrib directly, many through TreeShap: the same values either way."""
    x, y = _data(5000, 4)
    booster = lgb.train({"objective": "binary", "max_depth": 5, "verbose": -1}, lgb.Dataset(x, y), 40)
    contract = risk_model.FeatureContract(list(x.columns), {"e": list("pqrstu")})
    model = risk_model.RiskModel("lightgbm", booster, risk_model.Calibrator("none"), contract)
    tabulated = model.contributions(x)
    assert model._treeshap is not None  # 5000 rows >= 24 x 40 trees: the tables
    monkeypatch.setattr(risk_model, "TREESHAP_TABLE_ROWS_PER_TREE", 10**9)
    direct = risk_model.RiskModel("lightgbm", booster, risk_model.Calibrator("none"), contract).contributions(x)
    pd.testing.assert_frame_equal(tabulated, direct, check_exact=False, rtol=0, atol=1e-10)
    assert list(tabulated.columns) == [*x.columns, "bias"]


def test_linear_trees_are_refused_not_explained_wrongly():
    """A linear tree's leaf value depends on the row: the tables would silently leave that out, so they refuse
    such a model, as LightGBM's own pred_contrib does."""
    rng = np.random.default_rng(5)
    x = rng.random((2000, 3))
    booster = lgb.train(
        {"objective": "regression", "linear_tree": True, "verbose": -1},
        lgb.Dataset(x, 2 * x[:, 0] + rng.random(2000)),
        3,
    )
    with pytest.raises(ValueError, match="linear trees"):
        TreeShap(booster)
    with pytest.raises(lgb.basic.LightGBMError, match="linear trees"):
        booster.predict(x, pred_contrib=True)
