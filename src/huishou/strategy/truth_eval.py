"""The strategy against the simulator's truth, stage by stage: true expected recovery of the strategy's plans,
of the DPD ladder and of the oracle policy (planned on the true effects), same rules and capacity; and what
each costs in contacts and complaints.

Pure functions over the simulated borrowers' latent state; only the evaluate-strategy stage reads the
simulator's truth and hands it in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.core.settings import StrategySettings
from huishou.core.vocab import ACTIONS, STAGES
from huishou.simulate import STEP_DAYS, action_cure_logits
from huishou.simulate.collection import RECOVERY_EFFECT, complaint_probability, pre_due_shift
from huishou.simulate.generation import sigmoid
from huishou.strategy.assign import plan
from huishou.strategy.plan import recovered_share, stake
from huishou.strategy.policy_eval import ladder_plan
from huishou.strategy.team import Team, languages_of


def with_truth(candidates: pd.DataFrame, borrowers: pd.DataFrame) -> pd.DataFrame:
    """The candidates with their borrowers' latent state (z, hardship) and the device the simulator's effects
    read, on the candidates' index."""
    x = candidates.merge(borrowers[["borrower_id", "z", "hardship"]], on="borrower_id", how="left")
    x.index = candidates.index
    x["device_os"] = np.where(x["ios"] > 0, "ios", "android")
    return x


def true_paid(
    candidates: pd.DataFrame, borrowers: pd.DataFrame, installments: pd.DataFrame, cure_shift: float
) -> pd.DataFrame:
    """True P(paid | action) of every candidate and action (simulated book only): on time for a pre-due
    reminder, cured within the episode's decision for early collection, recovered after default."""
    x = with_truth(candidates, borrowers)
    p = np.full((len(x), len(ACTIONS)), np.nan)
    early = (x["stage"] == "early").to_numpy()
    for step in range(len(STEP_DAYS)):  # the simulated legacy policy's decision steps
        rows = early & (x["step"] == step).to_numpy()
        if rows.any():
            p[rows] = sigmoid(action_cure_logits(x[rows], step, cure_shift))
    recovery = (x["stage"] == "recovery").to_numpy()
    if recovery.any():
        p[recovery] = sigmoid(action_cure_logits(x[recovery], 3, cure_shift)) * RECOVERY_EFFECT
    pre = (x["stage"] == "pre_due").to_numpy()
    if pre.any():
        keys = x.loc[pre, ["loan_id", "open_due"]].astype({"open_due": "datetime64[us]"})
        truth = installments[["loan_id", "due_date", "miss_logit"]].astype({"due_date": "datetime64[us]"})
        logit = keys.merge(truth, left_on=["loan_id", "open_due"], right_on=["loan_id", "due_date"], how="left")[
            "miss_logit"
        ].to_numpy()
        on_time = 1 - sigmoid(logit[:, None] + pre_due_shift(x[pre]))
        for j, a in enumerate(("none", "sms", "app_push")):
            p[pre, ACTIONS.index(a)] = on_time[:, j]
    return pd.DataFrame(p, index=candidates.index, columns=list(ACTIONS))


def true_values(candidates: pd.DataFrame, p_true: pd.DataFrame, cfg: StrategySettings) -> pd.DataFrame:
    """True expected recovery net of cost of every action."""
    cost = np.array([cfg.costs[a] for a in ACTIONS])
    v = p_true.to_numpy() * stake(candidates).to_numpy()[:, None] * recovered_share(candidates, cfg).to_numpy() - cost
    return pd.DataFrame(np.where(np.isfinite(v), v, -np.inf), columns=list(ACTIONS), index=candidates.index)


def true_complaint(candidates: pd.DataFrame) -> np.ndarray:
    """True complaint chance of a contact made today at a lawful hour (the rules keep every plan inside them)."""
    return complaint_probability(candidates["contacts_7d"], 0, 0, candidates["hardship_reported"] > 0)


