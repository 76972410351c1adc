"""Collection strategy: solvers (capacity, one contact per borrower, agency capacity), effects, off-policy
estimates, complaint and promise models, whole-day plans on simulated books (every profile, the audit log
agreeing with the plan), the lifecycle stages, and the bars against the simulator's truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huishou.compliance import Profile, evaluate, violations
from huishou.core.settings import load_settings
from huishou.core.vocab import ACTIONS, STAGE_ACTIONS, STAGES
from huishou.features.population import paid_enough
from huishou.strategy import AUTO, BookRules, plan_day, values_matrix, worklist
from huishou.strategy.assign import exact, greedy, plan
from huishou.strategy.complaints import contact_examples, fit_complaint_model
from huishou.strategy.context import decision_context, logged_decisions
from huishou.strategy.effects import _design, fit_effect_model
from huishou.strategy.learning import plan_strategy, promise_model
from huishou.strategy.plan import candidates, cold_start
from huishou.strategy.policy_eval import ips_dr, ladder_choice, ladder_plan

from builders import CN, US, ctx_row, random_ctx

PARAMS = load_settings("params.yaml")
CFG = PARAMS.strategy
SETTLE = (PARAMS.features.paid_tolerance, PARAMS.features.settle_share)
STEPS = CFG.decision_step_days
LIMITS = {"agency": sum(int(a["capacity"]) for a in CFG.agencies)}


def book_rules(settings) -> BookRules:
    f = settings.features
    return BookRules.from_settings(f, settings.data.timezone)


# ---------------------------------------------------------------- solvers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 60),
    collectors=st.integers(0, 4),
    minutes=st.sampled_from([0, 30, 120, 240]),
    agency=st.integers(0, 3),
    name=st.sampled_from(["cn", "us"]),
)
def test_no_rule_is_ever_broken_and_every_capacity_holds(seed, n, collectors, minutes, agency, name):
    rng = np.random.default_rng(seed)
    prof = CN if name == "cn" else US
    cfg = dataclasses.replace(CFG, collectors=collectors, collector_minutes=minutes, mip_time_limit_s=5)
    ctx = random_ctx(rng, n)
    ctx["borrower_id"] = rng.integers(1, max(n // 2, 1) + 1, n)  # borrowers with several loans
    allowed = evaluate(ctx, cfg, prof).allowed
    p = pd.DataFrame(rng.uniform(0, 0.6, (n, len(ACTIONS))), columns=list(ACTIONS))
    values = values_matrix(p, ctx, allowed, cfg, rng.uniform(0, 0.01, n))
    result = plan(
        values,
        cfg.minutes,
        cfg.capacities(),
        cfg.mip_time_limit_s,
        groups=ctx["borrower_id"],
        limits={"agency": agency},
    )
    assert violations(ctx, result.action, cfg, prof) == []
    contacted = ctx.loc[result.action != "none", "borrower_id"]
    assert not contacted.duplicated().any()  # one contact per borrower a day
    assert (result.action == "agency").sum() <= agency
    used = result.action.map(cfg.minutes).groupby(result.collector).sum() if n else pd.Series(dtype=float)
    for who, total in used.items():
        assert total <= cfg.capacities()[who]
    human = result.action.map(cfg.minutes) > 0 if n else pd.Series(dtype=bool)
    assert result.collector[human].notna().all() and result.collector[~human].isna().all()


def test_exact_is_optimal_on_a_tiny_instance_and_never_worse_than_greedy():
    values = pd.DataFrame(
        {"none": [0.0, 0.0, 0.0], "sms": [1.0, 1.0, 1.0], "call": [10.0, 9.0, 9.0], "visit": [30.0, -np.inf, -np.inf]}
    )
    minutes = {"none": 0, "sms": 0, "call": 10, "visit": 20}
    caps = {"C1": 20}
    best = exact(values, minutes, caps, 5)
    fast = greedy(values, minutes, caps)
    assert best.value == pytest.approx(30.0 + 1 + 1)  # the visit beats two calls (18 + 2)
    assert fast.value <= best.value
    assert plan(values, minutes, caps, 5).value == pytest.approx(best.value)


def test_beyond_exact_max_rows_greedy_plans_and_the_lp_bound_caps_every_plan():
    """Where the exact programme would not finish even on the borrowers the decomposition keeps, greedy plans
    alone and reports the bound from prices on capacity of the kept rows plus the rest's automated value,
    which no plan can beat (checked against the exact optimum on instances small enough to solve) and which
    comes near the LP relaxation's bound."""
    from huishou.strategy.assign import lp_bound

    rng = np.random.default_rng(5)
    minutes = {"none": 0, "sms": 0, "call": 8, "visit": 90}
    caps = {"C1": 240, "C2": 100}
    for _ in range(5):
        n = 60
        values = pd.DataFrame(
            {
                "none": np.zeros(n),
                "sms": rng.uniform(0, 5, n),
                "call": rng.uniform(0, 40, n),
                "visit": np.where(rng.random(n) < 0.2, rng.uniform(0, 300, n), -np.inf),
            }
        )
        groups = pd.Series(rng.integers(0, 45, n))
        best = exact(values, minutes, caps, 10, groups)
        bound = lp_bound(values, minutes, caps, groups)
        assert best.stats["mip_bound"] <= bound + 1e-6 and best.value <= bound + 1e-6
        big = plan(values, minutes, caps, 10, groups, exact_max_rows=5)
        assert big.stats["method"] == "greedy" and "skipped" in big.stats["exact"]
        assert big.stats["decomposed"]["kept_rows"] > 5
        assert best.stats["mip_bound"] - 1e-6 <= big.stats["price_bound"] <= bound * 1.02
        assert big.value <= best.stats["mip_bound"] + 1e-6
        assert 0 <= big.stats["greedy_gap_to_bound"] < 1
        assert plan(values, minutes, caps, 10, groups, exact_max_rows=n).stats["method"] in ("exact", "greedy")
        assert "price_bound" not in plan(values, minutes, caps, 10, groups, exact_max_rows=n).stats


