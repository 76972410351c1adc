"""The fitted overdue-risk model as a type: estimator, probability calibrator and feature contract.

`RiskModel` bundles an estimator (a LightGBM booster, a scikit-learn logistic pipeline or a
points scorecard), its calibrator and the exact feature contract (names, order, categorical
levels), so that scoring can refuse mismatched data. Fitting lives in huishou.train.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from huishou.errors import FeatureMismatchError
from huishou.scorecard import points_shortfall


class Calibrator:
    """Maps raw scores to calibrated probabilities.

    Parameters
    ----------
    method : {"platt", "isotonic", "none"}
        platt: a logistic regression on the logit of the raw score; isotonic: a monotone step
        function clipped to [0, 1]; none: the raw score unchanged.
    """

    def __init__(self, method: str):
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
    """Names, order and categorical levels the model was trained with.

    Parameters
    ----------
    columns : list of str
        The model's input columns, in order.
    categories : dict of str to list of str
        The training levels of each categorical column; other values score as missing.
    """

    columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: list[str]) -> FeatureContract:
        cats = {
            c: [str(v) for v in frame[c].cat.categories]
            for c in columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
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
    """A fitted overdue-risk model: P(first `default_dpd`+ DPD within the horizon | features at T).

    Parameters
    ----------
    kind : {"lightgbm", "logistic", "scorecard"}
        What `estimator` is: a lightgbm.Booster, a scikit-learn Pipeline ending in a logistic
        regression, or a huishou.scorecard.ScorecardModel.
    estimator : object
        The fitted estimator; `raw_score` calls it.
    calibrator : Calibrator
        Maps the raw score to a calibrated probability (fitted on the validation snapshots).
    contract : FeatureContract
        The exact inputs the estimator expects.
    meta : dict
        best_iteration and params (LightGBM), engine, and `reference`: the training distribution
        of the score and top features that scoring compares against (huishou.drift).
    """

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
