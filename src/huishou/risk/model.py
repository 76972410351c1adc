"""The fitted overdue-risk model as a type: estimator, probability calibrator and feature contract.

`RiskModel` bundles an estimator (a LightGBM booster, a scikit-learn logistic pipeline or a
points scorecard), its calibrator and the exact feature contract (names, order, categorical
levels), so that scoring can refuse mismatched data. Fitting lives in huishou.risk.train.

Saved models execute no code when loaded: a model is a folder with `model.json` (kind, contract,
calibrator coefficients, metadata, and the SHA-256 of the estimator file) and the estimator in its
native format: LightGBM's model text, the scorecard's points JSON, or the logistic pipeline in
skops' format loaded with an allow-list of types (skops, not pickle: it refuses any type not on
the list). The estimator file is checked against its recorded SHA-256 before it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from huishou.core.errors import FeatureMismatchError, ModelIntegrityError, ModelNotFoundError
from huishou.core.io import file_sha256, write_json
from huishou.risk.scorecard import ScorecardModel, points_shortfall
from huishou.risk.treeshap import TreeShap, lightgbm_matrix

# LightGBM contributions for at least this many rows per tree come from TreeShap's tables (the same values):
# building them and loading the compiled kernel once (~1.3 s for the default model's 178 trees) costs what
# LightGBM's own TreeSHAP takes for ~4,000 of its rows (benchmarks/bench_reasons.py)
TREESHAP_TABLE_ROWS_PER_TREE = 24

FORMAT = "huishou-risk-model/1"
MODEL_JSON = "model.json"
ESTIMATOR_FILES = {"lightgbm": "booster.txt", "logistic": "pipeline.skops", "scorecard": "scorecard.json"}
SKOPS_TRUSTED = ["numpy.dtype"]  # beyond skops' own safe defaults; anything else is refused


def _design_owners(prep) -> list[str]:
    """The input feature behind each column of the logistic pipeline's design matrix, in order."""
    owners: list[str] = []
    for name, transformer, columns in prep.transformers_:
        if name == "num":
            owners += list(columns)
            indicator = transformer.steps[0][1].indicator_
            if indicator is not None:
                owners += [columns[i] for i in indicator.features_]
        elif name == "cat":
            for column, levels in zip(columns, transformer.categories_, strict=True):
                owners += [column] * len(levels)
    return owners


def design_matrix(pipeline, x: pd.DataFrame) -> np.ndarray:
    """The logistic pipeline's inputs to its regression, dense."""
    design = pipeline.named_steps["prep"].transform(x)
    return design.toarray() if hasattr(design, "toarray") else np.asarray(design, dtype=float)


