"""Typed settings read from params.yaml, the only place a tunable is written.

A leaf: imports nothing of the project but its errors. Each settings type is one section of
params.yaml and each attribute a key of the same name, explained by its comment there (the one
place a value is written; tests/test_config.py checks that every key has one). The types validate
values but carry no defaults: a key missing from params.yaml is an error naming the key and the file, so a
params file can never silently train another model. Unknown keys are errors too, so a typo in
`dvc exp run -S ...` fails loudly instead of being ignored.

Stages see their settings through a `ParamsView` that allows only the keys the stage declares
(the same keys dvc.yaml lists under the stage's `params`): reading any other key is an error,
so dvc.yaml cannot fall behind what a stage really reads.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from huishou.core.errors import ConfigError


@dataclass(frozen=True)
class DataSettings:
    """Where the raw book comes from (huishou.book.source) and the folders of the pipeline's files."""

    source: str
    database: str | None
    tables: dict[str, str]
    as_of: str
    timezone: str
    raw_dir: str
    truth_dir: str
    validated_dir: str
    features_dir: str
    models_dir: str
    worklists_dir: str
    compliance_dir: str
    experiments_dir: str


@dataclass(frozen=True)
class SimulateSettings:
    """Knobs of the built-in simulated loan book (see huishou.simulate)."""

    seed: int
    n_borrowers: int
    start_date: str
    months: int
    extra_loans_mean: float
    max_loans_per_borrower: int
    term_mix: dict[int, float]
    base_miss_logit: float
    risk_weight: float
    drift_sd: float
    hardship_rate: float
    policy_epsilon: float
    cure_shift: float
    lender_score_noise: float
    write_oracle: bool
    write_collection_log: bool
    chunk_borrowers: int
    timezones: dict[str, float]
    legacy_late_share: float

    @property
    def as_of(self) -> pd.Timestamp:
        """Extract date: events on or after it are not in the book yet."""
        return pd.Timestamp(self.start_date) + pd.DateOffset(months=self.months)


@dataclass(frozen=True)
class FeatureSettings:
    """Snapshot grid, target definition, feature thresholds and the train/valid/test split."""

    first_snapshot: str
    last_snapshot: str
    snapshot_every_months: int
    horizon_days: int
    default_dpd: int
    paid_tolerance: float
    settle_share: float
    late_thresholds: list[int]
    recent_days: list[int]
    promise_grace_days: int
    income_understated_ratio: float
    application_columns: list[dict]
    attributes: list[dict]
    protected: list[str]
    duckdb_memory_limit: str
    mode: str
    split_mode: str
    hash_valid_share: float
    hash_test_share: float
    valid_from: str
    test_from: str

    def build_kwargs(self, as_of) -> dict:
        """Keyword arguments of `build_features` that come from these settings."""
        return {
            "as_of": pd.Timestamp(as_of),
            "horizon_days": self.horizon_days,
            "default_dpd": self.default_dpd,
            "paid_tolerance": self.paid_tolerance,
            "settle_share": self.settle_share,
            "late_thresholds": tuple(self.late_thresholds),
            "recent_days": tuple(self.recent_days),
            "promise_grace_days": self.promise_grace_days,
            "income_understated_ratio": self.income_understated_ratio,
            "extras": self.extras(),
            "mode": self.mode,
        }

    def extras(self) -> tuple[tuple[str, str, str, str, int], ...]:
        """The lender's declared columns as (table, name, kind, description, monotone) tuples."""
        return tuple(
            (table, item["name"], item["kind"], item.get("description", ""), int(item.get("monotone", 0)))
            for table, items in (("applications", self.application_columns), ("attributes", self.attributes))
            for item in items
        )

    def snapshot_dates(self) -> list[pd.Timestamp]:
        """The snapshot grid T (midnight; features see events strictly before T)."""
        dates = pd.date_range(
            self.first_snapshot, self.last_snapshot, freq=pd.DateOffset(months=self.snapshot_every_months)
        )
        return list(dates)


@dataclass(frozen=True)
class ContractSettings:
    """Business ranges of raw columns ("table.column": [low, high]), on top of the structural contracts."""

    ranges: dict[str, list[float]]
    bucket_loans: int
    duckdb_memory_limit: str


@dataclass(frozen=True)
class TrainSettings:
    """LightGBM, logistic challenger, calibration and the drift reference kept with each model."""

    engine: str
    dask_workers: int
    num_threads: int
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


@dataclass(frozen=True)
class ScoreSettings:
    """Nightly scoring: engine, chunking, risk bands, reason codes, drift thresholds, Dask layout."""

    engine: str
    scores_dir: str
    nightly_dir: str
    chunk_size: int
    num_threads: int
    duckdb_memory_limit: str
    band_thresholds: list[float]
    band_labels: list[str]
    reasons_min_band: str
    reasons_reuse: bool
    psi_warn: float
    psi_flag: float
    scheduler: str | None
    dask_workers: int
    rows_per_partition: int


