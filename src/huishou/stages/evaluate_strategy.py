"""`huishou evaluate-strategy`: the strategy's true recovery against the DPD ladder and the oracle policy.

Simulated book only. Reads data.worklists_dir (index.json and every date's candidates) and
data.truth_dir/borrowers.parquet; publishes models/strategy_truth.json (DVC metrics) and logs it
to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou import tracking
from huishou.artifacts import candidates_path, strategy_truth_path
from huishou.book.truth import load_borrowers
from huishou.errors import DataValidationError
from huishou.io import publish, read_json, write_json
from huishou.strategy.truth_eval import true_values, truth_comparison
from huishou.vocab import ACTIONS

PARAMS = (
    "data.worklists_dir",
    "data.truth_dir",
    "data.models_dir",
    "simulate.cure_shift",
    "strategy",
    "tracking.default_uri",
    "tracking.strategy_experiment",
)


def run(settings) -> dict:
    """Sum the true expected recovery of the three policies over every worklist date."""
    cfg = settings.strategy
    out_dir = Path(settings.data.worklists_dir)
    borrowers = load_borrowers(settings.data.truth_dir)
    if not (out_dir / "index.json").exists():
        raise DataValidationError(f"{out_dir / 'index.json'}: not found; run `huishou strategy` first")
    index = read_json(out_dir / "index.json")
    if index.get("skipped"):
        raise DataValidationError(f"{out_dir / 'index.json'}: the strategy was skipped ({index['skipped']})")
    per_day, totals = {}, {"strategy": 0.0, "ladder": 0.0, "oracle": 0.0}
    for day in index["dates"]:
        cand = pd.read_parquet(candidates_path(out_dir, day))
        if cand.empty:
            continue
        allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
        true_v = true_values(cand, borrowers, settings.simulate.cure_shift, cfg)
        per_day[day] = truth_comparison(cand, allowed, cand["action"], true_v, cfg)
        for k in totals:
            totals[k] += per_day[day][k]
    metrics = {
        "true_recovery": totals,
        "per_day": per_day,
        "uplift_vs_ladder": totals["strategy"] / totals["ladder"] - 1 if totals["ladder"] else None,
        "share_of_oracle": totals["strategy"] / totals["oracle"] if totals["oracle"] else None,
    }
    with publish(strategy_truth_path(settings.data.models_dir), kind="file", what="huishou evaluate-strategy") as tmp:
        write_json(metrics, tmp)
    tracking.log_run(settings.tracking, settings.tracking.strategy_experiment, "strategy vs truth", metrics)
    return metrics
