"""One day's plan: the delinquent loans at D, the value of every lawful action, the chosen actions.

effects.py learns P(paid | action, context) from the logged legacy decisions; rules.py says which
actions are lawful for each loan; assign.py picks one action per loan and a collector for human
actions within the daily minutes; policy_eval.py estimates the value of the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from huishou.book.contracts import empty_table
from huishou.config import StrategySettings
from huishou.features.population import paid_enough
from huishou.strategy.assign import Plan, plan
from huishou.strategy.context import CONTEXT_FEATURES, decision_context, logged_decisions
from huishou.strategy.effects import EffectModel, fit_effect_model
from huishou.strategy.policy_eval import ips_dr, ladder_choice, ladder_plan
from huishou.strategy.rules import allowed_actions, violations
from huishou.vocab import ACTIONS, AUTO


def delinquent_loans(
    installments: pd.DataFrame, day: pd.Timestamp, max_dpd: int, dpd_default: int, tol: float, share: float
) -> pd.Series:
    """Loans 1..max_dpd days past due at `day` that have not reached `dpd_default` (early collections).

    `tol` and `share` are the settlement rule of params.yaml features (paid_tolerance, settle_share).
    """
    inst = installments
    settled = (inst["paid_date"] < day) & paid_enough(inst, tol, share)
    open_ = (inst["due_date"] < day) & ~settled
    oldest = inst.loc[open_].groupby("loan_id")["due_date"].min()
    dpd = (day - oldest).dt.days
    return pd.Series(dpd[(dpd >= 1) & (dpd <= max_dpd) & (dpd < dpd_default)].index, name="loan_id")


def values_matrix(
    p_paid: pd.DataFrame, overdue: pd.Series, allowed: pd.DataFrame, costs: Mapping[str, float]
) -> pd.DataFrame:
    """Expected recovery net of cost per (loan, action); -inf where a rule forbids the action."""
    cost = np.array([costs[a] for a in ACTIONS])
    v = p_paid[list(ACTIONS)].to_numpy() * overdue.to_numpy()[:, None] - cost
    return pd.DataFrame(v, index=p_paid.index, columns=list(ACTIONS)).where(allowed, -np.inf)


def plan_day(
    tables: Mapping[str, pd.DataFrame],
    day: pd.Timestamp,
    effects: EffectModel | None,
    cfg: StrategySettings,
    dpd_default: int,
    tol: float,
    share: float,
    rng: np.random.Generator | None = None,
) -> tuple[pd.DataFrame, Plan]:
    """Candidates at `day` with context, estimated P(paid | action), lawful actions and the chosen plan.

    `dpd_default`, `tol` and `share` are params.yaml features (default_dpd, paid_tolerance, settle_share).
    Without an effect model (no collection log yet) the day is planned by the cold-start policy, whose
    random choices are drawn from `rng` and logged with their propensities.
    """
    loans = delinquent_loans(tables["installments"], day, cfg.max_dpd, dpd_default, tol, share)
    decisions = pd.DataFrame(
        {
            "decision_id": np.arange(len(loans)),
            "loan_id": loans.to_numpy(),
            "t": pd.Series(day, index=range(len(loans))).astype("datetime64[us]"),
        }
    )
    ctx = (
        decision_context(tables, decisions, tol, share, cfg.decision_step_days) if len(decisions) else _empty_context()
    )
    ctx = ctx[ctx["dpd"].notna()].reset_index(drop=True)
    allowed, paths = allowed_actions(ctx, cfg)
    if effects is None:
        p_paid = pd.DataFrame(np.nan, index=ctx.index, columns=list(ACTIONS))
        chosen, propensity = cold_start(ctx, allowed, cfg, rng or np.random.default_rng(cfg.seed))
        policy = "cold start"
    else:
        p_paid = effects.predict(ctx) if len(ctx) else pd.DataFrame(columns=list(ACTIONS), dtype=float)
        chosen = plan(
            values_matrix(p_paid, ctx["overdue_amount"], allowed, cfg.costs),
            cfg.minutes,
            cfg.capacities(),
            cfg.mip_time_limit_s,
        )
        propensity, policy = np.ones(len(ctx)), "effect model"  # a deterministic plan
    values = values_matrix(p_paid, ctx["overdue_amount"], allowed, cfg.costs)
    broken = violations(ctx, chosen.action, cfg)
    if broken:
        raise AssertionError(f"plan breaks collection rules: {broken[:5]}")
    cand = ctx.copy()
    for a in ACTIONS:
        cand[f"p_{a}"] = p_paid[a].to_numpy()
        cand[f"allowed_{a}"] = allowed[a].to_numpy()
    cand["action"] = chosen.action.to_numpy()
    cand["collector_id"] = chosen.collector.fillna(AUTO).to_numpy()
    cand["expected_value"] = (
        values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(chosen.action)]
        if len(values)
        else np.array([])
    )
    cand["p_paid"] = (
        p_paid.to_numpy()[np.arange(len(p_paid)), p_paid.columns.get_indexer(chosen.action)]
        if len(p_paid)
        else np.array([])
    )
    cand["rule_path"] = [paths.at[i, a] for i, a in zip(paths.index, chosen.action, strict=True)]
    cand["policy"] = policy
    cand["propensity"] = propensity
    return cand, chosen


def cold_start(
    ctx: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings, rng: np.random.Generator
) -> tuple[Plan, np.ndarray]:
    """The plan before any collection log exists: the DPD ladder under capacity, explored.

    Each loan keeps its ladder action with probability 1 - strategy.cold_start_epsilon; otherwise it
    takes a lawful action drawn uniformly from those that need no more collector minutes than the
    ladder's (so capacity still holds; a human action keeps its collector). The probability of the
    action taken is returned exactly, so that the outcomes logged from these plans can train the
    IPW effect model later.
    """
    base = ladder_plan(ctx, allowed, cfg)
    action, collector = base.action.copy(), base.collector.copy()
    propensity = np.ones(len(ctx))
    eps = cfg.cold_start_epsilon
    explore = rng.random(len(ctx)) < eps
    draws = rng.random(len(ctx))
    for pos, i in enumerate(ctx.index):
        budget = cfg.minutes[base.action[i]]
        options = [a for a in ACTIONS if allowed.at[i, a] and cfg.minutes[a] <= budget]
        taken = options[int(draws[pos] * len(options))] if explore[pos] else base.action[i]
        action[i] = taken
        if cfg.minutes[taken] == 0:
            collector[i] = None
        propensity[pos] = (1 - eps) * (taken == base.action[i]) + eps / len(options)
    stats = {"method": "cold start", "epsilon": eps, "explored": int(explore.sum())}
    return Plan(action, collector, float("nan"), "cold start", stats), propensity


def _empty_context() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["decision_id", "loan_id", "t", "borrower_id", "open_due", *CONTEXT_FEATURES], dtype=float
    )


def off_policy_report(decisions: pd.DataFrame, effects: EffectModel, cfg: StrategySettings) -> dict:
    """IPS and DR value per decision of the strategy's choice, the legacy policy and the DPD ladder."""
    allowed, _ = allowed_actions(decisions, cfg)
    p = effects.predict(decisions)
    mu = values_matrix(
        p, decisions["overdue_amount"], pd.DataFrame(True, index=p.index, columns=list(ACTIONS)), cfg.costs
    )
    reward = decisions["paid"] * decisions["overdue_amount"] - decisions["action"].map(cfg.costs)
    strategy = values_matrix(p, decisions["overdue_amount"], allowed, cfg.costs).idxmax(axis=1)
    ladder = ladder_choice(decisions, allowed, cfg)
    w = cfg.effect_model["max_weight"]
    return {
        "legacy": {"on_policy": float(reward.mean())},
        "strategy": ips_dr(decisions, strategy, mu, reward, w),
        "ladder": ips_dr(decisions, ladder, mu, reward, w),
        "n_decisions": len(decisions),
    }


