"""Table contracts for the raw loan book, enforced at the boundary with pandera.

Each raw table is declared once here (columns, types, ranges, allowed values, keys);
`validate_table` turns pandera's failure cases into one readable error that names the
file, the column, the rule broken and the keys of a few offending rows with the failing value
(never whole rows: incomes, employers and the like stay out of logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pandera.pandas as pa

from huishou.core.errors import DataValidationError
from huishou.core.vocab import (
    ACTIONS,
    ANSWERED_BY,
    APPLICATION_STATUSES,
    CONTACTS,
    EMERGENCY_RELATIONS,
    EMERGENCY_SLOTS,
    OUTCOMES,
    POLICY_STAGES,
    PREFERENCES,
)


@dataclass(frozen=True)
class Col:
    """One column's contract: type, nullability, presence, bounds (floats must also be finite), allowed values.

    A column that is not `required` may be absent from the file: it is then read as all missing (or as
    `default`). Business ranges (age, term, amount ...) come from params.yaml `contracts.ranges`.
    """

    dtype: str  # int | float | str | bool | datetime | category (any type, read as text)
    nullable: bool = False
    required: bool = True
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    isin: tuple | None = None
    default: object = None


SPECS: dict[str, dict[str, Col]] = {
    "applications": {
        "borrower_id": Col("int", ge=1),
        "loan_id": Col("int", ge=1),
        "applied_at": Col("datetime"),
        "disbursed_at": Col("datetime", nullable=True),  # empty only for applications not approved
        "amount": Col("float", ge=0),
        "term_months": Col("int", ge=1),
        "status": Col("str", required=False, isin=APPLICATION_STATUSES, default="approved"),
        "rate": Col("float", nullable=True, required=False, ge=0),
        "declared_income": Col("float", nullable=True, required=False, ge=0),
        "employer": Col("str", nullable=True, required=False),
        "employment_type": Col("str", nullable=True, required=False),
        "purpose": Col("str", nullable=True, required=False),
        "age": Col("int", nullable=True, required=False, ge=0),
        "city_tier": Col("int", nullable=True, required=False),
        "channel": Col("str", nullable=True, required=False),
        "device_os": Col("str", nullable=True, required=False),
        "phone_age_months": Col("int", nullable=True, required=False, ge=0),
        "n_earlier_loans": Col("int", nullable=True, required=False, ge=0),
        "timezone": Col("str", nullable=True, required=False),  # the borrower's IANA zone (empty: the lender's)
        "language": Col("str", nullable=True, required=False),  # the borrower's language code (empty: the
        # strategy.default_language): a call, visit, plan or settlement goes to a collector who speaks it
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
        "promised_date": Col("datetime", nullable=True, required=False),  # with a promise to pay: by when
    },
    "contact_preferences": {  # what the borrower asked for: opt-outs, cease, complaint holds, consent windows
        "borrower_id": Col("int", ge=1),
        "kind": Col("str", isin=PREFERENCES),
        "channel": Col("str", nullable=True, required=False, isin=CONTACTS),  # opt_out: which channel
        "valid_from": Col("datetime"),
        "valid_until": Col("datetime", nullable=True, required=False),  # empty: until revoked
        "window_start": Col("str", nullable=True, required=False),  # consent_window: HH:MM, borrower local time
        "window_end": Col("str", nullable=True, required=False),
    },
    "emergency_contacts": {  # at most two per borrower, entered by the borrower (names and phones: the CRM's)
        "borrower_id": Col("int", ge=1),
        "slot": Col("int", isin=EMERGENCY_SLOTS),
        "relation": Col("str", isin=EMERGENCY_RELATIONS),
        "entered_by": Col("str"),  # must be the borrower: checked with the rule's source (validation)
        "entered_at": Col("datetime"),
    },
    "attributes": {  # the lender's borrower-level attributes with the date each became known (+ declared columns)
        "borrower_id": Col("int", ge=1),
        "as_of": Col("datetime"),
    },
    "outcomes": {  # given labels: they override the derived target of (loan, snapshot)
        "loan_id": Col("int", ge=1),
        "snapshot_date": Col("datetime"),
        "target": Col("int", isin=(0, 1)),
    },
}
KEYS = {  # unique per table: a repeated key is a duplicated record
    "applications": ["loan_id"],
    "installments": ["loan_id", "seq"],
    "callbacks": ["loan_id", "called_at"],
    "collection_actions": ["loan_id", "action_at", "channel"],
    "attributes": ["borrower_id", "as_of"],
    "outcomes": ["loan_id", "snapshot_date"],
    "contact_preferences": ["borrower_id", "kind", "channel", "valid_from"],
    "emergency_contacts": ["borrower_id", "slot"],
}
EXTRA_TABLES = {"application_columns": "applications", "attributes": "attributes"}  # where declared columns live


@dataclass(frozen=True)
class Contract:
    """The contracts as params.yaml completes them.

    Parameters
    ----------
    ranges : dict of "table.column" to (low, high)
        Inclusive business ranges (contracts.ranges), on top of the structural bounds above.
    extras : dict of table to dict of column to kind
        The lender's declared columns (features.application_columns, features.attributes):
        kind "numeric" (finite numbers) or "categorical" (any values, read as text).
    protected : tuple of str
        Column names never used as features (features.protected), ignored wherever they appear.
    """

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    extras: dict[str, dict[str, str]] = field(default_factory=dict)
    protected: tuple[str, ...] = ()
    protected_synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, contracts, features) -> Contract:
        """From params.yaml `contracts` and `features` (application_columns, attributes, protected)."""
        extras: dict[str, dict[str, str]] = {}
        for item in features.application_columns:
            extras.setdefault("applications", {})[item["name"]] = item["kind"]
        for item in features.attributes:
            extras.setdefault("attributes", {})[item["name"]] = item["kind"]
        ranges = {k: (v[0], v[1]) for k, v in contracts.ranges.items()}
        synonyms = {k: tuple(v) for k, v in (features.protected_synonyms or {}).items()}
        return cls(ranges, extras, tuple(p.lower() for p in features.protected), synonyms)

    def protected_column(self, name: str) -> bool:
        """Whether a column's name names a protected characteristic (features.protected or a synonym)."""
        from huishou.core.settings.features import protected_match

        terms = {p: [] for p in self.protected} | {k: list(v) for k, v in self.protected_synonyms.items()}
        return protected_match(name, "", terms) is not None

    def spec(self, table: str) -> dict[str, Col]:
        cols = dict(SPECS[table])
        for key, (lo, hi) in self.ranges.items():
            t, c = key.split(".", 1)
            if t == table and c in cols:
                cols[c] = replace(cols[c], ge=lo, le=hi)
        for name, kind in self.extras.get(table, {}).items():
            cols[name] = Col("float" if kind == "numeric" else "category", nullable=True)
        return cols

    def ignored(self, table: str, columns) -> list[str]:
        """Columns of a table that huishou will not read (protected ones included)."""
        return [c for c in columns if c not in self.spec(table)]


