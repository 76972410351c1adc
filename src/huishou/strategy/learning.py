"""The strategy over the log: learn the effect, promise and complaint models from the logged decisions (up to
a cutoff), plan every worklist date with them (huishou.strategy.plan), and evaluate the plans off-policy on
the hold-out of logged decisions (doubly robust, against the ladder)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from huishou.book.contracts import empty_table
from huishou.compliance import Profile, evaluate
from huishou.core.progress import progress_bar
from huishou.core.settings import StrategySettings
from huishou.core.vocab import ACTIONS, STAGE_ACTIONS, STAGES
from huishou.features.population import paid_enough
from huishou.strategy.complaints import contact_examples, fit_complaint_model
from huishou.strategy.context import CONTEXT_FEATURES, logged_decisions, promises_made, rows_of
from huishou.strategy.effects import EffectModel, LearnedEffects, fit_effect_model, grow, growing_effect_model
from huishou.strategy.plan import BookRules, DayPlan, candidates, plan_day, recovered_share, stake, values_matrix
from huishou.strategy.policy_eval import ips_dr, ladder_choice


@dataclass
class StrategyPlans:
    """The plans of every worklist date (the last one is published) and their evaluation."""

    days: list[pd.Timestamp]
    candidates: dict[pd.Timestamp, pd.DataFrame]
    audit: dict[pd.Timestamp, pd.DataFrame]
    stats: dict[str, dict]
    off_policy: dict  # per stage: IPS / DR of the strategy and the ladder on the hold-out of logged decisions
    promises: dict  # the promise-kept model: how promises went and how well it predicts them
    complaints: dict  # the complaint model: contacts and complaints it learnt from, its coefficients
    effects: dict = field(default_factory=dict)  # per stage: the effect model the plans used (None: cold start)

    @property
    def published(self) -> pd.Timestamp:
        return self.days[-1]


def plan_strategy(
    tables: Mapping[str, pd.DataFrame | Path],
    as_of: pd.Timestamp,
    cfg: StrategySettings,
    profile: Profile,
    book: BookRules,
    progress: bool = False,
    learned: LearnedEffects | None = None,
    planned: Callable[[pd.Timestamp, DayPlan], None] | None = None,
    logged_by: Mapping[str, pd.DataFrame] | None = None,
) -> StrategyPlans:
    """Plan every worklist date with the action effects per stage: `learned` (fitted on their own schedule by
    `learn_effects`, see huishou fit-effects), else learnt here from the logged decisions. `planned`, when
    given, receives each earlier date's plan as soon as it is made (the caller writes it out), and only the
    published date's candidates and audit are kept: memory holds one day's plan, not every date's. `logged_by`:
    the logged decisions at this plan's cutoff where the caller has them (`logged_at`), else they are read
    here."""
    days = worklist_days(as_of, cfg)
    cutoff = learning_cutoff(as_of, cfg)
    tables = dict(tables)
    tables.setdefault("collection_actions", empty_table("collection_actions"))
    if logged_by is None:
        logged_by = logged_by_stage(tables, cutoff, cfg, book)
    bar = progress_bar(total=len(STAGES) + len(days), desc="strategy", unit="step", disable=not progress)
    if learned is None:
        learned = learn_effects(logged_by, cutoff, cfg, profile, bar)
    else:
        bar.update(len(STAGES))
    effects, ope = learned.effects, learned.off_policy
    complaints = fit_complaint_model(
        contact_examples(tables, cutoff, profile.contact_start, profile.contact_end, book.lender_zone)
    )
    rng = np.random.default_rng(cfg.seed)
    candidates_by_day, audit, stats = {}, {}, {}
    for day in days:
        bar.set_postfix_str(f"plan {day.date()}")
        result = plan_day(tables, day, effects, cfg, profile, book, rng, complaints)
        bar.update()
        stats[str(day.date())] = result.stats
        if planned is not None and day != days[-1]:
            planned(day, result)
            continue
        candidates_by_day[day], audit[day] = result.candidates, result.audit
    bar.close()
    promises = promise_model(pd.concat(logged_by.values(), ignore_index=True), tables, book, cfg)
    published = candidates_by_day[days[-1]]
    if promises.get("model") is not None and len(published):
        published["p_promise_kept"] = np.where(
            published["pending_promise"] > 0,
            promises["model"].predict(published[CONTEXT_FEATURES], num_threads=cfg.effect_model.get("num_threads", 0)),
            np.nan,
        )
    promises.pop("model", None)
    return StrategyPlans(days, candidates_by_day, audit, stats, ope, promises, complaints.report, effects)


def worklist_days(as_of: pd.Timestamp, cfg: StrategySettings) -> list[pd.Timestamp]:
    return sorted(as_of - pd.Timedelta(days=d) for d in cfg.eval_days_before_as_of)


def learning_cutoff(as_of: pd.Timestamp, cfg: StrategySettings) -> pd.Timestamp:
    """Decisions whose response window ends after the first worklist date are not learnt from (their outcome
    is not known then)."""
    return worklist_days(as_of, cfg)[0] - pd.Timedelta(days=cfg.response_days)


def logged_by_stage(
    tables: Mapping[str, pd.DataFrame | Path], cutoff: pd.Timestamp, cfg: StrategySettings, book: BookRules
) -> dict[str, pd.DataFrame]:
    """The logged decisions of each lifecycle stage whose outcome is known at `cutoff` (beyond
    strategy.effect_model.max_decisions a stage's decisions of whole loans chosen by hash, up to that many;
    no collection log: none)."""
    tables = {"collection_actions": empty_table("collection_actions"), **tables}
    em = cfg.effect_model
    return {
        stage: logged_decisions(
            tables,
            cutoff,
            cfg.response_days,
            book.tol,
            book.share,
            cfg.decision_step_days,
            stage=stage,
            grace_days=book.grace_days,
            lender_zone=book.lender_zone,
            max_decisions=em.get("max_decisions"),
            seed=int(em.get("seed", 0)),
        ).assign(stage=stage)
        for stage in STAGES
    }


def logged_key(book_hashes: Mapping[str, str], cutoff: pd.Timestamp, cfg: StrategySettings, book: BookRules) -> dict:
    """What `logged_by_stage` reads the logged decisions under: the book (its tables' content hashes, as
    validated), the cutoff and the rules that shape them. Equal keys, equal decisions."""
    em = cfg.effect_model
    return {
        "book": dict(sorted(book_hashes.items())),
        "cutoff": cutoff.isoformat(),
        "stages": list(STAGES),
        "response_days": int(cfg.response_days),
        "decision_step_days": [int(d) for d in cfg.decision_step_days],
        "tol": float(book.tol),
        "share": float(book.share),
        "grace_days": int(book.grace_days),
        "lender_zone": str(book.lender_zone),
        "max_decisions": em.get("max_decisions"),
        "seed": int(em.get("seed", 0)),
    }


def logged_at(
    tables: Mapping[str, pd.DataFrame | Path],
    cutoff: pd.Timestamp,
    cfg: StrategySettings,
    book: BookRules,
    learned: LearnedEffects | None = None,
    book_hashes: Mapping[str, str] | None = None,
) -> tuple[dict[str, pd.DataFrame], bool]:
    """`logged_by_stage` at `cutoff`: the decisions `learned` kept (huishou fit-effects) where they were read
    under the same book (`book_hashes`, the validated tables' content hashes), cutoff and rules, else read
    from `tables`; and whether they were reused."""
    if learned is not None and book_hashes is not None:
        kept = learned.logged_by_stage(logged_key(book_hashes, cutoff, cfg, book))
        if kept is not None:
            return kept, True
    return logged_by_stage(tables, cutoff, cfg, book), False


def learn_from_log(
    tables: Mapping[str, pd.DataFrame | Path],
    as_of: pd.Timestamp,
    cfg: StrategySettings,
    profile: Profile,
    book: BookRules,
    bar=None,
    book_hashes: Mapping[str, str] | None = None,
) -> LearnedEffects:
    """`learn_effects` on the decisions `plan_strategy` would learn from at `as_of` (its learning cutoff;
    no collection log: none): what huishou fit-effects publishes for the plans to load. With `book_hashes`
    (the validated tables' content hashes) the decisions are kept with their `logged_key`, for the plans
    and the evaluation of the same book to reuse."""
    cutoff = learning_cutoff(as_of, cfg)
    logged_by = logged_by_stage(tables, cutoff, cfg, book)
    learned = learn_effects(logged_by, cutoff, cfg, profile, bar)
    if book_hashes is not None:
        learned.logged, learned.logged_key = logged_by, logged_key(book_hashes, cutoff, cfg, book)
    return learned


def learn_effects(
    logged_by: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp, cfg: StrategySettings, profile: Profile, bar=None
) -> LearnedEffects:
    """The effect model of each stage (None where too few decisions: the cold-start policy plans) with its
    boosting rounds chosen by cross-fitted plan value, and the off-policy estimate: the last
    `cfg.ope_holdout_days` of the decisions scored with a model fitted on the earlier ones."""
    effects, ope = {}, {}
    for stage, logged in logged_by.items():
        if bar is not None:
            bar.set_postfix_str(f"effect model {stage}")
        effects[stage], ope[stage] = _learn_stage(stage, logged, cutoff, cfg, profile)
        if bar is not None:
            bar.update()  # after the work: the count says what is done, the name what runs
    decisions = {stage: len(logged) for stage, logged in logged_by.items()}
    return LearnedEffects(cutoff, effects, ope, decisions)


def _learn_stage(
    stage: str, logged: pd.DataFrame, cutoff: pd.Timestamp, cfg: StrategySettings, profile: Profile
) -> tuple[EffectModel | None, dict]:
    """One stage of `learn_effects`: its effect model (None: too few decisions) and off-policy report."""
    learnable = lambda f: len(f) >= cfg.min_logged_decisions and f["paid"].nunique() == 2  # noqa: E731
    if not learnable(logged):
        return None, {
            "skipped": f"{len(logged)} logged {stage} decisions (strategy.min_logged_decisions is "
            f"{cfg.min_logged_decisions}, both outcomes needed): planned by the cold-start policy"
        }
    actions = STAGE_ACTIONS[stage]
    rounds, selection = select_rounds(logged, cfg, profile, actions)
    model = fit_effect_model(logged, cfg.effect_model, actions, rounds)
    holdout = logged["t"] >= cutoff - pd.Timedelta(days=cfg.ope_holdout_days)
    if holdout.any() and learnable(logged[~holdout]):
        early_model = fit_effect_model(logged[~holdout], cfg.effect_model, actions, rounds)
        report = off_policy_report(logged[holdout].reset_index(drop=True), early_model, cfg, profile)
    else:
        report = {"skipped": "too few logged decisions to hold out"}
    return model, report | {"effect_model": selection | {"logged_decisions": len(logged)}}


def select_rounds(
    logged: pd.DataFrame, cfg: StrategySettings, profile: Profile, actions: tuple[str, ...]
) -> tuple[int, dict]:
    """The number of boosting rounds (from strategy.effect_model rounds_grid) whose plans are worth most.

    Cross-fitted on the decision the model is for, not on how well it predicts payment: the logged decisions
    are split into cv_folds by loan; a model fitted on the other folds picks, for every held-out decision, the
    lawful action of highest estimated value, and the doubly-robust estimate of those choices (the same model's
    estimates as the control variate, the logged propensities as weights) scores the rounds. A likelihood
    criterion stops far earlier: the baseline chance of payment is learnt in a few hundred rounds, the
    differences between actions, which decide the plan, later. The folds' models grow together, grid value by
    grid value; once `rounds_patience` grid values in a row score below the best so far the larger ones are
    not grown (0: every grid value is tried).
    """
    em = cfg.effect_model
    grid = sorted({int(r) for r in em["rounds_grid"]})
    if len(grid) == 1:
        return grid[0], {"rounds": grid[0]}
    patience = int(em.get("rounds_patience", 0))
    folds = []
    for train, test in GroupKFold(n_splits=int(em["cv_folds"])).split(logged, groups=logged["loan_id"]):
        model = growing_effect_model(logged.iloc[train], em, actions)
        held = logged.iloc[test].reset_index(drop=True)
        allowed = evaluate(held, cfg, profile, explain=False).allowed
        folds.append((model, held, allowed, model.predict_staged(held, grid)))
    scores: dict[int, float] = {}
    for rounds in grid:
        total = 0.0
        for model, held, allowed, staged in folds:
            grow(model, rounds)  # before the staged prediction asks for the trees up to `rounds`
            total += _dr_value(held, next(staged), allowed, cfg) * len(held)
        scores[rounds] = total / len(logged)
        best = max(scores, key=scores.get)  # the first of equal scores: the fewest rounds
        if patience and grid.index(rounds) - grid.index(best) >= patience:
            break
    return best, {"rounds": best, "cv_dr_by_rounds": {str(r): float(v) for r, v in scores.items()}}


def _realised(decisions: pd.DataFrame, cfg: StrategySettings) -> pd.Series:
    """What each logged decision brought in, net of its cost."""
    share = recovered_share(decisions, cfg)
    taken = share.to_numpy()[np.arange(len(decisions)), share.columns.get_indexer(decisions["action"])]
    return decisions["paid"] * stake(decisions) * taken - decisions["action"].map(cfg.costs)


def _dr_value(decisions: pd.DataFrame, p: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings) -> float:
    everything = pd.DataFrame(True, index=p.index, columns=list(ACTIONS))
    mu = values_matrix(p, decisions, everything, cfg).replace(-np.inf, 0.0)
    choice = values_matrix(p, decisions, allowed, cfg).idxmax(axis=1)
    return ips_dr(decisions, choice, mu, _realised(decisions, cfg), cfg.effect_model["max_weight"])["dr"]


def off_policy_report(decisions: pd.DataFrame, effects: EffectModel, cfg: StrategySettings, profile: Profile) -> dict:
    """IPS and DR value per decision of the strategy's choice, the legacy policy and the DPD ladder."""
    allowed = evaluate(decisions, cfg, profile, explain=False).allowed
    p = effects.predict(decisions)
    everything = pd.DataFrame(True, index=p.index, columns=list(ACTIONS))
    mu = values_matrix(p, decisions, everything, cfg).replace(-np.inf, 0.0)
    reward = _realised(decisions, cfg)
    lawful_values = values_matrix(p, decisions, allowed, cfg)
    strategy = lawful_values.idxmax(axis=1)
    ladder = ladder_choice(decisions, allowed, cfg)
    w = cfg.effect_model["max_weight"]
    return {
        "legacy": {"on_policy": float(reward.mean())},
        "strategy": ips_dr(decisions, strategy, mu, reward, w),
        "ladder": ips_dr(decisions, ladder, mu, reward, w),
        "n_decisions": len(decisions),
    }


def promise_model(
    logged: pd.DataFrame, tables: Mapping[str, pd.DataFrame | Path], book: BookRules, cfg: StrategySettings
) -> dict:
    """How promises to pay went (kept: the episode's installment settled by the promised date plus the grace
    days) and a model of P(kept | context at the promise) (strategy.promise_model), checked on the latest
    promises. `tables` holds frames or parquet paths (only the promises and their loans' installments are
    read)."""
    made = promises_made(tables["collection_actions"])
    made = made.astype({"action_at": logged["t"].dtype})
    promises = logged.merge(made, left_on=["loan_id", "t"], right_on=["loan_id", "action_at"])
    if promises.empty:
        return {"promises": 0, "model": None}
    by = promises["promised_date"].fillna(promises["t"].dt.normalize()) + pd.Timedelta(days=book.grace_days)
    columns = ["loan_id", "due_date", "paid_date", "amount_due", "amount_paid"]
    inst = rows_of(tables["installments"], columns, promises["loan_id"].unique())
    joined = (
        promises[["decision_id", "stage", "loan_id", "open_due"]].assign(by=by.to_numpy()).merge(inst, on="loan_id")
    )
    kept_rows = (
        (joined["due_date"] == joined["open_due"])
        & (joined["paid_date"] <= joined["by"])
        & paid_enough(joined, book.tol, book.share)
    )
    kept_ids = set(zip(joined.loc[kept_rows, "stage"], joined.loc[kept_rows, "decision_id"], strict=True))
    promises["kept"] = [
        int((s, d) in kept_ids) for s, d in zip(promises["stage"], promises["decision_id"], strict=True)
    ]
    report = {"promises": len(promises), "kept_rate": float(promises["kept"].mean())}
    pm = cfg.promise_model
    if len(promises) < pm["min_promises"] or promises["kept"].nunique() < 2:
        return report | {"model": None}
    order = promises.sort_values("t")
    cut = int(len(order) * (1 - pm["holdout_share"]))
    params = {
        "objective": "binary",
        "learning_rate": pm["learning_rate"],
        "num_leaves": int(pm["num_leaves"]),
        "min_child_samples": int(pm["min_child_samples"]),
        "seed": cfg.seed,
        "deterministic": True,
        "verbose": -1,
        "force_col_wise": True,
        "num_threads": int(cfg.effect_model.get("num_threads", 0)),  # compute.threads (settings.with_threads)
    }
    fit = lambda f: lgb.train(params, lgb.Dataset(f[CONTEXT_FEATURES], f["kept"]), int(pm["num_boost_round"]))  # noqa: E731
    train, test = order.iloc[:cut], order.iloc[cut:]
    if train["kept"].nunique() == 2 and test["kept"].nunique() == 2:
        p = fit(train).predict(test[CONTEXT_FEATURES], num_threads=params["num_threads"])
        report |= {
            "holdout_auc": float(roc_auc_score(test["kept"], p)),
            "holdout_mean_predicted": float(p.mean()),
            "holdout_kept_rate": float(test["kept"].mean()),
        }
    return report | {"model": fit(order)}


__all__ = ["BookRules", "DayPlan", "StrategyPlans", "candidates", "plan_day", "plan_strategy"]
