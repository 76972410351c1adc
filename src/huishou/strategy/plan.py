"""One day's plan across the collection lifecycle: the candidates at D, the value of every lawful action,
the chosen actions, and the audit of what the rules blocked.

Stages (huishou.core.vocab.STAGES): pre-due (an installment falls due within strategy.pre_due_days_ahead days:
gentle reminders), early (1 .. default_dpd - 1 days past due) and recovery (default_dpd ..
strategy.recovery_max_dpd: calls, visits as a last resort, plans, settlements within the DPD band's
discount cap, placement with a white-listed agency). effects.py learns P(paid | action, context) per stage
from the logged decisions of that stage; huishou.compliance says which actions are lawful; assign.py picks
one action per loan, at most one contact per borrower, a collector for every human action within the daily
minutes and the agencies' capacity; policy_eval.py estimates the value of the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from tqdm.auto import tqdm

from huishou.book.contracts import empty_table
from huishou.compliance import Profile, evaluate, settlement_discount, violations
from huishou.core.settings import StrategySettings
from huishou.core.vocab import ACTIONS, AUTO, STAGE_ACTIONS, STAGES
from huishou.features.population import paid_enough
from huishou.strategy.assign import Plan, plan, roomiest
from huishou.strategy.complaints import ComplaintModel, contact_examples, fit_complaint_model
from huishou.strategy.context import CONTEXT_FEATURES, RULE_COLUMNS, decision_context, logged_decisions
from huishou.strategy.effects import EffectModel, LearnedEffects, fit_effect_model
from huishou.strategy.experiment import Design, Overridden, assign_arms, propensities, random_lawful
from huishou.strategy.policy_eval import ips_dr, ladder_choice, ladder_plan


@dataclass(frozen=True)
class BookRules:
    """What the plan needs of params.yaml features: default DPD, the settlement rule, the promise grace,
    and the lender's time zone (data.timezone)."""

    default_dpd: int
    tol: float
    share: float
    grace_days: int
    lender_zone: str

    @classmethod
    def from_settings(cls, features, timezone: str) -> BookRules:
        """From params.yaml features (default_dpd, paid_tolerance, settle_share, promise_grace_days) and
        data.timezone."""
        f = features
        return cls(f.default_dpd, f.paid_tolerance, f.settle_share, f.promise_grace_days, timezone)


def candidates(
    tables: Mapping[str, pd.DataFrame], day: pd.Timestamp, cfg: StrategySettings, book: BookRules
) -> pd.DataFrame:
    """Every loan to decide about at `day`, with its stage and decision context."""
    inst = tables["installments"]
    settled = (inst["paid_date"] < day) & paid_enough(inst, book.tol, book.share)
    open_ = (inst["due_date"] < day) & ~settled
    dpd = (day - inst.loc[open_].groupby("loan_id")["due_date"].min()).dt.days
    early = dpd[(dpd >= 1) & (dpd <= cfg.max_dpd) & (dpd < book.default_dpd)].index
    recovery = dpd[(dpd >= book.default_dpd) & (dpd <= cfg.recovery_max_dpd)].index
    soon = (
        (inst["due_date"] >= day + pd.Timedelta(days=1))
        & (inst["due_date"] <= day + pd.Timedelta(days=cfg.pre_due_days_ahead))
        & ~settled
    )
    pre_due = pd.Index(inst.loc[soon, "loan_id"].unique()).difference(dpd.index)
    frames = []
    for stage, loans in (("pre_due", pre_due), ("early", early), ("recovery", recovery)):
        if len(loans) == 0:
            continue
        decisions = pd.DataFrame(
            {
                "decision_id": np.arange(len(loans)),
                "loan_id": np.asarray(loans),
                "t": pd.Series(day, index=range(len(loans))).astype("datetime64[us]"),
            }
        )
        ctx = decision_context(
            tables,
            decisions,
            book.tol,
            book.share,
            cfg.decision_step_days,
            upcoming=stage == "pre_due",
            grace_days=book.grace_days,
            lender_zone=book.lender_zone,
        )
        frames.append(ctx[ctx["dpd"].notna()].assign(stage=stage))
    if not frames:
        return _empty_context()
    out = pd.concat(frames, ignore_index=True)
    out["decision_id"] = np.arange(len(out))
    return out