@dataclass
class StrategyPlans:
    """The plans of every worklist date (the last one is published) and their off-policy evaluation."""

    days: list[pd.Timestamp]
    candidates: dict[pd.Timestamp, pd.DataFrame]  # per date: every delinquent loan with context, values, choice
    stats: dict[str, dict]  # per date: solver values, MIP bound and gap, candidates, actions
    off_policy: dict  # IPS / DR of the strategy and the ladder on the hold-out of logged decisions

    @property
    def published(self) -> pd.Timestamp:
        return self.days[-1]


def plan_strategy(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    cfg: StrategySettings,
    dpd_default: int,
    tol: float,
    share: float,
) -> StrategyPlans:
    """Learn the action effects from the logged decisions and plan every worklist date.

    Decisions whose response window ends after the first worklist date are not used (their
    outcome is not known then). The off-policy estimate scores the last `cfg.ope_holdout_days`
    of those decisions with an effect model fitted on the earlier ones.
    """
    days = sorted(as_of - pd.Timedelta(days=d) for d in cfg.eval_days_before_as_of)
    cutoff = days[0] - pd.Timedelta(days=cfg.response_days)
    tables = dict(tables)
    tables.setdefault("collection_actions", empty_table("collection_actions"))
    logged = logged_decisions(tables, cutoff, cfg.response_days, tol, share, cfg.decision_step_days)
    holdout = logged["t"] >= cutoff - pd.Timedelta(days=cfg.ope_holdout_days)
    learnable = lambda frame: len(frame) >= cfg.min_logged_decisions and frame["paid"].nunique() == 2  # noqa: E731
    if learnable(logged):
        effects = fit_effect_model(logged, cfg.effect_model)
        ope = (
            off_policy_report(
                logged[holdout].reset_index(drop=True), fit_effect_model(logged[~holdout], cfg.effect_model), cfg
            )
            if learnable(logged[~holdout]) and holdout.any()
            else {"skipped": "too few logged decisions to hold out"}
        )
    else:
        effects = None
        ope = {
            "skipped": f"{len(logged)} logged decisions (strategy.min_logged_decisions is "
            f"{cfg.min_logged_decisions}, both outcomes needed): planned by the cold-start policy"
        }
    rng = np.random.default_rng(cfg.seed)
    candidates, stats = {}, {}
    for day in days:
        cand, chosen = plan_day(tables, day, effects, cfg, dpd_default, tol, share, rng)
        candidates[day] = cand
        stats[str(day.date())] = chosen.stats | {
            "candidates": len(cand),
            "actions": cand["action"].value_counts().to_dict(),
        }
    return StrategyPlans(days, candidates, stats, ope)
