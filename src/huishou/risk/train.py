"""Fitting the overdue-risk models: LightGBM (local or lightgbm.dask), the logistic challenger and the
points scorecard, each calibrated on the validation snapshots. No file or MLflow I/O happens here.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from huishou.core.engine import close_dask, dask_client
from huishou.core.errors import ConfigError
from huishou.core.settings import ScorecardSettings, TrainSettings
from huishou.risk.model import Calibrator, FeatureContract, RiskModel, design_matrix
from huishou.risk.scorecard import fit_scorecard


def fit_scorecard_model(
    train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg: ScorecardSettings, seed: int
) -> tuple[RiskModel, pd.DataFrame]:
    """The points scorecard challenger (huishou.risk.scorecard), wrapped and calibrated like the other models."""
    sample = train.sample(min(len(train), cfg.sample_rows), random_state=seed)
    card, iv_table = fit_scorecard(sample, columns, cfg)
    model = RiskModel("scorecard", card, Calibrator("none"), FeatureContract.from_frame(train, card.variables))
    model.calibrator = Calibrator("platt").fit(model.raw_score(valid), valid["target"].astype(int).to_numpy())
    return model, iv_table


def informative_columns(train: pd.DataFrame, columns: list[str]) -> tuple[list[str], dict[str, str]]:
    """(the columns that carry information on the training rows, the others with why: "all missing" or
    "constant"): a column with one value or none cannot split a tree, get a logistic weight or form a bin."""
    dropped = {}
    for c in columns:
        values = train[c]
        if values.notna().sum() == 0:
            dropped[c] = "all missing"
        elif values.nunique(dropna=True) <= 1:
            dropped[c] = "constant"
    return [c for c in columns if c not in dropped], dropped


def lightgbm_params(
    cfg: TrainSettings, columns: list[str], declared: dict[str, int] | None = None, dropped=(), threads: int = 0
) -> dict:
    """LightGBM parameters from params.yaml `train`, monotone constraints laid out in column order: the
    directions declared with the lender's own columns (`declared`), overridden by train.monotone_constraints
    (a constrained column `dropped` as uninformative is no error); `threads` is compute.threads made concrete
    (0: LightGBM's own default, one per core)."""
    params = {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "max_depth": cfg.max_depth,
        "min_child_samples": cfg.min_child_samples,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": cfg.lambda_l2,
        "seed": cfg.seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
        "num_threads": int(threads),
    }
    if cfg.monotone:
        families = {c.split("_", 1)[0] for c in columns}  # a family the mode does not build (rp_ in origination)
        unknown = sorted(
            k for k in set(cfg.monotone_constraints) - set(columns) - set(dropped) if k.split("_", 1)[0] in families
        )
        if unknown:
            raise ConfigError(f"params.yaml train.monotone_constraints names unknown feature(s): {unknown}")
        directions = {k: v for k, v in (declared or {}).items() if k in columns} | dict(cfg.monotone_constraints)
        params["monotone_constraints"] = [int(directions.get(c, 0)) for c in columns]
        params["monotone_constraints_method"] = "intermediate"
    return params


def fit_lightgbm(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    columns: list[str],
    cfg: TrainSettings,
    monotone: dict | None = None,
    dropped=(),
    threads: int = 0,
) -> RiskModel:
    """Gradient boosting with early stopping on the validation snapshots, then calibration on them, on
    `threads` threads (0: LightGBM's default)."""
    contract = FeatureContract.from_frame(train, columns)
    x_train, x_valid = contract.align(train), contract.align(valid)
    y_train, y_valid = train["target"].astype(int), valid["target"].astype(int)
    params = lightgbm_params(cfg, columns, monotone, dropped, threads)
    dtrain = lgb.Dataset(x_train, y_train, free_raw_data=False)
    dvalid = lgb.Dataset(x_valid, y_valid, reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        cfg.num_boost_round,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    model = RiskModel(
        "lightgbm",
        booster,
        Calibrator("none"),
        contract,
        {"best_iteration": booster.best_iteration, "params": params},
        num_threads=int(threads),
    )
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), y_valid.to_numpy())
    return model


