"""`huishou evaluate-strategy`: the strategy's true recovery against the baselines lenders run and the oracle.

Simulated book only. Reads data.worklists_dir (index.json and every date's candidates), data.truth_dir
(borrowers' latent state and true installment risk), the validated raw book, the effect models
(models/effects), the nightly scores of the extract date (score.scores_dir: the expected-loss worklists rank by
them); publishes models/strategy_truth.json (DVC metrics): `closed_loop`, every policy run day by day for
strategy.closed_loop.horizon_days on a sample of the book over several seeds (strategy/closed_loop.py), in the
headline world and each other world; and, one day at a time,
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

from huishou.book.contracts import empty_table
from huishou.book.source import BookSource
from huishou.book.truth import load_borrowers, load_truth_table, truth_file
from huishou.compliance import Profile
from huishou.core import tracking
from huishou.core.engine import threads
from huishou.core.errors import DataValidationError
from huishou.core.io import publish, read_json, rounded, significant, write_json
from huishou.core.paths import candidates_path, effects_dir, scores_path, strategy_truth_path
from huishou.core.progress import progress_bar
from huishou.core.settings import SOURCE_PARAMS, with_threads
from huishou.core.vocab import ACTIONS, STAGES
from huishou.simulate.daily import WorldParams
from huishou.strategy.closed_loop import (
    BASELINES,
    POLICIES,
    Loop,
    Planners,
    Truth,
    closed_loops,
    learn_channel_rule,
    sample_book,
    true_miss_logit,
)
from huishou.strategy.complaints import contact_examples, fit_complaint_model
from huishou.strategy.effects import LearnedEffects
from huishou.strategy.learning import learning_cutoff, logged_at
from huishou.strategy.plan import BookRules
from huishou.strategy.truth_eval import experiment_report, experiment_units, true_paid, true_values, truth_comparison

PARAMS = (
    "compute.threads",
    *SOURCE_PARAMS,
    "data.worklists_dir",
    "data.truth_dir",
    "data.models_dir",
    "simulate.cure_shift",
    "features.default_dpd",
    "features.paid_tolerance",
    "features.settle_share",
    "features.promise_grace_days",
    "score.scores_dir",
    "strategy",
    "tracking.default_uri",
    "tracking.strategy_experiment",
)
ONE_DAY = ("strategy", "ladder", "oracle")  # the policies of the one-day evaluation


def run(settings) -> dict:
    """Sum the true expected recovery, contacts and complaints of the three policies over every date."""
    cfg = settings.strategy
    out_dir = Path(settings.data.worklists_dir)
    truth_dir = settings.data.truth_dir
    for name in ("borrowers", "installments"):  # refused before any work where there is no truth
        truth_file(truth_dir, name)
    if not (out_dir / "index.json").exists():
        raise DataValidationError(f"{out_dir / 'index.json'}: not found; run `huishou strategy` first")
    index = read_json(out_dir / "index.json")
    if index.get("skipped"):
        raise DataValidationError(f"{out_dir / 'index.json'}: the strategy was skipped ({index['skipped']})")
    per_day, totals, units = {}, {}, []
    exp = cfg.experiment
    rng = np.random.default_rng(int(exp.get("readout_seed", 0)))
    for day in progress_bar(index["dates"], desc="evaluate strategy", unit="day"):
        cand = pd.read_parquet(candidates_path(out_dir, day))
        if cand.empty:
            continue
        allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
        # the truth of this day's candidates only (the whole book's need not fit in memory)
        borrowers = load_borrowers(truth_dir, cand["borrower_id"].unique())
        installments = load_truth_table(truth_dir, "installments", "loan_id", cand["loan_id"].unique())
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
    loop = run_closed_loop(settings)
    metrics = {
        "closed_loop": loop,
        "by_stage": summary,
        "experiment": experiment,
        "per_day": per_day,
        "uplift_vs_ladder": summary["all"].get("uplift_vs_ladder"),
        "share_of_oracle": summary["all"].get("share_of_oracle"),
    }
    with publish(strategy_truth_path(settings.data.models_dir), kind="file", what="huishou evaluate-strategy") as tmp:
        write_json(significant(metrics), tmp)
    loop_headline = _loop_headline(loop)
    headline = dict(loop_headline)
    headline |= {"uplift_vs_ladder": metrics["uplift_vs_ladder"], "share_of_oracle": metrics["share_of_oracle"]}
    headline |= {f"{s}_share_of_oracle": summary[s].get("share_of_oracle") for s in STAGES}
    headline |= {f"experiment_{k}": v for k, v in experiment.get("headline", {}).items()}
    headline_path = strategy_truth_path(settings.data.models_dir).with_name("strategy_headline.json")
    with publish(headline_path, kind="file", what="huishou evaluate-strategy") as tmp:
        write_json(rounded(headline), tmp)
    tracking.log_run(
        settings.tracking,
        settings.tracking.strategy_experiment,
        "strategy vs truth",
        {"by_stage": summary, "experiment": experiment.get("readout", {}), "closed_loop": loop_headline},
    )
    return {"closed_loop": loop_headline, "by_stage": summary, "experiment": experiment.get("headline", {})}


def run_closed_loop(settings) -> dict:
    """Every policy day by day on a sample of the validated book, in the headline world over every seed and in
    each other world over strategy.closed_loop.other_worlds_seeds (the baselines and the strategy). The book's
    files are read in place (DuckDB for the logged decisions and complaints; the sample's rows and their truth
    by pyarrow): memory follows the sample, not the book."""
    n_threads = threads(settings.compute.threads)
    loop = settings.strategy.closed_loop
    workers = int(loop["workers"]) or n_threads
    each = max(1, n_threads // workers)  # each loop process's threads (DuckDB, LightGBM, HiGHS): none oversubscribed
    cfg, f = with_threads(settings.strategy.whole(), n_threads), settings.features  # whole: a plain copy for the loop
    report, tables = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    for name in ("collection_actions", "contact_preferences"):  # optional tables: the loop writes to both
        tables.setdefault(name, empty_table(name))
    book = BookRules.from_settings(f, settings.data.timezone)
    profile = Profile.from_settings(cfg.compliance)
    cutoff = learning_cutoff(as_of, cfg)
    folder = effects_dir(settings.data.models_dir)
    if not (folder / LearnedEffects.DOC).is_file():
        raise DataValidationError(f"{folder}: no effect models; run `huishou fit-effects` first")
    learned = LearnedEffects.load(folder, each)
    effects = learned.effects
    scores = scores_path(settings.score.scores_dir, as_of)
    if not scores.exists():
        raise DataValidationError(f"{scores}: no nightly scores of {as_of.date()}; run `huishou score` first")
    risk = pd.read_parquet(scores, columns=["loan_id", "probability"]).set_index("loan_id")["probability"]
    logged_by, _ = logged_at(tables, cutoff, cfg, book, learned, report["md5"])
    logged = pd.concat(logged_by.values(), ignore_index=True)
    complaints = fit_complaint_model(
        contact_examples(tables, cutoff, profile.contact_start, profile.contact_end, book.lender_zone)
    )
    planners = Planners(effects, complaints, risk, learn_channel_rule(logged))
    sample, share = sample_book(tables, int(loop["sample_borrowers"]), int(loop["sample_seed"]))
    people, loans = sample["applications"]["borrower_id"].unique(), sample["applications"]["loan_id"].unique()
    installments = load_truth_table(settings.data.truth_dir, "installments", "loan_id", loans)
    truth = Truth(
        load_borrowers(settings.data.truth_dir, people), true_miss_logit(installments), settings.simulate.cure_shift
    )
    horizon = int(loop["horizon_days"])
    out = {"world": loop["world"], "sample_borrowers": int(sample["applications"]["borrower_id"].nunique())}
    out["capacity_share"] = share
    out["channel_rule"] = {"/".join(map(str, k)): v for k, v in sorted(planners.channel_rule.items())}
    worlds = {loop["world"]: (WorldParams.from_dict(loop["worlds"][loop["world"]]), list(loop["seeds"]), POLICIES)}
    others = [name for name in loop["worlds"] if name != loop["world"] and loop["other_worlds_seeds"]]
    for name in others:  # the baselines and the strategy only ([]: the headline world alone)
        policies = ("none", *BASELINES, "strategy")
        worlds[name] = (WorldParams.from_dict(loop["worlds"][name]), list(loop["other_worlds_seeds"]), policies)
    runs = Loop(sample, as_of, horizon, with_threads(cfg, each), profile, book, planners, truth, share, each)
    results = closed_loops(runs, worlds, progress=True, workers=workers)
    out |= results[loop["world"]]
    out["other_worlds"] = {}
    for name in others:
        result = results[name]
        out["other_worlds"][name] = {
            "seeds": result["seeds"],
            "strongest_baseline": result["strongest_baseline"],
            "by_stage": {
                s: {p: {k: v for k, v in e.items() if k != "per_seed"} for p, e in entry.items()}
                for s, entry in result["by_stage"].items()
            },
        }
    return out


def _loop_headline(loop: dict) -> dict:
    """What dvc metrics show of the closed loop: per stage the strategy's uplift over the strongest baseline and
    its share of the oracle; the same uplift in each other world."""
    out = {}
    for stage, entry in loop["by_stage"].items():
        summary = entry.get("summary", {})
        out[f"loop_{stage}_uplift_vs_strongest"] = summary.get("uplift_vs_strongest")
        out[f"loop_{stage}_share_of_oracle"] = summary.get("share_of_oracle")
    for name, world in loop.get("other_worlds", {}).items():
        s = world["by_stage"]["collections"]
        b = world["strongest_baseline"]["collections"]
        if b and s[b]["recovery"] > 0:
            out[f"loop_{name}_collections_uplift_vs_strongest"] = s["strategy"]["recovery"] / s[b]["recovery"] - 1
    return out


def _summary(policies: dict | None) -> dict:
    if not policies:
        return {}
    out = {p: dict(policies[p]) for p in ONE_DAY}
    for p in ONE_DAY:
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
