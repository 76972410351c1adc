"""The simulated book: seeded, causal, calibrated to the design targets, with an exact oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from huishou.core.vocab import ACTIONS
from huishou.simulate import legacy_policy_probs, simulate_book

from conftest import features_for, small_settings


def _loan_default_rate(book, as_of) -> float:
    inst = book.installments
    default_day = inst["due_date"] + pd.Timedelta(days=30)
    settled = (inst["paid_date"] < default_day) & (inst["amount_paid"] >= inst["amount_due"] - 0.01)
    defaulted = ~settled & (default_day <= as_of)
    return float(defaulted.groupby(inst["loan_id"]).any().mean())


def test_same_seed_same_book():
    s = small_settings(600, seed=5)
    a, b = simulate_book(s.simulate, progress=False), simulate_book(s.simulate, progress=False)
    for name in a.raw_tables():
        pd.testing.assert_frame_equal(a.raw_tables()[name], b.raw_tables()[name])


def test_different_seed_different_book():
    a = simulate_book(small_settings(600, seed=5).simulate, progress=False)
    b = simulate_book(small_settings(600, seed=6).simulate, progress=False)
    assert not a.installments["paid_date"].equals(b.installments["paid_date"])


def test_share_of_loans_reaching_30dpd_is_in_design_range(medium_book):
    settings, book = medium_book
    assert 0.08 <= _loan_default_rate(book, settings.simulate.as_of) <= 0.20


def test_oracle_is_calibrated_and_auc_in_design_range(medium_book):
    settings, book = medium_book
    frame = features_for(book, settings).merge(book.truth["oracle"], on=["loan_id", "snapshot_date"], how="left")
    frame = frame[frame["target"].notna()]
    assert frame["p_true"].notna().all()
    y, p = frame["target"].astype(int), frame["p_true"]
    assert abs(p.mean() - y.mean()) < 0.1 * y.mean()  # exact probabilities: mean matches the observed rate
    deciles = pd.qcut(p.rank(method="first"), 5, labels=False)
    observed, predicted = y.groupby(deciles).mean(), p.groupby(deciles).mean()
    assert np.all(np.abs(observed - predicted) < 0.02 + 0.15 * predicted)
    assert 0.78 <= roc_auc_score(y, p) <= 0.88


def test_callback_inconsistency_and_late_history_are_informative(medium_book):
    settings, book = medium_book
    frame = features_for(book, settings)
    frame = frame[frame["target"].notna()]
    y = frame["target"].astype(int)
    for col in ("cb_n_inconsistencies", "rp_n_late_1", "app_rate"):
        x = frame[col].fillna(frame[col].median())
        assert 0.52 < roc_auc_score(y, x) < 0.80, col  # informative but noisy


def test_legacy_policy_logs_positive_propensities(book):
    acts = book.collection_actions
    assert acts["propensity"].between(0, 1, inclusive="right").all()
    assert set(acts["channel"]) <= set(ACTIONS)
    visits = acts[acts["channel"] == "visit"]
    amounts = book.applications.set_index("loan_id")["amount"]
    assert (visits["loan_id"].map(amounts) >= 5000).all()  # legacy visits only for large loans


def test_policy_probabilities_sum_to_one_and_respect_visit_rule():
    x = pd.DataFrame({"amount": [1000.0, 9000.0], "hardship": [False, True]})
    for step in range(4):
        probs = legacy_policy_probs(x, step, epsilon=0.2)
        assert np.allclose(probs.sum(axis=1), 1.0)
        assert probs[0, ACTIONS.index("visit")] == 0.0
    assert legacy_policy_probs(x, 0, 0.2)[1, ACTIONS.index("visit")] == 0.0  # no visit at the first step


def test_legacy_contacts_keep_office_hours_except_some_late_calls(book):
    acts = book.collection_actions
    hours = acts["action_at"].dt.hour + acts["action_at"].dt.minute / 60
    office = hours.between(9, 20)
    assert office[acts["channel"] != "call"].all()
    late = acts.loc[~office]
    assert len(late) > 0 and (late["channel"] == "call").all() and late["action_at"].dt.hour.between(21, 22).all()


def test_unsocial_or_unwanted_contacts_draw_more_complaints(medium_book):
    _, book = medium_book
    c = book.truth["complaints"]
    assert c["unsocial"].any() and c["against_wishes"].any()
    calm = c.loc[~c["unsocial"] & ~c["against_wishes"], "p_complaint"].mean()
    assert c.loc[c["unsocial"], "p_complaint"].mean() > 3 * calm
    assert c.loc[c["against_wishes"], "p_complaint"].mean() > 3 * calm
    holds = book.contact_preferences[book.contact_preferences["kind"] == "complaint_hold"]
    assert len(holds) == c["complained"].sum() or len(holds) <= c["complained"].sum()  # one hold per complaint day
    assert (book.applications["timezone"] == "Asia/Urumqi").mean() > 0.05


def test_reminders_before_the_due_date_are_logged_with_propensities_and_lower_misses(medium_book):
    _, book = medium_book
    pre = book.collection_actions[book.collection_actions["policy_stage"] == "pre_due"]
    assert set(pre["channel"]) == {"none", "sms", "app_push"} and pre["propensity"].between(0, 1).all()
    due = book.installments[["loan_id", "due_date"]].assign(day=lambda d: d["due_date"] - pd.Timedelta(days=3))
    matched = pre.assign(day=pre["action_at"].dt.normalize()).merge(due, on=["loan_id", "day"])
    assert len(matched) == len(pre)  # each reminder decision is exactly three days before a due date
    truth = book.truth["pre_due_effects"]
    assert (truth["p_miss_sms"] < truth["p_miss_none"]).all() and (
        truth["p_miss_app_push"] < truth["p_miss_none"]
    ).all()


def test_a_book_larger_than_a_chunk_is_simulated_and_written_chunk_by_chunk(tmp_path, monkeypatch):
    """simulate.chunk_borrowers bounds memory: independent chunks with unique ids, appended to one file per
    table (a row group per chunk), a book that validates; a book that fits is the unchanged single book."""
    import pyarrow.parquet as pq

    from huishou.cli import main
    from huishou.core.settings import load_settings
    from huishou.simulate import book_chunks

    root = Path(__file__).resolve().parents[1]
    params = tmp_path / "params.yaml"
    params.write_text(
        f"extends: {root / 'params.yaml'}\nsimulate: {{n_borrowers: 900, chunk_borrowers: 400, write_oracle: false}}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(params), "simulate"]) == 0
    assert main(["--params", str(params), "validate"]) == 0
    raw = tmp_path / "data" / "raw"
    apps = pd.read_parquet(raw / "applications.parquet")
    assert apps["borrower_id"].between(1, 900).all() and apps["borrower_id"].max() > 800  # the last chunk's
    assert apps["loan_id"].is_unique
    inst = pd.read_parquet(raw / "installments.parquet")
    assert set(inst["loan_id"]) <= set(apps["loan_id"])
    assert pq.ParquetFile(raw / "installments.parquet").num_row_groups == 3
    assert len(pd.read_parquet(tmp_path / "data" / "truth" / "borrowers.parquet")) == 900
    chunks = book_chunks(load_settings(params).simulate)
    assert [c.n_borrowers for c in chunks] == [400, 400, 100] and len({c.seed for c in chunks}) == 3
    first = simulate_book(chunks[0], progress=False)
    n = len(first.applications)
    pd.testing.assert_frame_equal(
        apps.iloc[:n].reset_index(drop=True), first.applications, check_dtype=False, check_categorical=False
    )
    one = small_settings(300).simulate
    assert book_chunks(one) == [one]  # fits in a chunk: the very same settings, the very same book
