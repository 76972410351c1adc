"""Closed-loop evaluation: the daily world reads the simulator's effects faithfully, every policy meets the same
luck, and each day's actions change the next day's book (payments, holds, contact history)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from huishou.book.contracts import complete_columns
from huishou.compliance import Profile
from huishou.core.vocab import ACTIONS
from huishou.simulate.collection import action_cure_logits
from huishou.simulate.daily import EARLY_STEP_DAYS, Luck, WorldParams, daily_cure
from huishou.simulate.generation import sigmoid
from huishou.strategy.closed_loop import (
    BASELINES,
    Book,
    Loop,
    Planners,
    Truth,
    closed_loop,
    learn_channel_rule,
    run_policies,
    run_policy,
    sample_book,
    summarise,
    true_miss_logit,
)
from huishou.strategy.plan import BookRules

WORLD = WorldParams(fatigue=0.5, heterogeneity=1.0, recovery_step_days=20, complaint_channel={"sms": 0.5})


def _rows(n: int, stage: str = "early", step: int = 1, contacts: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "stage": stage,
            "step": step,
            "contacts_7d": contacts,
            "z": rng.normal(size=n),
            "hardship": rng.random(n) < 0.2,
            "age": rng.integers(20, 60, n),
            "device_os": np.where(rng.random(n) < 0.4, "ios", "android"),
            "amount": rng.uniform(1000, 9000, n),
        }
    )


def test_an_action_then_a_quiet_step_cures_with_the_simulators_chance_for_that_step():
    x = _rows(200, step=1)
    today = daily_cure(x, WORLD, shift=0.0)
    p_step = sigmoid(action_cure_logits(x, 1, 0.0))
    hazard = today[:, ACTIONS.index("none")]
    over_step = 1 - (1 - today) * (1 - hazard[:, None]) ** (EARLY_STEP_DAYS - 1)
    np.testing.assert_allclose(over_step, np.maximum(p_step, over_step[:, [ACTIONS.index("none")]]), atol=1e-12)
    np.testing.assert_allclose(1 - (1 - hazard) ** EARLY_STEP_DAYS, p_step[:, ACTIONS.index("none")], atol=1e-12)


def test_fatigue_shrinks_a_contacts_lift_by_its_factor_per_recent_contact():
    fresh, tired = daily_cure(_rows(50, contacts=0), WORLD, 0.0), daily_cure(_rows(50, contacts=2), WORLD, 0.0)
    none = ACTIONS.index("none")
    np.testing.assert_allclose(tired[:, none], fresh[:, none])
    np.testing.assert_allclose(tired - tired[:, [none]], (fresh - fresh[:, [none]]) * 0.25, atol=1e-12)


def test_without_heterogeneity_borrowers_of_equal_risk_get_equal_effects():
    x = _rows(100).assign(z=0.3, hardship=False)
    flat = WorldParams(0.5, 0.0, 20, {})
    p = daily_cure(x, flat, 0.0)
    assert np.allclose(p, p[0]) and not np.allclose(daily_cure(x, WORLD, 0.0), daily_cure(x, WORLD, 0.0)[0])


def test_luck_is_fixed_by_seed_day_and_loan_whatever_else_is_asked():
    luck = Luck(1, np.arange(100, 200))
    day = pd.Timestamp("2026-01-05")
    whole = luck.day(day, np.arange(100, 200))
    some = luck.day(day, [150, 120])
    assert some["cure"][0] == whole["cure"][50] and some["cure"][1] == whole["cure"][20]
    assert not np.allclose(Luck(2, np.arange(100, 200)).day(day, [150])["cure"], some["cure"][:1])
    assert not np.allclose(luck.day(day + pd.Timedelta(days=1), [150])["cure"], some["cure"][:1])
    with pytest.raises(ValueError, match="outside the loop"):
        luck.day(day, [5])


def test_the_channel_rule_is_learnt_from_logged_outcomes_weighted_by_propensity():
    rng = np.random.default_rng(3)
    n = 6000
    young = rng.random(n) < 0.5
    action = np.where(rng.random(n) < np.where(young, 0.8, 0.2), "sms", "app_push")  # confounded logging
    propensity = np.where(action == "sms", np.where(young, 0.8, 0.2), np.where(young, 0.2, 0.8))
    p = np.where(action == "app_push", np.where(young, 0.4, 0.1), np.where(young, 0.2, 0.3))
    logged = pd.DataFrame(
        {
            "stage": "early",
            "age": np.where(young, 25, 50),
            "ios": 0,
            "action": action,
            "propensity": propensity,
            "paid": rng.random(n) < p,
        }
    )
    rule = learn_channel_rule(logged)
    assert rule[("early", "<30", 0)] == "app_push" and rule[("early", "40+", 0)] == "sms"


def test_summary_names_the_strongest_baseline_and_measures_against_it():
    def run(rec):
        return {
            s: {"recovery": rec.get(s, 0.0), "contacts": 1.0, "complaints": 0.0}
            for s in ("pre_due", "early", "recovery")
        }

    per_seed = {
        "none": [run({"early": 10}), run({"early": 12})],
        "ladder": [run({"early": 20, "recovery": 5}), run({"early": 22, "recovery": 5})],
        "el_worklist": [run({"early": 30, "recovery": 8}), run({"early": 30, "recovery": 8})],
        "strategy": [run({"early": 33, "recovery": 8}), run({"early": 33, "recovery": 8})],
        "oracle": [run({"early": 40, "recovery": 10}), run({"early": 40, "recovery": 10})],
    }
    out = summarise(per_seed)
    early = out["by_stage"]["early"]
    assert out["strongest_baseline"]["early"] == "el_worklist"
    assert early["summary"]["uplift_vs_strongest"] == pytest.approx(0.1)
    assert early["summary"]["share_of_oracle"] == pytest.approx(33 / 40)
    assert early["strategy"]["added"] == pytest.approx(33 - 11)
    collections = out["by_stage"]["collections"]
    assert collections["strategy"]["recovery"] == pytest.approx(41)
    assert collections["summary"]["uplift_vs_strongest"] == pytest.approx(41 / 38 - 1)


@pytest.fixture(scope="module")
def loop(book, settings):
    cfg = settings.strategy
    tables, share = sample_book(book.raw_tables(), 800, 0)
    truth = Truth(book.truth["borrowers"], true_miss_logit(book.truth["installments"]), settings.simulate.cure_shift)
    rules = BookRules.from_settings(settings.features, settings.data.timezone)
    profile = Profile.from_settings(cfg.compliance)
    risk = pd.Series(0.5, index=tables["applications"]["loan_id"])
    planners = Planners({}, None, risk, {})
    start = settings.simulate.as_of
    return tables, share, truth, rules, profile, planners, start, cfg


def test_each_days_actions_change_the_next_days_book_and_the_rules_follow(loop):
    tables, share, truth, rules, profile, planners, start, cfg = loop
    kept: list = []
    out = run_policy(Loop(tables, start, 8, cfg, profile, rules, planners, truth, share), "ladder", 1, WORLD, keep=kept)
    final = kept[0]
    new = final["collection_actions"][final["collection_actions"]["action_at"] >= start]
    assert len(new) == sum(out[s]["contacts"] for s in out) > 0
    paid = final["installments"]["paid_date"] >= start
    assert paid.sum() > 0 and (tables["installments"]["paid_date"] >= start).sum() == 0
    assert out["early"]["recovery"] > 0 and out["pre_due"]["recovery"] > 0
    # no contact ever reaches a borrower the day after a complaint, cease or opt-out of that channel took effect
    prefs = final["contact_preferences"]
    fresh = prefs[prefs["valid_from"] > start]
    loans = tables["applications"].set_index("loan_id")["borrower_id"]
    new = new.assign(borrower_id=new["loan_id"].map(loans))
    for row in fresh.itertuples():
        after = new[(new["borrower_id"] == row.borrower_id) & (new["action_at"] >= row.valid_from)]
        if row.kind == "opt_out":
            after = after[after["channel"] == row.channel]
        if row.kind == "complaint_hold":
            after = after[after["action_at"] < row.valid_until]
        assert after.empty, (row.kind, row.borrower_id)


def test_policies_meet_the_same_luck_and_doing_nothing_is_deterministic(loop):
    tables, share, truth, rules, profile, planners, start, cfg = loop
    runs = Loop(tables, start, 5, cfg, profile, rules, planners, truth, share)
    a = run_policy(runs, "none", 1, WORLD)
    b = run_policy(runs, "none", 1, WORLD)
    c = run_policy(runs, "none", 2, WORLD)
    assert a == b and a != c
    assert all(a[s]["contacts"] == 0 for s in a)


def test_runs_stacked_in_one_book_give_each_runs_own_figures_and_book(loop):
    """run_policies stacks the runs' copies of the book (shifted ids) so one query finds every run's candidates,
    whatever world each run lives in: each run's figures and final tables are those of the run alone, to the
    last bit."""
    tables, share, truth, rules, profile, planners, start, cfg = loop
    worlds = {"a": WORLD, "b": WorldParams(fatigue=0.2, heterogeneity=0.4, recovery_step_days=20, complaint_channel={})}
    jobs = [(1, "ladder", "a"), (2, "el_worklist", "a"), (1, "oracle", "b"), (1, "none", "a"), (1, "ladder", "b")]
    kept: list = []
    runs = Loop(tables, start, 6, cfg, profile, rules, planners, truth, share)
    stacked = run_policies(runs, jobs, worlds, keep=kept)
    assert len(stacked) == len(kept) == len(jobs)
    for (seed, policy, world), figures, final in zip(jobs, stacked, kept, strict=True):
        alone: list = []
        assert figures == run_policy(runs, policy, seed, worlds[world], keep=alone)
        for name, table in alone[0].items():
            pd.testing.assert_frame_equal(final[name], table, check_index_type=False)
    assert sum(f[s]["contacts"] for f in stacked[:3] for s in f) > 0
    assert stacked[3] != stacked[0] and stacked[4] != stacked[0]


def test_the_duckdb_copy_the_daily_query_reads_follows_the_books_frames(loop, monkeypatch):
    """Book keeps its frames and the DuckDB copy the candidates are queried from alike: after every day's flush
    each changed table holds the same rows in the same order (the day's contacts and wishes appended, its
    payments written to their installments), so a day never decides on yesterday's book."""
    tables, share, truth, rules, profile, planners, start, cfg = loop
    before = {
        "installments": int(tables["installments"]["paid_date"].notna().sum()),
        "collection_actions": len(tables["collection_actions"]),
        "contact_preferences": len(tables["contact_preferences"]),
    }
    after = {name: [] for name in before}
    flush = Book.flush
    wish = pd.DataFrame(  # the sample's complaints are rare: one opt-out on the first day, as the loop writes it
        {
            "borrower_id": tables["applications"]["borrower_id"].iloc[:1].to_numpy(),
            "kind": ["opt_out"],
            "channel": ["sms"],
            "valid_from": [start + pd.Timedelta(days=1)],
            "valid_until": [pd.NaT],
        }
    )

    def flush_and_compare(self):
        if not after["installments"]:
            self.prefs.append(wish)
        flush(self)
        for name, sizes in after.items():
            copy = self.con.execute(f'SELECT * FROM "{name}" ORDER BY rowid').df()
            frame = complete_columns(self.tables[name], name)
            pd.testing.assert_frame_equal(copy[list(frame.columns)], frame, check_dtype=False)
            sizes.append(int(copy["paid_date"].notna().sum()) if name == "installments" else len(copy))

    monkeypatch.setattr(Book, "flush", flush_and_compare)
    runs = Loop(tables, start, 5, cfg, profile, rules, planners, truth, share)
    run_policy(runs, "el_worklist", 1, WORLD)
    assert all(len(sizes) == 5 and sizes[-1] > before[name] for name, sizes in after.items()), (before, after)