DEFAULT = Contract()
_PANDERA_DTYPE = {
    "int": "int64",
    "float": "float64",
    "str": "str",
    "bool": "bool",
    "datetime": "datetime64[us]",
    "category": "str",
}


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
    """A nullable integer column as pandas writes it when it holds nulls: floats with whole values, and at
    least one null (without one, floats are floats: 1.0, 2.0 for an integer column is refused)."""
    if not pd.api.types.is_float_dtype(s):
        return False
    values = s.dropna()
    return len(values) < len(s) and bool(np.isfinite(values).all() and (values == values.round()).all())


def _bools(s: pd.Series) -> bool:
    """True/False values: a bool dtype, or objects that are Python or NumPy bools (a nullable boolean column
    read with nulls); integers 0/1 are not booleans."""
    if pd.api.types.is_bool_dtype(s):
        return True
    return s.dtype == object and s.dropna().map(lambda v: isinstance(v, bool | np.bool_)).all()


def _kind_ok(series: pd.Series, kind: str, nullable: bool = False) -> bool:
    if nullable and len(series) and series.isna().all():
        return True  # an entirely missing column carries no type
    checks = {
        "int": lambda s: pd.api.types.is_integer_dtype(s) or (nullable and _integral_floats(s)),
        "float": lambda s: pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s),
        "str": lambda s: pd.api.types.is_string_dtype(s) or s.isna().all(),
        "bool": _bools,
        "datetime": lambda s: pd.api.types.is_datetime64_any_dtype(s) and not isinstance(s.dtype, pd.DatetimeTZDtype),
        "category": lambda s: not pd.api.types.is_datetime64_any_dtype(s),
    }
    return bool(checks[kind](series))


