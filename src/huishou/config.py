"""Load params.yaml into typed, validated settings.

Every tunable lives in params.yaml; code never hard-codes one. Unknown keys are an
error so that a typo in `dvc exp run -S ...` fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


class ConfigError(ValueError):
    """params.yaml is missing a key, has an unknown one, or a value breaks a rule."""


@dataclass(frozen=True)
class DataSettings:
    raw_dir: str = "data/raw"
    truth_dir: str = "data/truth"
    validated_dir: str = "data/validated"
    features_dir: str = "data/features"
    models_dir: str = "models"
    worklists_dir: str = "data/worklists"


@dataclass(frozen=True)
class SimulateSettings:
    seed: int = 20261122
    n_borrowers: int = 50_000
    start_date: str = "2024-01-01"
    months: int = 24
    extra_loans_mean: float = 0.7
    max_loans_per_borrower: int = 4
    term_mix: dict[int, float] = field(default_factory=lambda: {3: 0.3, 6: 0.4, 12: 0.3})
    base_miss_logit: float = -3.1
    risk_weight: float = 0.5
    drift_sd: float = 0.04
    hardship_rate: float = 0.05
    policy_epsilon: float = 0.25
    cure_shift: float = 0.0
    lender_score_noise: float = 0.25
    write_oracle: bool = True

    @property
    def as_of(self) -> pd.Timestamp:
        """Extract date: events on or after it are not in the book yet."""
        return pd.Timestamp(self.start_date) + pd.DateOffset(months=self.months)


@dataclass(frozen=True)
class FeatureSettings:
    first_snapshot: str = "2024-04-01"
    last_snapshot: str = "2025-11-01"
    snapshot_every_months: int = 1
    horizon_days: int = 60
    default_dpd: int = 30
    paid_tolerance: float = 0.01
    settle_share: float = 1.0
    split_mode: str = "time"
    hash_valid_share: float = 0.2
    hash_test_share: float = 0.2
    valid_from: str = "2025-06-01"
    test_from: str = "2025-09-01"

    def build_kwargs(self, as_of) -> dict:
        """Keyword arguments of `build_features` that come from these settings."""
        return {"as_of": pd.Timestamp(as_of), "horizon_days": self.horizon_days, "default_dpd": self.default_dpd,
                "paid_tolerance": self.paid_tolerance, "settle_share": self.settle_share}

    def snapshot_dates(self) -> list[pd.Timestamp]:
        """The snapshot grid T (midnight; features see events strictly before T)."""
        dates = pd.date_range(
            self.first_snapshot, self.last_snapshot, freq=pd.DateOffset(months=self.snapshot_every_months)
        )
        return list(dates)


@dataclass(frozen=True)
class TrainSettings:
    engine: str = "local"
    seed: int = 7
    num_leaves: int = 31
    max_depth: int = -1
    learning_rate: float = 0.05
    num_boost_round: int = 600
    early_stopping_rounds: int = 50
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    monotone: bool = True
    monotone_constraints: dict[str, int] = field(default_factory=dict)
    calibration: str = "platt"
    logreg_C: float = 0.5
    reference_features: int = 10


@dataclass(frozen=True)
class ScoreSettings:
    engine: str = "local"
    scores_dir: str = "data/scores"
    chunk_size: int = 200_000
    duckdb_memory_limit: str = "2GB"
    band_thresholds: list[float] = field(default_factory=lambda: [0.01, 0.03, 0.07, 0.15, 0.30])
    band_labels: list[str] = field(default_factory=lambda: ["A", "B", "C", "D", "E", "F"])
    reasons_min_band: str = "D"
    psi_warn: float = 0.10
    psi_flag: float = 0.25
    scheduler: str | None = None
    dask_workers: int = 2
    dask_partitions: int = 8


@dataclass(frozen=True)
class StrategySettings:
    eval_days_before_as_of: list[int] = field(default_factory=lambda: [28, 21, 14, 7, 0])
    response_days: int = 7
    max_dpd: int = 29
    costs: dict[str, float] = field(default_factory=lambda: {
        "none": 0.0, "sms": 0.1, "app_push": 0.02, "email_letter": 1.5, "call": 6.0, "visit": 120.0,
        "repayment_plan": 15.0})
    minutes: dict[str, int] = field(default_factory=lambda: {
        "none": 0, "sms": 0, "app_push": 0, "email_letter": 0, "call": 8, "visit": 90, "repayment_plan": 20})
    collectors: int = 8
    collector_minutes: int = 240
    collector_overrides: dict[str, int] = field(default_factory=dict)
    max_contacts_7d: int = 3
    min_noncontact_before_call: int = 1
    visit_min_amount: float = 5000.0
    visit_min_dpd: int = 15
    visit_min_unreached_attempts: int = 2
    plan_min_dpd: int = 8
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    mip_time_limit_s: float = 20.0
    effect_model: dict[str, float] = field(default_factory=lambda: {
        "num_leaves": 31, "learning_rate": 0.05, "num_boost_round": 400, "min_child_samples": 40, "max_weight": 20.0})

    def capacities(self) -> dict[str, int]:
        """Daily minutes per collector id."""
        ids = [f"C{i:03d}" for i in range(1, self.collectors + 1)]
        return {c: int(self.collector_overrides.get(c, self.collector_minutes)) for c in ids}


@dataclass(frozen=True)
class ScorecardSettings:
    max_n_bins: int = 6
    min_bin_size: float = 0.05
    special_codes: list[float] = field(default_factory=list)
    min_iv: float = 0.02
    max_corr: float = 0.7
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    sample_rows: int = 200_000


@dataclass(frozen=True)
class EvaluateSettings:
    lift_top_fraction: float = 0.10
    calibration_bins: int = 10


@dataclass(frozen=True)
class TrackingSettings:
    experiment: str = "huishou-overdue-risk"
    registered_model: str = "huishou-overdue-risk"
    default_uri: str = "sqlite:///mlflow.db"
    scoring_experiment: str = "huishou-scoring"
    strategy_experiment: str = "huishou-strategy"


@dataclass(frozen=True)
class Settings:
    data: DataSettings = field(default_factory=DataSettings)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)
    scorecard: ScorecardSettings = field(default_factory=ScorecardSettings)


def _build(cls: type, raw: dict[str, Any] | None, section: str) -> Any:
    raw = raw or {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"params.yaml: unknown key(s) in '{section}': {unknown}; known: {sorted(known)}")
    return cls(**raw)


def _check(settings: Settings) -> None:
    f = settings.features
    if f.split_mode not in {"time", "hash"}:
        raise ConfigError(f"params.yaml: features.split_mode must be time or hash, got {f.split_mode!r}")
    if settings.train.engine not in {"local", "dask"}:
        raise ConfigError(f"params.yaml: train.engine must be local or dask, got {settings.train.engine!r}")
    if settings.score.engine not in {"local", "dask"}:
        raise ConfigError(f"params.yaml: score.engine must be local or dask, got {settings.score.engine!r}")
    if settings.score.reasons_min_band not in settings.score.band_labels:
        raise ConfigError("params.yaml: score.reasons_min_band must be one of score.band_labels")
    if len(settings.score.band_labels) != len(settings.score.band_thresholds) + 1:
        raise ConfigError("params.yaml: score.band_labels needs one label more than score.band_thresholds")
    if settings.train.calibration not in {"platt", "isotonic", "none"}:
        raise ConfigError("params.yaml: train.calibration must be platt, isotonic or none")
    if not pd.Timestamp(f.valid_from) < pd.Timestamp(f.test_from):
        raise ConfigError("params.yaml: features.valid_from must be before features.test_from")
    if f.horizon_days <= 0 or f.default_dpd <= 0:
        raise ConfigError("params.yaml: features.horizon_days and features.default_dpd must be positive")


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Build settings from a parsed params mapping (sections may be missing: defaults apply)."""
    sections = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"params.yaml: unknown section(s) {unknown}; known: {sorted(sections)}")
    classes = {f.name: f.default_factory for f in dataclasses.fields(Settings)}
    built = {name: _build(classes[name], raw.get(name), name) for name in sections}
    settings = Settings(**built)
    _check(settings)
    return settings


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_params(path: str | Path) -> dict[str, Any]:
    """A params file as a mapping; `extends: other.yaml` (relative to it) is loaded first and overridden."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the repository root or pass --params)")
    with path.open() as fh:
        raw = yaml.safe_load(fh) or {}
    parent = raw.pop("extends", None)
    return _merge(read_params(path.parent / parent), raw) if parent else raw


def load_settings(path: str | Path = "params.yaml") -> Settings:
    """Read and validate params.yaml (or a file that extends it)."""
    return settings_from_dict(read_params(path))