def truth_comparison(
    candidates: pd.DataFrame, allowed: pd.DataFrame, chosen: pd.Series, true_v: pd.DataFrame, cfg: StrategySettings
) -> dict:
    """Per stage and overall: the true recovery of the strategy's plan, the DPD ladder and the oracle plan
    (same rules, capacity, one contact per borrower, agency capacity), their contacts and expected complaints.
    The oracle plans on the true recovery less strategy.complaint_cost per true expected complaint, the
    objective the strategy estimates.

    recovery: the true expected amount collected net of the actions' cost; added: the part of it the actions
    add over doing nothing (most of a pre-due installment is paid on time whatever the lender does)."""
    caps = Team.from_settings(cfg)
    limits = {"agency": sum(int(a["capacity"]) for a in cfg.agencies)}
    p_complaint = true_complaint(candidates)
    contact_cost = cfg.complaint_cost * p_complaint[:, None] * np.array([a != "none" for a in ACTIONS])
    masked = (true_v - contact_cost).where(allowed, -np.inf)
    oracle = plan(
        masked,
        cfg.minutes,
        caps,
        cfg.mip_time_limit_s,
        groups=candidates["borrower_id"],
        limits=limits,
        languages=languages_of(candidates),
    )
    ladder = ladder_plan(candidates, allowed, cfg, caps, limits)
    plans = {"strategy": chosen, "ladder": ladder.action, "oracle": oracle.action}
    out = {}
    for name, action in plans.items():
        value = true_v.to_numpy()[np.arange(len(true_v)), true_v.columns.get_indexer(action)]
        value = np.where(np.isfinite(value), value, 0.0)
        added = value - np.where(np.isfinite(true_v["none"]), true_v["none"], 0.0)
        contact = (action != "none").to_numpy()
        complaints = np.where(contact, p_complaint, 0.0)
        for stage in (*STAGES, "all"):
            rows = (candidates["stage"] == stage).to_numpy() if stage != "all" else np.ones(len(action), bool)
            entry = out.setdefault(stage, {}).setdefault(name, {})
            entry["recovery"] = float(value[rows].sum())
            entry["added"] = float(added[rows].sum())
            entry["contacts"] = int(contact[rows].sum())
            entry["complaints"] = float(complaints[rows].sum())
            entry["net_of_complaints"] = entry["recovery"] - cfg.complaint_cost * entry["complaints"]
            entry["accounts"] = int(rows.sum())
    return out


def experiment_units(
    cand: pd.DataFrame, p_true: pd.DataFrame, values: pd.DataFrame, cfg: StrategySettings, rng: np.random.Generator
) -> pd.DataFrame:
    """One row per decision of the published plan with its arm: the true expected recovery of the action
    taken, and one draw of what happened (paid, recovered, a complaint) from the simulator's truth."""
    arm = cand["arm"] if "arm" in cand else pd.Series("champion", index=cand.index)
    taken = cand["action"]
    pos = values.columns.get_indexer(taken)
    rows = np.arange(len(cand))
    expected = np.where(np.isfinite(values.to_numpy()[rows, pos]), values.to_numpy()[rows, pos], 0.0)
    p = np.nan_to_num(p_true.to_numpy()[rows, pos])
    paid = rng.random(len(cand)) < p
    cost = taken.map(cfg.costs).to_numpy(dtype=float)
    share = recovered_share(cand, cfg).to_numpy()[rows, pos]
    contact = (taken != "none").to_numpy()
    complaint = contact & (rng.random(len(cand)) < true_complaint(cand))
    return pd.DataFrame(
        {
            "borrower_id": cand["borrower_id"].to_numpy(),
            "arm": arm.to_numpy(),
            "stage": cand["stage"].to_numpy(),
            "expected_recovery": expected,
            "recovery": paid * stake(cand).to_numpy() * share - cost,
            "cured": paid.astype(float),
            "contacts": contact.astype(float),
            "cost": cost,
            "complaints": complaint.astype(float),
        }
    )


def experiment_report(units: pd.DataFrame, experiment: dict) -> dict:
    """Per arm the true expected recovery per borrower, the readout of the drawn outcomes against the control
    arm, and the sample sizes the champion-vs-control difference needs."""
    from huishou.strategy.experiment import detectable_difference, readout, sample_size

    control = experiment.get("control", "ladder")
    alpha, power = float(experiment.get("alpha", 0.05)), float(experiment.get("power", 0.8))
    units = units[units["arm"] != "cold_start"]
    if units.empty or units["arm"].nunique() < 2:
        return {"skipped": "no experiment on the published worklists (one arm)"}
    per_borrower = units.groupby(["arm", "borrower_id"])["expected_recovery"].sum()
    truth = per_borrower.groupby("arm").mean().to_dict()
    result = readout(
        units.drop(columns=["expected_recovery", "stage"]),
        control=control,
        alpha=alpha,
        metrics=("recovery", "cured", "contacts", "cost", "complaints"),
    )
    sizes = {}
    by_arm = units.groupby(["arm", "borrower_id"])["recovery"].sum()
    if control in truth:
        sd = float(by_arm.loc[control].std(ddof=1))
        n_control = int(by_arm.loc[control].size)
        for arm in truth:
            if arm == control:
                continue
            delta = abs(truth[arm] - truth[control])
            n_arm = int(by_arm.loc[arm].size)
            entry = {"detectable_difference": detectable_difference(sd, n_control, n_arm, alpha, power)}
            if delta > 0 and sd > 0:
                entry["borrowers_needed"] = sample_size(sd, delta, alpha, power, ratio=n_arm / n_control)
            sizes[arm] = entry
    headline = {}
    if "champion" in result.get("vs_control", {}):
        r = result["vs_control"]["champion"]["recovery"]
        headline = {
            "champion_vs_control_recovery": round(r["difference"], 2),
            "ci_low": round(r["low"], 2),
            "ci_high": round(r["high"], 2),
            "true_difference": round(truth["champion"] - truth[control], 2),
        }
    return {"true_expected_recovery_per_borrower": truth, "readout": result, "sample_size": sizes, "headline": headline}