def _empty_context() -> pd.DataFrame:
    cols = ["decision_id", "loan_id", "t", "borrower_id", "open_due", "stage", *CONTEXT_FEATURES, *RULE_COLUMNS]
    return pd.DataFrame({c: pd.Series(dtype=object if c == "stage" else float) for c in cols})


def recovered_share(ctx: pd.DataFrame, cfg: StrategySettings) -> pd.DataFrame:
    """The share of the amount at stake each action brings in when it works (a settlement waives its
    discount, an agency keeps its fee)."""
    share = pd.DataFrame(1.0, index=ctx.index, columns=list(ACTIONS))
    share["settlement"] = 1.0 - settlement_discount(ctx["dpd"].to_numpy(), cfg)
    share["agency"] = 1.0 - (cfg.agencies[0]["fee"] if cfg.agencies else 0.0)
    return share


def stake(ctx: pd.DataFrame) -> pd.Series:
    """The amount a decision is about: what falls due (pre-due), what is overdue (early), everything
    outstanding (recovery: the whole loan has defaulted)."""
    return ctx["outstanding"].where(ctx["stage"] == "recovery", ctx["overdue_amount"])


def values_matrix(
    p_paid: pd.DataFrame,
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    cfg: StrategySettings,
    p_complaint: np.ndarray | None = None,
) -> pd.DataFrame:
    """Expected recovery net of cost per (loan, action), less strategy.complaint_cost times the complaint
    chance of a contact (`p_complaint`, per row); -inf where a rule forbids the action."""
    cost = np.array([cfg.costs[a] for a in ACTIONS])
    amount = stake(ctx).to_numpy(dtype=float)[:, None]
    v = p_paid[list(ACTIONS)].to_numpy() * amount * recovered_share(ctx, cfg).to_numpy() - cost
    if p_complaint is not None:
        contact = np.array([a != "none" for a in ACTIONS])
        v = v - cfg.complaint_cost * np.asarray(p_complaint, dtype=float)[:, None] * contact
    return pd.DataFrame(v, index=p_paid.index, columns=list(ACTIONS)).where(allowed & np.isfinite(v), -np.inf)


@dataclass
class DayPlan:
    candidates: pd.DataFrame  # every candidate with context, estimates, lawful actions and the choice
    plan: Plan
    audit: pd.DataFrame  # blocked (loan, action, rule, source) and published (loan, action, rule path) events
    stats: dict = field(default_factory=dict)


