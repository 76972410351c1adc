"""Overdue-risk models: a LightGBM champion candidate and a logistic-regression challenger.

`RiskModel` bundles an estimator, its probability calibrator and the exact feature
contract (names, order, categorical levels) so that scoring can refuse mismatched data.
No file or MLflow I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from huishou.config import TrainSettings
from huishou.drift import build_reference


class FeatureMismatchError(ValueError):
    """The features handed to a model do not match the ones it was trained on."""


class ModelNotFoundError(LookupError):
    """No model where one was asked for (registry alias or file)."""


class Calibrator:
    """Maps raw scores to calibrated probabilities: Platt (logistic on the logit), isotonic or identity."""

    def __init__(self, method: str = "platt"):
        self.method = method
        self._model = None

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method == "platt":
            self._model = LogisticRegression(C=1e6).fit(self._logit(raw), y)
        elif self.method == "isotonic":
            self._model = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y)
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "platt":
            return self._model.predict_proba(self._logit(raw))[:, 1]
        if self.method == "isotonic":
            return self._model.predict(raw)
        return raw


@dataclass
class FeatureContract:
    """Names, order and categorical levels the model was trained with."""

    columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: list[str]) -> FeatureContract:
        cats = {c: [str(v) for v in frame[c].cat.categories] for c in columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
        return cls(list(columns), cats)

    def align(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Select and order the model's columns; categorical levels are set to the training ones."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise FeatureMismatchError(f"features are missing {len(missing)} model column(s): {missing[:10]}")
        out = frame[self.columns].copy()
        for col, levels in self.categories.items():
            out[col] = pd.Categorical(out[col].astype("object").where(out[col].notna(), None), categories=levels)
        for col in self.columns:
            if col not in self.categories and not pd.api.types.is_numeric_dtype(out[col]):
                raise FeatureMismatchError(f"feature '{col}' must be numeric, got dtype {out[col].dtype}")
        return out


@dataclass
class RiskModel:
    """A fitted overdue-risk model: P(first 30+ DPD within the horizon | features at T)."""

    kind: str
    estimator: object
    calibrator: Calibrator
    contract: FeatureContract
    meta: dict = field(default_factory=dict)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.contract.align(frame)
        if self.kind == "lightgbm":
            return self.estimator.predict(x, num_threads=self.meta.get("num_threads", 0))
        if self.kind == "scorecard":
            return self.estimator.probability(x)
        return self.estimator.predict_proba(x)[:, 1]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator.transform(self.raw_score(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-feature push towards risk, one column per feature + bias.

        LightGBM: TreeSHAP contributions on the log-odds scale (they sum to the raw score).
        Scorecard: points below the feature's best bin (the usual adverse-action reasons), bias 0.
        """
        if self.kind == "lightgbm":
            contrib = self.estimator.predict(self.contract.align(frame), pred_contrib=True)
            return pd.DataFrame(contrib, columns=[*self.contract.columns, "bias"], index=frame.index)
        if self.kind == "scorecard":
            from huishou.scorecard import points_shortfall

            return points_shortfall(self.estimator, self.contract.align(frame)).assign(bias=0.0)
        raise NotImplementedError("contributions are available for the LightGBM and scorecard models")

    def save(self, path) -> None:
        joblib.dump(self, path)

    @staticmethod
    def load(path) -> RiskModel:
        model = joblib.load(path)
        if not isinstance(model, RiskModel):
            raise TypeError(f"{path}: not a huishou RiskModel")
        return model


def fit_scorecard_model(train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg,
                        seed: int = 7) -> tuple[RiskModel, pd.DataFrame]:
    """The points scorecard challenger (huishou.scorecard), wrapped and calibrated like the other models."""
    from huishou.scorecard import fit_scorecard

    sample = train.sample(min(len(train), cfg.sample_rows), random_state=seed)
    card, iv_table = fit_scorecard(sample, columns, cfg)
    model = RiskModel("scorecard", card, Calibrator("none"), FeatureContract.from_frame(train, card.variables))
    model.calibrator = Calibrator("platt").fit(model.raw_score(valid), valid["target"].astype(int).to_numpy())
    return model, iv_table