@dataclass(frozen=True)
class StrategySettings:
    """Collection strategy: worklist dates, effect model, costs, collector capacity and the rules' thresholds."""

    eval_days_before_as_of: list[int]
    response_days: int
    max_dpd: int
    decision_step_days: list[int]
    ope_holdout_days: int
    costs: dict[str, float]
    minutes: dict[str, int]
    collectors: int
    collector_minutes: int
    collector_overrides: dict[str, int]
    max_contacts_7d: int
    min_noncontact_before_call: int
    visit_min_amount: float
    visit_min_dpd: int
    visit_min_unreached_attempts: int
    plan_min_dpd: int
    recovery_max_dpd: int
    pre_due_days_ahead: int
    pre_due_max_reminders: int
    collector_shift: list[str]
    settlement_discounts: dict[int, float]
    agencies: list[dict]
    agency_min_dpd: int
    compliance: dict
    ladder_call_from_dpd: int
    ladder_visit_from_dpd: int
    ladder_agency_from_dpd: int
    mip_time_limit_s: float
    exact_max_rows: int
    effect_model: dict[str, float]
    effect_max_age_days: int
    promise_model: dict[str, float]
    complaint_cost: float
    min_logged_decisions: int
    cold_start_epsilon: float
    experiment: dict
    seed: int

    def capacities(self) -> dict[str, int]:
        """Daily minutes per collector id (C001 ... C<collectors>)."""
        ids = [f"C{i:03d}" for i in range(1, self.collectors + 1)]
        return {c: int(self.collector_overrides.get(c, self.collector_minutes)) for c in ids}


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


@dataclass(frozen=True)
class TrackingSettings:
    """MLflow store, experiments and the registered model's name."""

    experiment: str
    registered_model: str
    default_uri: str
    scoring_experiment: str
    strategy_experiment: str
    portfolio_experiment: str
    strategy_model: str


@dataclass(frozen=True)
class PortfolioSettings:
    """The portfolio reports (`huishou portfolio`)."""

    recovery_days: int
    max_mob: int
    kpi_months: int
    duckdb_memory_limit: str
    until: str | None


@dataclass(frozen=True)
class WorkbenchSettings:
    """The collector workbench (`huishou serve`, `huishou ingest-contacts`)."""

    database: str
    database_env: str | None
    host: str
    port: int
    language: str
    currency: str
    clock: str
    session_idle_minutes: int
    session_max_hours: int
    secure_cookies: bool
    contact_details: str
    max_promise_days: int
    password_hash: dict[str, int]


@dataclass(frozen=True)
class Settings:
    """Every section of params.yaml."""

    data: DataSettings
    contracts: ContractSettings
    simulate: SimulateSettings
    features: FeatureSettings
    train: TrainSettings
    evaluate: EvaluateSettings
    tracking: TrackingSettings
    score: ScoreSettings
    strategy: StrategySettings
    scorecard: ScorecardSettings
    workbench: WorkbenchSettings
    portfolio: PortfolioSettings


# The data keys a BookSource reads: every stage that reads the raw book declares them.
SOURCE_PARAMS = (
    "data.source",
    "data.database",
    "data.tables",
    "data.as_of",
    "data.timezone",
    "data.raw_dir",
    "data.validated_dir",
)

# The features keys `FeatureSettings.build_kwargs` reads: every stage that builds features declares them.
FEATURE_BUILD_PARAMS = (
    "features.horizon_days",
    "features.default_dpd",
    "features.paid_tolerance",
    "features.settle_share",
    "features.late_thresholds",
    "features.recent_days",
    "features.promise_grace_days",
    "features.income_understated_ratio",
    "features.application_columns",
    "features.attributes",
    "features.mode",
)

SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "contracts": ContractSettings,
    "simulate": SimulateSettings,
    "features": FeatureSettings,
    "train": TrainSettings,
    "evaluate": EvaluateSettings,
    "tracking": TrackingSettings,
    "score": ScoreSettings,
    "strategy": StrategySettings,
    "scorecard": ScorecardSettings,
    "workbench": WorkbenchSettings,
    "portfolio": PortfolioSettings,
}


