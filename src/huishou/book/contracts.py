"""Table contracts for the raw loan book, enforced at the boundary with pandera.

Each raw table is declared once here (columns, types, ranges, allowed values, keys);
`validate_table` turns pandera's failure cases into one readable error that names the
file, the column, the rule broken and the keys of a few offending rows with the failing value
(never whole rows: incomes, employers and the like stay out of logs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from huishou.errors import DataValidationError
from huishou.vocab import ACTIONS, ANSWERED_BY, OUTCOMES, POLICY_STAGES


@dataclass(frozen=True)
class Col:
    """One column's contract: type, nullability, bounds (floats must also be finite), allowed values."""

    dtype: str  # int | float | str | bool | datetime
    nullable: bool = False
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    isin: tuple | None = None


SPECS: dict[str, dict[str, Col]] = {
    "applications": {
        "borrower_id": Col("int", ge=1),
        "loan_id": Col("int", ge=1),
        "applied_at": Col("datetime"),
        "disbursed_at": Col("datetime"),
        "amount": Col("float", ge=1, le=1e7),
        "term_months": Col("int", ge=1, le=60),
        "rate": Col("float", nullable=True, ge=0, le=1.0),
        "declared_income": Col("float", nullable=True, ge=0),
        "employer": Col("str", nullable=True),
        "employment_type": Col("str", nullable=True),
        "purpose": Col("str", nullable=True),
        "age": Col("int", ge=18, le=100),
        "city_tier": Col("int", nullable=True, ge=1, le=4),
        "channel": Col("str", nullable=True),
        "device_os": Col("str", nullable=True),
        "phone_age_months": Col("int", nullable=True, ge=0),
        "n_earlier_loans": Col("int", ge=0),
    },
    "callbacks": {
        "loan_id": Col("int", ge=1),
        "called_at": Col("datetime"),
        "reached": Col("bool"),
        "answered_by": Col("str", isin=ANSWERED_BY),
        "skipped": Col("bool"),
        "identity_verified": Col("bool", nullable=True),
        "stated_purpose": Col("str", nullable=True),
        "stated_income": Col("float", nullable=True, ge=0),
        "stated_employer": Col("str", nullable=True),
        "repayment_plan_stated": Col("str", nullable=True),
        "call_duration_s": Col("float", ge=0),
    },
    "installments": {
        "loan_id": Col("int", ge=1),
        "seq": Col("int", ge=1),
        "due_date": Col("datetime"),
        "amount_due": Col("float", ge=0),
        "paid_date": Col("datetime", nullable=True),
        "amount_paid": Col("float", ge=0),
    },
    "collection_actions": {
        "loan_id": Col("int", ge=1),
        "action_at": Col("datetime"),
        "channel": Col("str", isin=ACTIONS),
        "outcome": Col("str", isin=OUTCOMES),
        "collector_id": Col("str", nullable=True),
        "promised_amount": Col("float", nullable=True, ge=0),
        "hardship_reported": Col("bool"),
        "propensity": Col("float", gt=0, le=1),
        "policy_stage": Col("str", isin=POLICY_STAGES),
    },
}
KEYS = {  # unique per table: a repeated key is a duplicated record
    "applications": ["loan_id"],
    "installments": ["loan_id", "seq"],
    "callbacks": ["loan_id", "called_at"],
    "collection_actions": ["loan_id", "action_at", "channel"],
}
_PANDERA_DTYPE = {"int": "int64", "float": "float64", "str": "str", "bool": "bool", "datetime": "datetime64[us]"}


def _checks(col: Col) -> list[pa.Check]:
    checks = []
    if col.dtype == "float":
        checks.append(pa.Check(lambda s: ~s.isin([np.inf, -np.inf]), element_wise=False, name="finite"))
    if col.gt is not None:
        checks.append(pa.Check.gt(col.gt))
    if col.ge is not None:
        checks.append(pa.Check.ge(col.ge))
    if col.le is not None:
        checks.append(pa.Check.le(col.le))
    if col.isin is not None:
        checks.append(pa.Check.isin(list(col.isin)))
    return checks


