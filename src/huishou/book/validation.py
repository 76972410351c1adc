"""Validate every raw table against its contract and the tables against each other (pure: frames in).

Per-table rules (types, ranges, allowed values, keys) come from `huishou.book.contracts`;
cross-table rules (referential integrity, dates in order, nothing after the extract
date) live here. The first broken rule raises DataValidationError naming the file,
column, rule and a few offending rows; the stage then writes nothing, so every
downstream output stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from huishou.book.contracts import validate_table
from huishou.errors import DataValidationError
from huishou.vocab import ALL_TABLES, REQUIRED_TABLES

MAX_SHOWN = 5


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
    _fail_rows(
        src,
        "paid_date",
        "paid_date on or after the loan's disbursal day",
        inst[inst["paid_date"] < when.dt.normalize()],
    )
    _fail_rows(src, "paid_date", f"paid_date before the extract date {as_of.date()}", inst[inst["paid_date"] >= as_of])
    _fail_rows(
        src, "amount_paid", "amount_paid <= amount_due (+1 %)", inst[inst["amount_paid"] > inst["amount_due"] * 1.01]
    )
    _fail_rows(
        src,
        "amount_paid",
        "amount_paid is 0 when paid_date is empty",
        inst[inst["paid_date"].isna() & (inst["amount_paid"] > 0)],
    )
    for name, col in (("callbacks", "called_at"), ("collection_actions", "action_at")):
        if name in tables:
            df = tables[name]
            when = df["loan_id"].map(disb)
            _fail_rows(sources[name], col, f"{col} after the loan's disbursed_at", df[df[col] < when])
            _fail_rows(sources[name], col, f"{col} before the extract date {as_of.date()}", df[df[col] >= as_of])


def validate_book(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, sources: Mapping[str, str] | None = None
) -> dict:
    """Validate all tables; return a summary (row counts) or raise DataValidationError."""
    sources = {name: (sources or {}).get(name, name) for name in tables}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DataValidationError(
            f"missing required table(s) {missing}; expected files {[t + '.parquet' for t in missing]}"
        )
    unknown = sorted(set(tables) - set(ALL_TABLES))
    if unknown:
        raise DataValidationError(f"unknown table(s) {unknown}; known: {list(ALL_TABLES)}")
    for name, df in tables.items():
        validate_table(df, name, sources[name])
    _check_refs(tables, sources)
    _check_dates(tables, sources, pd.Timestamp(as_of))
    return {name: len(df) for name, df in tables.items()}
