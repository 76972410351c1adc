"""The shipped Taiwan mapping, checked on hand-made rows in the UCI layout and on the real file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from huishou.book.contracts import Contract
from huishou.book.mapping import apply_mapping, load_mapping
from huishou.book.plugins import builtin_mappings
from huishou.book.validation import validate_book
from huishou.core.settings import load_settings
from huishou.features import build_features

from conftest import ROOT

AS_OF = pd.Timestamp("2006-02-01")
TAIWAN = load_settings(ROOT / "params_taiwan.yaml")
CONTRACT = Contract.from_settings(TAIWAN.contracts, TAIWAN.features)


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


def adapt(frame: pd.DataFrame, tmp_path: Path) -> dict[str, pd.DataFrame]:
    path = tmp_path / "clients.csv"
    frame.to_csv(path, index=False)
    doc = load_mapping(builtin_mappings()["taiwan"])
    return apply_mapping(doc, path.parent, CONTRACT, path).tables


@pytest.fixture
def source():
    return pd.DataFrame(
        [
            _row(1, [-1] * 6, [1000.0] * 6, [1000.0] * 6, 0),  # pays duly every month, never defaults
            # two months late in September (PAY_0 = 2), revolving before, defaults next month
            _row(2, [2, 0, 0, 0, 0, 0], [5000.0, 4000, 3000, 2000, 1000, 500], [0.0, 100, 300, 200, 100, 50], 1),
        ]
    )


def test_mapping_of_applications_installments_outcomes_and_attributes(source, tmp_path):
    tables = adapt(source, tmp_path)
    apps, inst = tables["applications"], tables["installments"]
    assert set(tables) == {"applications", "installments", "outcomes", "attributes"}  # nothing invented
    assert apps["amount"].tolist() == [50_000.0, 50_000.0] and apps["age"].tolist() == [35, 35]
    assert apps["education"].tolist() == ["university", "university"]
    assert not {"SEX", "MARRIAGE", "sex", "marriage"} & set(apps.columns)  # protected: not carried at all
    two = inst[inst["loan_id"] == 2].set_index("seq")
    assert two.loc[6, "due_date"] == pd.Timestamp("2005-09-15") and two.loc[6, "amount_due"] == 5000.0
    assert two.loc[6, "paid_date"] == pd.Timestamp("2005-09-15") + pd.Timedelta(days=45)  # 2 months late
    assert two.loc[1, "amount_due"] == 500.0 and two.loc[1, "amount_paid"] == 100.0  # April bill, paid in May
    assert two.loc[5, "amount_paid"] == 400.0  # PAY_AMT1 = 0 < minimum: at least the minimum (10 %) is assumed
    assert pd.isna(two.loc[7, "paid_date"]) and two.loc[7, "amount_paid"] == 0.0  # October: no payment invented
    one = inst[(inst["loan_id"] == 1) & (inst["seq"] <= 6)].set_index("seq")
    assert (one["paid_date"] == one["due_date"]).all() and (one["amount_paid"] == one["amount_due"]).all()
    labels = tables["outcomes"].set_index("loan_id")
    assert labels.loc[2, "target"] == 1 and labels.loc[1, "snapshot_date"] == pd.Timestamp("2005-10-01")
    sept = tables["attributes"].set_index(["borrower_id", "as_of"]).loc[(2, pd.Timestamp("2005-09-30"))]
    assert sept["pay_status"] == 2 and sept["utilisation"] == pytest.approx(0.1)
    validate_book(tables, AS_OF, contract=CONTRACT)


def test_adapted_book_runs_through_features_with_the_label_as_target(source, tmp_path):
    f = TAIWAN.features
    frame = build_features(adapt(source, tmp_path), f.snapshot_dates(), **f.build_kwargs(AS_OF)).set_index("loan_id")
    assert frame.loc[1, "target"] == 0 and frame.loc[2, "target"] == 1
    assert (frame["target_source"] == "given").all()
    assert frame.loc[2, "rp_dpd_now"] == (pd.Timestamp("2005-10-01") - pd.Timestamp("2005-09-15")).days
    assert frame.loc[2, "at_pay_status"] == 2 and frame.loc[2, "at_pay_status_max"] == 2
    assert frame[[c for c in frame.columns if c.startswith("cb_")]].isna().all().all()


def test_a_missing_source_column_is_named(tmp_path, source):
    from huishou.core.errors import DataValidationError

    with pytest.raises(DataValidationError, match="PAY_AMT3"):
        adapt(source.drop(columns=["PAY_AMT3"]), tmp_path)


def test_taiwan_params_load():
    assert TAIWAN.features.split_mode == "hash" and TAIWAN.features.settle_share == pytest.approx(0.1)
    assert dataclasses.asdict(TAIWAN.data)["raw_dir"] == "data/taiwan/raw"
    assert {a["name"] for a in TAIWAN.features.attributes} >= {"pay_status", "utilisation"}


SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "taiwan_default" / "UCI_Credit_Card_named.csv"


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared Taiwan data is not beside this checkout")
def test_mapping_on_a_slice_of_the_real_file(tmp_path):
    src = pd.read_csv(SHARED_CSV).head(400)
    tables = adapt(src, tmp_path)
    validate_book(tables, AS_OF, contract=CONTRACT)
    inst = tables["installments"].set_index(["loan_id", "seq"])
    labels = tables["outcomes"].set_index("loan_id")["target"]
    for _, row in src.iterrows():
        assert inst.loc[(row["ID"], 6), "amount_due"] == max(row["BILL_AMT1"], 0.0)
        assert labels[row["ID"]] == row["default.payment.next.month"]
        if row["PAY_2"] <= 0:  # August met on time
            assert inst.loc[(row["ID"], 5), "paid_date"] == pd.Timestamp("2005-08-15")
    assert (tables["applications"]["amount"].to_numpy() == src["LIMIT_BAL"].to_numpy()).all()


@pytest.mark.e2e
@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared Taiwan data is not beside this checkout")
def test_real_file_runs_through_the_whole_pipeline(tmp_path, monkeypatch):
    """adapt -> validate -> features -> train -> evaluate -> portfolio with params_taiwan.yaml, on 4,000 real
    clients."""
    import json

    import yaml

    from huishou.cli import main

    sample = tmp_path / "taiwan_sample.csv"
    pd.read_csv(SHARED_CSV).head(4000).to_csv(sample, index=False)
    params = yaml.safe_load((ROOT / "params_taiwan.yaml").read_text())
    params["extends"] = str(ROOT / "params.yaml")
    params["train"]["num_boost_round"] = 300
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    steps = (
        ["adapt", "taiwan", "--input", str(sample)],
        ["validate"],
        ["features"],
        ["train"],
        ["evaluate"],
        ["portfolio"],
    )
    for step in steps:
        assert main(["--params", "params.yaml", *step]) == 0, step
    portfolio = json.loads((tmp_path / "models" / "taiwan" / "portfolio" / "portfolio.json").read_text())
    assert portfolio["open_loans"] > 0 and 0 < portfolio["flow_rates_last_month"]["current_to_1-30"] < 1
    assert 0 < portfolio["entry_rate_last_month"] < 1
    metrics = json.loads((tmp_path / "models" / "taiwan" / "evaluation" / "metrics.json").read_text())
    assert metrics["oracle"] == {}  # real data: no truth, no oracle
    for model in ("lightgbm", "logistic", "scorecard"):
        assert 0.65 < metrics[model]["auc"] < 0.9
