"""The team in the assignment: each collector's minutes, skills and languages honoured by every planner, and
the decomposition of a large day (borrowers who cannot take a scarce slot are cut) keeping the optimum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huishou.core.errors import ConfigError
from huishou.core.settings import load_settings
from huishou.core.vocab import ACTIONS
from huishou.simulate import simulate_book
from huishou.strategy.assign import automated, decompose, exact, greedy, lp_bound, plan, plan_parts, price_bound
from huishou.strategy.plan import BookRules, candidates
from huishou.strategy.policy_eval import ladder_plan
from huishou.strategy.team import Rooms, Team

from builders import random_ctx
from conftest import small_settings

PARAMS = load_settings("params.yaml")
CFG = PARAMS.strategy
HUMAN = [a for a in ACTIONS if CFG.minutes[a] > 0]
LANGS = ["zh", "yue", "ug"]


def _value(values: pd.DataFrame, action: pd.Series) -> float:
    return float(
        values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action.reindex(values.index))].sum()
    )


def _check_team(result, values, minutes, team: Team, languages, groups=None, limits=None):
    """Every human action has a collector who may take it (skill, language), within their minutes; one
    contact per borrower; limits held; the reported value is the plan's."""
    human = result.action.map(lambda a: minutes.get(a, 0) > 0)
    assert result.collector[human].notna().all() and result.collector[~human].isna().all()
    for row in result.action.index[human]:
        assert team.can(result.collector[row], result.action[row], languages[row]), row
    used = result.action[human].map(minutes).groupby(result.collector[human]).sum()
    for who, total in used.items():
        assert total <= team.minutes[who]
    if groups is not None:
        assert not groups[result.action != "none"].duplicated().any()
    for act, cap in (limits or {}).items():
        assert (result.action == act).sum() <= cap
    assert result.value == pytest.approx(_value(values, result.action))


def test_a_call_goes_to_a_collector_who_speaks_the_borrowers_language():
    """Two collectors of 20 minutes, one per language; three Mandarin borrowers worth 10 a call and one
    Cantonese worth 5: two Mandarin calls and the Cantonese one (25); the third Mandarin call would need the
    Cantonese collector's spare minutes, which one pool of 40 minutes would use (all four calls, 35)."""
    values = pd.DataFrame({"none": [0.0] * 4, "sms": [0.0] * 4, "call": [10.0, 10.0, 10.0, 5.0]})
    minutes = {"none": 0, "sms": 0, "call": 10}
    languages = pd.Series(["zh", "zh", "zh", "yue"])
    team = Team({"C1": 20, "C2": 20}, languages={"C1": frozenset({"zh"}), "C2": frozenset({"yue"})})
    for result in (
        exact(values, minutes, team, 5, languages=languages),
        greedy(values, minutes, team, languages=languages),
    ):
        assert result.value == pytest.approx(25.0)
        assert result.collector.tolist()[3] == "C2" and (result.action == "call").sum() == 3
        _check_team(result, values, minutes, team, languages)
    assert exact(values, minutes, Team({"C1": 20, "C2": 20}), 5, languages=languages).value == pytest.approx(35.0)


def test_a_visit_goes_to_a_collector_with_the_skill():
    values = pd.DataFrame({"none": [0.0, 0.0], "call": [5.0, 4.0], "visit": [100.0, 90.0]})
    minutes = {"none": 0, "call": 10, "visit": 60}
    team = Team({"C1": 60, "C2": 60}, skills={"C2": frozenset({"call"})})  # C2 works the phone only
    for result in (exact(values, minutes, team, 5), greedy(values, minutes, team)):
        assert result.action.tolist() == ["visit", "call"]
        assert result.collector.tolist() == ["C1", "C2"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), collectors=st.integers(1, 4))