def _integral_floats(s: pd.Series) -> bool:
    """A nullable integer column as pandas writes it when it holds nulls: floats with whole values."""
    values = s.dropna()
    return pd.api.types.is_float_dtype(s) and bool(np.isfinite(values).all() and (values == values.round()).all())


def _kind_ok(series: pd.Series, kind: str, nullable: bool = False) -> bool:
    checks = {
        "int": lambda s: pd.api.types.is_integer_dtype(s) or (nullable and _integral_floats(s)),
        "float": pd.api.types.is_numeric_dtype,
        "str": lambda s: pd.api.types.is_string_dtype(s) or s.isna().all(),
        "bool": lambda s: pd.api.types.is_bool_dtype(s) or s.dropna().isin([True, False]).all(),
        "datetime": lambda s: pd.api.types.is_datetime64_any_dtype(s) and not isinstance(s.dtype, pd.DatetimeTZDtype),
    }
    return bool(checks[kind](series))


def pandera_schema(table: str) -> pa.DataFrameSchema:
    """Value-level rules; types are checked first by `_check_types` for clearer messages."""
    columns = {
        name: pa.Column(None, checks=_checks(col), nullable=col.nullable, required=True)
        for name, col in SPECS[table].items()
    }
    return pa.DataFrameSchema(columns, unique=KEYS[table], strict=False, name=table)


def _check_types(df: pd.DataFrame, table: str, source: str) -> None:
    missing = [c for c in SPECS[table] if c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {missing} (rule: required columns of '{table}')")
    for name, col in SPECS[table].items():
        if isinstance(df[name].dtype, pd.DatetimeTZDtype):
            raise DataValidationError(
                f"{source}: column '{name}' holds time-zone-aware timestamps ({df[name].dtype.tz}), rule: the book's "
                "times are the lender's local time without a zone; convert them to local time first (e.g. with "
                "tz_convert(<lender zone>).tz_localize(None))"
            )
        if not _kind_ok(df[name], col.dtype, col.nullable):
            raise DataValidationError(
                f"{source}: column '{name}' has dtype {df[name].dtype}, rule: must be {col.dtype}"
            )


def row_keys(df: pd.DataFrame, table: str, index: list) -> list[str]:
    """The identifying keys of rows (e.g. 'loan_id=12, seq=3'): what an error may show of a row."""
    cols = [c for c in KEYS[table] if c in df.columns]
    rows = df.loc[[i for i in index if i in df.index], cols]
    return [", ".join(f"{c}={_short(v)}" for c, v in zip(cols, r, strict=True)) for r in rows.itertuples(index=False)]


def _short(value) -> str:
    return str(value.date()) if isinstance(value, pd.Timestamp) and value == value.normalize() else str(value)


def format_failures(source: str, failures: pd.DataFrame, df: pd.DataFrame, table: str, max_rows: int = 5) -> str:
    """One line per broken rule: column, rule, count, the first offending rows' keys and failing values."""
    lines = [f"{source}: {len(failures)} value(s) break the table contract"]
    for (column, check), group in failures.groupby(["column", "check"], dropna=False, sort=False):
        idx = [i for i in group["index"].tolist() if i is not None and not pd.isna(i)][:max_rows]
        keys = row_keys(df, table, idx)
        lines.append(
            f"  column '{column}', rule {check}: {len(group)} row(s), e.g. values "
            f"{group['failure_case'].head(max_rows).tolist()}" + (f" at [{'; '.join(keys)}]" if keys else "")
        )
    return "\n".join(lines)


def validate_table(df: pd.DataFrame, table: str, source: str | None = None) -> pd.DataFrame:
    """Check one raw table against its contract; raise DataValidationError naming what broke."""
    source = source or table
    _check_types(df, table, source)
    try:
        pandera_schema(table).validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise DataValidationError(format_failures(source, err.failure_cases, df, table)) from None
    return df


def empty_table(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes (for absent optional tables)."""
    return pd.DataFrame({name: pd.Series(dtype=_PANDERA_DTYPE[col.dtype]) for name, col in SPECS[table].items()})
