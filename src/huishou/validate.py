"""Validate every raw table against its contract and the tables against each other.

Per-table rules (types, ranges, allowed values, keys) come from `huishou.schemas`;
cross-table rules (referential integrity, dates in order, nothing after the extract
date) live here. The first broken rule raises DataValidationError naming the file,
column, rule and a few offending rows; the stage then writes nothing, so every
downstream output stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from huishou.io import file_md5, read_json, write_json
from huishou.schemas import ALL_TABLES, REQUIRED_TABLES, DataValidationError, validate_table

MAX_SHOWN = 5
REPORT_NAME = "report.json"


def _fail_rows(source: str, column: str, rule: str, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    raise DataValidationError(
        f"{source}: column '{column}' breaks rule '{rule}' in {len(rows)} row(s); first {min(len(rows), MAX_SHOWN)}:\n"
        + rows.head(MAX_SHOWN).to_string()
    )


def _check_refs(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str]) -> None:
    loans = tables["applications"]["loan_id"]
    for name in ("installments", "callbacks", "collection_actions"):
        if name in tables:
            df = tables[name]
            _fail_rows(sources[name], "loan_id", "must exist in applications.loan_id", df[~df["loan_id"].isin(loans)])


def _check_dates(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str], as_of: pd.Timestamp) -> None:
    apps = tables["applications"]
    src = sources["applications"]
    _fail_rows(src, "disbursed_at", "disbursed_at >= applied_at", apps[apps["disbursed_at"] < apps["applied_at"]])
    _fail_rows(src, "disbursed_at", f"before the extract date {as_of.date()}", apps[apps["disbursed_at"] >= as_of])
    disb = apps.set_index("loan_id")["disbursed_at"]
    inst = tables["installments"]
    src = sources["installments"]
    when = inst["loan_id"].map(disb)
    _fail_rows(src, "due_date", "due_date after disbursed_at", inst[inst["due_date"] <= when])
    _fail_rows(src, "paid_date", "paid_date on or after the loan's disbursal day",
               inst[inst["paid_date"] < when.dt.normalize()])
    _fail_rows(src, "paid_date", f"paid_date before the extract date {as_of.date()}", inst[inst["paid_date"] >= as_of])
    _fail_rows(src, "amount_paid", "amount_paid <= amount_due (+1 %)", inst[inst["amount_paid"] > inst["amount_due"] * 1.01])
    _fail_rows(src, "amount_paid", "amount_paid is 0 when paid_date is empty",
               inst[inst["paid_date"].isna() & (inst["amount_paid"] > 0)])
    for name, col in (("callbacks", "called_at"), ("collection_actions", "action_at")):
        if name in tables:
            df = tables[name]
            when = df["loan_id"].map(disb)
            _fail_rows(sources[name], col, f"{col} after the loan's disbursed_at", df[df[col] < when])
            _fail_rows(sources[name], col, f"{col} before the extract date {as_of.date()}", df[df[col] >= as_of])


def validate_book(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp,
                  sources: Mapping[str, str] | None = None) -> dict:
    """Validate all tables; return a summary (row counts) or raise DataValidationError."""
    sources = {name: (sources or {}).get(name, name) for name in tables}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DataValidationError(f"missing required table(s) {missing}; expected files {[t + '.parquet' for t in missing]}")
    unknown = sorted(set(tables) - set(ALL_TABLES))
    if unknown:
        raise DataValidationError(f"unknown table(s) {unknown}; known: {list(ALL_TABLES)}")
    for name, df in tables.items():
        validate_table(df, name, sources[name])
    _check_refs(tables, sources)
    _check_dates(tables, sources, pd.Timestamp(as_of))
    return {name: len(df) for name, df in tables.items()}


def raw_paths(raw_dir: str | Path) -> dict[str, Path]:
    """Every known table present under raw_dir as `<table>.parquet`."""
    raw_dir = Path(raw_dir)
    return {name: raw_dir / f"{name}.parquet" for name in ALL_TABLES if (raw_dir / f"{name}.parquet").exists()}


def read_raw(raw_dir: str | Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in raw_paths(raw_dir).items()}


def read_manifest(raw_dir: str | Path) -> dict:
    """raw_dir/manifest.json: the data source and its extract date `as_of`."""
    path = Path(raw_dir) / "manifest.json"
    if not path.exists():
        raise DataValidationError(f"{path}: missing; it must name the extract date, e.g. {{\"as_of\": \"2026-01-01\"}}")
    manifest = read_json(path)
    if "as_of" not in manifest:
        raise DataValidationError(f"{path}: key 'as_of' (extract date) is missing")
    return manifest


def run(settings) -> dict:
    """`huishou validate`: check data/raw and record what was validated (file hashes)."""
    raw_dir = Path(settings.data.raw_dir)
    manifest = read_manifest(raw_dir)
    tables = read_raw(raw_dir)
    sources = {name: str(raw_dir / f"{name}.parquet") for name in tables}
    counts = validate_book(tables, pd.Timestamp(manifest["as_of"]), sources)
    report = {"as_of": manifest["as_of"], "source": manifest.get("source", "unknown"), "rows": counts,
              "md5": {name: file_md5(raw_dir / f"{name}.parquet") for name in tables}}
    write_json(report, Path(settings.data.validated_dir) / REPORT_NAME)
    return report


def assert_validated(raw_dir: str | Path, validated_dir: str | Path) -> dict:
    """Refuse raw files that changed since `huishou validate` passed on them."""
    report_path = Path(validated_dir) / REPORT_NAME
    if not report_path.exists():
        raise DataValidationError(f"{report_path}: not found; run `huishou validate` first")
    report = read_json(report_path)
    for name, md5 in report["md5"].items():
        path = Path(raw_dir) / f"{name}.parquet"
        if not path.exists() or file_md5(path) != md5:
            raise DataValidationError(f"{path}: changed since validation; run `huishou validate` again")
    return report
