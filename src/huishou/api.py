"""The public Python API for analysts: the stable import path for notebooks and scripts.

Everything here keeps its name when the package's rooms are rearranged; a module that moves keeps its
old import path as an alias that warns (huishou.core.moved). Import from here, not from the rooms:

    from huishou.api import load_settings, load_features, load_model, score

    settings = load_settings("params.yaml")
    features = load_features(features_path(settings.data.features_dir))
    model = load_model(settings.data.models_dir)            # the trained LightGBM (or "logistic", "scorecard")
    scored = score(model, features[features["split"] == "test"], reasons=3)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book import read_manifest, read_raw
from huishou.core.paths import (
    MODEL_NAMES,
    champion_name,
    drift_path,
    evaluation_dir,
    features_path,
    model_path,
    scores_path,
    trained_dir,
)
from huishou.core.settings import Settings, load_settings
from huishou.features import build_features, feature_columns, feature_dictionary, load_features
from huishou.risk.drift import psi, psi_by_snapshot
from huishou.risk.explain import reason_codes
from huishou.risk.metrics import calibration_table, classification_metrics, ks_statistic, lift_table, roc_points
from huishou.risk.model import RiskModel
from huishou.risk.scoring import risk_bands, score_frame

__all__ = [
    "MODEL_NAMES",
    "RiskModel",
    "Settings",
    "build_features",
    "calibration_table",
    "champion_name",
    "classification_metrics",
    "drift_path",
    "evaluation_dir",
    "feature_columns",
    "feature_dictionary",
    "features_path",
    "ks_statistic",
    "lift_table",
    "load_champion",
    "load_features",
    "load_model",
    "load_scores",
    "load_settings",
    "model_path",
    "psi",
    "psi_by_snapshot",
    "read_manifest",
    "read_raw",
    "reason_codes",
    "risk_bands",
    "roc_points",
    "score",
    "score_frame",
    "scores_path",
    "trained_dir",
]


def load_model(models_dir: str | Path = "models", name: str = "lightgbm") -> RiskModel:
    """A trained model from `models_dir` (lightgbm, logistic or scorecard), its files checked by SHA-256."""
    return RiskModel.load(model_path(models_dir, name))


def load_champion(models_dir: str | Path = "models") -> RiskModel:
    """The model `huishou train` registered as champion (LightGBM, or on a small book the best of the three by
    cross-validation; models/trained/champion.json says which and why)."""
    return load_model(models_dir, champion_name(models_dir))


def load_scores(scores_dir: str | Path, snapshot: str | pd.Timestamp) -> pd.DataFrame:
    """One nightly scoring run's scores (one file, or a folder of partitions read as one table)."""
    return pd.read_parquet(scores_path(scores_dir, pd.Timestamp(snapshot)))


def score(model: RiskModel, features: pd.DataFrame, reasons: int = 0) -> pd.DataFrame:
    """A frame's calibrated probabilities (column `probability`, index kept) and, with `reasons` > 0, the
    top reasons in plain words (reason_1 ... reason_k)."""
    out = pd.DataFrame({"probability": score_frame(model, features)}, index=features.index)
    if reasons:
        out = out.join(reason_codes(model, features, top=reasons))
    return out
