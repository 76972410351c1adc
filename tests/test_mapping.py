"""`huishou adapt --mapping`: a lender's own export onto the contracts without Python: renames, SQL
expressions, constants, date formats, value maps, time zones, clip / drop rules counted in the report,
clear errors; code adapters as plugins; and the whole walk from a CSV export to a nightly score."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from huishou.book.contracts import Contract
from huishou.book.mapping import apply_mapping, load_mapping
from huishou.cli import main
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.settings import load_settings

from conftest import ROOT

SETTINGS = load_settings(
    ROOT / "params.yaml",
    {
        "features": {
            "application_columns": [
                {"name": "credit_score", "kind": "numeric", "description": "low credit score", "monotone": -1}
            ]
        }
    },
)
CONTRACT = Contract.from_settings(SETTINGS.contracts, SETTINGS.features)

LOANS_CSV = """\
loan_no,customer,applied,paid_out,principal_fen,months,state,customer_age,score,gender
L-1,C-1,2025/01/02 09:15,2025/01/02 10:00,600000,6,A,30,710,F
L-2,C-2,2025/01/03 11:00,2025/01/03 12:30,1200000,12,A,17,650,M
L-3,C-3,2025/01/04 08:00,,500000,6,D,45,520,F
L-4,C-4,2025/01/05 08:00,2025/01/05 09:00,99900000000,6,A,40,600,M
"""
SCHEDULE_CSV = """\
loan_no,n,due,due_fen,paid_on,paid_fen
L-1,1,2025-02-01,100000,2025-01-30T01:00:00+00:00,100000
L-2,1,2025-02-02,100000,,0
L-4,1,2025-02-04,100000,,0
"""
MAPPING = """\
as_of: "2025-06-01"
timezone: Asia/Shanghai
inputs:
  loans: {file: loans.csv}
  schedule: {file: schedule.csv}
tables:
  applications:
    from: {sql: "SELECT *, CAST(substr(loan_no, 3) AS BIGINT) AS id FROM loans"}
    columns:
      loan_id: id
      borrower_id: {sql: "CAST(substr(customer, 3) AS BIGINT)"}
      applied_at: {column: applied, format: "%Y/%m/%d %H:%M"}
      disbursed_at: {column: paid_out, format: "%Y/%m/%d %H:%M"}
      amount: {sql: "principal_fen / 100.0"}
      term_months: months
      status: {column: state, map: {A: approved, D: declined}}
      age: customer_age
      credit_score: score
      channel: {const: app}
    rules: {age: clip, amount: drop}
  installments:
    from: schedule
    columns:
      loan_id: {sql: "CAST(substr(loan_no, 3) AS BIGINT)"}
      seq: n
      due_date: {sql: "CAST(due AS TIMESTAMP)"}
      amount_due: {sql: "due_fen / 100.0"}
      paid_date: {sql: "CAST(paid_on AS TIMESTAMPTZ)"}
      amount_paid: {sql: "paid_fen / 100.0"}
