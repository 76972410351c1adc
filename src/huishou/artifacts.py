"""Where the pipeline's own files live and how they are read back (the features file, models, scores).

Stages, benchmarks and notebooks read each other's outputs through here, so a file layout is
written once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.features import as_categories

FEATURES_FILE = "features.parquet"
SUMMARY_FILE = "summary.json"
MODEL_NAMES = ("lightgbm", "logistic", "scorecard")


def features_path(features_dir: str | Path) -> Path:
    return Path(features_dir) / FEATURES_FILE


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a features parquet; categorical columns come back as categories even when all missing."""
    return as_categories(pd.read_parquet(path))


def model_path(models_dir: str | Path, name: str) -> Path:
    """The saved RiskModel `name` (lightgbm, logistic, scorecard) under models_dir."""
    return Path(models_dir) / f"{name}.joblib"


def scores_path(scores_dir: str | Path, day: pd.Timestamp) -> Path:
    return Path(scores_dir) / f"scores_{pd.Timestamp(day).date()}.parquet"


def drift_path(scores_dir: str | Path, day: pd.Timestamp) -> Path:
    return Path(scores_dir) / f"drift_{pd.Timestamp(day).date()}.json"
