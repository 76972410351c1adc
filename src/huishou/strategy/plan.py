"""One day's plan across the collection lifecycle: the candidates at D, the value of every lawful action,
the chosen actions, and the audit of what the rules blocked (learning.py learns from the log and plans every
worklist date with it).

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
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from huishou.compliance import Profile, evaluate, settlement_discount, violations
from huishou.core.settings import StrategySettings
from huishou.core.vocab import ACTIONS, AUTO, STAGES
from huishou.features import open_book
from huishou.features.population import settled_before
from huishou.strategy.assign import Plan, plan
from huishou.strategy.complaints import ComplaintModel
from huishou.strategy.context import CONTEXT_FEATURES, RULE_COLUMNS, decision_context
from huishou.strategy.effects import EffectModel
from huishou.strategy.experiment import Design, Overridden, assign_arms, propensities, random_lawful
from huishou.strategy.policy_eval import ladder_choice, ladder_plan
from huishou.strategy.team import Rooms, Team, languages_of


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
    tables: Mapping[str, pd.DataFrame | Path],
    day: pd.Timestamp,
    cfg: StrategySettings,
    book: BookRules,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Every loan to decide about at `day`, with its stage and decision context. `tables` holds frames or
    parquet paths: DuckDB picks the loans and builds their context in one connection, reading files in place
    (a book of 1e7 loans need not fit in memory). `con`: a connection that already sees the book (a cursor
    of `copy_book`'s), used instead of opening one on `tables`; closed here either way."""
    con = open_book(tables) if con is None else con
    try:
        picked = con.execute(_STAGE_SQL, _stage_params(day, cfg, book)).df()
    except BaseException:
        con.close()
        raise
    if picked.empty:
        con.close()
        return _empty_context()
    stage = picked["stage"].to_numpy(dtype=object)
    decisions = pd.DataFrame(  # every stage in one query: pre-due decisions look at the upcoming installment
        {
            "decision_id": np.arange(len(stage)),
            "loan_id": picked["loan_id"].to_numpy(),
            "t": pd.Series(day, index=range(len(stage))).astype("datetime64[us]"),
            "upcoming": stage == "pre_due",
        }
    )
    ctx = decision_context(  # closes the connection
        tables,
        decisions,
        book.tol,
        book.share,
        cfg.decision_step_days,
        grace_days=book.grace_days,
        lender_zone=book.lender_zone,
        con=con,
    )
    ctx["stage"] = stage[ctx["decision_id"].to_numpy()]
    out = ctx[ctx["dpd"].notna()].reset_index(drop=True)
    out["decision_id"] = np.arange(len(out))
    return out


# The loans of each stage at $day: days past due from the earliest installment due before the day and not
# settled before it (pre-due: an unsettled installment falls due within the look-ahead and none is past due);
# each stage's loans in loan_id order, the stages in lifecycle order.
_STAGE_SQL = f"""
WITH i AS (
  SELECT i.loan_id, i.due_date, coalesce({settled_before("$day")}, false) AS settled FROM installments i
),
late AS (
  SELECT loan_id, datediff('day', min(due_date), $day) AS dpd FROM i
  WHERE due_date < $day AND NOT settled GROUP BY loan_id
),
soon AS (
  SELECT DISTINCT loan_id FROM i
  WHERE due_date >= $day + INTERVAL 1 DAY AND due_date <= $ahead AND NOT settled
)
SELECT loan_id, stage FROM (
  SELECT loan_id, 'pre_due' AS stage, 0 AS k FROM soon ANTI JOIN late USING (loan_id)
  UNION ALL
  SELECT loan_id, 'early', 1 FROM late WHERE dpd >= 1 AND dpd <= $max_dpd AND dpd < $default_dpd
  UNION ALL
  SELECT loan_id, 'recovery', 2 FROM late WHERE dpd >= $default_dpd AND dpd <= $recovery_max_dpd
)
ORDER BY k, loan_id
"""


def _stage_params(day: pd.Timestamp, cfg: StrategySettings, book: BookRules) -> dict:
    day = pd.Timestamp(day)
    return {
        "day": day.to_pydatetime(),
        "ahead": (day + pd.Timedelta(days=cfg.pre_due_days_ahead)).to_pydatetime(),
        "max_dpd": int(cfg.max_dpd),
        "default_dpd": int(book.default_dpd),
        "recovery_max_dpd": int(cfg.recovery_max_dpd),
        "tol": float(book.tol),
        "share": float(book.share),
    }


def _empty_context() -> pd.DataFrame:
    cols = [
        "decision_id",
        "loan_id",
        "t",
        "borrower_id",
        "language",
        "open_due",
        "stage",
        *CONTEXT_FEATURES,
        *RULE_COLUMNS,
    ]
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("stage", "language") else float) for c in cols})


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