def plan_day(
    tables: Mapping[str, pd.DataFrame],
    day: pd.Timestamp,
    effects: Mapping[str, EffectModel | None],
    cfg: StrategySettings,
    profile: Profile,
    book: BookRules,
    rng: np.random.Generator,
    complaints: ComplaintModel | None = None,
) -> DayPlan:
    """Candidates at `day`, estimated P(paid | action) per stage, lawful actions and the chosen plan.

    A stage without an effect model (no collection log for it yet) is planned by the cold-start policy
    with the capacity the model-planned stages leave, its random choices logged with their propensities.
    """
    ctx = candidates(tables, day, cfg, book)
    rules = evaluate(ctx, cfg, profile)
    allowed = rules.allowed
    p_paid = pd.DataFrame(np.nan, index=ctx.index, columns=list(ACTIONS))
    modelled = pd.Series(False, index=ctx.index)
    for stage in STAGES:
        rows = ctx["stage"] == stage
        if rows.any() and effects.get(stage) is not None:
            p_paid.loc[rows] = effects[stage].predict(ctx[rows]).to_numpy()
            modelled |= rows
    p_complaint = complaints.predict(ctx) if complaints is not None else np.zeros(len(ctx))
    values = values_matrix(p_paid, ctx, allowed, cfg, p_complaint)
    limits = {"agency": sum(int(a["capacity"]) for a in cfg.agencies)}
    action = pd.Series("none", index=ctx.index, dtype=object)
    collector = pd.Series(None, index=ctx.index, dtype=object)
    propensity = np.ones(len(ctx))
    stats: dict = {}
    design = Design.from_settings(cfg.experiment)
    arm = pd.Series(np.where(modelled, "champion", "cold_start"), index=ctx.index, dtype=object)
    champion_action = pd.Series("none", index=ctx.index, dtype=object)
    if modelled.any():
        # the champion with the whole team: the plan itself without an experiment; with one, the
        # counterfactual evaluate-strategy scores
        whole = plan(
            values[modelled],
            cfg.minutes,
            cfg.capacities(),
            cfg.mip_time_limit_s,
            groups=ctx.loc[modelled, "borrower_id"],
            limits=limits,
            exact_max_rows=cfg.exact_max_rows,
        )
        champion_action[modelled] = whole.action
        if design.active:
            arm[modelled] = assign_arms(ctx.loc[modelled, "borrower_id"], design.name, design.shares)
            challenger = Overridden(cfg, design.challenger)
            arm_values = {
                "champion": values,
                "challenger": values_matrix(p_paid, ctx, allowed, challenger, p_complaint),
            }
            stats["arms"] = {}
            for name, share in design.shares.items():
                rows = modelled & (arm == name)
                if not rows.any():
                    continue
                taken = _plan_arm(name, share, rows, ctx, allowed, arm_values, cfg, limits, rng)
                action[rows], collector[rows] = taken.action, taken.collector
                stats["arms"][name] = {"decisions": int(rows.sum()), "contacts": int((taken.action != "none").sum())}
            unconstrained = {
                "champion": values[modelled].idxmax(axis=1),
                "challenger": arm_values["challenger"][modelled].idxmax(axis=1),
                "ladder": ladder_choice(ctx[modelled], allowed[modelled], cfg),
            }
            propensity[modelled.to_numpy()] = propensities(
                action[modelled], arm[modelled].to_numpy(), unconstrained, allowed[modelled], design.shares
            )
        else:
            action[modelled], collector[modelled] = whole.action, whole.collector
            stats |= whole.stats
    cold = ~modelled
    if cold.any():
        used = action[modelled].map(cfg.minutes).groupby(collector[modelled]).sum()
        left = {c: m - int(used.get(c, 0)) for c, m in cfg.capacities().items()}
        spare = {"agency": limits["agency"] - int((action == "agency").sum())}
        contacted = set(ctx.loc[modelled & (action != "none"), "borrower_id"])
        cold_plan, cold_p = cold_start(ctx[cold], allowed[cold], cfg, rng, left, spare, contacted)
        action[cold], collector[cold] = cold_plan.action, cold_plan.collector
        propensity[cold.to_numpy()] = cold_p
        stats |= {"cold_start": cold_plan.stats}
    broken = violations(ctx, action, cfg, profile)
    if broken:
        raise AssertionError(f"plan breaks collection rules: {broken[:5]}")
    contacts = ctx.loc[action != "none", "borrower_id"]
    if contacts.duplicated().any():
        raise AssertionError("plan contacts a borrower twice in a day")
    cand = ctx.copy()
    for a in ACTIONS:
        cand[f"p_{a}"] = p_paid[a].to_numpy()
        cand[f"allowed_{a}"] = allowed[a].to_numpy()
    cand["action"] = action.to_numpy()
    cand["collector_id"] = collector.fillna(AUTO).to_numpy()
    pos = values.columns.get_indexer(action)
    cand["expected_value"] = values.to_numpy()[np.arange(len(values)), pos] if len(values) else []
    cand["p_paid"] = p_paid.to_numpy()[np.arange(len(p_paid)), pos] if len(p_paid) else []
    cand["rule_path"] = [rules.paths.at[i, a] for i, a in zip(ctx.index, action, strict=True)]
    cand["time_window"] = [rules.windows.at[i, a] for i, a in zip(ctx.index, action, strict=True)]
    cand["p_complaint"] = p_complaint
    cand["policy"] = np.where(modelled, "effect model", "cold start")
    cand["arm"] = arm.to_numpy()
    cand["champion_action"] = np.where(modelled, champion_action.to_numpy(), action.to_numpy())
    cand["propensity"] = propensity
    audit = _audit(ctx, cand, rules.blocked, day, profile)
    stats |= {
        "candidates": {s: int((ctx["stage"] == s).sum()) for s in STAGES},
        "actions": {
            f"{s}:{a}": int(n)
            for (s, a), n in cand.loc[cand["action"] != "none"].groupby(["stage", "action"]).size().items()
        },
        "blocked_by_rule": rules.blocked["rule"].value_counts().to_dict(),
    }
    return DayPlan(cand, Plan(action, collector, float("nan"), "plan", stats), audit, stats)