def test_every_planner_honours_skills_languages_minutes_and_one_contact(seed, n, collectors):
    rng = np.random.default_rng(seed)
    ids = [f"C{i}" for i in range(collectors)]
    team = Team(
        {c: int(rng.choice([0, 30, 120, 240])) for c in ids},
        {c: frozenset(rng.choice(HUMAN, rng.integers(1, len(HUMAN) + 1), replace=False)) for c in ids[1:]},
        {c: frozenset(rng.choice(LANGS, rng.integers(1, 3), replace=False)) for c in ids if rng.random() < 0.7},
    )
    ctx = random_ctx(rng, n)
    ctx["borrower_id"] = rng.integers(1, max(n // 2, 1) + 1, n)
    ctx["language"] = pd.Series(rng.choice(LANGS, n), index=ctx.index).where(rng.random(n) < 0.8)  # NaN: default
    languages, groups = ctx["language"], ctx["borrower_id"]
    values = pd.DataFrame(rng.uniform(0, 50, (n, len(ACTIONS))), columns=list(ACTIONS), index=ctx.index)
    values = values.where(rng.random((n, len(ACTIONS))) < 0.7, -np.inf).assign(none=0.0)
    limits = {"agency": int(rng.integers(0, 3))}
    for result in (
        plan(values, CFG.minutes, team, 5, groups, limits, languages=languages),
        plan(values, CFG.minutes, team, 5, groups, limits, exact_max_rows=max(n // 3, 1), languages=languages),
        greedy(values, CFG.minutes, team, groups, limits, languages),
    ):
        _check_team(result, values, CFG.minutes, team, languages, groups, limits)
    allowed = pd.DataFrame(True, index=ctx.index, columns=list(ACTIONS))
    ladder = ladder_plan(ctx, allowed, CFG, team, limits)
    human = ladder.action.map(CFG.minutes) > 0
    for row in ladder.action.index[human]:
        assert team.can(ladder.collector[row], ladder.action[row], languages[row])


def roomiest(remaining: dict[str, float], need: float, among: tuple[str, ...] | None = None) -> str | None:
    """The plain scan Rooms must agree with: the most minutes left that fit `need`, ties to the lowest id."""
    who = remaining if among is None else among
    fits = [(-remaining[c], c) for c in who if remaining.get(c, 0) >= need and need > 0]
    return min(fits)[1] if fits else None


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), collectors=st.integers(1, 12))
def test_rooms_answer_as_roomiest(seed, collectors):
    """The heap of minutes left picks the same collector as the plain scan, through a day of taking work."""
    rng = np.random.default_rng(seed)
    minutes = {f"C{i:02d}": int(rng.choice([0, 30, 60, 240])) for i in range(collectors)}
    rooms, remaining = Rooms(minutes), dict(minutes)
    for _ in range(60):
        need = int(rng.choice([0, 8, 20, 25, 90]))
        among = tuple(sorted(rng.choice(list(minutes), rng.integers(1, collectors + 1), replace=False)))
        among = among if rng.random() < 0.6 else None
        who = rooms.roomiest(need, among)
        assert who == roomiest(remaining, need, among)
        if who is not None:
            rooms.use(who, need)
            remaining[who] -= need


def _instance(rng, n, borrowers):
    values = pd.DataFrame(
        {
            "none": np.zeros(n),
            "sms": rng.uniform(0, 6, n),
            "app_push": rng.uniform(0, 4, n),
            "call": rng.uniform(0, 40, n),
            "visit": np.where(rng.random(n) < 0.2, rng.uniform(0, 300, n), -np.inf),
            "repayment_plan": np.where(rng.random(n) < 0.3, rng.uniform(0, 60, n), -np.inf),
            "agency": np.where(rng.random(n) < 0.3, rng.uniform(0, 80, n), -np.inf),
        }
    )
    groups = pd.Series(rng.integers(0, borrowers, n))
    languages = groups.map(lambda g: LANGS[g % 3] if g % 4 else None)  # a borrower's loans share a language
    return values, groups, languages


MINUTES = {"none": 0, "sms": 0, "app_push": 0, "call": 8, "visit": 90, "repayment_plan": 20, "agency": 0}
TEAM = Team(
    {"C1": 40, "C2": 100, "C3": 24},
    skills={"C2": frozenset({"visit", "call"}), "C3": frozenset({"call", "repayment_plan"})},
    languages={"C1": frozenset({"zh"}), "C3": frozenset({"yue", "ug"})},
)


def test_the_decomposition_keeps_the_optimum():
    """The programme's optimum for the whole day = its optimum for the borrowers `decompose` keeps plus the rest
    at their automated best; and the same from borrower buckets cut one by one (`plan_parts`). (Optima of the
    programme, whose minutes are splittable between collectors: the packing onto whole collectors after it may
    drop a different action or two from different optimal solutions.)"""
    rng = np.random.default_rng(8)
    cut = 0.0
    for _ in range(6):
        values, groups, languages = _instance(rng, 300, 200)
        limits = {"agency": 2}
        whole = exact(values, MINUTES, TEAM, 30, groups, limits, languages)
        kept = decompose(values, MINUTES, TEAM, groups, limits, languages)
        assert pd.Series(kept).groupby(groups.to_numpy()).nunique().max() == 1  # whole borrowers
        cut += 1 - kept.mean()
        part = exact(values[kept], MINUTES, TEAM, 30, groups[kept], limits, languages[kept])
        rest = automated(values[~kept], MINUTES, groups[~kept], limits)
        optimum = whole.stats["mip_bound"]
        assert whole.stats["mip_gap"] < 1e-9 and part.stats["mip_gap"] < 1e-9
        assert part.stats["mip_bound"] + _value(values[~kept], rest) == pytest.approx(optimum, rel=1e-9)
        bucket = groups.to_numpy() % 3  # borrower buckets
        parts = [(values[bucket == b], groups[bucket == b], languages[bucket == b]) for b in range(3)]
        joined = plan_parts(parts, MINUTES, TEAM, 30, limits, exact_max_rows=10_000)
        assert joined.stats["mip_bound"] == pytest.approx(optimum, rel=1e-9) and joined.value <= optimum + 1e-6
        _check_team(joined, values, MINUTES, TEAM, languages, groups, limits)
        assert joined.stats["decomposed"]["rows"] == 300
        assert joined.stats["decomposed"]["kept_rows"] >= kept.sum()  # each bucket's best: a superset
        decomposed = plan(values, MINUTES, TEAM, 30, groups, limits, exact_max_rows=299, languages=languages)
        assert decomposed.stats["mip_bound"] == pytest.approx(optimum, rel=1e-9)
    assert cut > 0  # some borrowers never reach the solver (most, on a large day: the test below)
    empty = values.iloc[:0]
    nothing = plan_parts([(empty, groups.iloc[:0], languages.iloc[:0])], MINUTES, TEAM, 30, {"agency": 2}, 10)
    assert len(nothing.action) == 0 and nothing.value == 0.0
    with pytest.raises(ValueError, match="no parts"):
        plan_parts([], MINUTES, TEAM, 30)


def test_the_cut_keeps_as_many_borrowers_per_class_as_the_team_has_slots():
    """One collector with minutes for two actions of 10; A's call or plan is worth most, B's plan next: the
    best day is A's call and B's plan (198). Keeping one borrower a class (one fewer than the slots) would keep
    only A, the best of both classes, and lose B's plan."""
    values = pd.DataFrame(
        {"none": [0.0, 0.0, 0.0], "call": [100.0, 90.0, 80.0], "repayment_plan": [99.0, 98.0, -np.inf]}
    )
    minutes = {"none": 0, "call": 10, "repayment_plan": 10}
    team = Team({"C1": 20})
    assert team.slots(minutes) == 2
    kept = decompose(values, minutes, team)
    assert kept.tolist() == [True, True, False]
    assert plan(values, minutes, team, 5, exact_max_rows=2).value == pytest.approx(198.0)


def test_prices_on_capacity_bound_every_plan_and_come_near_the_lp_bound():
    """The bound from prices on each pool's minutes and the agency places is never below the programme's
    optimum (any prices give a bound) and Powell's prices bring it within 2 % of the LP relaxation's."""
    rng = np.random.default_rng(4)
    for grouped in (True, False):
        values, groups, languages = _instance(rng, 400, 260)
        groups = groups if grouped else None
        limits = {"agency": 3}
        best = exact(values, MINUTES, TEAM, 30, groups, limits, languages)
        lp = lp_bound(values, MINUTES, TEAM, groups, limits, languages)
        priced = price_bound(values, MINUTES, TEAM, groups, limits, languages)
        assert best.stats["mip_bound"] - 1e-6 <= lp + 1e-6 <= priced["bound"] + 1e-6 <= lp * 1.02
        assert all(p >= 0 for p in priced["prices"].values()) and len(priced["prices"]) == 4  # 3 pools, 1 place


def test_the_decomposed_day_plans_only_its_kept_rows_with_the_solver():
    rng = np.random.default_rng(3)
    values, groups, languages = _instance(rng, 3000, 2000)
    result = plan(values, MINUTES, TEAM, 30, groups, {"agency": 2}, exact_max_rows=1000, languages=languages)
    assert result.stats["method"] in ("exact", "greedy") and "exact_value" in result.stats
    assert result.stats["decomposed"]["kept_rows"] < 1000 < result.stats["decomposed"]["rows"]
    assert result.stats["mip_bound"] >= result.value - 1e-6
    _check_team(result, values, MINUTES, TEAM, languages, groups, {"agency": 2})


def test_the_roster_is_read_and_checked():
    team = Team.from_settings(
        dataclasses.replace(CFG, collector_skills={"C007": ["call", "visit"]}, collector_languages={"C008": ["yue"]})
    )
    assert team.eligible("visit", "zh")[-2:] == ("C006", "C007") and "C008" not in team.eligible("call", None)
    assert team.eligible("call", "yue")[-1] == "C008"
    assert not Team.from_settings(CFG).restricted  # the default team is one pool
    with pytest.raises(ConfigError, match="collector_skills names.*C099"):
        load_settings("params.yaml", {"strategy": {"collector_skills": {"C099": ["call"]}}})
    with pytest.raises(ConfigError, match="collector_skills.C001 must list human actions"):
        load_settings("params.yaml", {"strategy": {"collector_skills": {"C001": ["sms"]}}})
    with pytest.raises(ConfigError, match="collector_languages.C001"):
        load_settings("params.yaml", {"strategy": {"collector_languages": {"C001": "zh"}}})


def test_the_simulated_language_moves_no_other_draw_and_reaches_the_plan():
    base = small_settings(400, seed=3)
    a = simulate_book(base.simulate, progress=False)
    b = simulate_book(dataclasses.replace(base.simulate, languages={"zh": 0.5, "ug": 0.5}), progress=False)
    assert set(a.applications["language"]) == {"zh", "yue"} and set(b.applications["language"]) == {"zh", "ug"}
    for name, table in a.raw_tables().items():
        pd.testing.assert_frame_equal(
            table.drop(columns="language", errors="ignore"),
            b.raw_tables()[name].drop(columns="language", errors="ignore"),
        )
    rules = BookRules.from_settings(base.features, base.data.timezone)
    ctx = candidates(a.raw_tables(), pd.Timestamp(base.simulate.as_of) - pd.Timedelta(days=7), CFG, rules)
    assert len(ctx) > 0  # each candidate carries its borrower's language (the planners route calls by it)
    assert ctx["language"].tolist() == ctx["loan_id"].map(a.applications.set_index("loan_id")["language"]).tolist()
