"""Fitting the overdue-risk models: LightGBM (local or lightgbm.dask), the logistic challenger and the
points scorecard, each calibrated on the validation snapshots. No file or MLflow I/O happens here.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial

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


def _one_thread() -> None:
    """A scorecard process's initializer: BLAS on one thread (its one core of compute.threads)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


@contextmanager
def scorecard_beside(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    columns: list[str],
    cfg: ScorecardSettings,
    seed: int,
    threads: int,
    beside: bool = True,
):
    """Fit the scorecard in a process of its own while the caller fits the other models: yields (a function
    that returns `fit_scorecard_model`'s result, the threads left to the caller). optbinning bins one feature
    at a time in Python, so the card takes one core: with two threads or more it takes one of them (the same
    card as in this process: the same seeded fit); with one, or `beside` False, the function fits it here
    when called and the caller keeps every thread. Spawned, not forked: no copied LightGBM or BLAS threads."""
    if threads < 2 or not beside:
        yield partial(fit_scorecard_model, train, valid, columns, cfg, seed), threads
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_one_thread) as pool:
        yield pool.submit(fit_scorecard_model, train, valid, columns, cfg, seed).result, threads - 1


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


def _labelled_train_rows(path: str, contract: FeatureContract) -> pd.DataFrame:
    """One feature file's labelled train rows as the model's inputs (the contract's columns and categories)
    and the target: what a Dask worker reads for lightgbm.dask."""
    part = pd.read_parquet(path, columns=[*contract.columns, "target", "split"], filters=[("split", "==", "train")])
    part = part[part["target"].notna()]
    return contract.align(part).assign(target=part["target"].astype(int).to_numpy())


def fit_lightgbm_dask(
    files: list,
    single: RiskModel,
    valid: pd.DataFrame,
    cfg: TrainSettings,
    threads: int = 2,
    client=None,
) -> RiskModel:
    """LightGBM trained with `lightgbm.dask` on a Dask cluster (`client`, else a local one of `threads`
    single-threaded worker processes) over every labelled train row of the feature `files` (a features file
    or the parts of a bucketed build), each read by a worker, never gathered in this process.

    The Dask interface cannot early-stop (LightGBM issues #5963, #7009), so the number of rounds is fixed by
    the single-node fit `single` (early-stopped on the validation snapshots, possibly on a train.max_rows
    sample), whose parameters and feature contract it shares; calibration is fitted on `valid` as in
    `fit_lightgbm`. meta["partitioning"] records the partitions, their rows and the workers.
    """
    import dask.dataframe as dd
    from lightgbm import DaskLGBMClassifier

    contract = single.contract
    rounds = int(single.meta["best_iteration"]) or cfg.num_boost_round
    params = dict(single.meta["params"])
    params.pop("force_col_wise", None)
    params.pop("num_threads", None)  # lightgbm.dask gives each worker its own thread count (1 in huishou's clusters)
    own = client is None
    client = client or dask_client(None, threads)
    try:
        workers = client.scheduler_info().get("workers", {})
        n_workers = max(1, len(workers))
        read = partial(_labelled_train_rows, contract=contract)
        meta = contract.align(valid.head(0)).assign(target=np.array([], dtype=int))
        rows = dd.from_map(read, [str(f) for f in files], meta=meta, enforce_metadata=False)
        if rows.npartitions < n_workers:  # every worker holds a share
            rows = rows.repartition(npartitions=n_workers)
        rows = client.persist(rows)
        sizes = [int(n) for n in rows.map_partitions(len).compute()]
        x, y = rows[list(contract.columns)], rows["target"]
        clf = DaskLGBMClassifier(client=client, n_estimators=rounds, **params).fit(x, y)
        booster = clf.booster_
        threads_used = max((int(w.get("nthreads", 1)) for w in workers.values()), default=1)
    finally:
        if own:
            close_dask(client)
    booster.best_iteration = rounds
    partitioning = {
        "files": len(files),
        "partitions": len(sizes),
        "workers": n_workers,
        "rows": sum(sizes),
        "rows_per_partition_min": min(sizes),
        "rows_per_partition_max": max(sizes),
        "rounds_from_single_node": rounds,
    }
    model = RiskModel(
        "lightgbm",
        booster,
        Calibrator("none"),
        contract,
        {
            "best_iteration": rounds,
            "params": params | {"num_threads": threads_used},
            "engine": "dask",
            "partitioning": partitioning,
        },
    )
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), valid["target"].astype(int).to_numpy())
    return model