"""


@pytest.fixture
def export(tmp_path):
    (tmp_path / "loans.csv").write_text(LOANS_CSV)
    (tmp_path / "schedule.csv").write_text(SCHEDULE_CSV)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    return tmp_path


def test_mapping_renames_casts_maps_converts_and_counts(export):
    adapted = apply_mapping(load_mapping(export / "mapping.yaml"), export, CONTRACT)
    apps = adapted.tables["applications"].set_index("loan_id")
    assert list(apps.index) == [1, 2, 3]  # loan 4's amount is out of range: dropped by rule
    assert apps.loc[1, "applied_at"] == pd.Timestamp("2025-01-02 09:15") and apps.loc[1, "amount"] == 6000.0
    assert apps.loc[3, "status"] == "declined" and pd.isna(apps.loc[3, "disbursed_at"])
    assert apps.loc[2, "age"] == 18  # 17 clipped into contracts.ranges applications.age [18, 100]
    assert (apps["channel"] == "app").all() and apps.loc[1, "credit_score"] == 710.0
    assert "gender" not in apps.columns  # a mapping carries what it maps, nothing else
    inst = adapted.tables["installments"].set_index("loan_id")
    assert inst.loc[1, "paid_date"] == pd.Timestamp("2025-01-30 09:00")  # 01:00 UTC is 09:00 in Shanghai
    assert 4 not in inst.index  # the dropped loan's schedule goes with it
    assert adapted.report["clipped"] == {"applications.age": 1}
    assert adapted.report["dropped"] == {"applications.amount": 1, "installments (their application was dropped)": 1}


@pytest.mark.parametrize(
    "edit, error, fragment",
    [
        (
            lambda m: m.replace("loans: {file: loans.csv}", "loans: {file: nowhere.csv}"),
            DataValidationError,
            "nowhere.csv: input 'loans'",
        ),
        (lambda m: m.replace("seq: n", "seq: number"), DataValidationError, "number"),
        (lambda m: m.replace("rules: {age: clip, amount: drop}", "rules: {age: shrink}"), ConfigError, "shrink"),
        (lambda m: m.replace('as_of: "2025-06-01"\n', ""), ConfigError, "as_of"),
        (lambda m: m.replace("  installments:", "  repayments:"), ConfigError, "repayments"),
        (lambda m: m.replace("customer_age", "score"), None, None),  # valid: a rename may reuse a column
    ],
)
def test_mapping_errors_are_clear(export, edit, error, fragment):
    (export / "mapping.yaml").write_text(edit(MAPPING))
    run = lambda: apply_mapping(load_mapping(export / "mapping.yaml"), export, CONTRACT)  # noqa: E731
    if error is None:
        run()
        return
    with pytest.raises(error, match=fragment):
        run()


def test_unknown_adapter_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(ROOT / "params.yaml"), "adapt", "mybank", "--input", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert "unknown adapter 'mybank'" in err and "taiwan" in err


def test_a_code_adapter_installed_as_a_plugin_is_found_by_name(tmp_path, monkeypatch, capsys):
    """A package declaring an entry point in the group huishou.adapters (here written to a temp folder)."""
    site = tmp_path / "site"
    (site / "toy_adapter.py").parent.mkdir(parents=True)
    (site / "toy_adapter.py").write_text(
        textwrap.dedent("""
        import pandas as pd
        AS_OF = "2025-06-01"
        def adapt(path):
            apps = pd.read_csv(path, parse_dates=["applied_at", "disbursed_at"])
            inst = pd.DataFrame({"loan_id": apps["loan_id"], "seq": 1,
                                 "due_date": apps["disbursed_at"] + pd.Timedelta(days=30),
                                 "amount_due": apps["amount"], "paid_date": pd.NaT, "amount_paid": 0.0})
            return {"applications": apps, "installments": inst}
    """)
    )
    dist = site / "toy_adapter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-adapter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[huishou.adapters]\ntoy = toy_adapter\n")
    monkeypatch.syspath_prepend(str(site))
    src = tmp_path / "apps.csv"
    pd.DataFrame(
        {
            "borrower_id": [1],
            "loan_id": [1],
            "applied_at": ["2025-01-01 09:00"],
            "disbursed_at": ["2025-01-01 10:00"],
            "amount": [500.0],
            "term_months": [1],
        }
    ).to_csv(src, index=False)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert main(["--params", str(ROOT / "params.yaml"), "adapt", "toy", "--input", str(src)]) == 0
    manifest = json.loads((project / "data" / "raw" / "manifest.json").read_text())
    assert manifest["source"] == "toy" and manifest["as_of"] == "2025-06-01"
    assert main(["--params", str(ROOT / "params.yaml"), "validate"]) == 0
    sys.modules.pop("toy_adapter", None)


# ---------------------------------------------------------------- from a lender's CSV export to a nightly score


@pytest.mark.e2e
def test_from_a_csv_export_to_a_model_and_a_nightly_score_with_no_python(book, tmp_path, monkeypatch, capsys):
    """The README walk-through: the small simulated book exported the way a lender's system would (its own
    column names, amounts in fen, text dates, status codes, a score of its own), a mapping, params, the CLI."""
    apps = book.applications
    export = pd.DataFrame(
        {
            "loan_no": "L-" + apps["loan_id"].astype(str),
            "customer": "C-" + apps["borrower_id"].astype(str),
            "applied": apps["applied_at"].dt.strftime("%Y/%m/%d %H:%M"),
            "paid_out": apps["disbursed_at"].dt.strftime("%Y/%m/%d %H:%M"),
            "principal_fen": (apps["amount"] * 100).round().astype(np.int64),
            "months": apps["term_months"],
            "state": "A",
            "customer_age": apps["age"],
            "score": 700 - 30 * apps["rate"] / apps["rate"].std(),
            "income": apps["declared_income"],
            "gender": "X",
        }
    )
    export.to_csv(tmp_path / "loans.csv", index=False)
    inst = book.installments
    pd.DataFrame(
        {
            "loan_no": "L-" + inst["loan_id"].astype(str),
            "n": inst["seq"],
            "due": inst["due_date"].dt.strftime("%Y-%m-%d"),
            "due_fen": (inst["amount_due"] * 100).round(),
            "paid_on": inst["paid_date"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "paid_fen": (inst["amount_paid"] * 100).round(),
        }
    ).to_csv(tmp_path / "schedule.csv", index=False)
    mapping = (
        MAPPING.replace('as_of: "2025-06-01"', 'as_of: "2026-01-01"')
        .replace("      channel: {const: app}\n", "      declared_income: income\n")
        .replace("    rules: {age: clip, amount: drop}\n", "")
    )
    (tmp_path / "mapping.yaml").write_text(mapping)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["features"]["application_columns"] = [
        {"name": "credit_score", "kind": "numeric", "description": "low credit score", "monotone": -1}
    ]
    params["train"]["num_boost_round"] = 100
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for step in (
        ["adapt", "--mapping", "mapping.yaml"],
        ["--json", "validate"],
        ["features"],
        ["train"],
        ["evaluate"],
        ["score", "--model-path", "models/trained/lightgbm"],
    ):
        code = main(step)
        out = capsys.readouterr()
        assert code == 0, (step, out.err[-2000:])
        if step == ["--json", "validate"]:
            assert json.loads(out.out)["ignored_columns"] == {}  # gender was never mapped
    scores = pd.read_parquet(tmp_path / "data" / "nightly" / "2026-01-01" / "scores.parquet")
    assert len(scores) > 500 and scores["probability"].between(0, 1).all()
    dictionary = json.loads((tmp_path / "data" / "features" / "dictionary.json").read_text())["features"]
    assert dictionary["ax_credit_score"]["description"] == "low credit score"
    metrics = json.loads((tmp_path / "models" / "evaluation" / "metrics.json").read_text())
    assert metrics["lightgbm"]["auc"] > 0.75


NA_CSV = """\
loan_no,customer,applied,paid_out,principal_fen,months,state,customer_age,score,gender,income
L-1,C-1,2025/01/02 09:15,2025/01/02 10:00,600000,6,A,30,710,F,5000
L-2,C-2,2025/01/03 11:00,2025/01/03 12:30,1200000,12,A,NA,650,M,unknown
L-3,C-3,2025/01/04 08:00,,500000,6,D,45,NA,F,-1
"""


def test_null_markers_are_declared_per_input_and_per_column_and_an_undeclared_one_is_named_by_row(export):
    """A CSV's 'NA' (and a column's own 'unknown' / '-1') read as missing once declared; undeclared, the error
    names the column, the row (file order) and the value, and says how to declare it."""
    (export / "loans.csv").write_text(NA_CSV)
    mapping = MAPPING.replace(
        "      credit_score: score\n",
        '      credit_score: score\n      declared_income: {column: income, na_values: [unknown, "-1"]}\n',
    )
    (export / "mapping.yaml").write_text(mapping)
    with pytest.raises(DataValidationError) as err:
        apply_mapping(load_mapping(export / "mapping.yaml"), export, CONTRACT)
    message = str(err.value)
    assert "column 'age'" in message and "row 2 holds 'NA'" in message and "na_values" in message
    (export / "mapping.yaml").write_text(
        mapping.replace("loans: {file: loans.csv}", 'loans: {file: loans.csv, na_values: ["NA"]}')
    )
    apps = (
        apply_mapping(load_mapping(export / "mapping.yaml"), export, CONTRACT)
        .tables["applications"]
        .set_index("loan_id")
    )
    assert pd.isna(apps.loc[2, "age"]) and pd.isna(apps.loc[3, "credit_score"]) and apps.loc[1, "credit_score"] == 710
    assert apps.loc[1, "declared_income"] == 5000 and apps[["declared_income"]].loc[[2, 3]].isna().all().all()


def test_file_order_is_kept_so_row_numbers_can_be_ids(export):
    mapping = MAPPING.replace(
        'from: {sql: "SELECT *, CAST(substr(loan_no, 3) AS BIGINT) AS id FROM loans"}',
        'from: {sql: "SELECT *, row_number() OVER () AS id FROM loans"}',
    )
    (export / "mapping.yaml").write_text(mapping)
    apps = apply_mapping(load_mapping(export / "mapping.yaml"), export, CONTRACT).tables["applications"]
    assert apps.sort_values("loan_id")["applied_at"].is_monotonic_increasing  # ids follow the file's rows