def predicted_paid(ctx: pd.DataFrame, effects: Mapping[str, EffectModel | None]) -> tuple[pd.DataFrame, pd.Series]:
    """Estimated P(paid | action) per candidate row (columns ACTIONS; NaN for a stage without an effect model)
    and which rows a model estimated."""
    p_paid = pd.DataFrame(np.nan, index=ctx.index, columns=list(ACTIONS))
    modelled = pd.Series(False, index=ctx.index)
    for stage in STAGES:
        rows = ctx["stage"] == stage
        if rows.any() and effects.get(stage) is not None:
            p_paid.loc[rows] = effects[stage].predict(ctx[rows]).to_numpy()
            modelled |= rows
    return p_paid, modelled


def plan_day(
    tables: Mapping[str, pd.DataFrame | Path],
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
    p_paid, modelled = predicted_paid(ctx, effects)
    p_complaint = complaints.predict(ctx) if complaints is not None else np.zeros(len(ctx))
    values = values_matrix(p_paid, ctx, allowed, cfg, p_complaint)
    limits = {"agency": sum(int(a["capacity"]) for a in cfg.agencies)}
    team = Team.from_settings(cfg)
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
            team,
            cfg.mip_time_limit_s,
            groups=ctx.loc[modelled, "borrower_id"],
            limits=limits,
            exact_max_rows=cfg.exact_max_rows,
            languages=ctx.loc[modelled, "language"],
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
                taken = _plan_arm(name, team.scaled(share), share, rows, ctx, allowed, arm_values, cfg, limits, rng)
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
        left = team.with_minutes({c: m - int(used.get(c, 0)) for c, m in team.minutes.items()})
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
    rows = np.arange(len(ctx))
    cand["rule_path"] = rules.paths.to_numpy()[rows, rules.paths.columns.get_indexer(action)] if len(ctx) else []
    cand["time_window"] = rules.windows.to_numpy()[rows, rules.windows.columns.get_indexer(action)] if len(ctx) else []
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
    caps: Team,
    share: float,
    rows: pd.Series,
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    arm_values: dict[str, pd.DataFrame],
    cfg: StrategySettings,
    limits: dict[str, int],
    rng: np.random.Generator,
) -> Plan:
    """One arm's plan of its own borrowers with its share of the collectors' minutes (`caps`) and the agencies."""
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
            languages=ctx.loc[rows, "language"],
        )
    if name == "ladder":
        return ladder_plan(ctx[rows], allowed[rows], cfg, caps, lims)
    # random_lawful: a lawful action drawn uniformly; a human one needs a collector with the minutes, a
    # limited one the capacity, a borrower one contact (otherwise the loan waits)
    drawn = random_lawful(allowed[rows], rng)
    action = pd.Series("none", index=drawn.index, dtype=object)
    collector = pd.Series(None, index=drawn.index, dtype=object)
    contacted: set = set()
    rooms = Rooms(caps.minutes)
    for i, a in drawn.items():
        borrower = ctx.at[i, "borrower_id"]
        if a == "none" or borrower in contacted or (a in lims and lims[a] <= 0):
            continue
        need = cfg.minutes.get(a, 0)
        who = rooms.roomiest(need, caps.eligible(a, ctx.at[i, "language"]))
        if need > 0 and who is None:
            continue
        if who is not None:
            rooms.use(who, need)
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
    capacities: Team | dict[str, int],
    limits: dict[str, int],
    contacted: set,
) -> tuple[Plan, np.ndarray]:
    """The plan where no collection log exists yet: the DPD ladder under the capacity left, explored.

    Each loan keeps its ladder action with probability 1 - strategy.cold_start_epsilon; otherwise it takes
    a lawful action drawn uniformly from those that need no more collector minutes than the ladder's and no
    limited capacity (so capacity still holds; a human action keeps its collector, among the actions that
    collector may take in the borrower's language). The probability of the
    action taken is returned exactly, so the outcomes logged from these plans can train the effect model.
    """
    team = Team.of(capacities)
    languages = team.row_languages(languages_of(ctx), len(ctx))
    base = ladder_plan(ctx[~ctx["borrower_id"].isin(contacted)], allowed, cfg, team, limits)
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
        who, lang = collector[i], languages[pos]
        options = [
            a
            for a in ACTIONS
            if allowed.at[i, a]
            and cfg.minutes[a] <= budget
            and (a not in limits or a == action[i])
            and (cfg.minutes[a] == 0 or pd.isna(who) or team.can(who, a, lang))
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
