"""The strategy against the simulator's truth: true expected recovery of the strategy's plans, the DPD
ladder and the oracle policy (planned on the true effects), same rules and collector capacity.

Pure functions over the simulated borrowers' latent state; only the evaluate-strategy stage reads the
simulator's truth and hands it in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.config import StrategySettings
from huishou.simulate import STEP_DAYS, action_cure_logits
from huishou.strategy.assign import plan
from huishou.strategy.policy_eval import ladder_plan
from huishou.vocab import ACTIONS


def true_values(
    candidates: pd.DataFrame, borrowers: pd.DataFrame, cure_shift: float, cfg: StrategySettings
) -> pd.DataFrame:
    """True expected recovery net of cost of every action (simulated book only)."""
    x = candidates.merge(borrowers[["borrower_id", "z", "hardship"]], on="borrower_id", how="left")
    x["device_os"] = np.where(x["ios"] > 0, "ios", "android")
    p = np.zeros((len(x), len(ACTIONS)))
    for step in range(len(STEP_DAYS)):  # the simulated legacy policy's decision steps
        rows = (x["step"] == step).to_numpy()
        if rows.any():
            p[rows] = 1 / (1 + np.exp(-action_cure_logits(x[rows], step, cure_shift)))
    costs = np.array([cfg.costs[a] for a in ACTIONS])
    return pd.DataFrame(
        p * x["overdue_amount"].to_numpy()[:, None] - costs, columns=list(ACTIONS), index=candidates.index
    )


def truth_comparison(
    candidates: pd.DataFrame, allowed: pd.DataFrame, chosen: pd.Series, true_v: pd.DataFrame, cfg: StrategySettings
) -> dict[str, float]:
    """True recovery of the strategy's plan vs the DPD ladder and the oracle plan, same rules and capacity."""
    caps = cfg.capacities()
    masked = true_v.where(allowed, -np.inf)
    oracle = plan(masked, cfg.minutes, caps, cfg.mip_time_limit_s)
    ladder = ladder_plan(candidates, allowed, cfg)

    def realised(action: pd.Series) -> float:
        return float(true_v.to_numpy()[np.arange(len(true_v)), true_v.columns.get_indexer(action)].sum())

    return {"strategy": realised(chosen), "ladder": realised(ladder.action), "oracle": realised(oracle.action)}
