"""The Taiwan adapter's mapping, checked on hand-made rows in the UCI layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from huishou.book.adapters import taiwan
from huishou.book.validation import validate_book
from huishou.config import load_settings
from huishou.features import build_features


def _row(id_, pays, bills, amts, default, limit=50_000.0, age=35):
    row = {
        "ID": id_,
        "LIMIT_BAL": limit,
        "SEX": 2,
        "EDUCATION": 2,
        "MARRIAGE": 1,
        "AGE": age,
        "default.payment.next.month": default,
    }
    row |= {f"PAY_{k}": v for k, v in zip(["0", "2", "3", "4", "5", "6"], pays, strict=True)}
    row |= {f"BILL_AMT{i}": v for i, v in enumerate(bills, start=1)}
    row |= {f"PAY_AMT{i}": v for i, v in enumerate(amts, start=1)}
    return row


@pytest.fixture
def source():
    return pd.DataFrame(
        [
            # pays duly every month, never defaults
            _row(1, [-1] * 6, [1000.0] * 6, [1000.0] * 6, 0),
            # two months late in September (PAY_0 = 2), revolving before, defaults next month
            _row(2, [2, 0, 0, 0, 0, 0], [5000.0, 4000, 3000, 2000, 1000, 500], [0.0, 100, 300, 200, 100, 50], 1),
        ]
    )


def test_mapping_of_applications_and_installments(source):
    tables = taiwan.adapt(source)
    apps, inst = tables["applications"], tables["installments"]
    assert set(tables) == {"applications", "installments"}  # no callbacks or collections: not invented
    assert apps["amount"].tolist() == [50_000.0, 50_000.0] and apps["age"].tolist() == [35, 35]
    assert "SEX" not in apps.columns and apps["rate"].isna().all()
    two = inst[inst["loan_id"] == 2].set_index("seq")
    assert two.loc[6, "due_date"] == pd.Timestamp("2005-09-15")
    assert two.loc[6, "amount_due"] == 5000.0  # September bill = BILL_AMT1
    assert two.loc[6, "paid_date"] == pd.Timestamp("2005-09-15") + pd.Timedelta(days=45)  # 2 months late
    assert two.loc[1, "amount_due"] == 500.0 and two.loc[1, "amount_paid"] == 100.0  # April bill, paid in May
    assert two.loc[5, "amount_paid"] == 400.0  # PAY_AMT1 = 0 < minimum: at least the minimum (10 %) is assumed
    assert pd.isna(two.loc[7, "paid_date"]) and two.loc[7, "amount_paid"] == 0.0  # the default: October unpaid
    one = inst[inst["loan_id"] == 1].set_index("seq")
    assert (one["paid_date"] == one["due_date"]).all() and (one["amount_paid"] == one["amount_due"]).all()
    validate_book(tables, taiwan.AS_OF)


def test_adapted_book_runs_through_features_with_the_label_as_target(source):
    s = load_settings("params_taiwan.yaml")
    f = s.features
    frame = build_features(taiwan.adapt(source), f.snapshot_dates(), **f.build_kwargs(taiwan.AS_OF))
    frame = frame.set_index("loan_id")
    assert frame.loc[1, "target"] == 0 and frame.loc[2, "target"] == 1
    assert frame.loc[2, "rp_dpd_now"] == (pd.Timestamp("2005-10-01") - pd.Timestamp("2005-09-15")).days
    assert frame[[c for c in frame.columns if c.startswith("cb_")]].isna().all().all()


def test_missing_source_column_is_named(tmp_path, source):
    path = tmp_path / "bad.csv"
    source.drop(columns=["PAY_AMT3"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="PAY_AMT3"):
        taiwan.read(path)


def test_taiwan_params_load():
    s = load_settings("params_taiwan.yaml")
    assert s.features.split_mode == "hash" and s.features.settle_share == pytest.approx(0.1)
    assert dataclasses.asdict(s.data)["raw_dir"] == "data/taiwan/raw"


SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "taiwan_default" / "UCI_Credit_Card_named.csv"


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared Taiwan data is not beside this checkout")
def test_mapping_on_a_slice_of_the_real_file():
    src = taiwan.read(SHARED_CSV).head(400)
    tables = taiwan.adapt(src)
    validate_book(tables, taiwan.AS_OF)
    inst = tables["installments"].set_index(["loan_id", "seq"])
    for _, row in src.iterrows():
        assert inst.loc[(row["ID"], 6), "amount_due"] == max(row["BILL_AMT1"], 0.0)
        assert pd.isna(inst.loc[(row["ID"], 7), "paid_date"]) == (row["default.payment.next.month"] == 1)
        if row["PAY_2"] <= 0:  # August met on time
            assert inst.loc[(row["ID"], 5), "paid_date"] == pd.Timestamp("2005-08-15")
    assert (tables["applications"]["amount"].to_numpy() == src["LIMIT_BAL"].to_numpy()).all()


@pytest.mark.e2e
@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared Taiwan data is not beside this checkout")
def test_real_file_runs_through_the_whole_pipeline(tmp_path, monkeypatch):
    """adapt -> validate -> features -> train -> evaluate with params_taiwan.yaml, on 4,000 real clients."""
    import json

    import yaml

    from huishou.cli import main

    repo = Path(__file__).resolve().parents[1]
    sample = tmp_path / "taiwan_sample.csv"
    pd.read_csv(SHARED_CSV).head(4000).to_csv(sample, index=False)
    params = yaml.safe_load((repo / "params_taiwan.yaml").read_text())
    params["extends"] = str(repo / "params.yaml")
    params["train"]["num_boost_round"] = 300
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for step in (["adapt", "taiwan", "--input", str(sample)], ["validate"], ["features"], ["train"], ["evaluate"]):
        assert main(["--params", "params.yaml", *step]) == 0, step
    metrics = json.loads((tmp_path / "models" / "taiwan" / "evaluation" / "metrics.json").read_text())
    assert metrics["oracle"] == {}  # real data: no truth, no oracle
    for model in ("lightgbm", "logistic", "scorecard"):
        assert 0.65 < metrics[model]["auc"] < 0.9
