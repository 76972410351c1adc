"""Where the pipeline's own files live (features are read back by huishou.features.load_features).

Each stage owns one publication unit (huishou.core.io.publish): a folder switched in whole, so a reader
never sees one stage's new files beside its old ones.

    data/raw/            simulate or adapt: <table>.parquet, manifest.json
    (the truth)          simulate: the simulator's ground truth, read by the evaluation stages only
    data/validated/      validate: report.json
    data/features/       features: features.parquet, dictionary.json, summary.json
    models/trained/      train: lightgbm/, logistic/, scorecard/ (one saved model each),
                         scorecard_files/ (IV table, points, SQL), feature_list.json,
                         train_metrics.json, run.json, champion.json, plots/valid_roc.png
    models/evaluation/   evaluate: metrics.json, plots/*.csv|png, report.html
    models/effects/      fit-effects: effects.json and one LightGBM text file per stage's effect model
    models/strategy_truth.json   evaluate-strategy
    data/worklists/      strategy: index.json (dates, the published one), strategy_metrics.json,
                         candidates/<D>.parquet, published/worklist.parquet and published/<collector>.csv
    <scores dir>/<T>/    score: scores.parquet, drift.json (one folder per snapshot)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FEATURES_FILE = "features.parquet"
SUMMARY_FILE = "summary.json"
DICTIONARY_FILE = "dictionary.json"
MODEL_NAMES = ("lightgbm", "logistic", "scorecard")
CHAMPION_FILE = "champion.json"


def features_path(features_dir: str | Path) -> Path:
    return Path(features_dir) / FEATURES_FILE


def trained_dir(models_dir: str | Path) -> Path:
    return Path(models_dir) / "trained"


def model_path(models_dir: str | Path, name: str) -> Path:
    """The saved RiskModel folder `name` (lightgbm, logistic, scorecard)."""
    return trained_dir(models_dir) / name


def champion_name(models_dir: str | Path) -> str:
    """The model `huishou train` chose as champion (champion.json; "lightgbm" where a run predates it)."""
    path = trained_dir(models_dir) / CHAMPION_FILE
    return json.loads(path.read_text(encoding="utf-8"))["champion"] if path.exists() else "lightgbm"


def effects_dir(models_dir: str | Path) -> Path:
    """The effect models `huishou fit-effects` fits on their own schedule and `huishou strategy` loads."""
    return Path(models_dir) / "effects"


def evaluation_dir(models_dir: str | Path) -> Path:
    return Path(models_dir) / "evaluation"


def strategy_truth_path(models_dir: str | Path) -> Path:
    return Path(models_dir) / "strategy_truth.json"


def scores_unit(scores_dir: str | Path, day: pd.Timestamp) -> Path:
    """The folder of one scoring run's snapshot: scores.parquet and drift.json."""
    return Path(scores_dir) / str(pd.Timestamp(day).date())


def scores_path(scores_dir: str | Path, day: pd.Timestamp) -> Path:
    return scores_unit(scores_dir, day) / "scores.parquet"


def drift_path(scores_dir: str | Path, day: pd.Timestamp) -> Path:
    return scores_unit(scores_dir, day) / "drift.json"


def candidates_path(worklists_dir: str | Path, day: pd.Timestamp) -> Path:
    return Path(worklists_dir) / "candidates" / f"{pd.Timestamp(day).date()}.parquet"


def published_dir(worklists_dir: str | Path) -> Path:
    """The published date's worklists: worklist.parquet and one CSV per collector (index.json says the date)."""
    return Path(worklists_dir) / "published"
