"""Typed settings read from params.yaml (one module per room beside this loader), the only place a tunable is written.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from huishou.core.errors import ConfigError
from huishou.core.settings.book import ContractSettings, DataSettings
from huishou.core.settings.features import FeatureSettings, check_extras
from huishou.core.settings.platform import ComputeSettings, PortfolioSettings, TrackingSettings, WorkbenchSettings
from huishou.core.settings.risk import EvaluateSettings, ScorecardSettings, ScoreSettings, TrainSettings
from huishou.core.settings.simulate import SimulateSettings
from huishou.core.settings.strategy import StrategySettings, check_closed_loop, check_compliance, check_roster


@dataclass(frozen=True)
class Settings:
    """Every section of params.yaml."""

    compute: ComputeSettings
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


SECTIONS: dict[str, type] = {
    "compute": ComputeSettings,
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
            settings.features.engine in {"local", "dask"},
            f"features.engine must be local or dask, got {settings.features.engine!r}",
        ),
        (
            settings.features.rows_per_partition > 0,
            "features.rows_per_partition must be a positive number of loans",
        ),
        (
            settings.portfolio.engine in {"local", "dask"},
            f"portfolio.engine must be local or dask, got {settings.portfolio.engine!r}",
        ),
        (
            settings.portfolio.rows_per_partition > 0,
            "portfolio.rows_per_partition must be a positive number of loans",
        ),
        (
            settings.train.max_rows >= 0,
            "train.max_rows must be 0 (every labelled row) or a positive number of rows",
        ),
        (
            settings.compute.threads >= 0,
            "compute.threads must be 0 (the CPUs this process may use) or more",
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
        (int(settings.workbench.workers) >= 1, "workbench.workers must be at least 1"),
        (
            set(settings.portfolio.cost_ceiling) == {"max_rate", "in_force", "method"}
            and settings.portfolio.cost_ceiling.get("method") in {"nominal", "effective"}
            and 0 < float(settings.portfolio.cost_ceiling.get("max_rate", 0)) < 10,
            "portfolio.cost_ceiling needs max_rate (a share, e.g. 0.24), in_force (YYYY-MM-DD) and method "
            "(nominal or effective)",
        ),
        (
            settings.workbench.clock in {"system", "worklist_day", "demo"},
            "workbench.clock must be system, worklist_day or demo",
        ),
        (
            re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(settings.workbench.demo_start)) is not None,
            "workbench.demo_start must be a time of day HH:MM, e.g. 10:00",
        ),
        (
            settings.workbench.host in {"127.0.0.1", "localhost", "::1"} or settings.workbench.secure_cookies,
            "workbench.host: serving beyond loopback needs TLS in front and workbench.secure_cookies: true",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{source}: {message}")
    check_extras(f, source)
    check_compliance(settings.strategy.compliance, source)
    check_closed_loop(settings.strategy.closed_loop, source)
    check_roster(settings.strategy, source, tuple(a for a, m in settings.strategy.minutes.items() if int(m) > 0))
    for key, bounds in settings.contracts.ranges.items():
        if "." not in key or not (isinstance(bounds, list | tuple) and len(bounds) == 2 and bounds[0] <= bounds[1]):
            raise ConfigError(f"{source}: contracts.ranges.{key} must be 'table.column': [low, high] with low <= high")


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
