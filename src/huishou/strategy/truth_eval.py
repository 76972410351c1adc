"""The strategy against the simulator's truth: true expected recovery of the strategy's plans, the DPD
ladder and the oracle policy (planned on the true effects), same rules and collector capacity.

The only strategy module that reads data/truth; it runs as its own evaluation step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.config import StrategySettings
from huishou.strategy.assign import plan
from huishou.strategy.effects import ACTIONS
from huishou.strategy.policy_eval import ladder_plan


def true_values(candidates: pd.DataFrame, borrowers: pd.DataFrame, cure_shift: float, cfg: StrategySettings) -> pd.DataFrame:
    """True expected recovery net of cost of every action (simulated book only)."""
    from huishou.simulate import action_cure_logits

    x = candidates.merge(borrowers[["borrower_id", "z", "hardship"]], on="borrower_id", how="left")
    x["device_os"] = np.where(x["ios"] > 0, "ios", "android")
    p = np.zeros((len(x), len(ACTIONS)))
    for step in range(4):
        rows = (x["step"] == step).to_numpy()
        if rows.any():
            p[rows] = 1 / (1 + np.exp(-action_cure_logits(x[rows], step, cure_shift)))
    costs = np.array([cfg.costs[a] for a in ACTIONS])
    return pd.DataFrame(p * x["overdue_amount"].to_numpy()[:, None] - costs, columns=list(ACTIONS),
                        index=candidates.index)


def truth_comparison(candidates: pd.DataFrame, allowed: pd.DataFrame, chosen: pd.Series, true_v: pd.DataFrame,
                     cfg: StrategySettings) -> dict[str, float]:
    """True recovery of the strategy's plan vs the DPD ladder and the oracle plan, same rules and capacity."""
    caps = cfg.capacities()
    masked = true_v.where(allowed, -np.inf)
    oracle = plan(masked, cfg.minutes, caps, cfg.mip_time_limit_s)
    ladder = ladder_plan(candidates, allowed, cfg.minutes, caps)

    def realised(action: pd.Series) -> float:
        return float(true_v.to_numpy()[np.arange(len(true_v)), true_v.columns.get_indexer(action)].sum())

    return {"strategy": realised(chosen), "ladder": realised(ladder.action), "oracle": realised(oracle.action)}


def run(settings) -> dict:
    """`huishou evaluate-strategy`: the strategy's true recovery vs the ladder and the oracle (simulated book)."""
    from pathlib import Path

    from huishou import tracking
    from huishou.io import read_json, write_json
    from huishou.truth import load_borrowers

    cfg = settings.strategy
    out_dir = Path(settings.data.worklists_dir)
    borrowers = load_borrowers(settings.data.truth_dir)
    index = read_json(out_dir / "index.json")
    per_day, totals = {}, {"strategy": 0.0, "ladder": 0.0, "oracle": 0.0}
    for day in index["dates"]:
        cand = pd.read_parquet(out_dir / f"candidates_{day}.parquet")
        if cand.empty:
            continue
        allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
        true_v = true_values(cand, borrowers, settings.simulate.cure_shift, cfg)
        per_day[day] = truth_comparison(cand, allowed, cand["action"], true_v, cfg)
        for k in totals:
            totals[k] += per_day[day][k]
    metrics = {"true_recovery": totals, "per_day": per_day,
               "uplift_vs_ladder": totals["strategy"] / totals["ladder"] - 1 if totals["ladder"] else None,
               "share_of_oracle": totals["strategy"] / totals["oracle"] if totals["oracle"] else None}
    write_json(metrics, Path(settings.data.models_dir) / "strategy_truth.json")
    tracking.log_run(settings.tracking, settings.tracking.strategy_experiment, "strategy vs truth", metrics)
    return metrics

