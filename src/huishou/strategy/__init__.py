"""Collection strategy: from risk scores and collection history to tomorrow's lawful worklists.

effects.py learns P(paid | action, context) from the logged legacy decisions; rules.py says which
actions are lawful for each loan; assign.py picks one action per loan and a collector for human
actions within the daily minutes; policy_eval.py estimates the value of the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from huishou.config import StrategySettings
from huishou.features.population import paid_enough
from huishou.strategy.assign import Plan, plan
from huishou.strategy.context import decision_context, logged_decisions
from huishou.strategy.effects import ACTIONS, EffectModel, fit_effect_model
from huishou.strategy.policy_eval import ips_dr, ladder_choice
from huishou.strategy.rules import allowed_actions, violations

AUTO = "AUTO"  # worklist of automated channels (sms, app push, letters): no collector minutes


def delinquent_loans(installments: pd.DataFrame, day: pd.Timestamp, max_dpd: int, dpd_default: int = 30,
                     tol: float = 0.01, share: float = 1.0) -> pd.Series:
    """Loans 1..max_dpd days past due at `day` that have not reached `dpd_default` (early collections)."""
    inst = installments
    settled = (inst["paid_date"] < day) & paid_enough(inst, tol, share)
    open_ = (inst["due_date"] < day) & ~settled
    oldest = inst.loc[open_].groupby("loan_id")["due_date"].min()
    dpd = (day - oldest).dt.days
    return pd.Series(dpd[(dpd >= 1) & (dpd <= max_dpd) & (dpd < dpd_default)].index, name="loan_id")


def values_matrix(p_paid: pd.DataFrame, overdue: pd.Series, allowed: pd.DataFrame, costs: Mapping[str, float]) -> pd.DataFrame:
    """Expected recovery net of cost per (loan, action); -inf where a rule forbids the action."""
    cost = np.array([costs[a] for a in ACTIONS])
    v = p_paid[list(ACTIONS)].to_numpy() * overdue.to_numpy()[:, None] - cost
    return pd.DataFrame(v, index=p_paid.index, columns=list(ACTIONS)).where(allowed, -np.inf)


def plan_day(tables: Mapping[str, pd.DataFrame], day: pd.Timestamp, effects: EffectModel, cfg: StrategySettings,
             tol: float = 0.01, share: float = 1.0) -> tuple[pd.DataFrame, Plan]:
    """Candidates at `day` with context, estimated P(paid | action), lawful actions and the chosen plan."""
    loans = delinquent_loans(tables["installments"], day, cfg.max_dpd, tol=tol, share=share)
    decisions = pd.DataFrame({"decision_id": np.arange(len(loans)), "loan_id": loans.to_numpy(),
                              "t": pd.Series(day, index=range(len(loans))).astype("datetime64[us]")})
    ctx = decision_context(tables, decisions, tol, share) if len(decisions) else _empty_context()
    ctx = ctx[ctx["dpd"].notna()].reset_index(drop=True)
    p_paid = effects.predict(ctx) if len(ctx) else pd.DataFrame(columns=list(ACTIONS), dtype=float)
    allowed, paths = allowed_actions(ctx, cfg)
    values = values_matrix(p_paid, ctx["overdue_amount"], allowed, cfg.costs)
    chosen = plan(values, cfg.minutes, cfg.capacities(), cfg.mip_time_limit_s)
    broken = violations(ctx, chosen.action, cfg)
    if broken:
        raise AssertionError(f"plan breaks collection rules: {broken[:5]}")
    cand = ctx.copy()
    for a in ACTIONS:
        cand[f"p_{a}"] = p_paid[a].to_numpy()
        cand[f"allowed_{a}"] = allowed[a].to_numpy()
    cand["action"] = chosen.action.to_numpy()
    cand["collector_id"] = chosen.collector.fillna(AUTO).to_numpy()
    cand["expected_value"] = values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(chosen.action)] \
        if len(values) else np.array([])
    cand["p_paid"] = p_paid.to_numpy()[np.arange(len(p_paid)), p_paid.columns.get_indexer(chosen.action)] \
        if len(p_paid) else np.array([])
    cand["rule_path"] = [paths.at[i, a] for i, a in zip(paths.index, chosen.action, strict=True)]
    return cand, chosen


def _empty_context() -> pd.DataFrame:
    from huishou.strategy.context import CONTEXT_FEATURES

    return pd.DataFrame(columns=["decision_id", "loan_id", "t", "borrower_id", "open_due", *CONTEXT_FEATURES],
                        dtype=float)


def worklist(cand: pd.DataFrame, reasons: pd.DataFrame, risk: pd.Series, cfg: StrategySettings) -> pd.DataFrame:
    """Per collector, a ranked list of the day's actions (AUTO: automated channels); `none` rows are left out."""
    acting = cand[cand["action"] != "none"].copy()
    acting["risk_score"] = acting["loan_id"].map(risk)
    acting = acting.join(reasons, on="loan_id")
    acting["time_window"] = f"{cfg.quiet_end}-{cfg.quiet_start}"
    acting = acting.sort_values(["collector_id", "expected_value", "loan_id"], ascending=[True, False, True])
    acting["rank"] = acting.groupby("collector_id").cumcount() + 1
    cols = ["collector_id", "rank", "loan_id", "borrower_id", "action", "expected_value", "p_paid", "risk_score",
            "dpd", "overdue_amount", "reason_1", "reason_2", "reason_3", "rule_path", "time_window"]
    out = acting.reindex(columns=cols)
    out["expected_value"] = out["expected_value"].round(2)
    out[["p_paid", "risk_score"]] = out[["p_paid", "risk_score"]].round(4)
    return out.reset_index(drop=True)