def _plan_arm(
    name: str,
    share: float,
    rows: pd.Series,
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    arm_values: dict[str, pd.DataFrame],
    cfg: StrategySettings,
    limits: dict[str, int],
    rng: np.random.Generator,
) -> Plan:
    """One arm's plan of its own borrowers with its share of the collectors' minutes and the agencies."""
    caps = {c: int(m * share) for c, m in cfg.capacities().items()}
    lims = {k: int(v * share) for k, v in limits.items()}
    groups = ctx.loc[rows, "borrower_id"]
    if name in arm_values:
        return plan(
            arm_values[name][rows],
            cfg.minutes,
            caps,
            cfg.mip_time_limit_s,
            groups=groups,
            limits=lims,
            exact_max_rows=cfg.exact_max_rows,
        )
    if name == "ladder":
        return ladder_plan(ctx[rows], allowed[rows], cfg, caps, lims)
    # random_lawful: a lawful action drawn uniformly; a human one needs a collector with the minutes, a
    # limited one the capacity, a borrower one contact (otherwise the loan waits)
    drawn = random_lawful(allowed[rows], rng)
    action = pd.Series("none", index=drawn.index, dtype=object)
    collector = pd.Series(None, index=drawn.index, dtype=object)
    contacted: set = set()
    for i, a in drawn.items():
        borrower = ctx.at[i, "borrower_id"]
        if a == "none" or borrower in contacted or (a in lims and lims[a] <= 0):
            continue
        need = cfg.minutes.get(a, 0)
        who = roomiest(caps, need) if need > 0 else None
        if need > 0 and who is None:
            continue
        if who is not None:
            caps[who] -= need
        if a in lims:
            lims[a] -= 1
        action[i], collector[i] = a, who
        contacted.add(borrower)
    return Plan(action, collector, float("nan"), "random lawful", {})


def _audit(
    ctx: pd.DataFrame, cand: pd.DataFrame, blocked: pd.DataFrame, day: pd.Timestamp, profile: Profile
) -> pd.DataFrame:
    """One row per blocked (loan, action) with the rule and its source, and per published action with its path."""
    keys = ctx[["loan_id", "borrower_id", "stage"]]
    blocked_rows = blocked.join(keys, on="row").drop(columns="row").assign(event="blocked", rule_path="")
    acting = cand[cand["action"] != "none"]
    published = acting[["loan_id", "borrower_id", "stage", "action", "rule_path"]].assign(
        event="published", rule="", source=""
    )
    out = pd.concat([published, blocked_rows], ignore_index=True)
    out.insert(0, "date", pd.Timestamp(day).date().isoformat())
    out.insert(1, "profile", profile.name)
    return out[["date", "profile", "event", "loan_id", "borrower_id", "stage", "action", "rule", "source", "rule_path"]]