def test_one_contact_per_borrower_keeps_the_most_valuable():
    values = pd.DataFrame({"none": [0.0, 0.0, 0.0], "sms": [3.0, 5.0, 1.0]})
    groups = pd.Series([7, 7, 8])
    for solver in (
        lambda: greedy(values, {"none": 0, "sms": 0}, {}, groups),
        lambda: exact(values, {"none": 0, "sms": 0}, {}, 5, groups),
    ):
        assert solver().action.tolist() == ["none", "sms", "sms"]


def test_agency_capacity_goes_to_the_placements_worth_most():
    values = pd.DataFrame({"none": [0.0] * 4, "sms": [1.0] * 4, "agency": [50.0, 90.0, 70.0, 10.0]})
    minutes = {"none": 0, "sms": 0, "agency": 0}
    for result in (
        greedy(values, minutes, {}, limits={"agency": 2}),
        exact(values, minutes, {}, 5, limits={"agency": 2}),
    ):
        assert result.action.tolist() == ["sms", "agency", "agency", "sms"]


def test_ties_break_deterministically():
    values = pd.DataFrame({"none": [0.0] * 4, "sms": [1.0] * 4, "call": [5.0] * 4})
    minutes = {"none": 0, "sms": 0, "call": 10}
    first, again = greedy(values, minutes, {"C1": 20}), greedy(values, minutes, {"C1": 20})
    assert first.action.tolist() == again.action.tolist() == ["call", "call", "sms", "sms"]


def test_empty_input_gives_an_empty_plan():
    result = plan(pd.DataFrame(columns=list(ACTIONS), dtype=float), CFG.minutes, CFG.capacities(), 5)
    assert len(result.action) == 0 and result.value == 0.0


def test_collector_with_zero_capacity_gets_no_work():
    cfg = dataclasses.replace(CFG, collectors=3, collector_overrides={"C002": 0})
    rng = np.random.default_rng(3)
    ctx = random_ctx(rng, 80)
    allowed = evaluate(ctx, cfg, CN).allowed
    p = pd.DataFrame(rng.uniform(0.1, 0.6, (80, len(ACTIONS))), columns=list(ACTIONS))
    result = plan(values_matrix(p, ctx, allowed, cfg), cfg.minutes, cfg.capacities(), 5)
    assert "C002" not in set(result.collector.dropna()) and result.collector.notna().any()


def test_complaint_risk_is_charged_to_contacts_only():
    ctx = pd.DataFrame([ctx_row()])
    p = pd.DataFrame([[0.1] * len(ACTIONS)], columns=list(ACTIONS))
    allowed = pd.DataFrame([[True] * len(ACTIONS)], columns=list(ACTIONS))
    free, risky = values_matrix(p, ctx, allowed, CFG), values_matrix(p, ctx, allowed, CFG, np.array([0.01]))
    assert risky.at[0, "none"] == free.at[0, "none"]
    assert risky.at[0, "sms"] == pytest.approx(free.at[0, "sms"] - 0.01 * CFG.complaint_cost)


def test_ladder_escalates_by_stage_and_dpd_within_rules():
    ctx = pd.DataFrame(
        [
            ctx_row(loan_id=1, borrower_id=1, stage="pre_due", dpd=-3.0),
            ctx_row(loan_id=2, borrower_id=2, dpd=3.0),
            ctx_row(loan_id=3, borrower_id=3, dpd=10.0),
            ctx_row(loan_id=4, borrower_id=4, stage="recovery", dpd=float(CFG.ladder_agency_from_dpd)),
            ctx_row(
                loan_id=5,
                borrower_id=5,
                stage="recovery",
                dpd=float(CFG.ladder_visit_from_dpd),
                outstanding=9e4,
                episode_noncontact=5.0,
                episode_contacts=7.0,  # messages and calls tried: a visit is the last resort left
            ),
        ]
    )
    allowed = evaluate(ctx, CFG, CN).allowed
    assert ladder_choice(ctx, allowed, CFG).tolist() == ["sms", "sms", "call", "agency", "visit"]
    tight = ladder_plan(ctx, allowed, dataclasses.replace(CFG, collectors=1, collector_minutes=CFG.minutes["visit"]))
    assert tight.action.tolist() == ["sms", "sms", "sms", "agency", "visit"]  # highest DPD first takes the minutes


# ---------------------------------------------------------------- effects and off-policy evaluation


def test_effect_model_recovers_heterogeneous_effects_under_a_confounded_policy():
    rng = np.random.default_rng(0)
    n = 40_000
    ctx = pd.DataFrame([ctx_row()] * n)
    ctx["age"] = rng.integers(20, 60, n).astype(float)
    young = (ctx["age"] < 30).to_numpy()
    p_call = np.where(young, 0.8, 0.2)  # the legacy policy calls mostly the young, for whom calls work worst
    action = np.where(rng.random(n) < p_call, "call", "sms")
    propensity = np.where(action == "call", p_call, 1 - p_call)
    true_call, true_sms = np.where(young, 0.1, 0.4), np.full(n, 0.2)
    paid = rng.random(n) < np.where(action == "call", true_call, true_sms)
    decisions = ctx.assign(action=action, propensity=propensity, paid=paid.astype(int))
    model = fit_effect_model(decisions, CFG.effect_model, rounds=200)
    pred = model.predict(ctx.iloc[:2000])
    assert np.abs(pred["call"] - true_call[:2000]).mean() < 0.05
    assert np.abs(pred["sms"] - true_sms[:2000]).mean() < 0.05
    for a in ACTIONS:  # predict's float matrix (action codes) gives what LightGBM gives the categorical frame
        np.testing.assert_array_equal(pred[a], model.booster.predict(_design(ctx.iloc[:2000], a)))
    one = fit_effect_model(decisions, CFG.effect_model | {"num_threads": 1}, rounds=200)
    assert one.num_threads == 1 and one.booster.params["num_threads"] == 1  # strategy.effect_model.num_threads
    pd.testing.assert_frame_equal(one.predict(ctx.iloc[:2000]), pred)
    grid = [50, 120, 200]  # the round selection's staged predictions: each tree once, the same probabilities
    for rounds, staged in zip(grid, model.predict_staged(ctx.iloc[:2000], grid), strict=True):
        pd.testing.assert_frame_equal(staged, model.predict(ctx.iloc[:2000], rounds), rtol=1e-12, atol=1e-14)