def linear_contributions(pipeline, x: pd.DataFrame, centre) -> pd.DataFrame:
    """Per feature, coefficient x (design value - its training mean), summed over the feature's design
    columns; `bias` is the logit at the training means."""
    prep, clf = pipeline.named_steps["prep"], pipeline.named_steps["clf"]
    design, coef, centre = design_matrix(pipeline, x), clf.coef_.ravel(), np.asarray(centre, dtype=float)
    owners = _design_owners(prep)
    features = list(x.columns)  # the contract's order
    if len(owners) != design.shape[1] or len(centre) != design.shape[1] or not set(owners) <= set(features):
        raise ModelIntegrityError(f"logistic model: {design.shape[1]} design columns, {len(owners)} mapped")
    into = np.zeros((len(owners), len(features)))
    into[np.arange(len(owners)), [features.index(o) for o in owners]] = 1.0
    out = pd.DataFrame(((design - centre) * coef) @ into, columns=features, index=x.index)
    out["bias"] = float(clf.intercept_[0] + centre @ coef)
    return out


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

    def to_dict(self) -> dict:
        """The fitted state as plain numbers (JSON)."""
        out: dict = {"method": self.method}
        if self.method == "platt":
            out |= {
                "coef": self._model.coef_.tolist(),
                "intercept": self._model.intercept_.tolist(),
                "classes": self._model.classes_.tolist(),
            }
        elif self.method == "isotonic":
            m = self._model
            out |= {
                "x": m.X_thresholds_.tolist(),
                "y": m.y_thresholds_.tolist(),
                "x_min": float(m.X_min_),
                "x_max": float(m.X_max_),
                "increasing": bool(m.increasing_),
            }
        return out

    @classmethod
    def from_dict(cls, state: dict) -> Calibrator:
        """Rebuild a fitted calibrator from `to_dict` (same estimator classes, so the same arithmetic)."""
        cal = cls(state["method"])
        if cal.method == "platt":
            model = LogisticRegression(C=1e6)
            model.coef_ = np.asarray(state["coef"], dtype=float)
            model.intercept_ = np.asarray(state["intercept"], dtype=float)
            model.classes_ = np.asarray(state["classes"])
            model.n_features_in_ = model.coef_.shape[1]
            cal._model = model
        elif cal.method == "isotonic":
            model = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            x, y = np.asarray(state["x"], dtype=float), np.asarray(state["y"], dtype=float)
            model.X_min_, model.X_max_, model.increasing_ = state["x_min"], state["x_max"], state["increasing"]
            model.X_thresholds_, model.y_thresholds_ = x, y
            model._build_f(x, y)  # scikit-learn's own interpolation, as after fit
            cal._model = model
        return cal


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
        """Select and order the model's columns; categorical levels are set to the training ones. A frame
        already aligned (exactly the columns, the training levels) is returned as it is, not copied."""
        if self._aligned(frame):
            return frame
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

    def _aligned(self, frame: pd.DataFrame) -> bool:
        if list(frame.columns) != self.columns:
            return False
        for col, dtype in frame.dtypes.items():
            if col in self.categories:
                if (
                    not isinstance(dtype, pd.CategoricalDtype)
                    or dtype.ordered
                    or list(dtype.categories) != self.categories[col]
                ):
                    return False
            elif not pd.api.types.is_numeric_dtype(dtype):
                return False
        return True


