"""Choosing the champion: LightGBM on a large book, the best cross-validated model on a small one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from tests.conftest import ROOT_SETTINGS

from huishou.risk.selection import choose_champion, cross_validated_auc, model_fitters


def _linear_book(n: int, seed: int = 3, noise_columns: int = 6) -> tuple[pd.DataFrame, list[str]]:
    """A book whose risk is linear in two columns: a logistic regression is the right model for it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2 + noise_columns))
    logit = -1.0 + 1.2 * x[:, 0] - 0.9 * x[:, 1]
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, [c for c in frame.columns if c != "target"]


def _fitters(columns):
    train = dataclasses.replace(ROOT_SETTINGS.train, num_boost_round=100, early_stopping_rounds=20)
    scorecard = dataclasses.replace(ROOT_SETTINGS.scorecard, min_bin_size_by_feature={})
    return model_fitters(columns, train, scorecard)


def test_a_large_book_keeps_lightgbm_without_refitting_anything():
    frame, columns = _linear_book(400)

    def never(train, valid):
        raise AssertionError("no cross-validation on a book at or above small_book_rows")

    choice = choose_champion(frame, {"lightgbm": never}, small_book_rows=400, folds=5, repeats=3, seed=1)
    assert choice.champion == "lightgbm" and choice.rule == "default" and choice.table.empty
    assert "at least train.small_book_rows (400)" in choice.why


def test_too_few_bads_for_the_folds_keeps_the_default_and_says_so():
    frame, columns = _linear_book(300)
    frame["target"] = 0
    frame.loc[:5, "target"] = 1  # 6 bads: fewer than two per fold
    choice = choose_champion(frame, _fitters(columns), small_book_rows=5000, folds=5, repeats=2, seed=1)
    assert choice.champion == "lightgbm" and "6 in the smaller class" in choice.why


def test_on_a_small_linear_book_the_champion_is_the_best_cross_validated_model():
    frame, columns = _linear_book(700)
    fitters = _fitters(columns)
    per_fold = cross_validated_auc(frame, fitters, folds=4, repeats=2, seed=5)
    assert len(per_fold) == 4 * 2 * 3 and per_fold.groupby("model").size().eq(8).all()
    assert per_fold["auc"].between(0.6, 1).all()
    choice = choose_champion(frame, fitters, small_book_rows=5000, folds=4, repeats=2, seed=5)
    table = choice.table.set_index("model")
    means = per_fold.groupby("model")["auc"].mean()  # the same folds: the same numbers
    np.testing.assert_allclose(table.loc[means.index, "auc_mean"], means)
    assert choice.rule == "cross-validation" and choice.champion == means.idxmax()
    assert table.loc[choice.champion, "difference_to_champion"] == 0
    assert (table["difference_to_champion"] <= 0).all()
    # the linear truth: a logistic regression beats boosting on 700 rows (not a tie)
    assert means["logistic"] > means["lightgbm"] + 0.005 and choice.champion in ("logistic", "scorecard")
    for name in ("lightgbm", "logistic", "scorecard"):
        assert f"{name} {table.loc[name, 'auc_mean']:.3f}" in choice.why
    assert choice.to_dict()["cross_validation"][0]["folds"] == 8


def test_the_folds_are_shared_so_differences_are_paired():
    frame, columns = _linear_book(500)
    fitters = _fitters(columns)
    fitters = {"logistic": fitters["logistic"], "twin": fitters["logistic"]}
    per_fold = cross_validated_auc(frame, fitters, folds=3, repeats=1, seed=2)
    wide = per_fold.pivot_table(index=["repeat", "fold"], columns="model", values="auc")
    np.testing.assert_allclose(wide["logistic"], wide["twin"])  # the same model on the same folds
    assert wide["logistic"].std() > 0  # the folds differ