def test_the_effect_models_progress_counts_the_stages_done_and_names_the_one_running(monkeypatch):
    """While a stage's models are fitted the bar's count is the stages finished (tqdm shows n/total), not one
    ahead of the work."""
    from huishou.strategy import learning

    events = []

    class Bar:
        n = 0

        def set_postfix_str(self, s):
            events.append(("named", s, self.n))

        def update(self, k=1):
            self.n += k

    bar = Bar()

    def stage_work(stage, *args):
        events.append(("work", stage, bar.n))
        return None, {}

    monkeypatch.setattr(learning, "_learn_stage", stage_work)
    learning.learn_effects({s: pd.DataFrame() for s in STAGES}, pd.Timestamp("2026-01-01"), CFG, CN, bar)
    expected = [[("named", f"effect model {s}", k), ("work", s, k)] for k, s in enumerate(STAGES)]
    assert events == [e for pair in expected for e in pair] and bar.n == len(STAGES)


def test_ips_and_dr_recover_the_value_of_a_policy():
    rng = np.random.default_rng(1)
    n = 200_000
    action = np.where(rng.random(n) < 0.3, "call", "sms")
    reward = pd.Series(np.where(action == "call", rng.normal(10, 1, n), rng.normal(4, 1, n)))
    logged = pd.DataFrame({"action": action, "propensity": np.where(action == "call", 0.3, 0.7)})
    mu = pd.DataFrame({a: np.zeros(n) for a in ACTIONS})
    mu["call"], mu["sms"] = 9.0, 4.0  # a biased outcome model: DR must correct it with the logged rewards
    out = ips_dr(logged, pd.Series(["call"] * n), mu, reward, max_weight=100)
    assert out["ips"] == pytest.approx(10, rel=0.02) and out["dr"] == pytest.approx(10, rel=0.01)


def test_complaints_are_learnt_from_the_books_complaint_holds(book, settings):
    tables = book.raw_tables()
    examples = contact_examples(
        tables, settings.simulate.as_of, CN.contact_start, CN.contact_end, settings.data.timezone
    )
    model = fit_complaint_model(examples)
    truth = book.truth["complaints"]
    assert model.report["complaints"] > 0 and model.report["contacts"] == len(examples)
    assert model.report["coefficients"]["contacts_7d"] > 0  # more contact, more complaints (the true slope: 0.45)
    assert model.report["coefficients"]["unsocial"] > 0
    assert abs(examples["complained"].mean() - truth["complained"].mean()) < 0.01
    heavy = pd.DataFrame({"contacts_7d": [0.0, 5.0], "hardship_reported": [0.0, 0.0]})
    assert model.predict(heavy)[1] > 2 * model.predict(heavy)[0]


def test_no_complaint_records_means_no_complaint_charge():
    model = fit_complaint_model(
        pd.DataFrame(
            {"contacts_7d": [0.0, 1.0], "hardship_reported": [0.0, 0.0], "unsocial": [0.0, 0.0], "complained": [0, 0]}
        )
    )
    assert model.model is None and (model.predict(pd.DataFrame([ctx_row()])) == 0).all()


# ---------------------------------------------------------------- whole days on simulated books


def _effects(tables, day, settings, rounds=60):
    out = {}
    for stage in STAGES:
        logged = logged_decisions(
            tables, day - pd.Timedelta(days=7), 7, *SETTLE, STEPS, stage=stage, lender_zone=settings.data.timezone
        ).assign(stage=stage)
        out[stage] = fit_effect_model(logged, settings.strategy.effect_model, STAGE_ACTIONS[stage], rounds)
    return out


def test_one_query_for_every_stage_gives_each_stages_own_context(book, settings):
    """candidates asks DuckDB once for all stages (a per-decision `upcoming` flag); each stage's rows must be
    what decision_context gives that stage alone (pre-due: the next installment, negative dpd)."""
    tables, rules = book.raw_tables(), book_rules(settings)
    for day in (settings.simulate.as_of, settings.simulate.as_of - pd.Timedelta(days=40)):
        cand = candidates(tables, day, settings.strategy, rules)
        assert set(cand["stage"]) == set(STAGES)
        assert (cand["decision_id"].to_numpy() == np.arange(len(cand))).all()
        for stage in STAGES:
            got = cand[cand["stage"] == stage].drop(columns=["stage", "decision_id"]).reset_index(drop=True)
            alone = decision_context(
                tables,
                pd.DataFrame({"decision_id": np.arange(len(got)), "loan_id": got["loan_id"], "t": got["t"]}),
                *SETTLE,
                STEPS,
                upcoming=stage == "pre_due",
                grace_days=rules.grace_days,
                lender_zone=rules.lender_zone,
            ).drop(columns="decision_id")
            pd.testing.assert_frame_equal(got, alone, check_dtype=False)
            assert ((got["dpd"] < 0) == (stage == "pre_due")).all()
        # and the flag reaches the SQL: a pre-due row's amount is what is left of its upcoming installment, the
        # others' what is left of every unsettled installment past due
        inst = tables["installments"].assign(due_date=lambda f: f["due_date"].astype("datetime64[us]"))
        before = inst["paid_date"] < day
        inst["left"] = inst["amount_due"] - inst["amount_paid"].where(before, 0.0)
        open_ = ~(before & paid_enough(inst, *SETTLE))
        pre = cand["stage"] == "pre_due"
        assert pre.any() and (~pre).any()
        keys = cand.loc[pre, ["loan_id", "open_due"]].astype({"open_due": "datetime64[us]"})
        upcoming = keys.merge(inst, left_on=["loan_id", "open_due"], right_on=["loan_id", "due_date"], how="left")
        np.testing.assert_allclose(cand.loc[pre, "overdue_amount"], upcoming["left"])
        past = inst[open_ & (inst["due_date"] < day)].groupby("loan_id")["left"].sum()
        np.testing.assert_allclose(cand.loc[~pre, "overdue_amount"], cand.loc[~pre, "loan_id"].map(past))


