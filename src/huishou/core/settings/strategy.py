"""Settings of the collection strategy, with the rule profiles it plans under."""

from __future__ import annotations

import dataclasses
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
    collector_skills: dict[str, list[str]]
    collector_languages: dict[str, list[str]]
    default_language: str
    max_contacts_7d: int
    min_noncontact_before_call: int
    visit_min_amount: float
    visit_min_dpd: int
    visit_min_unreached_attempts: int
    visit_min_call_attempts: int
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
    closed_loop: dict

    def capacities(self) -> dict[str, int]:
        """Daily minutes per collector id (C001 ... C<collectors>)."""
        ids = [f"C{i:03d}" for i in range(1, self.collectors + 1)]
        return {c: int(self.collector_overrides.get(c, self.collector_minutes)) for c in ids}


def check_roster(cfg: StrategySettings, source: str, human: tuple[str, ...]) -> None:
    """strategy.collector_overrides / collector_skills / collector_languages name collectors of the team
    (C001 ... C<collectors>); skills are human actions (those with collector minutes); languages are codes."""
    ids = set(cfg.capacities())
    for key in ("collector_overrides", "collector_skills", "collector_languages"):
        unknown = sorted(set(getattr(cfg, key) or {}) - ids)
        if unknown:
            raise ConfigError(f"{source}: strategy.{key} names {unknown[:5]}, not among C001..C{cfg.collectors:03d}")
    for who, skills in (cfg.collector_skills or {}).items():
        wrong = sorted(set(skills or []) - set(human))
        if not isinstance(skills, list | tuple) or wrong:
            raise ConfigError(f"{source}: strategy.collector_skills.{who} must list human actions of {list(human)}")
    for who, langs in (cfg.collector_languages or {}).items():
        if not isinstance(langs, list | tuple) or not all(isinstance(x, str) and x for x in langs):
            raise ConfigError(f"{source}: strategy.collector_languages.{who} must list language codes, e.g. [zh, yue]")
    if not (isinstance(cfg.default_language, str) and cfg.default_language):
        raise ConfigError(f"{source}: strategy.default_language must be a language code, e.g. zh")


PROFILE_KEYS = {
    "contact_start",
    "contact_end",
    "unanswered_per_method_day",
    "calls_7d",
    "call_gap_after_conversation_days",
    "record_retention_days",
}
OPTIONAL_PROFILE_KEYS = {"call_channels", "visits_30d", "electronic_consent"}  # default: calls only, no rule, False
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
        if not isinstance(values, Mapping) or not PROFILE_KEYS <= set(values) <= PROFILE_KEYS | OPTIONAL_PROFILE_KEYS:
            raise ConfigError(
                f"{source}: {key}.profiles.{name} needs {sorted(PROFILE_KEYS)}, and may set {sorted(OPTIONAL_PROFILE_KEYS)}"
            )
        channels = values.get("call_channels", ["call"])
        if not isinstance(channels, list) or not set(channels) <= {"call", "sms"} or "call" not in channels:
            raise ConfigError(f"{source}: {key}.profiles.{name}.call_channels must be [call] or [call, sms]")
    unknown = set(compliance["overrides"] or {}) - PROFILE_KEYS - OPTIONAL_PROFILE_KEYS
    if unknown:
        raise ConfigError(f"{source}: {key}.overrides: unknown key(s) {sorted(unknown)}")
    active = dict(profiles[compliance["profile"]]) | dict(compliance["overrides"] or {})
    for hour in ("contact_start", "contact_end"):
        if not _HHMM.match(str(active[hour])):
            raise ConfigError(f"{source}: {key}: {hour} must be HH:MM, got {active[hour]!r}")


CLOSED_LOOP_KEYS = {
    "horizon_days",
    "seeds",
    "sample_borrowers",
    "sample_seed",
    "workers",
    "world",
    "other_worlds_seeds",
    "worlds",
}
WORLD_KEYS = {"fatigue", "heterogeneity", "recovery_step_days", "complaint_channel"}


def check_closed_loop(loop: Mapping, source: str) -> None:
    """strategy.closed_loop: every key, a positive horizon, seeds, a headline world among the worlds, each world
    with every knob (fatigue and heterogeneity in [0, 1], complaint factors >= 0)."""
    key = "strategy.closed_loop"
    if not isinstance(loop, Mapping) or set(loop) != CLOSED_LOOP_KEYS:
        raise ConfigError(f"{source}: {key} has exactly {sorted(CLOSED_LOOP_KEYS)}")
    if int(loop["horizon_days"]) < 1 or not loop["seeds"] or int(loop["sample_borrowers"]) < 1:
        raise ConfigError(f"{source}: {key}: horizon_days and sample_borrowers must be positive, seeds not empty")
    worlds = loop["worlds"] or {}
    if loop["world"] not in worlds:
        raise ConfigError(f"{source}: {key}.world {loop['world']!r} is not one of {sorted(worlds)}")
    for name, world in worlds.items():
        if not isinstance(world, Mapping) or set(world) != WORLD_KEYS:
            raise ConfigError(f"{source}: {key}.worlds.{name} needs exactly {sorted(WORLD_KEYS)}")
        if not (0 <= float(world["fatigue"]) <= 1 and 0 <= float(world["heterogeneity"]) <= 1):
            raise ConfigError(f"{source}: {key}.worlds.{name}: fatigue and heterogeneity must lie in [0, 1]")
        if int(world["recovery_step_days"]) < 1 or any(float(v) < 0 for v in world["complaint_channel"].values()):
            raise ConfigError(f"{source}: {key}.worlds.{name}: recovery_step_days >= 1, complaint factors >= 0")


class _EffectThreads:
    """A strategy section (a stage's read-only view) whose effect_model carries the run's thread count."""

    def __init__(self, section, threads: int):
        self._section, self._threads = section, int(threads)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._section, name)
        return value | {"num_threads": self._threads} if name == "effect_model" else value


def with_threads(strategy, threads: int):
    """The strategy settings with compute.threads (made concrete) as the LightGBM threads of the effect and
    promise models: `effect_model["num_threads"]`, which params.yaml does not write (one setting for all)."""
    if dataclasses.is_dataclass(strategy):
        return dataclasses.replace(strategy, effect_model=strategy.effect_model | {"num_threads": int(threads)})
    return _EffectThreads(strategy, threads)
