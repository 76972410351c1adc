"""Model fitting: monotone constraints hold, the feature contract is enforced, save/load is exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from huishou.core.errors import FeatureMismatchError
from huishou.core.settings import load_settings
from huishou.features import feature_columns
from huishou.risk.model import RiskModel
from huishou.risk.train import fit_lightgbm, fit_logistic

FAST = dataclasses.replace(load_settings("params.yaml").train, num_boost_round=60, early_stopping_rounds=20)


@pytest.fixture(scope="module")
def fitted(features):
    cols = feature_columns(features)
    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    return fit_lightgbm(train, valid, cols, FAST), fit_logistic(train, valid, cols, FAST), valid


def test_models_beat_chance_and_return_probabilities(fitted):
    from sklearn.metrics import roc_auc_score

    for model in fitted[:2]:
        p = model.predict_proba(fitted[2])
        assert ((p > 0) & (p < 1)).all()
        assert roc_auc_score(fitted[2]["target"].astype(int), p) > 0.7


def test_monotone_constraint_on_current_dpd(fitted):
    lgbm, _, valid = fitted
    assert FAST.monotone_constraints["rp_dpd_now"] == 1
    rows = valid.head(50).copy()
    previous = None
    for dpd in (0, 5, 10, 20, 29):
        rows["rp_dpd_now"] = float(dpd)
        p = lgbm.raw_score(rows)
        if previous is not None:
            assert np.all(p >= previous - 1e-12)
        previous = p


def test_feature_contract_rejects_missing_and_non_numeric_columns(fitted):
    lgbm, _, valid = fitted
    with pytest.raises(FeatureMismatchError, match="rp_dpd_now"):
        lgbm.predict_proba(valid.drop(columns=["rp_dpd_now"]))
    bad = valid.head(5).copy()
    bad["rp_dpd_max"] = "high"
    with pytest.raises(FeatureMismatchError, match="rp_dpd_max"):
        lgbm.predict_proba(bad)


def test_unseen_category_is_treated_as_missing_not_an_error(fitted):
    lgbm, _, valid = fitted
    rows = valid.head(5).copy()
    rows["app_purpose"] = rows["app_purpose"].cat.add_categories(["crypto"]).fillna("crypto")
    rows.loc[rows.index[0], "app_purpose"] = "crypto"
    assert np.isfinite(lgbm.predict_proba(rows)).all()


def test_save_and_load_round_trip(fitted, tmp_path):
    for model in fitted[:2]:
        model.save(tmp_path / "m.joblib")
        again = RiskModel.load(tmp_path / "m.joblib")
        np.testing.assert_array_equal(again.predict_proba(fitted[2]), model.predict_proba(fitted[2]))


def test_contributions_add_up_to_the_raw_log_odds(fitted):
    lgbm, _, valid = fitted
    rows = valid.head(20)
    contrib = lgbm.contributions(rows)
    raw = lgbm.raw_score(rows)
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, rtol=1e-6)


def test_logistic_contributions_add_up_and_name_what_pushes_the_risk_up(fitted, tmp_path):
    """A logistic champion (chosen on a small book) gives reasons too: coefficient x distance from the
    training mean per input, its columns summed per feature (value, missing indicator, category dummies)."""
    from huishou.risk.explain import reason_codes

    _, logistic, valid = fitted
    rows = valid.head(200)
    contrib = logistic.contributions(rows)
    assert list(contrib.columns) == [*logistic.contract.columns, "bias"]
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), logistic.raw_score(rows), rtol=1e-9)
    # the riskiest row's first reason is the feature with its largest positive push
    row = contrib.drop(columns="bias").iloc[int(np.argmax(logistic.raw_score(rows)))]
    reasons = reason_codes(logistic, rows.loc[[row.name]], top=3)
    assert reasons["reason_1"].iloc[0] != "" and row.max() > 0
    strongest = reason_codes(logistic, rows.loc[[row.name]], top=1)["reason_1"].iloc[0]
    assert strongest == reasons["reason_1"].iloc[0]
    logistic.save(tmp_path / "logistic")  # the training means travel with the model
    again = RiskModel.load(tmp_path / "logistic")
    assert again.explains
    np.testing.assert_allclose(again.contributions(rows).to_numpy(), contrib.to_numpy())


def test_threads_reach_lightgbm_and_do_not_change_the_scores(features, fitted):
    """compute.threads is the booster's thread count (a shared host sets the cores it may use); the
    run-time num_threads of predictions and reason codes changes nothing but the speed."""
    cols = feature_columns(features)
    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    one = fit_lightgbm(train, valid, cols, FAST, threads=1)
    assert one.meta["params"]["num_threads"] == 1 and one.num_threads == 1
    assert fitted[0].meta["params"]["num_threads"] == 0  # not given: LightGBM's own default
    rows = valid.head(500)
    reference = one.predict_proba(rows), one.contributions(rows).to_numpy()
    one.num_threads = 2
    np.testing.assert_array_equal(one.predict_proba(rows), reference[0])
    np.testing.assert_allclose(one.contributions(rows).to_numpy(), reference[1], rtol=1e-12, atol=1e-12)


def test_negative_threads_are_refused():
    from huishou.core.errors import ConfigError
    from huishou.core.settings import read_params, settings_from_dict

    raw = read_params("params.yaml")
    raw["compute"]["threads"] = -1
    with pytest.raises(ConfigError, match="compute.threads"):
        settings_from_dict(raw)


def test_zero_threads_means_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    """compute.threads 0: the CPU affinity, capped by a cgroup quota (v2 cpu.max or v1 cfs files)."""
    import os

    from huishou.core.engine import available_cpus, cgroup_cpu_quota, threads

    affinity = len(os.sched_getaffinity(0))
    none = tmp_path / "none"
    none.mkdir()
    assert cgroup_cpu_quota(none) is None and available_cpus(none) == affinity
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None and available_cpus(v2) == affinity
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one thread
    assert cgroup_cpu_quota(v2) == 0.5 and available_cpus(v2) == 1
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path / "v1") == min(affinity, 2)  # 1.5 CPUs rounded up
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # taskset to one core
    assert available_cpus(none) == 1 and threads(0) == 1 and threads(3) == 3


def test_an_adverse_decision_gets_at_most_four_stable_codes_and_a_record_to_contest(fitted):
    """Regulation B 1002.9: specific principal reasons (at most four, from the published code table); the
    record holds the model version and, per reason, the feature, its input value and its contribution."""
    import json

    from huishou.risk.explain import REASON_CODES, explain, reason_code, reason_codes

    lgbm, _, valid = fitted
    riskiest = valid.assign(p=lgbm.predict_proba(valid)).nlargest(200, "p")
    out = explain(lgbm, riskiest, model_version="7")
    contrib = lgbm.contributions(riskiest).drop(columns="bias")
    assert (out[["reason_1", "reason_2", "reason_3"]] == reason_codes(lgbm, riskiest)).all().all()  # words kept
    table = set(REASON_CODES.values()) | {"AP99", "RP99", "PL99", "CB99", "CL99", "XX99"}
    for idx, row in out.iterrows():
        codes = row["reason_codes"].split(";")
        record = json.loads(row["explanation"])
        assert 1 <= len(codes) <= 4 and len(set(codes)) == len(codes) and set(codes) <= table
        assert record["model_version"] == "7" and [r["code"] for r in record["reasons"]] == codes
        pushes = [r["contribution"] for r in record["reasons"]]
        assert pushes == sorted(pushes, reverse=True) and min(pushes) > 0
        for r in record["reasons"]:
            assert reason_code(r["feature"]) == r["code"]
            assert r["contribution"] == pytest.approx(contrib.at[idx, r["feature"]], abs=1e-6)
            value = riskiest.at[idx, r["feature"]]
            assert (r["value"] is None and (value is None or value != value)) or r["value"] == pytest.approx(value)
        strongest = contrib.loc[idx].idxmax()
        assert codes[0] == reason_code(strongest)


def test_the_published_code_table_is_the_codes_table_and_codes_are_never_reused():
    import csv

    from huishou.risk.explain import FAMILY_CODES, REASON_CODES, REASONS

    from conftest import ROOT

    rows = list(csv.DictReader((ROOT / "docs" / "reason-codes.csv").open()))
    published = {r["code"]: r["feature"] for r in rows}
    assert len(published) == len(rows)  # one meaning per code
    assert {code: feature for feature, code in REASON_CODES.items()} == {
        c: f for c, f in published.items() if not c.endswith("99")
    }
    assert set(FAMILY_CODES.values()) | {"XX99"} == {c for c in published if c.endswith("99")}
    assert all(r["reason"] == REASONS[r["feature"]] for r in rows if not r["code"].endswith("99"))


def test_constant_and_all_missing_columns_are_left_out_before_training_and_counted(features, settings):
    """Issue 26: on a label-only or small book most columns can be constant; they are dropped before any model
    sees them, with the reason, and a monotone constraint on a dropped column is no error."""
    import dataclasses

    from huishou.features import feature_columns
    from huishou.risk.train import fit_lightgbm, informative_columns

    frame = features.copy()
    frame["rp_flat"], frame["ax_empty"] = 1.0, np.nan
    train = frame[frame["split"] == "train"]
    kept, dropped = informative_columns(train, [*feature_columns(features), "rp_flat", "ax_empty"])
    assert dropped["rp_flat"] == "constant" and dropped["ax_empty"] == "all missing"
    assert not set(dropped) & set(kept) and all(train[c].nunique() > 1 for c in kept)
    cfg = dataclasses.replace(settings.train, monotone_constraints={"rp_flat": 1}, num_boost_round=20)
    model = fit_lightgbm(train, frame[frame["split"] == "valid"], kept, cfg, dropped=dropped)
    assert "rp_flat" not in model.contract.columns
    with pytest.raises(Exception, match="unknown feature"):
        fit_lightgbm(train, frame[frame["split"] == "valid"], kept, cfg)  # not dropped: a typo stays an error