def _stages_by_hand(inst: pd.DataFrame, day: pd.Timestamp, cfg, rules) -> pd.DataFrame:
    """The lifecycle stage of each loan at `day` written out in pandas (the reference for DuckDB's pick)."""
    settled = (inst["paid_date"] < day) & paid_enough(inst, rules.tol, rules.share)
    open_ = (inst["due_date"] < day) & ~settled
    dpd = (day - inst.loc[open_].groupby("loan_id")["due_date"].min()).dt.days
    early = dpd[(dpd >= 1) & (dpd <= cfg.max_dpd) & (dpd < rules.default_dpd)].index
    recovery = dpd[(dpd >= rules.default_dpd) & (dpd <= cfg.recovery_max_dpd)].index
    ahead = day + pd.Timedelta(days=cfg.pre_due_days_ahead)
    soon = (inst["due_date"] >= day + pd.Timedelta(days=1)) & (inst["due_date"] <= ahead) & ~settled
    pre_due = pd.Index(inst.loc[soon, "loan_id"].unique()).difference(dpd.index)
    parts = [
        pd.DataFrame({"loan_id": loans, "stage": name})
        for name, loans in (("pre_due", pre_due), ("early", early), ("recovery", recovery))
    ]
    return pd.concat(parts, ignore_index=True)


def test_each_loan_is_a_candidate_of_the_stage_its_days_past_due_say(book, settings, tmp_path):
    """DuckDB picks the candidates (frames or parquet files read in place): the loans and stages of the DPD
    rule written out in pandas, in stage then loan order; settling a loan's overdue installments the day before
    takes it out of the collection stages."""
    from huishou.core.io import write_parquet

    tables, rules, cfg = book.raw_tables(), book_rules(settings), settings.strategy
    paths = {name: write_parquet(frame, tmp_path / f"{name}.parquet") for name, frame in tables.items()}
    for day in (settings.simulate.as_of, settings.simulate.as_of - pd.Timedelta(days=40)):
        expected = _stages_by_hand(tables["installments"], day, cfg, rules)
        assert set(expected["stage"]) == set(STAGES)
        for source in (tables, paths):
            got = candidates(source, day, cfg, rules)
            pd.testing.assert_frame_equal(got[["loan_id", "stage"]], expected, check_dtype=False)
    day = settings.simulate.as_of
    early = expected.loc[expected["stage"] == "early", "loan_id"].iloc[0]
    inst = tables["installments"].copy()
    mine = (inst["loan_id"] == early) & (inst["due_date"] < day)
    inst.loc[mine, "amount_paid"] = inst.loc[mine, "amount_due"]
    inst.loc[mine, "paid_date"] = day - pd.Timedelta(days=1)
    settled = candidates(tables | {"installments": inst}, day, cfg, rules)
    assert early not in set(settled.loc[settled["stage"] != "pre_due", "loan_id"])
    pd.testing.assert_frame_equal(
        settled[["loan_id", "stage"]].reset_index(drop=True),
        _stages_by_hand(inst, day, cfg, rules),
        check_dtype=False,
    )


