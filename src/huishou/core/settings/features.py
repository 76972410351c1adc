"""Settings of the point-in-time features: the snapshot grid, the target, the lender's own columns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from huishou.core.errors import ConfigError


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

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def check_extras(f: FeatureSettings, source: str) -> None:
    """The lender's declared columns: safe names, a known kind, no protected characteristic, no duplicate."""
    protected = {p.lower() for p in f.protected}
    seen = set()
    for where, items in (("application_columns", f.application_columns), ("attributes", f.attributes)):
        for item in items:
            key = f"features.{where}"
            if not isinstance(item, Mapping) or set(item) - {"name", "kind", "description", "monotone"}:
                raise ConfigError(f"{source}: {key}: each entry is {{name, kind, description, monotone}}, got {item!r}")
            name = str(item.get("name", ""))
            if not NAME.match(name):
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
