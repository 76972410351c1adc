"""Point-in-time correctness: nothing dated on or after T may change a feature at T."""

from __future__ import annotations

import pandas as pd
import pytest

from huishou.features import feature_columns

from conftest import features_for

SNAPSHOTS = ["2024-09-01", "2025-03-01", "2025-08-01"]


def _future_removed(tables: dict[str, pd.DataFrame], t: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Delete every event on or after T: payments become unpaid, later calls and actions vanish."""
    out = {k: v.copy() for k, v in tables.items()}
    inst = out["installments"]
    future = inst["paid_date"] >= t
    inst.loc[future, "paid_date"] = pd.NaT
    inst.loc[future, "amount_paid"] = 0.0
    out["callbacks"] = out["callbacks"][out["callbacks"]["called_at"] < t]
    out["collection_actions"] = out["collection_actions"][out["collection_actions"]["action_at"] < t]
    later_loans = out["applications"]["disbursed_at"] >= t
    gone = set(out["applications"].loc[later_loans, "loan_id"])
    out["applications"] = out["applications"][~later_loans]
    out["installments"] = inst[~inst["loan_id"].isin(gone)]
    return out


def _future_shifted(tables: dict[str, pd.DataFrame], t: pd.Timestamp, days: int = 23) -> dict[str, pd.DataFrame]:
    """Move every event on or after T further into the future, and double later amounts paid."""
    out = {k: v.copy() for k, v in tables.items()}
    shift = pd.Timedelta(days=days)
    inst = out["installments"]
    future = inst["paid_date"] >= t
    inst.loc[future, "paid_date"] += shift
    inst.loc[future, "amount_paid"] = inst.loc[future, "amount_paid"] * 0.5
    for name, col in (("callbacks", "called_at"), ("collection_actions", "action_at")):
        frame = out[name]
        frame.loc[frame[col] >= t, col] += shift
    return out


def _features_at(tables, settings, t):
    frame = features_for(type("B", (), {"raw_tables": lambda self: tables})(), settings, [t])
    return frame.drop(columns=["target"]).sort_values("loan_id", ignore_index=True)


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
@pytest.mark.parametrize("perturb", [_future_removed, _future_shifted], ids=["deleted", "shifted"])
def test_future_events_never_change_features(book, settings, snapshot, perturb):
    t = pd.Timestamp(snapshot)
    before = _features_at(book.raw_tables(), settings, t)
    after = _features_at(perturb(book.raw_tables(), t), settings, t)
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, after, check_like=True)


def test_perturbation_does_change_targets(book, settings):
    """Guard against a vacuous leakage test: the same edits must move the labels."""
    t = pd.Timestamp(SNAPSHOTS[1])
    kwargs = dict(settings=settings)
    before = features_for(book, **kwargs, snapshots=[t])
    after = features_for(
        type("B", (), {"raw_tables": lambda self: _future_removed(book.raw_tables(), t)})(), **kwargs, snapshots=[t]
    )
    assert after["target"].sum() > before["target"].sum()
    assert set(feature_columns(before)) == set(feature_columns(after))


def test_features_of_a_few_loans_from_their_borrowers_alone_equal_the_whole_books(book, settings):
    """Each feature is a borrower's own history: cutting the book to some loans' borrowers (what the strategy
    and every Dask partition do) leaves those loans' features unchanged, earlier-loan features included."""
    from huishou.features import whole_borrowers

    t = pd.Timestamp(SNAPSHOTS[-1])
    tables = book.raw_tables()
    full = _features_at(tables, settings, t)
    repeat = full.loc[full["pl_n_loans_seen"] > 0, "loan_id"]  # borrowers with earlier loans
    chosen = pd.concat([full["loan_id"].sample(40, random_state=3), repeat.head(10)]).unique()
    cut = whole_borrowers(tables, chosen)
    assert len(cut["applications"]) < len(tables["applications"]) / 10
    part = _features_at(cut, settings, t)
    part = part[part["loan_id"].isin(chosen)].reset_index(drop=True)
    want = full[full["loan_id"].isin(chosen)].reset_index(drop=True)
    assert len(part) == len(chosen)
    pd.testing.assert_frame_equal(part[feature_columns(want)], want[feature_columns(want)], check_categorical=False)