def test_plan_day_covers_the_lifecycle_lawfully_and_fills_worklists(book, settings):
    tables = book.raw_tables()
    day = settings.simulate.as_of
    cfg = dataclasses.replace(settings.strategy, collectors=2, collector_minutes=120)
    complaints = fit_complaint_model(contact_examples(tables, day, CN.contact_start, CN.contact_end, "Asia/Shanghai"))
    result = plan_day(
        tables,
        day,
        _effects(tables, day, settings),
        cfg,
        CN,
        book_rules(settings),
        np.random.default_rng(0),
        complaints,
    )
    cand = result.candidates
    assert set(cand["stage"]) == set(STAGES)
    assert (cand.loc[cand["stage"] == "pre_due", "dpd"] < 0).all()
    assert (cand.loc[cand["stage"] == "recovery", "dpd"] >= settings.features.default_dpd).all()
    for stage, acts in STAGE_ACTIONS.items():
        assert set(cand.loc[cand["stage"] == stage, "action"]) <= set(acts)
    assert violations(cand, cand["action"], cfg, CN) == []
    assert not cand.loc[cand["action"] != "none", "borrower_id"].duplicated().any()
    assert (cand["p_complaint"] > 0).all() and (cand["policy"] == "effect model").all()
    reasons = pd.DataFrame(
        {"reason_1": "currently overdue", "reason_2": "", "reason_3": ""},
        index=pd.Index(cand["loan_id"], name="loan_id"),
    )
    lists = worklist(cand.assign(p_promise_kept=np.nan), reasons, pd.Series(0.5, index=cand["loan_id"]))
    assert (lists["action"] != "none").all() and set(lists["collector_id"]) <= {AUTO, "C001", "C002"}
    for _, rows in lists.groupby("collector_id"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        broken = rows["broken_promises"] > 0
        assert broken.is_monotonic_decreasing  # broken promises first ...
        for _, part in rows.groupby(broken):
            assert part["expected_value"].is_monotonic_decreasing  # ... then by expected value
    assert (
        lists["rule_path"].str.contains("borrower only").all() and lists["time_window"].str.match(r"\d\d:\d\d-").all()
    )


def _audit_agrees(result, cfg) -> None:
    cand, audit = result.candidates.set_index("loan_id"), result.audit
    published = audit[audit["event"] == "published"].set_index("loan_id")
    acting = cand[cand["action"] != "none"]
    assert set(published.index) == set(acting.index)
    assert (published["action"] == acting.loc[published.index, "action"]).all()
    assert (published["rule_path"] == acting.loc[published.index, "rule_path"]).all()
    blocked = audit[audit["event"] == "blocked"]
    assert blocked["source"].str.len().gt(0).all()
    for a in ACTIONS:
        forbidden = set(cand.index[~cand[f"allowed_{a}"]])
        assert set(blocked.loc[blocked["action"] == a, "loan_id"]) == forbidden, a
        assert not (acting["action"] == a).loc[list(forbidden & set(acting.index))].any()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    collectors=st.integers(0, 3),
    minutes=st.sampled_from([0, 45, 240]),
    hardship=st.sampled_from([0.05, 0.3]),
    name=st.sampled_from(["cn_cba_2026", "us_reg_f"]),
)
def test_no_rule_is_broken_on_random_simulated_books_and_the_audit_log_agrees(
    seed, collectors, minutes, hardship, name
):
    from huishou.simulate import simulate_book

    from conftest import small_settings

    s = small_settings(1500, seed, hardship)
    book = simulate_book(s.simulate, progress=False)
    tables = book.raw_tables()
    day = s.simulate.as_of
    prof = Profile.from_settings(s.strategy.compliance | {"profile": name})
    cfg = dataclasses.replace(s.strategy, collectors=collectors, collector_minutes=minutes)
    result = plan_day(tables, day, _effects(tables, day, s, 30), cfg, prof, book_rules(s), np.random.default_rng(seed))
    cand = result.candidates
    assert violations(cand, cand["action"], cfg, prof) == []
    used = cand.groupby("collector_id")["action"].apply(lambda a: sum(cfg.minutes[x] for x in a))
    for who, total in used.items():
        assert who == AUTO or total <= cfg.capacities()[who]
    assert (cand.loc[cand["collector_id"] == AUTO, "action"].map(cfg.minutes) == 0).all()
    assert (cand["action"] == "agency").sum() <= LIMITS["agency"]
    _audit_agrees(result, cfg)
    assert set(result.audit["profile"]) == {name}


def test_cold_start_logs_exact_propensities_and_stays_lawful(book, settings):
    tables = book.raw_tables()
    day = settings.simulate.as_of
    result = plan_day(tables, day, {}, settings.strategy, CN, book_rules(settings), np.random.default_rng(5))
    cand = result.candidates
    assert (cand["policy"] == "cold start").all() and violations(cand, cand["action"], settings.strategy, CN) == []
    # the propensity of the action taken: the ladder's action keeps 1 - eps plus its share of eps
    eps = settings.strategy.cold_start_epsilon
    assert ((cand["propensity"] > 0) & (cand["propensity"] <= 1)).all()
    assert (cand["propensity"] >= 1 - eps).sum() > 0.5 * len(cand)
    allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
    again, p = cold_start(
        cand, allowed, settings.strategy, np.random.default_rng(5), settings.strategy.capacities(), dict(LIMITS), set()
    )
    assert again.action.tolist() == cand["action"].tolist() and np.allclose(p, cand["propensity"])


def test_promises_are_tracked_and_their_model_is_checked(book, settings):
    tables = book.raw_tables()
    cutoff = settings.simulate.as_of - pd.Timedelta(days=14)
    logged = pd.concat(
        [logged_decisions(tables, cutoff, 7, *SETTLE, STEPS, stage=s).assign(stage=s) for s in STAGES],
        ignore_index=True,
    )
    report = promise_model(logged, tables, book_rules(settings), settings.strategy)
    assert report["promises"] > 50 and 0.1 < report["kept_rate"] < 0.9
    assert report["model"] is not None and 0.55 < report["holdout_auc"] <= 1.0
    assert abs(report["holdout_mean_predicted"] - report["holdout_kept_rate"]) < 0.1


def test_round_selection_grows_the_folds_together_and_stops_when_more_rounds_stop_paying(book, settings):
    """A grown model equals one fitted at those rounds; with rounds_patience the scores are the full grid's
    up to the first grid value `patience` places after the best so far, and the best of them wins."""
    from sklearn.model_selection import GroupKFold

    from huishou.strategy.effects import grow, growing_effect_model
    from huishou.strategy.learning import _dr_value, select_rounds

    tables, day = book.raw_tables(), settings.simulate.as_of
    logged = logged_decisions(tables, day, 7, *SETTLE, STEPS, stage="early", lender_zone=settings.data.timezone)
    logged = logged.assign(stage="early")
    em = settings.strategy.effect_model | {"cv_folds": 2, "rounds_grid": [5, 10, 20, 40, 80, 160, 320]}
    actions = STAGE_ACTIONS["early"]
    growing = growing_effect_model(logged, em, actions)
    grow(growing, 30)
    pd.testing.assert_frame_equal(growing.predict(logged), fit_effect_model(logged, em, actions, 30).predict(logged))

    def scores(patience):
        cfg = dataclasses.replace(settings.strategy, effect_model=em | {"rounds_patience": patience})
        best, report = select_rounds(logged, cfg, CN, actions)
        return best, {int(k): v for k, v in report["cv_dr_by_rounds"].items()}

    full_best, full = scores(0)
    assert list(full) == em["rounds_grid"] and full_best == max(full, key=full.get)
    reference = dict.fromkeys(full, 0.0)  # each fold fitted at once to the largest rounds, predicted per value
    for train, test in GroupKFold(n_splits=2).split(logged, groups=logged["loan_id"]):
        fold = fit_effect_model(logged.iloc[train], em, actions, max(full))
        held = logged.iloc[test].reset_index(drop=True)
        allowed = evaluate(held, settings.strategy, CN, explain=False).allowed
        for r in reference:
            reference[r] += _dr_value(held, fold.predict(held, r), allowed, settings.strategy) * len(held)
    np.testing.assert_allclose([reference[r] / len(logged) for r in full], list(full.values()), rtol=1e-9)
    grid = em["rounds_grid"]
    for patience in (1, 2):
        best, tried = scores(patience)
        assert tried == {r: full[r] for r in tried}  # the same scores: the folds grow the same trees
        stop = next(
            (k for k in range(len(grid)) if k - grid.index(max(grid[: k + 1], key=full.get)) >= patience),
            len(grid) - 1,
        )
        assert list(tried) == grid[: stop + 1] and best == max(tried, key=tried.get)
    assert len(scores(1)[1]) < len(grid)  # on this book more rounds stop paying before the grid ends


