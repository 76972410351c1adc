"""`huishou readout`: the experiment on the published worklists, read out on the lender's own outcomes.

Reads data.experiments_dir/<strategy.experiment.name>/*.parquet (every published decision with its arm)
and the raw book (as validated: payments and contact preferences); writes
data.models_dir/experiment_readout.json: per arm recovery, cure rate, contacts, cost and complaints per
borrower, each arm against strategy.experiment.control with confidence intervals, and the sample sizes
the observed differences need. Only decisions whose response window (strategy.response_days) ended before
the extract date count.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book.source import BookSource
from huishou.core.errors import DataValidationError
from huishou.core.io import publish, rounded, write_json
from huishou.core.settings import SOURCE_PARAMS
from huishou.strategy.experiment import detectable_difference, readout
from huishou.strategy.readout import observed_units

PARAMS = (
    *SOURCE_PARAMS,
    "data.models_dir",
    "data.experiments_dir",
    "strategy",
    "features.paid_tolerance",
    "features.settle_share",
)


def run(settings) -> dict:
    cfg, f = settings.strategy, settings.features
    exp = cfg.experiment
    folder = Path(settings.data.experiments_dir) / str(exp.get("name") or "no-experiment")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise DataValidationError(f"{folder}: no archived decisions; `huishou strategy` archives each published date")
    as_of, tables = BookSource.from_settings(settings.data).validated_frames(settings.data.validated_dir)
    decisions = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    units = observed_units(decisions, tables, as_of, cfg.response_days, cfg, f.paid_tolerance, f.settle_share)
    units = units[units["arm"] != "cold_start"]
    control = exp.get("control", "ladder")
    alpha, power = float(exp.get("alpha", 0.05)), float(exp.get("power", 0.8))
    result = {
        "experiment": exp.get("name"),
        "as_of": str(as_of.date()),
        "dates": [p.stem for p in files],
        "decisions_read_out": len(units),
        "decisions_waiting": len(decisions) - len(units),
    }
    if units.empty or units["arm"].nunique() < 2:
        result["readout"] = "no response window has ended yet, or a single arm"
    else:
        result["readout"] = readout(units, control=control, alpha=alpha)
        per = units.groupby(["arm", "borrower_id"])["recovery"].sum()
        if control in per.index.get_level_values(0):
            base = per.loc[control]
            result["detectable_recovery_difference"] = {
                arm: detectable_difference(float(base.std(ddof=1)), len(base), len(per.loc[arm]), alpha, power)
                for arm in per.index.get_level_values(0).unique()
                if arm != control and len(base) > 1
            }
    out = Path(settings.data.models_dir) / "experiment_readout.json"
    with publish(out, kind="file", what="huishou readout") as tmp:
        write_json(rounded(result), tmp)
    return result
