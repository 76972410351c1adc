"""Settings of the collection strategy, with the rule profiles it plans under."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from huishou.core.errors import ConfigError


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


PROFILE_KEYS = {
    "contact_start",
    "contact_end",
    "unanswered_per_method_day",
    "calls_7d",
    "call_gap_after_conversation_days",
    "record_retention_days",
}
_HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")


def check_compliance(compliance: Mapping, source: str) -> None:
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