def test_logged_decisions_read_from_parquet_in_place_and_capped_by_whole_loans(book, settings, tmp_path):
    """fit-effects reads the log in place (DuckDB over the parquet files): the same decisions as from frames;
    beyond effect_model.max_decisions a stage keeps every decision of the loans chosen by hash, up to the
    cap, the same from frames or files, and another seed chooses other loans."""
    from huishou.core.io import write_parquet

    frames = book.raw_tables()
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        write_parquet(frame, paths[name])
    day = settings.simulate.as_of
    kw = dict(stage="early", lender_zone=settings.data.timezone)
    whole = logged_decisions(frames, day, 7, *SETTLE, STEPS, **kw)
    pd.testing.assert_frame_equal(logged_decisions(paths, day, 7, *SETTLE, STEPS, **kw), whole, check_dtype=False)
    cap = len(whole) // 3
    capped = {
        src: logged_decisions(tables, day, 7, *SETTLE, STEPS, max_decisions=cap, seed=7, **kw)
        for src, tables in (("frames", frames), ("files", paths))
    }
    pd.testing.assert_frame_equal(capped["files"], capped["frames"], check_dtype=False)
    sample = capped["frames"]
    assert cap * 0.9 < len(sample) <= cap
    per_loan = whole.groupby("loan_id").size()
    assert (sample.groupby("loan_id").size() == per_loan[sample["loan_id"].unique()].sort_index()).all()
    full = whole.set_index(["loan_id", "t", "action"]).sort_index()
    mine = sample.set_index(["loan_id", "t", "action"]).sort_index()
    pd.testing.assert_frame_equal(
        mine.drop(columns="decision_id"), full.loc[mine.index].drop(columns="decision_id"), check_dtype=False
    )  # each kept decision's context and outcome as in the whole log
    other = logged_decisions(frames, day, 7, *SETTLE, STEPS, max_decisions=cap, seed=8, **kw)
    assert set(other["loan_id"]) != set(sample["loan_id"])


def _two_dates_quick_effects(settings):
    """Strategy settings for a quick learn: two worklist dates, a small rounds grid on two folds."""
    return dataclasses.replace(
        settings.strategy,
        eval_days_before_as_of=[7, 0],
        effect_model=settings.strategy.effect_model | {"rounds_grid": [40, 80], "cv_folds": 2},
    )


def test_plan_strategy_reports_per_stage(book, settings):
    cfg = _two_dates_quick_effects(settings)
    plans = plan_strategy(book.raw_tables(), settings.simulate.as_of, cfg, CN, book_rules(settings))
    assert len(plans.days) == 2 and set(plans.off_policy) == set(STAGES)
    for stage in STAGES:
        entry = plans.off_policy[stage]
        assert entry["effect_model"]["rounds"] in (40, 80) and set(entry["effect_model"]["cv_dr_by_rounds"]) == {
            "40",
            "80",
        }
    assert plans.complaints["complaints"] > 0 and plans.promises["promises"] > 0
    published = plans.candidates[plans.published]
    pending = published["pending_promise"] > 0
    assert published.loc[pending, "p_promise_kept"].between(0, 1).all()
    assert published.loc[~pending, "p_promise_kept"].isna().all()


def test_the_plans_read_the_book_in_place_from_parquet_as_from_frames(book, settings, tmp_path):
    """The strategy stage hands plan_strategy the validated parquet files (a book of 1e7 loans does not fit in
    memory as frames): the candidates of every day (DuckDB picks the stage of each loan), the complaint and
    promise models and the published candidates' features from the borrowers' cut are the same as from
    frames."""
    from huishou.core.io import write_parquet
    from huishou.features import build_features, whole_borrowers
    from huishou.strategy.learning import learn_from_log

    frames = book.raw_tables()
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        write_parquet(frame, paths[name])
    cfg = dataclasses.replace(
        settings.strategy,
        eval_days_before_as_of=[40, 0],
        effect_model=settings.strategy.effect_model | {"rounds_grid": [40], "cv_folds": 2},
    )
    as_of, rules = settings.simulate.as_of, book_rules(settings)
    learned = learn_from_log(frames, as_of, cfg, CN, rules)
    got = {
        src: plan_strategy(t, as_of, cfg, CN, rules, learned=learned)
        for src, t in (("frames", frames), ("files", paths))
    }
    for day in got["frames"].days:
        assert len(got["frames"].candidates[day]) > 100
        pd.testing.assert_frame_equal(got["files"].candidates[day], got["frames"].candidates[day], check_dtype=False)
        pd.testing.assert_frame_equal(got["files"].audit[day], got["frames"].audit[day], check_dtype=False)
    assert got["files"].promises == got["frames"].promises and got["frames"].promises["promises"] > 0
    assert got["files"].complaints == got["frames"].complaints
    published = got["frames"].candidates[got["frames"].published]
    loans = published["loan_id"]
    kw = settings.features.build_kwargs(as_of)
    features = {
        src: build_features(whole_borrowers(t, loans), [as_of], **kw).sort_values("loan_id", ignore_index=True)
        for src, t in (("frames", frames), ("files", paths))
    }
    assert features["frames"]["loan_id"].isin(loans).sum() > 50  # (defaulted loans in recovery are not scored)
    pd.testing.assert_frame_equal(features["files"], features["frames"], check_dtype=False, rtol=1e-9)