def lightgbm_params(cfg: TrainSettings, columns: list[str]) -> dict:
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
    }
    if cfg.monotone:
        unknown = sorted(set(cfg.monotone_constraints) - set(columns))
        if unknown:
            raise ValueError(f"params.yaml train.monotone_constraints names unknown feature(s): {unknown}")
        params["monotone_constraints"] = [int(cfg.monotone_constraints.get(c, 0)) for c in columns]
        params["monotone_constraints_method"] = "intermediate"
    return params


def fit_lightgbm(train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg: TrainSettings) -> RiskModel:
    """Gradient boosting with early stopping on the validation snapshots, then calibration on them."""
    contract = FeatureContract.from_frame(train, columns)
    x_train, x_valid = contract.align(train), contract.align(valid)
    y_train, y_valid = train["target"].astype(int), valid["target"].astype(int)
    params = lightgbm_params(cfg, columns)
    dtrain = lgb.Dataset(x_train, y_train, free_raw_data=False)
    dvalid = lgb.Dataset(x_valid, y_valid, reference=dtrain)
    booster = lgb.train(params, dtrain, cfg.num_boost_round, valid_sets=[dvalid],
                        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
    model = RiskModel("lightgbm", booster, Calibrator("none"), contract,
                      {"best_iteration": booster.best_iteration, "params": params})
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), y_valid.to_numpy())
    return model


def logistic_pipeline(frame: pd.DataFrame, columns: list[str], C: float) -> Pipeline:
    categorical = [c for c in columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in columns if c not in categorical]
    numeric_steps = make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True), StandardScaler())
    prep = ColumnTransformer([
        ("num", numeric_steps, numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])
    return Pipeline([("prep", prep), ("clf", LogisticRegression(C=C, max_iter=2000))])


def fit_logistic(train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg: TrainSettings) -> RiskModel:
    """The challenger: standardised logistic regression with missing indicators, calibrated like the champion."""
    contract = FeatureContract.from_frame(train, columns)
    pipe = logistic_pipeline(train, columns, cfg.logreg_C).fit(contract.align(train), train["target"].astype(int))
    model = RiskModel("logistic", pipe, Calibrator("none"), contract)
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), valid["target"].astype(int).to_numpy())
    return model


# ---------------------------------------------------------------- stage entry point


