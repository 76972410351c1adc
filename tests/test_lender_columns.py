"""The lender's own columns: extra application columns and a point-in-time attributes table become features,
model inputs with their monotone direction, plain-words reason codes and scorecard bins; protected
characteristics never do; validation names what it ignores; given labels override the derived target."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from huishou.book.contracts import Contract
from huishou.book.validation import validate_book
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.settings import load_settings
from huishou.features import build_features, feature_columns, feature_dictionary
from huishou.risk.explain import reason_codes

from builders import D, application, book, schedule
from conftest import ROOT

EXTRAS = {
    "application_columns": [
        {"name": "education", "kind": "categorical", "description": "education level"},
        {"name": "bureau_score", "kind": "numeric", "description": "low bureau score at application", "monotone": -1},
    ],
    "attributes": [
        {"name": "utilisation", "kind": "numeric", "description": "high credit-line utilisation", "monotone": 1},
        {"name": "segment", "kind": "categorical", "description": "risk segment of the bureau"},
    ],
}


def settings_with_extras():
    return load_settings(ROOT / "params.yaml", {"features": EXTRAS})


def hand_book():
    apps = [
        application(1, education="university", bureau_score=710.0, sex="F"),
        application(2, education="secondary", bureau_score=580.0, sex="M"),
    ]
    inst = schedule(1, "2025-01-31") + schedule(2, "2025-01-31")
    tables = book(apps, inst)
    tables["applications"]["education"] = tables["applications"]["education"].astype("str")
    tables["attributes"] = pd.DataFrame(
        {
            "borrower_id": [1, 1, 1, 2],
            "as_of": pd.to_datetime(["2025-01-15", "2025-02-15", "2025-03-01", "2025-02-20"]).astype("datetime64[us]"),
            "utilisation": [0.2, 0.5, 0.9, 0.7],
            "segment": ["A", "B", "C", "B"],
            "phone_book": ["x", "y", "z", "w"],  # not declared: ignored
        }
    )
    return tables


def features_at(tables, snapshot: str, s=None):
    s = s or settings_with_extras()
    frame = build_features(tables, [D(snapshot)], **s.features.build_kwargs(D("2026-01-01")))
    return frame.set_index("loan_id")


def test_declared_columns_become_features_seen_as_of_T():
    frame = features_at(hand_book(), "2025-03-01")
    assert frame.loc[1, "ax_education"] == "university" and frame.loc[2, "ax_bureau_score"] == 580.0
    assert isinstance(frame["ax_education"].dtype, pd.CategoricalDtype)
    # the attributes row dated 2025-03-01 is not known at T = 2025-03-01 (strictly before T)
    assert frame.loc[1, "at_utilisation"] == 0.5 and frame.loc[1, "at_utilisation_delta"] == pytest.approx(0.3)
    assert frame.loc[1, "at_segment"] == "B" and frame.loc[1, "at_n_known"] == 2 and frame.loc[1, "at_days_since"] == 14
    assert frame.loc[2, "at_utilisation"] == 0.7 and np.isnan(frame.loc[2, "at_utilisation_delta"])
    assert not any("sex" in c or "phone_book" in c for c in frame.columns)


def test_attributes_dated_on_or_after_T_never_change_features():
    tables = hand_book()
    before = features_at(tables, "2025-02-20")
    moved = {k: v.copy() for k, v in tables.items()}
    late = moved["attributes"]["as_of"] >= D("2025-02-20")
    moved["attributes"].loc[late, "utilisation"] = 99.0
    moved["attributes"].loc[late, "as_of"] += pd.Timedelta(days=40)
    deleted = {k: v.copy() for k, v in tables.items()}
    deleted["attributes"] = deleted["attributes"][~late]
    for changed in (moved, deleted):
        pd.testing.assert_frame_equal(features_at(changed, "2025-02-20"), before)
    assert late.sum() == 2  # the perturbation touched rows: the test is not vacuous
    assert features_at(tables, "2025-02-21").loc[2, "at_utilisation"] == 0.7  # and they do count a day later


def test_validation_names_ignored_and_protected_columns_and_checks_declared_ones():
    s = settings_with_extras()
    contract = Contract.from_settings(s.contracts, s.features)
    checked = validate_book(hand_book(), D("2026-01-01"), contract=contract)
    assert checked["ignored_columns"] == {"applications": ["sex"], "attributes": ["phone_book"]}
    assert checked["protected_present"] == ["sex"]
    bad = hand_book()
    bad["attributes"].loc[0, "utilisation"] = np.inf
    with pytest.raises(DataValidationError, match="'utilisation'.*finite"):
        validate_book(bad, D("2026-01-01"), {"attributes": "attributes.parquet"}, contract)
    future = hand_book()
    future["attributes"].loc[0, "as_of"] = D("2026-02-01")
    with pytest.raises(DataValidationError, match="as_of before the extract date"):
        validate_book(future, D("2026-01-01"), contract=contract)


def _declare(item):
    return load_settings(ROOT / "params.yaml", {"features": {"application_columns": [item]}})


@pytest.mark.parametrize(
    ("item", "characteristic"),
    [
        ({"name": "marital_status", "kind": "categorical"}, "marital_status"),
        ({"name": "personal_status_and_sex", "kind": "categorical"}, "sex"),  # a synonym inside the name
        ({"name": "hunyin", "kind": "categorical", "description": "婚姻状况"}, "marital_status"),  # its meaning
        ({"name": "foreign_worker", "kind": "categorical"}, "nationality"),  # a proxy
        ({"name": "zongjiao", "kind": "categorical", "description": "宗教信仰"}, "religion"),
    ],
)
def test_a_protected_characteristic_cannot_be_declared_by_name_synonym_or_meaning(item, characteristic):
    with pytest.raises(ConfigError) as err:
        _declare(item)
    message = str(err.value)
    assert f"protected characteristic '{characteristic}'" in message and "12 CFR 1002.6(b)" in message
    assert "lawful_purpose" in message  # the rule is quoted with its way out


def test_a_stated_lawful_purpose_lets_a_matching_column_through_and_plain_ones_pass():
    purpose = "sex-specific product required by the regulator; reviewed by compliance 2026-11"
    s = _declare({"name": "personal_status_and_sex", "kind": "categorical", "lawful_purpose": purpose})
    assert s.features.application_columns[0]["lawful_purpose"] == purpose
    for item in (
        {"name": "savings", "kind": "numeric", "description": "single savings account balance"},
        {"name": "education", "kind": "categorical"},
        {"name": "telephone", "kind": "categorical"},
    ):
        assert _declare(item).features.application_columns[0]["name"] == item["name"]


def test_validation_reports_columns_that_name_a_protected_characteristic_by_synonym():
    s = settings_with_extras()
    tables = hand_book()
    tables["applications"]["personal_status_and_sex"] = "male : single"
    tables["applications"]["婚姻状况"] = "已婚"
    checked = validate_book(tables, D("2026-01-01"), contract=Contract.from_settings(s.contracts, s.features))
    assert checked["protected_present"] == ["personal_status_and_sex", "sex", "婚姻状况"]


def test_a_declared_column_missing_from_the_data_is_missing_not_invented():
    tables = hand_book()
    tables["applications"] = tables["applications"].drop(columns=["bureau_score"])
    del tables["attributes"]
    frame = features_at(tables, "2025-03-01")
    assert frame["ax_bureau_score"].isna().all() and frame["at_utilisation"].isna().all()


def test_given_labels_override_the_derived_target():
    tables = hand_book()
    derived = features_at(tables, "2025-02-01")
    tables["outcomes"] = pd.DataFrame({"loan_id": [1], "snapshot_date": [D("2025-02-01")], "target": [0]})
    tables["outcomes"]["snapshot_date"] = tables["outcomes"]["snapshot_date"].astype("datetime64[us]")
    given = features_at(tables, "2025-02-01")
    assert derived.loc[1, "target"] == 1 and derived.loc[1, "target_source"] == "derived"  # unpaid: defaults
    assert given.loc[1, "target"] == 0 and given.loc[1, "target_source"] == "given"
    assert given.loc[2, "target"] == derived.loc[2, "target"]


# ---------------------------------------------------------------- end to end on a simulated book


@pytest.fixture(scope="module")
def extended(book, settings):
    """The small simulated book with a lender column and monthly bureau pulls that carry real signal."""
    rng = np.random.default_rng(5)
    z = book.truth["borrowers"].set_index("borrower_id")["z"]
    tables = {k: v.copy() for k, v in book.raw_tables().items()}
    apps = tables["applications"]
    apps["education"] = np.where(apps["borrower_id"].map(z) + rng.normal(0, 1, len(apps)) > 0.5, "basic", "higher")
    apps["bureau_score"] = np.round(650 - 40 * apps["borrower_id"].map(z) + rng.normal(0, 30, len(apps)))
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    borrowers = np.asarray(z.index)
    attrs = pd.DataFrame(
        {"borrower_id": np.repeat(borrowers, len(months)), "as_of": np.tile(months.to_numpy(), len(borrowers))}
    )
    attrs["as_of"] = (attrs["as_of"] + pd.Timedelta(days=3)).astype("datetime64[us]")
    attrs["utilisation"] = 1 / (1 + np.exp(-(attrs["borrower_id"].map(z) + rng.normal(0, 0.7, len(attrs)))))
    attrs["segment"] = np.where(attrs["utilisation"] > 0.6, "stretched", "comfortable")
    tables["attributes"] = attrs
    s = dataclasses.replace(settings, features=settings_with_extras().features)
    f = s.features
    frame = build_features(tables, f.snapshot_dates(), **f.build_kwargs(s.simulate.as_of))
    from huishou.features import assign_split

    frame["split"] = assign_split(frame, D(f.valid_from), D(f.test_from), f.horizon_days)
    return s, tables, frame


def test_declared_columns_flow_into_the_model_reasons_and_scorecard(extended):
    from huishou.risk.train import fit_lightgbm, fit_scorecard_model

    s, _, frame = extended
    cols = feature_columns(frame)
    assert {"ax_education", "ax_bureau_score", "at_utilisation", "at_utilisation_delta", "at_segment"} <= set(cols)
    dictionary = feature_dictionary(frame, s.features.build_kwargs(s.simulate.as_of)["extras"])["features"]
    assert dictionary["at_utilisation"] == {
        "family": "at",
        "kind": "numeric",
        "description": "high credit-line utilisation",
        "monotone": 1,
    }
    monotone = {k: v["monotone"] for k, v in dictionary.items() if v["monotone"]}
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    cfg = dataclasses.replace(s.train, num_boost_round=80)
    model = fit_lightgbm(train, valid, cols, cfg, monotone)
    constraints = dict(zip(cols, model.meta["params"]["monotone_constraints"], strict=True))
    assert constraints["ax_bureau_score"] == -1 and constraints["at_utilisation"] == 1
    gain = pd.Series(model.estimator.feature_importance("gain"), index=cols)
    assert gain["at_utilisation"] > 0 and gain["ax_bureau_score"] > 0  # the signal was found
    model.meta["descriptions"] = {k: v["description"] for k, v in dictionary.items() if v["description"]}
    risky = valid.nlargest(300, "at_utilisation")
    words = set(reason_codes(model, risky).to_numpy().ravel())
    assert any(w.startswith("high credit-line utilisation") for w in words)  # the attribute or its history
    card, iv_table = fit_scorecard_model(train, valid, cols, s.scorecard, s.train.seed)
    kept = set(iv_table.loc[iv_table["decision"] == "kept", "variable"])
    assert "at_utilisation" in kept or "ax_bureau_score" in kept
    points = card.estimator.points
    if "ax_education" in kept:
        assert (points.loc[points["variable"] == "ax_education", "kind"] == "categories").any()