def cold_start(
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    cfg: StrategySettings,
    rng: np.random.Generator,
    capacities: dict[str, int],
    limits: dict[str, int],
    contacted: set,
) -> tuple[Plan, np.ndarray]:
    """The plan where no collection log exists yet: the DPD ladder under the capacity left, explored.

    Each loan keeps its ladder action with probability 1 - strategy.cold_start_epsilon; otherwise it takes
    a lawful action drawn uniformly from those that need no more collector minutes than the ladder's and no
    limited capacity (so capacity still holds; a human action keeps its collector). The probability of the
    action taken is returned exactly, so the outcomes logged from these plans can train the effect model.
    """
    base = ladder_plan(ctx[~ctx["borrower_id"].isin(contacted)], allowed, cfg, capacities, limits)
    action = base.action.reindex(ctx.index, fill_value="none")
    collector = base.collector.reindex(ctx.index)
    propensity = np.ones(len(ctx))
    eps = cfg.cold_start_epsilon
    explore = rng.random(len(ctx)) < eps
    draws = rng.random(len(ctx))
    for pos, i in enumerate(ctx.index):
        if ctx.at[i, "borrower_id"] in contacted:
            continue
        budget = cfg.minutes[action[i]]
        options = [
            a for a in ACTIONS if allowed.at[i, a] and cfg.minutes[a] <= budget and (a not in limits or a == action[i])
        ]
        if action[i] == "none":  # a loan the ladder left alone (another loan of the borrower is contacted)
            options = ["none"] if ctx.at[i, "borrower_id"] in set(ctx.loc[action != "none", "borrower_id"]) else options
        taken = options[int(draws[pos] * len(options))] if explore[pos] else action[i]
        propensity[pos] = (1 - eps) * (taken == action[i]) + eps / len(options)
        if cfg.minutes[taken] == 0:
            collector[i] = None
        action[i] = taken
    stats = {"method": "cold start", "epsilon": eps, "explored": int(explore.sum())}
    return Plan(action, collector, float("nan"), "cold start", stats), propensity


# ---------------------------------------------------------------- learning and evaluating over the log


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
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    cfg: StrategySettings,
    profile: Profile,
    book: BookRules,
    progress: bool = False,
    learned: LearnedEffects | None = None,
) -> StrategyPlans:
    """Plan every worklist date with the action effects per stage: `learned` (fitted on their own schedule by
    `learn_effects`, see huishou fit-effects), else learnt here from the logged decisions."""
    days = worklist_days(as_of, cfg)
    cutoff = learning_cutoff(as_of, cfg)
    tables = dict(tables)
    tables.setdefault("collection_actions", empty_table("collection_actions"))
    logged_by = logged_by_stage(tables, cutoff, cfg, book)
    bar = tqdm(total=len(STAGES) + len(days), desc="strategy", unit="step", disable=not progress)
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
        bar.update()
        result = plan_day(tables, day, effects, cfg, profile, book, rng, complaints)
        candidates_by_day[day], audit[day], stats[str(day.date())] = result.candidates, result.audit, result.stats
    bar.close()
    promises = promise_model(pd.concat(logged_by.values(), ignore_index=True), tables, book, cfg)
    published = candidates_by_day[days[-1]]
    if promises.get("model") is not None and len(published):
        published["p_promise_kept"] = np.where(
            published["pending_promise"] > 0,
            promises["model"].predict(published[CONTEXT_FEATURES], num_threads=cfg.effect_model["num_threads"]),
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
    tables: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp, cfg: StrategySettings, book: BookRules
) -> dict[str, pd.DataFrame]:
    """The logged decisions of each lifecycle stage whose outcome is known at `cutoff`."""
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
        ).assign(stage=stage)
        for stage in STAGES
    }


def learn_from_log(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    cfg: StrategySettings,
    profile: Profile,
    book: BookRules,
    bar=None,
) -> LearnedEffects:
    """`learn_effects` on the decisions `plan_strategy` would learn from at `as_of` (its learning cutoff;
    no collection log: none): what huishou fit-effects publishes for the plans to load."""
    cutoff = learning_cutoff(as_of, cfg)
    tables = {"collection_actions": empty_table("collection_actions"), **tables}
    return learn_effects(logged_by_stage(tables, cutoff, cfg, book), cutoff, cfg, profile, bar)