def _nightly_scores(settings, day: pd.Timestamp) -> pd.Series | None:
    """Risk scores of the nightly `huishou score` run for `day`, by loan_id, if that file exists."""
    path = Path(settings.score.scores_dir) / f"scores_{day.date()}.parquet"
    if not path.exists():
        return None
    return pd.read_parquet(path, columns=["loan_id", "probability"]).set_index("loan_id")["probability"]


def off_policy_report(decisions: pd.DataFrame, effects: EffectModel, cfg: StrategySettings) -> dict:
    """IPS and DR value per decision of the strategy's choice, the legacy policy and the DPD ladder."""
    allowed, _ = allowed_actions(decisions, cfg)
    p = effects.predict(decisions)
    mu = values_matrix(p, decisions["overdue_amount"], pd.DataFrame(True, index=p.index, columns=list(ACTIONS)),
                       cfg.costs)
    reward = decisions["paid"] * decisions["overdue_amount"] - decisions["action"].map(cfg.costs)
    strategy = values_matrix(p, decisions["overdue_amount"], allowed, cfg.costs).idxmax(axis=1)
    ladder = ladder_choice(decisions, allowed)
    w = cfg.effect_model["max_weight"]
    return {"legacy": {"on_policy": float(reward.mean())},
            "strategy": ips_dr(decisions, strategy, mu, reward, w),
            "ladder": ips_dr(decisions, ladder, mu, reward, w),
            "n_decisions": len(decisions)}


def run(settings) -> dict:
    """`huishou strategy`: worklists for the published date, candidates for every evaluation date, OPE metrics."""
    from huishou import tracking
    from huishou.explain import reason_codes
    from huishou.features import build_features
    from huishou.io import write_csv, write_json, write_parquet
    from huishou.train import RiskModel
    from huishou.validate import assert_validated, read_raw

    cfg, f = settings.strategy, settings.features
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    tables = read_raw(settings.data.raw_dir)
    if "collection_actions" not in tables:
        raise ValueError("the strategy needs collection_actions (the logged legacy decisions) in data/raw")
    days = sorted(as_of - pd.Timedelta(days=d) for d in cfg.eval_days_before_as_of)
    cutoff = days[0] - pd.Timedelta(days=cfg.response_days)
    logged = logged_decisions(tables, cutoff, cfg.response_days, f.paid_tolerance, f.settle_share)
    holdout = logged["t"] >= cutoff - pd.Timedelta(days=90)
    ope = off_policy_report(logged[holdout].reset_index(drop=True),
                            fit_effect_model(logged[~holdout], cfg.effect_model), cfg)
    effects = fit_effect_model(logged, cfg.effect_model)
    out_dir = Path(settings.data.worklists_dir)
    stats = {}
    for day in days:
        cand, chosen = plan_day(tables, day, effects, cfg, f.paid_tolerance, f.settle_share)
        write_parquet(cand, out_dir / f"candidates_{day.date()}.parquet")
        stats[str(day.date())] = chosen.stats | {"candidates": len(cand),
                                                 "actions": cand["action"].value_counts().to_dict()}
    publish = days[-1]
    model = RiskModel.load(Path(settings.data.models_dir) / "lightgbm.joblib")
    feats = build_features(tables, [publish], **f.build_kwargs(as_of))
    feats = feats[feats["loan_id"].isin(cand["loan_id"])].set_index("loan_id", drop=False)
    risk = _nightly_scores(settings, publish)
    if risk is None:  # no scoring run for that date: score the candidates with the same model
        risk = pd.Series(model.predict_proba(feats), index=feats.index)
    lists = worklist(cand, reason_codes(model, feats), risk, cfg)
    write_parquet(lists, out_dir / f"worklist_{publish.date()}.parquet")
    for collector, rows in lists.groupby("collector_id"):
        write_csv(rows, out_dir / f"{publish.date()}" / f"{collector}.csv")
    index = {"published": str(publish.date()), "dates": [str(d.date()) for d in days]}
    write_json(index, out_dir / "index.json")
    metrics = {"off_policy": ope, "plans": stats, "published": index["published"],
               "worklist_rows": len(lists), "human_actions": int(lists["collector_id"].ne(AUTO).sum())}
    write_json(metrics, Path(settings.data.models_dir) / "strategy_metrics.json")
    tracking.log_run(settings.tracking, settings.tracking.strategy_experiment, f"strategy {publish.date()}", metrics,
                     [out_dir / f"worklist_{publish.date()}.parquet"])
    return metrics