def test_plans_handed_out_date_by_date_are_the_plans_kept_in_memory(book, settings):
    """With `planned`, every earlier worklist date's plan goes to the caller as soon as it is made (the stage
    writes it and lets it go: at 1e7 loans five dates' candidates and audits do not fit beside the next plan);
    the plans are the same, and only the published date's are kept."""
    from huishou.strategy.learning import learn_from_log

    frames, rules = book.raw_tables(), book_rules(settings)
    cfg = dataclasses.replace(
        settings.strategy,
        eval_days_before_as_of=[14, 7, 0],
        effect_model=settings.strategy.effect_model | {"rounds_grid": [40], "cv_folds": 2},
    )
    as_of = settings.simulate.as_of
    learned = learn_from_log(frames, as_of, cfg, CN, rules)
    kept = plan_strategy(frames, as_of, cfg, CN, rules, learned=learned)
    seen = {}
    handed = plan_strategy(frames, as_of, cfg, CN, rules, learned=learned, planned=lambda d, r: seen.setdefault(d, r))
    assert list(seen) == kept.days[:-1] and list(handed.candidates) == list(handed.audit) == [kept.published]
    for day in kept.days[:-1]:
        pd.testing.assert_frame_equal(seen[day].candidates, kept.candidates[day])
        pd.testing.assert_frame_equal(seen[day].audit, kept.audit[day])
    pd.testing.assert_frame_equal(handed.candidates[kept.published], kept.candidates[kept.published])
    assert handed.stats == kept.stats and handed.promises == kept.promises


def test_effect_models_fitted_on_their_own_schedule_plan_as_if_fitted_now(book, settings, tmp_path):
    """huishou fit-effects saves the effect models (native text + effects.json) and the nightly plan loads
    them: the same plans as with the models in memory; a changed file is refused; the plan refuses models
    learnt after its cutoff or older than strategy.effect_max_age_days."""
    from huishou.core.errors import ModelIntegrityError
    from huishou.stages.strategy import _fitted_effects
    from huishou.strategy.effects import LearnedEffects
    from huishou.strategy.learning import learn_from_log, learning_cutoff

    cfg = _two_dates_quick_effects(settings)
    as_of, rules, tables = settings.simulate.as_of, book_rules(settings), book.raw_tables()
    cutoff = learning_cutoff(as_of, cfg)
    learned = learn_from_log(tables, as_of, cfg, CN, rules)
    folder = tmp_path / "models" / "effects"
    learned.save(folder)
    loaded = LearnedEffects.load(folder)
    assert (
        loaded.cutoff == cutoff
        and loaded.decisions == learned.decisions
        and loaded.off_policy == json_like(learned.off_policy)
    )
    in_memory = plan_strategy(tables, as_of, cfg, CN, rules, learned=learned)
    from_disk = plan_strategy(tables, as_of, cfg, CN, rules, learned=loaded)
    for day in in_memory.days:
        pd.testing.assert_frame_equal(from_disk.candidates[day], in_memory.candidates[day])
    # the stage's checks: age against the plan's own cutoff, integrity of the files
    s = dataclasses.replace(
        settings, strategy=cfg, data=dataclasses.replace(settings.data, models_dir=str(tmp_path / "models"))
    )
    got, provenance = _fitted_effects(s, as_of)
    assert got is not None and provenance["age_days"] == 0
    later = as_of + pd.Timedelta(days=cfg.effect_max_age_days + 1)
    with pytest.raises(ModelIntegrityError, match="effect_max_age_days"):
        _fitted_effects(s, later)
    with pytest.raises(ModelIntegrityError, match="after this plan's cutoff"):
        _fitted_effects(s, as_of - pd.Timedelta(days=1))
    text = (folder / "early.txt").read_text()
    (folder / "early.txt").write_text(text.replace("learning_rate", "learning_rate ", 1))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        LearnedEffects.load(folder)


