"""Policy evaluation without ground truth: the DPD escalation ladder (the baseline policy) and
off-policy estimates (IPS, doubly robust) on the logged legacy decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.core.settings import StrategySettings
from huishou.strategy.assign import Plan
from huishou.strategy.team import Rooms, Team, languages_of

LADDERS = {  # the rungs a baseline ladder tries, per stage, highest first
    "pre_due": ("sms",),
    "early_call": ("call", "sms"),
    "early": ("sms",),
    "recovery_agency": ("agency", "call", "sms"),
    "recovery_visit": ("visit", "call", "sms"),
    "recovery": ("call", "sms"),
}


def ladder_choice(ctx: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings) -> pd.Series:
    """The DPD ladder: a reminder before the due date; an sms, then a call from DPD
    strategy.ladder_call_from_dpd; in recovery a call, a visit from ladder_visit_from_dpd and agency
    placement from ladder_agency_from_dpd. A forbidden rung steps down; in the end a plan or nothing."""
    dpd, stage = ctx["dpd"].to_numpy(), ctx["stage"].to_numpy()
    key = np.select(
        [
            stage == "pre_due",
            (stage == "early") & (dpd >= cfg.ladder_call_from_dpd),
            stage == "early",
            dpd >= cfg.ladder_agency_from_dpd,
            dpd >= cfg.ladder_visit_from_dpd,
        ],
        ["pre_due", "early_call", "early", "recovery_agency", "recovery_visit"],
        "recovery",
    )
    out = np.full(len(ctx), None, dtype=object)
    open_ = np.ones(len(ctx), dtype=bool)  # no rung chosen yet
    for k, rungs in LADDERS.items():
        for rung in rungs:  # the first allowed rung of the row's ladder
            take = open_ & (key == k) & allowed[rung].to_numpy(dtype=bool)
            out[take], open_ = rung, open_ & ~take
    out[open_] = np.where(allowed["repayment_plan"].to_numpy(dtype=bool)[open_], "repayment_plan", "none")
    return pd.Series(out, index=ctx.index)


def ladder_plan(
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    cfg: StrategySettings,
    capacities: Team | dict[str, int] | None = None,
    limits: dict[str, int] | None = None,
) -> Plan:
    """The ladder under the same capacity: human rungs and limited placements go to the highest DPD (then
    largest amount) first; a loan that finds no collector gets an sms (or nothing); one contact per borrower."""
    order = ctx.sort_values(["dpd", "overdue_amount"], ascending=False).index
    return plan_in_order(ctx, allowed, ladder_choice(ctx, allowed, cfg), order, cfg, capacities, limits, "ladder")


def plan_in_order(
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    wish: pd.Series,
    order: pd.Index,
    cfg: StrategySettings,
    capacities: Team | dict[str, int] | None = None,
    limits: dict[str, int] | None = None,
    name: str = "worklist",
    fallback: pd.Series | None = None,
) -> Plan:
    """A worklist worked best-first: in `order`, each loan gets its `wish` while a collector has the minutes
    (and a limited placement has room), else its `fallback` message (default sms) where lawful, else nothing;
    one contact per borrower. A human wish needs a collector with the skill who speaks the borrower's language
    (`capacities`: the team, default the settings' whole team)."""
    minutes = cfg.minutes
    team = Team.from_settings(cfg) if capacities is None else Team.of(capacities)
    rooms = Rooms(team.minutes)
    lang = team.row_languages(languages_of(ctx), len(ctx))
    left = dict(limits or {})
    # plain lists by position: the loop runs once per candidate, where pandas' scalar access costs most
    borrowers, wishes = ctx["borrower_id"].tolist(), wish.reindex(ctx.index).tolist()
    spares = ["sms"] * len(ctx) if fallback is None else fallback.reindex(ctx.index).tolist()
    lawful_now = {a: allowed[a].reindex(ctx.index).to_numpy(dtype=bool) for a in allowed.columns}
    positions = ctx.index.get_indexer(order)
    if (positions < 0).any():
        raise KeyError("the order names rows that are not candidates")
    action, collector = ["none"] * len(ctx), [None] * len(ctx)
    contacted: set = set()
    for i in positions:
        borrower = borrowers[i]
        if borrower in contacted:
            continue
        want = wishes[i]
        need = minutes.get(want, 0)
        who = rooms.roomiest(need, team.eligible(want, lang[i]) if team.restricted else None)
        capped = want in left and left[want] <= 0
        spare = spares[i]
        if (need == 0 or who is not None) and not capped:
            action[i] = want
            if who is not None:
                rooms.use(who, need)
                collector[i] = who
            if want in left:
                left[want] -= 1
        elif spare != "none" and lawful_now[spare][i]:
            action[i] = spare
        if action[i] != "none":
            contacted.add(borrower)
    action = pd.Series(action, index=ctx.index, dtype=object)
    collector = pd.Series(collector, index=ctx.index, dtype=object)
    return Plan(action, collector, float("nan"), name, {})


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
