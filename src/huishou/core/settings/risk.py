"""Settings of the risk model: training, the scorecard, evaluation, nightly scoring."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSettings:
    """LightGBM, logistic challenger, calibration and the drift reference kept with each model."""

    engine: str
    seed: int
    num_leaves: int
    max_depth: int
    learning_rate: float
    num_boost_round: int
    early_stopping_rounds: int
    min_child_samples: int
    feature_fraction: float
    bagging_fraction: float
    lambda_l2: float
    monotone: bool
    monotone_constraints: dict[str, int]
    calibration: str
    logreg_C: float
    reference_features: int
    reference_bins: int
    small_book_rows: int
    cv_folds: int
    cv_repeats: int
    max_rows: int = 0  # labelled train + valid rows fitted; beyond it a time-stratified sample (0: all)


@dataclass(frozen=True)
class ScorecardSettings:
    """The points scorecard challenger (optbinning WoE bins + logistic regression)."""

    max_n_bins: int
    min_bin_size: float
    min_bin_size_by_feature: dict[str, float]
    special_codes: list[float]
    min_iv: float
    max_corr: float
    base_score: float
    base_odds: float
    pdo: float
    sample_rows: int


@dataclass(frozen=True)
class EvaluateSettings:
    """Out-of-time evaluation."""

    lift_top_fraction: float
    calibration_bins: int
    max_test_rows: int  # 0: every labelled test row
    sample_seed: int


@dataclass(frozen=True)
class ScoreSettings:
    """Nightly scoring: engine, chunking, risk bands, reason codes, drift thresholds, Dask layout."""

    engine: str
    scores_dir: str
    nightly_dir: str
    chunk_size: int
    duckdb_memory_limit: str
    band_thresholds: list[float]
    band_labels: list[str]
    reasons_min_band: str
    reasons_reuse: bool
    psi_warn: float
    psi_flag: float
    rows_per_partition: int