def _build(cls: type, raw: Any, section: str, source: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: section '{section}' must be a mapping of keys, got {type(raw).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in '{section}': {unknown}; known: {sorted(known)}")
    missing = [k for k in known if k not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {[f'{section}.{k}' for k in missing]} (every key is required)")
    return cls(**raw)


def _check(settings: Settings, source: str) -> None:
    f = settings.features
    rules = [
        (f.split_mode in {"time", "hash"}, f"features.split_mode must be time or hash, got {f.split_mode!r}"),
        (f.mode in {"servicing", "origination"}, f"features.mode must be servicing or origination, got {f.mode!r}"),
        (
            settings.train.engine in {"local", "dask"},
            f"train.engine must be local or dask, got {settings.train.engine!r}",
        ),
        (
            settings.score.engine in {"local", "dask"},
            f"score.engine must be local or dask, got {settings.score.engine!r}",
        ),
        (
            settings.score.reasons_min_band in settings.score.band_labels,
            "score.reasons_min_band must be one of score.band_labels",
        ),
        (
            len(settings.score.band_labels) == len(settings.score.band_thresholds) + 1,
            "score.band_labels needs one label more than score.band_thresholds",
        ),
        (
            min(settings.train.num_threads, settings.score.num_threads, settings.strategy.effect_model["num_threads"])
            >= 0,
            "train.num_threads, score.num_threads and strategy.effect_model.num_threads must be 0 (one per core) or more",
        ),
        (
            settings.train.calibration in {"platt", "isotonic", "none"},
            "train.calibration must be platt, isotonic or none",
        ),
        (
            pd.Timestamp(f.valid_from) < pd.Timestamp(f.test_from),
            "features.valid_from must be before features.test_from",
        ),
        (f.horizon_days > 0 and f.default_dpd > 0, "features.horizon_days and features.default_dpd must be positive"),
        (len(f.recent_days) > 0 and all(d > 0 for d in f.recent_days), "features.recent_days must be positive days"),
        (all(k > 0 for k in f.late_thresholds), "features.late_thresholds must be positive days"),
        (len(settings.strategy.decision_step_days) > 0, "strategy.decision_step_days must not be empty"),
        (settings.workbench.language in {"zh-CN", "en"}, "workbench.language must be zh-CN or en"),
        (settings.workbench.clock in {"system", "worklist_day"}, "workbench.clock must be system or worklist_day"),
        (
            settings.workbench.host in {"127.0.0.1", "localhost", "::1"} or settings.workbench.secure_cookies,
            "workbench.host: serving beyond loopback needs TLS in front and workbench.secure_cookies: true",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{source}: {message}")
    _check_extras(f, source)
    _check_compliance(settings.strategy.compliance, source)
    for key, bounds in settings.contracts.ranges.items():
        if "." not in key or not (isinstance(bounds, list | tuple) and len(bounds) == 2 and bounds[0] <= bounds[1]):
            raise ConfigError(f"{source}: contracts.ranges.{key} must be 'table.column': [low, high] with low <= high")


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
PROFILE_KEYS = {
    "contact_start",
    "contact_end",
    "unanswered_per_method_day",
    "calls_7d",
    "call_gap_after_conversation_days",
    "record_retention_days",
}
_HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")


def _check_compliance(compliance: Mapping, source: str) -> None:
    """strategy.compliance: an active profile among the defined ones, each with every key, hours as HH:MM."""
    key = "strategy.compliance"
    if not isinstance(compliance, Mapping) or set(compliance) != {"profile", "profiles", "overrides"}:
        raise ConfigError(f"{source}: {key} has exactly profile, profiles and overrides")
    profiles = compliance["profiles"] or {}
    if compliance["profile"] not in profiles:
        raise ConfigError(f"{source}: {key}.profile {compliance['profile']!r} is not one of {sorted(profiles)}")
    for name, values in profiles.items():
        if not isinstance(values, Mapping) or set(values) != PROFILE_KEYS:
            raise ConfigError(f"{source}: {key}.profiles.{name} needs exactly {sorted(PROFILE_KEYS)}")
    unknown = set(compliance["overrides"] or {}) - PROFILE_KEYS
    if unknown:
        raise ConfigError(f"{source}: {key}.overrides: unknown key(s) {sorted(unknown)}")
    active = dict(profiles[compliance["profile"]]) | dict(compliance["overrides"] or {})
    for hour in ("contact_start", "contact_end"):
        if not _HHMM.match(str(active[hour])):
            raise ConfigError(f"{source}: {key}: {hour} must be HH:MM, got {active[hour]!r}")


def _check_extras(f: FeatureSettings, source: str) -> None:
    """The lender's declared columns: safe names, a known kind, no protected characteristic, no duplicate."""
    protected = {p.lower() for p in f.protected}
    seen = set()
    for where, items in (("application_columns", f.application_columns), ("attributes", f.attributes)):
        for item in items:
            key = f"features.{where}"
            if not isinstance(item, Mapping) or set(item) - {"name", "kind", "description", "monotone"}:
                raise ConfigError(f"{source}: {key}: each entry is {{name, kind, description, monotone}}, got {item!r}")
            name = str(item.get("name", ""))
            if not _NAME.match(name):
                raise ConfigError(f"{source}: {key}: name {name!r} must be lower-case letters, digits and _")
            if item.get("kind") not in ("numeric", "categorical"):
                raise ConfigError(f"{source}: {key}: {name}: kind must be numeric or categorical")
            if int(item.get("monotone", 0)) not in (-1, 0, 1):
                raise ConfigError(f"{source}: {key}: {name}: monotone must be -1, 0 or 1")
            if name in protected:
                raise ConfigError(
                    f"{source}: {key}: {name} is in features.protected (a protected characteristic is never a feature)"
                )
            if (where, name) in seen:
                raise ConfigError(f"{source}: {key}: {name} declared twice")
            seen.add((where, name))


def settings_from_dict(raw: Mapping[str, Any], source: str = "params.yaml") -> Settings:
    """Build and validate settings from a complete parsed params mapping (`source` names it in errors)."""
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    missing = [name for name in SECTIONS if name not in raw]
    if missing:
        raise ConfigError(f"{source}: missing section(s) {missing} (every key is required)")
    settings = Settings(**{name: _build(cls, raw[name], name, source) for name, cls in SECTIONS.items()})
    _check(settings, source)
    return settings


def merge(base: Mapping, override: Mapping) -> dict:
    """`override` laid over `base`, nested mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def read_params(path: str | Path) -> dict[str, Any]:
    """A params file as a mapping; `extends: other.yaml` (relative to it) is loaded first and overridden."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the repository root or pass --params)")
    try:  # YAML 1.2, as DVC writes it (`dvc exp run -S` leaves 22:00 unquoted: a time, not 1320 in base 60)
        raw = YAML(typ="safe", pure=True).load(path.read_text()) or {}
    except YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of sections")
    parent = raw.pop("extends", None)
    return merge(read_params(path.parent / parent), raw) if parent else raw


def load_settings(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read and validate params.yaml (or a file that extends it), with optional `overrides` laid over it."""
    return settings_from_dict(merge(read_params(path), overrides or {}), str(path))


# ---------------------------------------------------------------- what a stage may read


def _declares(allowed: frozenset[str], section: str, key: str | None = None) -> bool:
    if section in allowed:
        return True
    if key is None:
        return any(a.startswith(section + ".") for a in allowed)
    return f"{section}.{key}" in allowed


_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in SECTIONS.values()
}


class SectionView:
    """One section of the settings, readable only where the owner declared it; methods run on the view."""

    def __init__(self, section: Any, name: str, view: ParamsView):
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_view", view)

    def __getattr__(self, key: str) -> Any:
        section, name, view = self._section, self._name, self._view
        if key in _FIELDS[type(section)]:
            view._read(name, key)
            return getattr(section, key)
        attr = getattr(type(section), key, None)
        if isinstance(attr, property):
            return attr.fget(self)
        if callable(attr):
            return types.MethodType(attr, self)
        raise AttributeError(f"settings section '{name}' has no key '{key}'")

    def __setattr__(self, key: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"settings are read-only ({self._name}.{key})")


class ParamsView:
    """The settings as one stage may see them: only the declared keys ("section" or "section.key")."""

    def __init__(self, settings: Settings, declared: Iterable[str], owner: str):
        self._settings = settings
        self._declared = frozenset(declared)
        self._owner = owner
        self.reads: set[str] = set()
        bad = [d for d in self._declared if d.split(".")[0] not in SECTIONS]
        if bad:
            raise ConfigError(f"stage '{owner}' declares unknown params {sorted(bad)}")

    def _read(self, section: str, key: str) -> None:
        if not _declares(self._declared, section, key):
            raise ConfigError(
                f"stage '{self._owner}' read params key '{section}.{key}' it does not declare; add it to PARAMS in "
                f"huishou/stages/{self._owner}.py and to the stage's params in dvc.yaml"
            )
        self.reads.add(f"{section}.{key}")

    def __getattr__(self, name: str) -> SectionView:
        if name.startswith("_") or name not in SECTIONS:
            raise AttributeError(name)
        if not _declares(self._declared, name):
            raise ConfigError(f"stage '{self._owner}' reads params section '{name}' it does not declare")
        return SectionView(getattr(self._settings, name), name, self)

    def declared_values(self) -> dict[str, Any]:
        """Every declared key with its value, flattened to `section.key` (what the stage's result depends on)."""
        out = {}
        for name, section in dataclasses.asdict(self._settings).items():
            for key, value in section.items():
                if _declares(self._declared, name, key):
                    out[f"{name}.{key}"] = value
        return out