def pandera_schema(table: str, contract: Contract = DEFAULT) -> pa.DataFrameSchema:
    """Value-level rules; types are checked first by `_check_types` for clearer messages."""
    columns = {
        name: pa.Column(None, checks=_checks(col), nullable=col.nullable, required=True)
        for name, col in contract.spec(table).items()
    }
    return pa.DataFrameSchema(columns, unique=KEYS[table], strict=False, name=table)


def _check_types(df: pd.DataFrame, table: str, source: str, contract: Contract) -> None:
    spec = contract.spec(table)
    missing = [c for c, col in spec.items() if col.required and c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {missing} (rule: required columns of '{table}')")
    for name, col in spec.items():
        if name not in df.columns:
            continue
        if isinstance(df[name].dtype, pd.DatetimeTZDtype):
            raise DataValidationError(
                f"{source}: column '{name}' holds time-zone-aware timestamps ({df[name].dtype.tz}), rule: the book's "
                "times are the lender's local time without a zone; convert them to local time first (e.g. with "
                "tz_convert(<lender zone>).tz_localize(None), or a mapping's timezone in `huishou adapt`)"
            )
        if not _kind_ok(df[name], col.dtype, col.nullable):
            raise DataValidationError(
                f"{source}: column '{name}' has dtype {df[name].dtype}, rule: must be {col.dtype}"
            )


def complete_columns(df: pd.DataFrame, table: str, contract: Contract = DEFAULT) -> pd.DataFrame:
    """The table with every contract column: absent optional columns as missing values (or their default)."""
    spec = contract.spec(table)
    absent = {c: col for c, col in spec.items() if c not in df.columns}
    untyped = [c for c in spec if c in df.columns and df[c].dtype == object and len(df) and df[c].isna().all()]
    if not absent and not untyped:
        return df
    out = df.copy()
    for name in untyped:  # an entirely missing column read without a type gets the contract's
        out[name] = pd.Series(None, index=df.index, dtype=_MISSING_DTYPE[spec[name].dtype])
    for name, col in absent.items():
        dtype = _PANDERA_DTYPE[col.dtype] if col.default is not None else _MISSING_DTYPE[col.dtype]
        out[name] = pd.Series(col.default, index=df.index, dtype=dtype)
    return out


_MISSING_DTYPE = {
    "int": "Int64",
    "float": "float64",
    "str": "str",
    "bool": "boolean",
    "datetime": "datetime64[us]",
    "category": "str",
}


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


def validate_table(
    df: pd.DataFrame, table: str, source: str | None = None, contract: Contract = DEFAULT
) -> pd.DataFrame:
    """Check one raw table against its contract; raise DataValidationError naming what broke."""
    source = source or table
    _check_types(df, table, source, contract)
    try:
        pandera_schema(table, contract).validate(complete_columns(df, table, contract), lazy=True)
    except pa.errors.SchemaErrors as err:
        raise DataValidationError(format_failures(source, err.failure_cases, df, table)) from None
    return df


def empty_table(table: str, contract: Contract = DEFAULT) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes (for absent optional tables)."""
    dtypes = {
        n: (_MISSING_DTYPE if col.nullable else _PANDERA_DTYPE)[col.dtype] for n, col in contract.spec(table).items()
    }
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})