def logistic_pipeline(frame: pd.DataFrame, columns: list[str], C: float) -> Pipeline:
    categorical = [c for c in columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in columns if c not in categorical]
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
    )
    prep = ColumnTransformer(
        [
            ("num", numeric_steps, numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(C=C, max_iter=2000))])


def fit_logistic(train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg: TrainSettings) -> RiskModel:
    """The challenger: standardised logistic regression with missing indicators, calibrated like the champion."""
    contract = FeatureContract.from_frame(train, columns)
    x = contract.align(train)
    pipe = logistic_pipeline(train, columns, cfg.logreg_C).fit(x, train["target"].astype(int))
    centre = design_matrix(pipe, x).mean(axis=0)  # reason codes: each input's distance from the training mean
    model = RiskModel("logistic", pipe, Calibrator("none"), contract, {"centre": centre.round(12).tolist()})
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), valid["target"].astype(int).to_numpy())
    return model


def top_features(model: RiskModel, n: int) -> list[str]:
    """The n features with the largest total split gain."""
    gain = pd.Series(model.estimator.feature_importance("gain"), index=model.contract.columns)
    return gain.sort_values(ascending=False).head(n).index.tolist()


def best_iteration(booster: lgb.Booster, x_valid: pd.DataFrame, y_valid: np.ndarray, step: int = 10) -> int:
    """Iteration with the lowest validation log-loss, scanning in blocks of `step` trees (raw scores accumulate)."""
    raw = np.zeros(len(x_valid))
    best, best_loss = step, np.inf
    for start in range(0, booster.num_trees(), step):
        raw += booster.predict(x_valid, start_iteration=start, num_iteration=step, raw_score=True)
        p = np.clip(1 / (1 + np.exp(-raw)), 1e-12, 1 - 1e-12)
        loss = -np.mean(y_valid * np.log(p) + (1 - y_valid) * np.log(1 - p))
        if loss < best_loss:
            best, best_loss = min(start + step, booster.num_trees()), loss
    return best


def fit_lightgbm_dask(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    columns: list[str],
    cfg: TrainSettings,
    monotone: dict | None = None,
    dropped=(),
    threads: int = 2,
    client=None,
) -> RiskModel:
    """The same model trained with `lightgbm.dask` on a Dask cluster (`client`, else a local one of
    `threads` single-threaded worker processes).

    lightgbm.dask has no early stopping, so all rounds are trained and the best validation
    iteration is chosen afterwards; calibration is then fitted exactly as in `fit_lightgbm`.
    """
    import dask.dataframe as dd
    from lightgbm import DaskLGBMClassifier

    contract = FeatureContract.from_frame(train, columns)
    own = client is None
    client = client or dask_client(None, threads)
    try:
        workers = client.scheduler_info().get("workers", {})
        parts = max(1, len(workers))
        x = dd.from_pandas(contract.align(train), npartitions=parts)
        y = dd.from_pandas(train["target"].astype(int), npartitions=parts)
        params = lightgbm_params(cfg, columns, monotone, dropped)
        params.pop("force_col_wise", None)
        params.pop("num_threads")  # lightgbm.dask gives each worker its own thread count (1 in huishou's clusters)
        clf = DaskLGBMClassifier(client=client, n_estimators=cfg.num_boost_round, **params).fit(x, y)
        booster = clf.booster_
        params["num_threads"] = max((int(w.get("nthreads", 1)) for w in workers.values()), default=1)
    finally:
        if own:
            close_dask(client)
    y_valid = valid["target"].astype(int).to_numpy()
    booster.best_iteration = best_iteration(booster, contract.align(valid), y_valid)
    model = RiskModel(
        "lightgbm",
        booster,
        Calibrator("none"),
        contract,
        {"best_iteration": booster.best_iteration, "params": params, "engine": "dask"},
    )
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), y_valid)
    return model