def run(settings) -> dict:
    """`huishou train`: fit both models on train, calibrate on valid, log to MLflow, save to models/."""
    import dataclasses
    from pathlib import Path

    from huishou import evaluate, plots, tracking
    from huishou.features import FEATURES_FILE, feature_columns, load_features
    from huishou.io import dir_md5, file_md5, write_json

    cfg = settings.train
    features_path = Path(settings.data.features_dir) / FEATURES_FILE
    frame = load_features(features_path)
    columns = feature_columns(frame)
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    _require_labels(train, "train")
    _require_labels(valid, "valid")
    fit = fit_lightgbm_dask if cfg.engine == "dask" else fit_lightgbm
    models = {"lightgbm": fit(train, valid, columns, cfg), "logistic": fit_logistic(train, valid, columns, cfg)}
    models["scorecard"], iv_table = fit_scorecard_model(train, valid, columns, settings.scorecard, cfg.seed)
    watched = top_features(models["lightgbm"], cfg.reference_features)
    for model in models.values():
        model.meta["reference"] = build_reference(model.predict_proba(train), train, watched)
    out = Path(settings.data.models_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics, curves = {}, []
    for name, model in models.items():
        model.save(out / f"{name}.joblib")
        p = model.predict_proba(valid)
        for key, value in evaluate.classification_metrics(valid["target"], p).items():
            metrics[f"valid_{name}_{key}"] = value
        curves.append(evaluate.roc_points(valid["target"], p).assign(model=name))
    metrics["lightgbm_best_iteration"] = models["lightgbm"].meta["best_iteration"]
    write_json({"features": columns}, out / "feature_list.json")
    card_files = _write_scorecard(models["scorecard"], iv_table, out / "scorecard")
    write_json(metrics, out / "train_metrics.json")
    roc_png = plots.save_png(plots.roc_figure(pd.concat(curves), "ROC, validation"), out / "plots" / "valid_roc.png")
    data_version = {"features": file_md5(features_path)} | {f"raw/{k}": v for k, v in dir_md5(settings.data.raw_dir).items()}
    params = {f"train.{k}": v for k, v in dataclasses.asdict(cfg).items()} | {
        f"features.{k}": v for k, v in dataclasses.asdict(settings.features).items()}
    run_info = tracking.log_train_run(
        settings.tracking, params=params, metrics=metrics, data_version=data_version, features=columns,
        artifacts={"plots": roc_png, "logistic": out / "logistic.joblib"} | card_files,
        model_path=out / "lightgbm.joblib",
    )
    write_json(run_info, out / "run.json")
    return metrics | run_info


def _write_scorecard(model: RiskModel, iv_table: pd.DataFrame, folder) -> dict:
    """IV table, points table, the card as JSON (reloadable) and as SQL, for analysts and for MLflow."""
    from huishou.io import atomic_path, write_csv

    folder.mkdir(parents=True, exist_ok=True)
    write_csv(iv_table, folder / "iv_table.csv")
    write_csv(model.estimator.points, folder / "points.csv")
    with atomic_path(folder / "scorecard.json") as tmp:
        model.estimator.to_json(tmp)
    with atomic_path(folder / "scorecard.sql") as tmp:
        tmp.write_text(model.estimator.to_sql() + ";\n")
    return {"scorecard": folder}


def _require_labels(frame: pd.DataFrame, split: str) -> None:
    if frame.empty or frame["target"].isna().any() or frame["target"].nunique() < 2:
        raise ValueError(f"the {split} split needs labelled rows of both classes; check features.valid_from / "
                         "test_from / snapshot dates in params.yaml against the extract date")


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


def fit_lightgbm_dask(train: pd.DataFrame, valid: pd.DataFrame, columns: list[str], cfg: TrainSettings,
                      client=None) -> RiskModel:
    """The same model trained with `lightgbm.dask` on a Dask cluster (local by default).

    lightgbm.dask has no early stopping, so all rounds are trained and the best validation
    iteration is chosen afterwards; calibration is then fitted exactly as in `fit_lightgbm`.
    """
    import dask.dataframe as dd
    from lightgbm import DaskLGBMClassifier

    from huishou.score import dask_client

    contract = FeatureContract.from_frame(train, columns)
    own = client is None
    client = client or dask_client(None, 2)
    try:
        parts = max(1, len(client.scheduler_info().get("workers", {})))
        x = dd.from_pandas(contract.align(train), npartitions=parts)
        y = dd.from_pandas(train["target"].astype(int), npartitions=parts)
        params = lightgbm_params(cfg, columns)
        params.pop("force_col_wise", None)
        clf = DaskLGBMClassifier(client=client, n_estimators=cfg.num_boost_round, **params).fit(x, y)
        booster = clf.booster_
    finally:
        if own:
            cluster = client.cluster
            client.close()
            cluster.close()
    y_valid = valid["target"].astype(int).to_numpy()
    booster.best_iteration = best_iteration(booster, contract.align(valid), y_valid)
    model = RiskModel("lightgbm", booster, Calibrator("none"), contract,
                      {"best_iteration": booster.best_iteration, "params": params, "engine": "dask"})
    model.calibrator = Calibrator(cfg.calibration).fit(model.raw_score(valid), y_valid)
    return model
