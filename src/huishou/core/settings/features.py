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
    protected_synonyms: dict[str, list[str]]  # characteristic -> words (any language) naming it or a proxy
    duckdb_memory_limit: str
    mode: str
    split_mode: str
    hash_valid_share: float
    hash_test_share: float
    valid_from: str
    test_from: str
    rows_per_partition: int = 250_000  # beyond it the features stage builds one borrower bucket at a time
    engine: str = "local"  # local: bucket after bucket in this process; dask: one task per bucket

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


PROTECTED_RULE = (
    "a protected characteristic or its proxy is never a feature (US ECOA / Reg B 12 CFR 1002.6(b); China PIPL "
    "art. 24 and 28: no unreasonable differential treatment, sensitive personal information) unless the entry "
    "states a lawful_purpose"
)


def protected_match(name: str, description: str, synonyms: Mapping[str, list[str]]) -> tuple[str, str] | None:
    """(characteristic, the word that matched) when a column's name or declared meaning names a protected
    characteristic: a synonym equal to a word of the name or description (split at non-letters), or, for
    words in a script without spaces (e.g. 性别), contained in them. None otherwise."""
    text = f"{name} {description}".lower()
    words = set(re.split(r"[^0-9a-z\u00c0-\u024f]+", text))
    for characteristic, terms in synonyms.items():
        for term in [characteristic, *terms]:
            t = str(term).lower().strip()
            if not t:
                continue
            if t.isascii() and (t in words or ("_" in t and t in text) or (" " in t and t in text)):
                return characteristic, t
            if not t.isascii() and t in text:
                return characteristic, t
    return None


def check_extras(f: FeatureSettings, source: str) -> None:
    """The lender's declared columns: safe names, a known kind, no protected characteristic (by name, synonym
    or declared meaning, unless a lawful_purpose is stated), no duplicate."""
    # in params order (a set's order changes between runs): the first characteristic named is the one reported
    synonyms = {p.lower(): [] for p in f.protected} | {k: list(v) for k, v in (f.protected_synonyms or {}).items()}
    seen = set()
    for where, items in (("application_columns", f.application_columns), ("attributes", f.attributes)):
        for item in items:
            key = f"features.{where}"
            allowed = {"name", "kind", "description", "monotone", "lawful_purpose"}
            if not isinstance(item, Mapping) or set(item) - allowed:
                raise ConfigError(
                    f"{source}: {key}: each entry is {{name, kind, description, monotone, lawful_purpose}}, got {item!r}"
                )
            name = str(item.get("name", ""))
            if not NAME.match(name):
                raise ConfigError(f"{source}: {key}: name {name!r} must be lower-case letters, digits and _")
            if item.get("kind") not in ("numeric", "categorical"):
                raise ConfigError(f"{source}: {key}: {name}: kind must be numeric or categorical")
            if int(item.get("monotone", 0)) not in (-1, 0, 1):
                raise ConfigError(f"{source}: {key}: {name}: monotone must be -1, 0 or 1")
            hit = protected_match(name, str(item.get("description", "")), synonyms)
            if hit and not str(item.get("lawful_purpose", "")).strip():
                raise ConfigError(
                    f"{source}: {key}: {name} names the protected characteristic '{hit[0]}' (word '{hit[1]}' in its "
                    f"name or description); rule: {PROTECTED_RULE}"
                )
            if (where, name) in seen:
                raise ConfigError(f"{source}: {key}: {name} declared twice")
            seen.add((where, name))
