"""`huishou fit-effects`: learn the action-effect models from the collection log, on their own schedule.

Reads data.raw_dir (the book and its logged collection decisions; refused unless unchanged since
validation). Publishes models/effects/ (data.models_dir) as one unit: one LightGBM text file per
lifecycle stage with enough logged decisions, and effects.json with the log's cutoff, the number of
decisions per stage, the chosen boosting rounds and the off-policy estimates, and logged.parquet, the
logged decisions learnt from (with what they were read under, in effects.json: `huishou strategy` and
`huishou evaluate-strategy` reuse them for the same book, cutoff and rules). `huishou strategy`
loads them instead of refitting every night (the refit was ~78 % of the nightly plan): run this
weekly, or when the log has grown (strategy.effect_max_age_days bounds how old they may be).
"""

from __future__ import annotations

import pandas as pd

from huishou.book.source import BookSource
from huishou.compliance import Profile
from huishou.core.engine import threads
from huishou.core.io import publish, write_json
from huishou.core.paths import effects_dir
from huishou.core.progress import progress_bar
from huishou.core.settings import SOURCE_PARAMS, with_threads
from huishou.core.vocab import STAGES
from huishou.strategy import BookRules
from huishou.strategy.learning import learn_from_log

PARAMS = (
    "compute.threads",
    *SOURCE_PARAMS,
    "data.models_dir",
    "features.default_dpd",
    "features.paid_tolerance",
    "features.settle_share",
    "features.promise_grace_days",
    "features.mode",
    # what learning reads, no more: changing capacity, collectors or the experiment does not refit
    "strategy.agencies",
    "strategy.agency_min_dpd",
    "strategy.collector_shift",
    "strategy.compliance",
    "strategy.costs",
    "strategy.decision_step_days",
    "strategy.effect_model",
    "strategy.eval_days_before_as_of",
    "strategy.ladder_agency_from_dpd",
    "strategy.ladder_call_from_dpd",
    "strategy.ladder_visit_from_dpd",
    "strategy.max_contacts_7d",
    "strategy.min_logged_decisions",
    "strategy.min_noncontact_before_call",
    "strategy.minutes",
    "strategy.ope_holdout_days",
    "strategy.plan_min_dpd",
    "strategy.pre_due_max_reminders",
    "strategy.response_days",
    "strategy.settlement_discounts",
    "strategy.visit_min_amount",
    "strategy.visit_min_dpd",
    "strategy.visit_min_unreached_attempts",
    "strategy.visit_min_call_attempts",
)


def run(settings) -> dict:
    """Fit each stage's effect model on the decisions whose outcome is known and publish them."""
    cfg, f = with_threads(settings.strategy, threads(settings.compute.threads)), settings.features
    target = effects_dir(settings.data.models_dir)
    if f.mode == "origination":
        with publish(target, what="huishou fit-effects") as out:
            write_json(
                {"skipped": "features.mode is origination: no collection log to learn from"}, out / "effects.json"
            )
        return {"skipped": "features.mode is origination"}
    # parquet files are read in place by DuckDB (only the logged decisions learnt from reach pandas)
    report, tables = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    book = BookRules.from_settings(f, settings.data.timezone)
    bar = progress_bar(total=len(STAGES), desc="effect models", unit="stage")
    learned = learn_from_log(tables, as_of, cfg, Profile.from_settings(cfg.compliance), book, bar, report["md5"])
    bar.close()
    with publish(target, what="huishou fit-effects") as out:
        learned.save(out)
    return {
        "cutoff": str(learned.cutoff.date()),
        "decisions": learned.decisions,
        "fitted": sorted(s for s, m in learned.effects.items() if m is not None),
        "path": str(target),
    }
