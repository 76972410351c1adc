"""Each class of bad input stops validation with the file, column, rule and offending rows named."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from huishou.book.contracts import Contract
from huishou.book.validation import validate_book
from huishou.cli import main
from huishou.core.errors import DataValidationError
from huishou.core.io import write_parquet

from conftest import ROOT_SETTINGS

SRC = "data/raw/{}.parquet"


def _tables(book):
    return {k: v.copy() for k, v in book.raw_tables().items()}


CONTRACT = Contract.from_settings(ROOT_SETTINGS.contracts, ROOT_SETTINGS.features)


def _expect(tables, as_of, *fragments):
    with pytest.raises(DataValidationError) as err:
        validate_book(tables, as_of, {k: SRC.format(k) for k in tables}, CONTRACT)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    return str(err.value)


def test_clean_simulated_book_passes(book, settings):
    checked = validate_book(book.raw_tables(), settings.simulate.as_of, contract=CONTRACT)
    assert checked["rows"]["applications"] == len(book.applications) and checked["ignored_columns"] == {}


def test_missing_column(book, settings):
    t = _tables(book)
    t["installments"] = t["installments"].drop(columns=["amount_due"])
    _expect(t, settings.simulate.as_of, "installments.parquet", "amount_due", "required columns")


def test_wrong_type(book, settings):
    t = _tables(book)
    t["applications"]["amount"] = t["applications"]["amount"].astype(str)
    _expect(t, settings.simulate.as_of, "applications.parquet", "'amount'", "must be float")


def test_whole_floats_in_an_integer_column_without_nulls_are_refused(book, settings):
    t = _tables(book)
    t["applications"]["city_tier"] = t["applications"]["city_tier"].astype(float)  # 1.0, 2.0, 3.0
    _expect(t, settings.simulate.as_of, "applications.parquet", "'city_tier'", "must be int")


def test_integers_zero_one_in_a_boolean_column_are_refused(book, settings):
    t = _tables(book)
    t["collection_actions"]["hardship_reported"] = t["collection_actions"]["hardship_reported"].astype(int)
    _expect(t, settings.simulate.as_of, "collection_actions.parquet", "'hardship_reported'", "must be bool")


def test_nullable_integers_and_booleans_with_nulls_are_still_read(book, settings, tmp_path):
    """What pandas makes of a nullable int or bool column holding nulls (floats, objects) stays accepted."""
    from huishou.book.contracts import _kind_ok

    assert _kind_ok(pd.Series([1.0, None, 3.0]), "int", nullable=True)
    assert not _kind_ok(pd.Series([1.0, 2.0, 3.0]), "int", nullable=True)
    assert _kind_ok(pd.Series([True, None, False], dtype=object), "bool")
    assert not _kind_ok(pd.Series([1, None, 0], dtype=object), "bool")


def test_out_of_range_value_shows_rows(book, settings):
    t = _tables(book)
    t["applications"].loc[5, "age"] = 7
    msg = _expect(t, settings.simulate.as_of, "applications.parquet", "'age'", "greater_than_or_equal_to(18)")
    assert str(t["applications"].loc[5, "loan_id"]) in msg


def test_unknown_category(book, settings):
    t = _tables(book)
    t["collection_actions"].loc[0, "channel"] = "threat_letter"
    _expect(t, settings.simulate.as_of, "collection_actions.parquet", "'channel'", "isin", "threat_letter")


def test_duplicate_key(book, settings):
    t = _tables(book)
    t["installments"] = pd.concat([t["installments"], t["installments"].iloc[[0]]], ignore_index=True)
    _expect(t, settings.simulate.as_of, "installments.parquet", "loan_id", "seq")


def test_null_in_required_column(book, settings):
    t = _tables(book)
    t["installments"].loc[2, "due_date"] = pd.NaT
    _expect(t, settings.simulate.as_of, "installments.parquet", "'due_date'", "not_nullable")


def test_orphan_loan_reference(book, settings):
    t = _tables(book)
    t["callbacks"].loc[0, "loan_id"] = 10**9
    _expect(t, settings.simulate.as_of, "callbacks.parquet", "'loan_id'", "must exist in applications.loan_id")


def test_dates_out_of_order(book, settings):
    t = _tables(book)
    t["applications"].loc[0, "applied_at"] = t["applications"].loc[0, "disbursed_at"] + pd.Timedelta(days=1)
    _expect(t, settings.simulate.as_of, "applications.parquet", "disbursed_at >= applied_at")


def test_event_after_extract_date(book, settings):
    t = _tables(book)
    t["collection_actions"].loc[0, "action_at"] = settings.simulate.as_of + pd.Timedelta(days=3)
    _expect(t, settings.simulate.as_of, "collection_actions.parquet", "'action_at'", "before the extract date")


def test_overpayment(book, settings):
    t = _tables(book)
    paid = t["installments"]["paid_date"].notna().idxmax()
    t["installments"].loc[paid, "amount_paid"] = t["installments"].loc[paid, "amount_due"] * 3
    _expect(t, settings.simulate.as_of, "installments.parquet", "'amount_paid'", "amount_paid <= amount_due")


def test_missing_required_table(book, settings):
    t = _tables(book)
    del t["installments"]
    _expect(t, settings.simulate.as_of, "installments.parquet")


def test_cli_stops_and_keeps_previous_report(tmp_path, book, settings, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(__file__.replace("tests/test_validate.py", "params.yaml"), tmp_path / "params.yaml")
    raw = tmp_path / "data" / "raw"
    for name, frame in book.raw_tables().items():
        write_parquet(frame, raw / f"{name}.parquet")
    (raw / "manifest.json").write_text(json.dumps({"as_of": str(settings.simulate.as_of.date())}))
    assert main(["validate"]) == 0
    report = tmp_path / "data" / "validated" / "report.json"
    good = report.read_text()
    bad = book.installments.copy()
    bad.loc[0, "amount_due"] = -1.0
    write_parquet(bad, raw / "installments.parquet")
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "data/raw/installments.parquet" in err and "'amount_due'" in err
    assert report.read_text() == good
    assert main(["features"]) == 2  # features refuse raw files that changed since validation
    assert "changed since validation" in capsys.readouterr().err


def _book_dir(tmp_path, tables, settings, bucket_loans):
    raw = tmp_path / "data" / "raw"
    for name, frame in tables.items():
        write_parquet(frame, raw / f"{name}.parquet")
    (raw / "manifest.json").write_text(json.dumps({"as_of": str(settings.simulate.as_of.date())}))
    params = tmp_path / "params.yaml"
    root = __file__.replace("tests/test_validate.py", "params.yaml")
    params.write_text(f"extends: {root}\ncontracts: {{bucket_loans: {bucket_loans}}}\n")
    return params


def test_a_book_validated_bucket_by_bucket_reports_what_the_whole_book_does(tmp_path, book, settings, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "data" / "validated" / "report.json"
    params = _book_dir(tmp_path, book.raw_tables(), settings, 10**9)
    assert main(["--params", str(params), "validate"]) == 0
    whole = json.loads(report.read_text())
    params = _book_dir(tmp_path, book.raw_tables(), settings, 500)
    assert main(["--params", str(params), "validate"]) == 0
    bucketed = json.loads(report.read_text())
    assert bucketed.pop("buckets") == -(-len(book.applications) // 500) > 3
    assert bucketed == whole


def _duplicate_loan_of_another_borrower(t):
    row = t["applications"].iloc[[0]].assign(borrower_id=t["applications"]["borrower_id"].max() + 1)
    t["applications"] = pd.concat([t["applications"], row], ignore_index=True)
    return ("applications.parquet", "'unique'", f"loan_id={row['loan_id'].iloc[0]}")


def _repeated_installment(t):
    row = t["installments"].iloc[[len(t["installments"]) // 2]]
    t["installments"] = pd.concat([t["installments"], row], ignore_index=True)
    return ("installments.parquet", "unique", f"loan_id={row['loan_id'].iloc[0]}")


def _orphan(t):
    t["callbacks"].loc[0, "loan_id"] = 10**9
    return ("callbacks.parquet", "'loan_id'", "must exist in applications.loan_id", "loan_id=1000000000")


def _out_of_range(t):
    t["applications"].loc[5, "age"] = 7
    return ("applications.parquet", "'age'", "greater_than_or_equal_to(18)", str(t["applications"].loc[5, "loan_id"]))


def _late_event(t, as_of):
    t["collection_actions"].loc[0, "action_at"] = as_of + pd.Timedelta(days=3)
    return ("collection_actions.parquet", "'action_at'", "before the extract date")


def _overpaid(t):
    paid = t["installments"]["paid_date"].notna().idxmax()
    t["installments"].loc[paid, "amount_paid"] = t["installments"].loc[paid, "amount_due"] * 3
    return ("installments.parquet", "'amount_paid'", "amount_paid <= amount_due")


@pytest.mark.parametrize("breakage", ["duplicate", "repeated", "orphan", "range", "late", "overpaid"])
def test_bucket_by_bucket_validation_refuses_what_the_whole_book_refuses(
    tmp_path, book, settings, monkeypatch, capsys, breakage
):
    """Every class of bad input is caught when the book is validated by bucket, the keys and references
    over the whole files included (a repeated loan of another borrower lands in another bucket)."""
    t = _tables(book)
    break_it = {
        "duplicate": _duplicate_loan_of_another_borrower,
        "repeated": _repeated_installment,
        "orphan": _orphan,
        "range": _out_of_range,
        "late": lambda t: _late_event(t, settings.simulate.as_of),
        "overpaid": _overpaid,
    }[breakage]
    fragments = break_it(t)
    monkeypatch.chdir(tmp_path)
    params = _book_dir(tmp_path, t, settings, 500)
    assert main(["--params", str(params), "validate"]) == 2
    err = capsys.readouterr().err
    assert "huishou validate: error:" in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "data" / "validated" / "report.json").exists()
    assert not [p for p in (tmp_path / "data").rglob(".validate-buckets*")]


def test_emergency_contacts_entered_by_the_borrower_at_most_two(book, settings):
    """TC260 guidance on lending apps' necessary personal information: at most two emergency contacts, entered by
    the borrower; the phone's contact book is never read. A row from anywhere else is refused with the rule."""
    t = _tables(book)
    ec = t["emergency_contacts"]
    ec.loc[ec.index[:4], "entered_by"] = "contact_book"
    message = _expect(t, settings.simulate.as_of, "emergency_contacts.parquet", "entered_by", "contact book")
    assert "TC260" in message and "borrower_id=" in message
    t = _tables(book)
    t["emergency_contacts"].loc[t["emergency_contacts"].index[0], "slot"] = 3  # a third contact
    _expect(t, settings.simulate.as_of, "emergency_contacts.parquet", "slot")
    t = _tables(book)
    t["emergency_contacts"] = pd.concat([t["emergency_contacts"], t["emergency_contacts"].head(1)], ignore_index=True)
    _expect(t, settings.simulate.as_of, "emergency_contacts.parquet", "uniqueness", "borrower_id=")