def test_the_logged_decisions_fit_effects_read_are_reused_only_for_the_same_book_cutoff_and_rules(
    book, settings, tmp_path
):
    """fit-effects keeps the logged decisions it learnt from with what they were read under (the book's hashes,
    the cutoff, the rules); the plans and the evaluation of the same book take them from there: the frames
    `logged_by_stage` reads, to the last bit. Another book, cutoff or rule: None (read again); a changed file
    is refused."""
    from huishou.core.errors import ModelIntegrityError
    from huishou.strategy.effects import LearnedEffects
    from huishou.strategy.learning import learn_from_log, learning_cutoff, logged_at, logged_by_stage, logged_key

    cfg = _two_dates_quick_effects(settings)
    as_of, rules, tables = settings.simulate.as_of, book_rules(settings), book.raw_tables()
    cutoff = learning_cutoff(as_of, cfg)
    hashes = {"applications": "a1", "installments": "i1", "collection_actions": "c1"}
    learned = learn_from_log(tables, as_of, cfg, CN, rules, book_hashes=hashes)
    folder = tmp_path / "effects"
    learned.save(folder)
    fresh = logged_by_stage(dict(tables), cutoff, cfg, rules)  # what the plans would read themselves
    key = logged_key(dict(hashes), cutoff, cfg, rules)
    reused = LearnedEffects.load(folder).logged_by_stage(key)
    assert list(reused) == list(fresh) and all(len(f) for f in fresh.values())
    for stage in fresh:
        pd.testing.assert_frame_equal(reused[stage], fresh[stage])
    taken, reused = logged_at(tables, cutoff, cfg, rules, LearnedEffects.load(folder), hashes)
    assert reused and all(taken[stage].equals(fresh[stage]) for stage in fresh)
    read, reused = logged_at(tables, cutoff, cfg, rules, LearnedEffects.load(folder), hashes | {"installments": "i2"})
    assert not reused and all(read[stage].equals(fresh[stage]) for stage in fresh)
    other_cfg = dataclasses.replace(cfg, response_days=cfg.response_days + 1)
    for other in (
        logged_key(hashes | {"collection_actions": "c2"}, cutoff, cfg, rules),  # a contact more in the log
        logged_key(hashes, cutoff - pd.Timedelta(days=1), cfg, rules),
        logged_key(hashes, cutoff, other_cfg, rules),
        logged_key(hashes, cutoff, cfg, dataclasses.replace(rules, grace_days=rules.grace_days + 1)),
    ):
        assert LearnedEffects.load(folder).logged_by_stage(other) is None
    plain = learn_from_log(tables, as_of, cfg, CN, rules)  # no hashes given: nothing kept
    plain.save(tmp_path / "plain")
    assert LearnedEffects.load(tmp_path / "plain").logged_by_stage(key) is None
    assert not (tmp_path / "plain" / LearnedEffects.LOGGED).exists()
    (folder / LearnedEffects.LOGGED).write_bytes((folder / LearnedEffects.LOGGED).read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        LearnedEffects.load(folder).logged_by_stage(key)


def json_like(obj):
    """What a JSON round trip makes of a report (tuples become lists, numpy numbers plain ones)."""
    import json

    return json.loads(json.dumps(obj, default=float))


# ---------------------------------------------------------------- against the simulator's truth


@pytest.mark.e2e
def test_strategy_against_the_ladder_and_the_oracle_on_the_simulated_truth(tmp_path):
    """The default simulated book (params.yaml), five worklist dates, same rules and capacity for all three
    policies. Overall and in every stage the strategy beats the ladder and stays near the oracle; overall and in
    recovery it makes fewer contacts and draws fewer complaints than the ladder (README: where the issue's bars
    are and are not met)."""
    from huishou.book.truth import load_truth_table
    from huishou.simulate import simulate_book
    from huishou.strategy.truth_eval import true_paid, true_values, truth_comparison

    s = load_settings("params.yaml")
    book = simulate_book(s.simulate, progress=False)
    cfg = s.strategy
    plans = plan_strategy(book.raw_tables(), s.simulate.as_of, cfg, CN, book_rules(s))
    borrowers = book.truth["borrowers"]
    installments = book.truth["installments"]
    assert load_truth_table is not None
    totals: dict = {}
    for cand in plans.candidates.values():
        allowed = cand[[f"allowed_{a}" for a in ACTIONS]].set_axis(list(ACTIONS), axis=1)
        truth = true_values(cand, true_paid(cand, borrowers, installments, s.simulate.cure_shift), cfg)
        # the strategy: the champion's plan for every borrower (the published lists mix the experiment's arms)
        for stage, policies in truth_comparison(cand, allowed, cand["champion_action"], truth, cfg).items():
            for policy, entry in policies.items():
                for key, value in entry.items():
                    totals.setdefault(stage, {}).setdefault(policy, {}).setdefault(key, 0.0)
                    totals[stage][policy][key] += value
    for stage in (*STAGES, "all"):
        t = totals[stage]
        assert t["strategy"]["recovery"] > t["ladder"]["recovery"], stage
        assert t["strategy"]["added"] >= 1.2 * t["ladder"]["added"], stage
        assert t["strategy"]["recovery"] >= 0.93 * t["oracle"]["recovery"], stage
    for stage in ("recovery", "early"):
        assert totals[stage]["strategy"]["recovery"] >= 1.2 * totals[stage]["ladder"]["recovery"], stage
    assert totals["recovery"]["strategy"]["recovery"] >= 0.95 * totals["recovery"]["oracle"]["recovery"]
    assert totals["all"]["strategy"]["recovery"] >= 0.95 * totals["all"]["oracle"]["recovery"]
    for stage in ("all", "recovery", "pre_due"):
        assert totals[stage]["strategy"]["contacts"] < totals[stage]["ladder"]["contacts"], stage
        assert totals[stage]["strategy"]["complaints"] < totals[stage]["ladder"]["complaints"], stage


def test_strategy_builds_are_registered_and_promoted_with_a_comparison(tmp_path, monkeypatch, book, settings):
    """Each strategy build is a version of the strategy model (its settings and effect models as files), alias
    challenger; `huishou promote --strategy` shows the off-policy values side by side and moves champion."""
    import dataclasses

    import mlflow

    from huishou.core.tracking import register_strategy
    from huishou.stages import promote as promote_stage

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = dataclasses.replace(settings.tracking, default_uri=uri)
    booster = tmp_path / "effect_model_early.txt"
    booster.write_text("tree\n")
    first = register_strategy(cfg, "s1", {"early_dr_strategy": 10.0, "worklist_rows": 5}, {"early": booster}, {})
    second = register_strategy(cfg, "s2", {"early_dr_strategy": 12.5, "worklist_rows": 6}, {"early": booster}, {})
    assert (first["strategy_version"], second["strategy_version"]) == ("1", "2")
    client = mlflow.MlflowClient(uri)
    assert client.get_model_version_by_alias(cfg.strategy_model, "challenger").version in (2, "2")
    s = dataclasses.replace(settings, tracking=cfg)
    out = promote_stage.run(s, version="1", strategy=True)
    assert out["strategy_champion"] == "1"
    out = promote_stage.run(s, strategy=True, dry_run=True)
    cmp = out["comparison"]
    assert (
        cmp["candidate"]["metrics"]["early_dr_strategy"] == 12.5
        and cmp["champion"]["metrics"]["early_dr_strategy"] == 10.0
    )
    assert str(client.get_model_version_by_alias(cfg.strategy_model, "champion").version) == "1"  # dry run
    files = client.list_artifacts(client.get_model_version(cfg.strategy_model, "2").run_id, "strategy")
    assert [f.path for f in files] == ["strategy/effect_model_early.txt"]
