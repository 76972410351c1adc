"""`huishou evaluate-strategy`: the strategy's true recovery against the DPD ladder and the oracle policy.

Simulated book only. Reads data.worklists_dir (index.json and every date's candidates), data.truth_dir
(borrowers' latent state and true installment risk); publishes models/strategy_truth.json (DVC metrics):
per stage and overall, the true expected recovery of the strategy (the champion's plan with the whole team),
the ladder and the oracle, the uplift over the ladder and the share of the oracle, contacts per recovered
CNY and expected complaints per 1,000 accounts; and the experiment on the published worklists: per arm the
true expected recovery, and the readout (differences with confidence intervals, sample sizes) on one draw
of outcomes from the truth (strategy.experiment.readout_seed); logs it to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from huishou.book.truth import load_borrowers, load_truth_table
from huishou.core import tracking
from huishou.core.errors import DataValidationError
from huishou.core.io import publish, read_json, rounded, write_json
from huishou.core.paths import candidates_path, strategy_truth_path
from huishou.core.vocab import ACTIONS, STAGES
from huishou.strategy.truth_eval import experiment_report, experiment_units, true_paid, true_values, truth_comparison

PARAMS = (
    "data.worklists_dir",
    "data.truth_dir",
    "data.models_dir",
    "simulate.cure_shift",
    "strategy",
    "tracking.default_uri",
    "tracking.strategy_experiment",
)
POLICIES = ("strategy", "ladder", "oracle")


def run(settings) -> dict:
    """Sum the true expected recovery, contacts and complaints of the three policies over every date."""
    cfg = settings.strategy
    out_dir = Path(settings.data.worklists_dir)
    borrowers = load_borrowers(settings.data.truth_dir)
    installments = load_truth_table(settings.data.truth_dir, "installments")
    if not (out_dir / "index.json").exists():
        raise DataValidationError(f"{out_dir / 'index.json'}: not found; run `huishou strategy` first")
    index = read_json(out_dir / "index.json")
    if index.get("skipped"):
        raise DataValidationError(f"{out_dir / 'index.json'}: the strategy was skipped ({index['skipped']})")
    per_day, totals, units = {}, {}, []
    exp = cfg.experiment
    rng = np.random.default_rng(int(exp.get("readout_seed", 0)))
    for day in tqdm(index["dates"], desc="evaluate strategy", unit="day"):
        cand = pd.read_parquet(candidates_path(out_dir, day))
        if cand.empty:
            continue
        allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
        p_true = true_paid(cand, borrowers, installments, settings.simulate.cure_shift)
        values = true_values(cand, p_true, cfg)
        chosen = cand["champion_action"] if "champion_action" in cand else cand["action"]
        result = truth_comparison(cand, allowed, chosen, values, cfg)
        per_day[day] = result
        units.append(experiment_units(cand, p_true, values, cfg, rng))
        for stage, policies in result.items():
            for policy, entry in policies.items():
                target = totals.setdefault(stage, {}).setdefault(policy, dict.fromkeys(entry, 0))
                for key, value in entry.items():
                    target[key] += value
    summary = {stage: _summary(totals.get(stage)) for stage in (*STAGES, "all")}
    experiment = experiment_report(pd.concat(units, ignore_index=True), exp) if units else {}
    metrics = {
        "by_stage": summary,
        "experiment": experiment,
        "per_day": per_day,
        "uplift_vs_ladder": summary["all"].get("uplift_vs_ladder"),
        "share_of_oracle": summary["all"].get("share_of_oracle"),
    }
    with publish(strategy_truth_path(settings.data.models_dir), kind="file", what="huishou evaluate-strategy") as tmp:
        write_json(metrics, tmp)
    headline = {"uplift_vs_ladder": metrics["uplift_vs_ladder"], "share_of_oracle": metrics["share_of_oracle"]}
    headline |= {f"{s}_share_of_oracle": summary[s].get("share_of_oracle") for s in STAGES}
    headline |= {f"experiment_{k}": v for k, v in experiment.get("headline", {}).items()}
    headline_path = strategy_truth_path(settings.data.models_dir).with_name("strategy_headline.json")
    with publish(headline_path, kind="file", what="huishou evaluate-strategy") as tmp:
        write_json(rounded(headline), tmp)
    tracking.log_run(
        settings.tracking,
        settings.tracking.strategy_experiment,
        "strategy vs truth",
        {"by_stage": summary, "experiment": experiment.get("readout", {})},
    )
    return {"by_stage": summary, "experiment": experiment.get("headline", {})}


def _summary(policies: dict | None) -> dict:
    if not policies:
        return {}
    out = {p: dict(policies[p]) for p in POLICIES}
    for p in POLICIES:
        e = out[p]
        e["contacts_per_1000_cny"] = 1000 * e["contacts"] / e["recovery"] if e["recovery"] > 0 else None
        e["complaints_per_1000_accounts"] = 1000 * e["complaints"] / e["accounts"] if e["accounts"] else None
    ladder, oracle, strategy = (out[p]["recovery"] for p in ("ladder", "oracle", "strategy"))
    out["uplift_vs_ladder"] = strategy / ladder - 1 if ladder > 0 else None
    out["share_of_oracle"] = strategy / oracle if oracle > 0 else None
    ladder, oracle, strategy = (out[p]["added"] for p in ("ladder", "oracle", "strategy"))
    out["added_uplift_vs_ladder"] = strategy / ladder - 1 if ladder > 0 else None
    out["added_share_of_oracle"] = strategy / oracle if oracle > 0 else None
    return out