def learn_effects(
    logged_by: Mapping[str, pd.DataFrame], cutoff: pd.Timestamp, cfg: StrategySettings, profile: Profile, bar=None
) -> LearnedEffects:
    """The effect model of each stage (None where too few decisions: the cold-start policy plans) with its
    boosting rounds chosen by cross-fitted plan value, and the off-policy estimate: the last
    `cfg.ope_holdout_days` of the decisions scored with a model fitted on the earlier ones."""
    learnable = lambda f: len(f) >= cfg.min_logged_decisions and f["paid"].nunique() == 2  # noqa: E731
    effects, ope = {}, {}
    for stage, logged in logged_by.items():
        if bar is not None:
            bar.set_postfix_str(f"effect model {stage}")
            bar.update()
        actions = STAGE_ACTIONS[stage]
        if not learnable(logged):
            effects[stage] = None
            ope[stage] = {
                "skipped": f"{len(logged)} logged {stage} decisions (strategy.min_logged_decisions is "
                f"{cfg.min_logged_decisions}, both outcomes needed): planned by the cold-start policy"
            }
            continue
        rounds, selection = select_rounds(logged, cfg, profile, actions)
        effects[stage] = fit_effect_model(logged, cfg.effect_model, actions, rounds)
        holdout = logged["t"] >= cutoff - pd.Timedelta(days=cfg.ope_holdout_days)
        if holdout.any() and learnable(logged[~holdout]):
            early_model = fit_effect_model(logged[~holdout], cfg.effect_model, actions, rounds)
            ope[stage] = off_policy_report(logged[holdout].reset_index(drop=True), early_model, cfg, profile)
        else:
            ope[stage] = {"skipped": "too few logged decisions to hold out"}
        ope[stage]["effect_model"] = selection | {"logged_decisions": len(logged)}
    decisions = {stage: len(logged) for stage, logged in logged_by.items()}
    return LearnedEffects(cutoff, effects, ope, decisions)


def select_rounds(
    logged: pd.DataFrame, cfg: StrategySettings, profile: Profile, actions: tuple[str, ...]
) -> tuple[int, dict]:
    """The number of boosting rounds (from strategy.effect_model rounds_grid) whose plans are worth most.

    Cross-fitted on the decision the model is for, not on how well it predicts payment: the logged decisions
    are split into cv_folds by loan; a model fitted on the other folds picks, for every held-out decision, the
    lawful action of highest estimated value, and the doubly-robust estimate of those choices (the same model's
    estimates as the control variate, the logged propensities as weights) scores the rounds. A likelihood
    criterion stops far earlier: the baseline chance of payment is learnt in a few hundred rounds, the
    differences between actions, which decide the plan, later.
    """
    em = cfg.effect_model
    grid = sorted({int(r) for r in em["rounds_grid"]})
    if len(grid) == 1:
        return grid[0], {"rounds": grid[0]}
    scores = np.zeros(len(grid))
    splits = GroupKFold(n_splits=int(em["cv_folds"])).split(logged, groups=logged["loan_id"])
    for train, test in splits:
        model = fit_effect_model(logged.iloc[train], em, actions, grid[-1])
        held = logged.iloc[test].reset_index(drop=True)
        allowed = evaluate(held, cfg, profile).allowed
        for k, rounds in enumerate(grid):
            scores[k] += _dr_value(held, model.predict(held, rounds), allowed, cfg) * len(held)
    scores /= len(logged)
    best = grid[int(np.argmax(scores))]
    return best, {"rounds": best, "cv_dr_by_rounds": {str(r): float(v) for r, v in zip(grid, scores, strict=True)}}


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
    allowed = evaluate(decisions, cfg, profile).allowed
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
    logged: pd.DataFrame, tables: Mapping[str, pd.DataFrame], book: BookRules, cfg: StrategySettings
) -> dict:
    """How promises to pay went (kept: the episode's installment settled by the promised date plus the grace
    days) and a model of P(kept | context at the promise) (strategy.promise_model), checked on the latest
    promises."""
    acts = tables["collection_actions"]
    made = acts[acts["outcome"] == "promise_to_pay"][["loan_id", "action_at", "promised_date"]]
    promises = logged.merge(made, left_on=["loan_id", "t"], right_on=["loan_id", "action_at"])
    if promises.empty:
        return {"promises": 0, "model": None}
    by = promises["promised_date"].fillna(promises["t"].dt.normalize()) + pd.Timedelta(days=book.grace_days)
    inst = tables["installments"][["loan_id", "due_date", "paid_date", "amount_due", "amount_paid"]]
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
        "num_threads": int(cfg.effect_model["num_threads"]),  # the strategy's LightGBM threads
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


__all__ = ["BookRules", "DayPlan", "StrategyPlans", "candidates", "plan_day", "plan_strategy", "roomiest"]