@dataclass
class RiskModel:
    """A fitted overdue-risk model: P(first `default_dpd`+ DPD within the horizon | features at T).

    Parameters
    ----------
    kind : {"lightgbm", "logistic", "scorecard"}
        What `estimator` is: a lightgbm.Booster, a scikit-learn Pipeline ending in a logistic
        regression, or a huishou.risk.scorecard.ScorecardModel.
    estimator : object
        The fitted estimator; `raw_score` calls it.
    calibrator : Calibrator
        Maps the raw score to a calibrated probability (fitted on the validation snapshots).
    contract : FeatureContract
        The exact inputs the estimator expects.
    meta : dict
        best_iteration and params (LightGBM), engine, and `reference`: the training distribution
        of the score and top features that scoring compares against (huishou.risk.drift).
    num_threads : int
        LightGBM threads for predictions and contributions (0: one per core); a run-time setting of
        the job using the model (compute.threads, 1 in a Dask task), not saved with it.
    """

    kind: str
    estimator: object
    calibrator: Calibrator
    contract: FeatureContract
    meta: dict = field(default_factory=dict)
    num_threads: int = 0
    _treeshap: TreeShap | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def explains(self) -> bool:
        """Whether `contributions` (and so reason codes) are available for this model."""
        return self.kind in ("lightgbm", "scorecard") or (self.kind == "logistic" and "centre" in self.meta)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.contract.align(frame)
        if self.kind == "lightgbm":
            return self.estimator.predict(x, num_threads=self.num_threads)
        if self.kind == "scorecard":
            return self.estimator.probability(x)
        return self.estimator.predict_proba(x)[:, 1]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator.transform(self.raw_score(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-feature push towards risk, one column per feature + bias.

        LightGBM: TreeSHAP contributions on the log-odds scale (they sum to the raw score).
        Scorecard: points below the feature's best bin (the usual adverse-action reasons), bias 0.
        Logistic: each coefficient times its input's distance from the training mean (standardised value,
        missing indicator, category dummy), summed over the feature's columns (log-odds; they and the bias
        sum to the raw score's logit).
        """
        if self.kind == "lightgbm":
            x = self.contract.align(frame)
            if len(x) >= TREESHAP_TABLE_ROWS_PER_TREE * self.estimator.num_trees():
                if self._treeshap is None:
                    self._treeshap = TreeShap(self.estimator)
                contrib = self._treeshap.contributions(lightgbm_matrix(x), num_threads=self.num_threads)
            else:
                contrib = self.estimator.predict(x, pred_contrib=True, num_threads=self.num_threads)
            return pd.DataFrame(contrib, columns=[*self.contract.columns, "bias"], index=frame.index)
        if self.kind == "scorecard":
            return points_shortfall(self.estimator, self.contract.align(frame)).assign(bias=0.0)
        if self.kind == "logistic" and "centre" in self.meta:
            return linear_contributions(self.estimator, self.contract.align(frame), self.meta["centre"])
        raise NotImplementedError(
            "contributions need a LightGBM, a scorecard or a logistic model saved with its centre"
        )

    def save(self, folder: str | Path) -> Path:
        """Write the model into `folder` (created; the caller publishes it): model.json + the estimator."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = ESTIMATOR_FILES[self.kind]
        if self.kind == "lightgbm":
            self.estimator.save_model(folder / name)  # the best iteration only, as predict uses it
        elif self.kind == "logistic":
            import skops.io as sio  # here, not at the top: importing skops takes ~2 s (it lists every estimator)

            sio.dump(self.estimator, folder / name)
        else:
            self.estimator.to_json(folder / name)
        doc = {
            "format": FORMAT,
            "kind": self.kind,
            "contract": {"columns": self.contract.columns, "categories": self.contract.categories},
            "calibrator": self.calibrator.to_dict(),
            "meta": self.meta,
            "files": {name: file_sha256(folder / name)},
        }
        write_json(doc, folder / MODEL_JSON)
        return folder

    @staticmethod
    def load(folder: str | Path) -> RiskModel:
        """Read a saved model; refuse a folder that is not one, or an estimator file that changed."""
        folder = Path(folder)
        doc_path = folder / MODEL_JSON
        if not doc_path.is_file():
            raise ModelNotFoundError(f"{folder}: not a saved huishou model (no {MODEL_JSON}); train one first")
        try:
            doc = json.loads(doc_path.read_text())
            kind, files = doc["kind"], doc["files"]
            ok = doc.get("format") == FORMAT and kind in ESTIMATOR_FILES and set(files) == {ESTIMATOR_FILES[kind]}
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ModelIntegrityError(f"{doc_path}: not a {FORMAT} model description")
        name = ESTIMATOR_FILES[kind]
        path = folder / name
        if not path.is_file() or file_sha256(path) != files[name]:
            raise ModelIntegrityError(
                f"{path}: missing or changed since it was saved (SHA-256 differs from {doc_path}); refusing to load it"
            )
        if kind == "lightgbm":
            estimator = lgb.Booster(model_file=str(path))
        elif kind == "logistic":
            import skops.io as sio  # here, not at the top: importing skops takes ~2 s (it lists every estimator)

            untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in SKOPS_TRUSTED]
            if untrusted:
                raise ModelIntegrityError(f"{path}: holds types outside the allow-list: {untrusted[:5]}")
            estimator = sio.load(path, trusted=SKOPS_TRUSTED)
        else:
            estimator = ScorecardModel.from_json(path)
        contract = FeatureContract(doc["contract"]["columns"], doc["contract"]["categories"])
        return RiskModel(kind, estimator, Calibrator.from_dict(doc["calibrator"]), contract, doc["meta"])