def test_the_loop_reports_every_policy_per_stage_with_the_spread_over_seeds(loop):
    tables, share, truth, rules, profile, planners, start, cfg = loop
    policies = ("none", *BASELINES, "oracle")
    runs = Loop(tables, start, 4, cfg, profile, rules, planners, truth, share)
    out = closed_loop(runs, [1, 2], WORLD, policies=policies)
    assert out["horizon_days"] == 4 and out["seeds"] == [1, 2]
    for stage in ("pre_due", "early", "recovery", "collections", "all"):
        entry = out["by_stage"][stage]
        assert set(policies) <= set(entry)
        for policy in policies:
            assert len(entry[policy]["per_seed"]) == 2
            assert entry[policy]["recovery_sd"] >= 0
        assert entry["none"]["added"] == 0
        assert out["strongest_baseline"][stage] in BASELINES
    assert out["by_stage"]["collections"]["oracle"]["recovery"] > out["by_stage"]["collections"]["none"]["recovery"]


def test_the_sample_read_from_parquet_files_is_the_frames_cut_and_the_truth_is_read_for_it_only(book, tmp_path):
    """evaluate-strategy reads the book's files in place: of each file only the sample's rows (and of the truth
    only the sample's borrowers and loans), the same frames, dtypes and order as cutting the whole frames."""
    from huishou.book.truth import load_borrowers, load_truth_table, write_truth
    from huishou.core.io import write_parquet

    raw = book.raw_tables()
    paths = {}
    for name, frame in raw.items():
        paths[name] = tmp_path / "raw" / f"{name}.parquet"
        write_parquet(frame, paths[name])
    # what evaluate-strategy cut before: every file read whole, then the frames cut
    from_frames, share = sample_book({name: pd.read_parquet(path) for name, path in paths.items()}, 300, 4)
    from_files, share_files = sample_book(paths, 300, 4)
    assert share_files == share and 0 < share < 1
    assert set(from_files) == set(from_frames)
    for name, frame in from_frames.items():
        pd.testing.assert_frame_equal(from_files[name], frame, check_exact=True, obj=name)
    people = from_frames["applications"]["borrower_id"]
    assert people.nunique() == 300 and len(from_frames["installments"]) < len(raw["installments"])

    write_truth({k: book.truth[k] for k in ("borrowers", "installments")}, tmp_path / "truth")
    loans = from_frames["applications"]["loan_id"]
    whole = pd.read_parquet(tmp_path / "truth" / "installments.parquet")
    cut = load_truth_table(tmp_path / "truth", "installments", "loan_id", loans)
    pd.testing.assert_frame_equal(cut, whole[whole["loan_id"].isin(loans)].reset_index(drop=True), check_exact=True)
    assert 0 < len(cut) < len(whole)
    borrowers = load_borrowers(tmp_path / "truth", people.unique())
    assert sorted(borrowers["borrower_id"]) == sorted(people.unique())
    assert len(load_borrowers(tmp_path / "truth")) == len(book.truth["borrowers"])
