"""Policy evaluation without ground truth: the DPD escalation ladder (the baseline policy) and
off-policy estimates (IPS, doubly robust) on the logged legacy decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.config import StrategySettings
from huishou.strategy.assign import Plan, roomiest


def ladder_choice(ctx: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings) -> pd.Series:
    """The DPD ladder: an sms first, a call from DPD strategy.ladder_call_from_dpd, a visit from
    strategy.ladder_visit_from_dpd; a forbidden rung steps down."""
    wish = np.select(
        [ctx["dpd"] >= cfg.ladder_visit_from_dpd, ctx["dpd"] >= cfg.ladder_call_from_dpd], ["visit", "call"], "sms"
    )
    out = []
    for i, w in zip(ctx.index, wish, strict=True):
        for rung in {"visit": ["visit", "call", "sms"], "call": ["call", "sms"], "sms": ["sms"]}[w]:
            if allowed.at[i, rung]:
                out.append(rung)
                break
        else:
            out.append("repayment_plan" if allowed.at[i, "repayment_plan"] else "none")
    return pd.Series(out, index=ctx.index)


def ladder_plan(ctx: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings) -> Plan:
    """The ladder under the same capacity (strategy.minutes, the collectors' capacities): human rungs go to
    the highest DPD (then largest amount) first; a loan that finds no collector gets an sms (or nothing)."""
    minutes, capacities = cfg.minutes, cfg.capacities()
    wish = ladder_choice(ctx, allowed, cfg)
    action = pd.Series("none", index=ctx.index, dtype=object)
    collector = pd.Series(None, index=ctx.index, dtype=object)
    remaining = dict(capacities)
    for i in ctx.sort_values(["dpd", "overdue_amount"], ascending=False).index:
        need = minutes.get(wish[i], 0)
        who = roomiest(remaining, need) if need > 0 else None
        if need == 0 or who is not None:
            action[i] = wish[i]
            if who is not None:
                remaining[who] -= need
                collector[i] = who
        elif allowed.at[i, "sms"]:
            action[i] = "sms"
    return Plan(action, collector, float("nan"), "ladder", {})


def ips_dr(
    logged: pd.DataFrame, target: pd.Series, mu: pd.DataFrame, reward: pd.Series, max_weight: float
) -> dict[str, float]:
    """Per-decision IPS and doubly-robust value of a deterministic target policy.

    logged: columns action, propensity; mu: model estimates of the reward for every action (columns ACTIONS).
    """
    match = (logged["action"] == target).astype(float)
    w = np.minimum(match / logged["propensity"].clip(lower=1e-6), max_weight)
    mu_target = mu.to_numpy()[np.arange(len(mu)), mu.columns.get_indexer(target)]
    mu_logged = mu.to_numpy()[np.arange(len(mu)), mu.columns.get_indexer(logged["action"])]
    ips = float(np.mean(w * reward))
    dr = float(np.mean(mu_target + w * (reward - mu_logged)))
    return {"ips": ips, "dr": dr, "match_rate": float(match.mean())}
