"""Validate every raw table against its contract and the tables against each other (pure: frames in).

Per-table rules (types, ranges, finiteness, allowed values, keys) come from
`huishou.book.contracts`; cross-table rules live here: referential integrity, a schedule per
approved loan consistent with its term, dates in order, nothing on or after the extract date,
amounts consistent with payments, outcomes possible for their channel. The first broken rule
raises DataValidationError naming the file, column, rule and the keys of a few offending rows
(never whole rows of personal data); the stage then writes nothing, so every downstream output
stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from huishou.book.contracts import DEFAULT, Contract, complete_columns, empty_table, row_keys, validate_table
from huishou.core.errors import DataValidationError
from huishou.core.vocab import ALL_TABLES, ENTERED_BY_BORROWER, OUTCOMES_BY_ACTION, REQUIRED_TABLES

MAX_SHOWN = 5
MONTH = pd.Timedelta(days=31)  # the schedule contract counts a month as at most 31 days


def _fail_rows(source: str, table: str, column: str, rule: str, df: pd.DataFrame, bad: pd.Series) -> None:
    """Raise naming the rule and the first offending rows by their keys and the failing value."""
    if not bad.any():
        return
    rows = df.loc[bad]
    idx = rows.index[:MAX_SHOWN].tolist()
    keys = row_keys(df, table, idx)
    values = [_value(v) for v in rows[column].head(MAX_SHOWN)] if column in rows else []
    shown = "; ".join(f"{k} ({column}={v})" if values else k for k, v in zip(keys, values or keys, strict=True))
    raise DataValidationError(
        f"{source}: column '{column}' breaks rule '{rule}' in {int(bad.sum())} row(s), e.g. {shown}"
    )


def _value(v) -> str:
    return "null" if pd.isna(v) else str(v)


def _check_refs(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str]) -> None:
    apps = tables["applications"]
    loans, approved = apps["loan_id"], apps.loc[apps["status"] == "approved", "loan_id"]
    for name in ("installments", "callbacks", "collection_actions", "outcomes"):
        if name in tables:
            df = tables[name]
            _fail_rows(
                sources[name], name, "loan_id", "must exist in applications.loan_id", df, ~df["loan_id"].isin(loans)
            )
    for name in ("installments", "callbacks", "collection_actions"):
        if name in tables:
            df = tables[name]
            rule = "only approved (disbursed) loans have a schedule, calls and collection actions"
            _fail_rows(sources[name], name, "loan_id", rule, df, ~df["loan_id"].isin(approved))
    if "attributes" in tables:
        df = tables["attributes"]
        bad = ~df["borrower_id"].isin(apps["borrower_id"])
        _fail_rows(
            sources["attributes"], "attributes", "borrower_id", "must exist in applications.borrower_id", df, bad
        )


def _check_schedule(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str]) -> None:
    """Every approved loan has a schedule: installments numbered 1..n, due on distinct increasing days,
    the last within (term_months + 1) x 31 days of disbursal."""
    apps, inst = tables["applications"], tables["installments"]
    src = sources["installments"]
    missing = (apps["status"] == "approved") & ~apps["loan_id"].isin(inst["loan_id"])
    _fail_rows(
        sources["applications"], "applications", "loan_id", "every approved loan has installments", apps, missing
    )
    ordered = inst.sort_values(["loan_id", "seq"])
    per_loan = ordered.groupby("loan_id", sort=False)
    n = per_loan["seq"].transform("size")
    _fail_rows(
        src, "installments", "seq", "numbered 1..n within each loan", ordered, per_loan["seq"].transform("max") != n
    )
    prev_due = per_loan["due_date"].shift()
    _fail_rows(src, "installments", "due_date", "due dates increase with seq", ordered, prev_due >= ordered["due_date"])
    loans = apps.set_index("loan_id")
    end = ordered["loan_id"].map(loans["disbursed_at"]) + (ordered["loan_id"].map(loans["term_months"]) + 1) * MONTH
    rule = "due within (term_months + 1) x 31 days of disbursal"
    _fail_rows(src, "installments", "due_date", rule, ordered, ordered["due_date"] > end)


def _check_dates(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str], as_of: pd.Timestamp) -> None:
    apps = tables["applications"]
    src = sources["applications"]
    approved = apps["status"] == "approved"
    _fail_rows(
        src,
        "applications",
        "disbursed_at",
        "set exactly when status is approved",
        apps,
        approved == apps["disbursed_at"].isna(),
    )
    _fail_rows(
        src,
        "applications",
        "disbursed_at",
        "disbursed_at >= applied_at",
        apps,
        apps["disbursed_at"] < apps["applied_at"],
    )
    _fail_rows(
        src, "applications", "applied_at", f"before the extract date {as_of.date()}", apps, apps["applied_at"] >= as_of
    )
    _fail_rows(
        src,
        "applications",
        "disbursed_at",
        f"before the extract date {as_of.date()}",
        apps,
        apps["disbursed_at"] >= as_of,
    )
    disb = apps.set_index("loan_id")["disbursed_at"]
    inst = tables["installments"]
    src = sources["installments"]
    when = inst["loan_id"].map(disb)
    _fail_rows(src, "installments", "due_date", "due_date after disbursed_at", inst, inst["due_date"] <= when)
    _fail_rows(
        src,
        "installments",
        "paid_date",
        "paid_date on or after the loan's disbursal day",
        inst,
        inst["paid_date"] < when.dt.normalize(),
    )
    _fail_rows(
        src,
        "installments",
        "paid_date",
        f"paid_date before the extract date {as_of.date()}",
        inst,
        inst["paid_date"] >= as_of,
    )
    _fail_rows(
        src,
        "installments",
        "amount_paid",
        "amount_paid <= amount_due (+1 %)",
        inst,
        inst["amount_paid"] > inst["amount_due"] * 1.01,
    )
    _fail_rows(
        src,
        "installments",
        "amount_paid",
        "amount_paid is 0 when paid_date is empty",
        inst,
        inst["paid_date"].isna() & (inst["amount_paid"] > 0),
    )
    _fail_rows(
        src,
        "installments",
        "amount_paid",
        "amount_paid > 0 when paid_date is set (and something was due)",
        inst,
        inst["paid_date"].notna() & (inst["amount_paid"] <= 0) & (inst["amount_due"] > 0),
    )
    for name, col in (("callbacks", "called_at"), ("collection_actions", "action_at")):
        if name in tables:
            df = tables[name]
            when = df["loan_id"].map(disb)
            _fail_rows(sources[name], name, col, f"{col} after the loan's disbursed_at", df, df[col] < when)
            _fail_rows(sources[name], name, col, f"{col} before the extract date {as_of.date()}", df, df[col] >= as_of)
    if "attributes" in tables:
        df = tables["attributes"]
        _fail_rows(
            sources["attributes"],
            "attributes",
            "as_of",
            f"as_of before the extract date {as_of.date()}",
            df,
            df["as_of"] >= as_of,
        )
    if "outcomes" in tables:
        df = tables["outcomes"]
        _fail_rows(
            sources["outcomes"],
            "outcomes",
            "snapshot_date",
            "a midnight (a snapshot date)",
            df,
            df["snapshot_date"] != df["snapshot_date"].dt.normalize(),
        )
        _fail_rows(
            sources["outcomes"],
            "outcomes",
            "snapshot_date",
            f"before the extract date {as_of.date()}",
            df,
            df["snapshot_date"] >= as_of,
        )


def _check_conduct(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str], as_of: pd.Timestamp) -> None:
    """Time zones, promises and contact preferences."""
    apps = tables["applications"]
    zones = apps["timezone"].dropna()
    bad_zone = apps["timezone"].notna() & ~apps["timezone"].isin(_known_zones(zones.unique()))
    _fail_rows(
        sources["applications"], "applications", "timezone", "an IANA time zone (e.g. Asia/Shanghai)", apps, bad_zone
    )
    if "collection_actions" in tables:
        acts = tables["collection_actions"]
        src = sources["collection_actions"]
        _fail_rows(
            src,
            "collection_actions",
            "promised_date",
            "only with outcome promise_to_pay",
            acts,
            acts["promised_date"].notna() & (acts["outcome"] != "promise_to_pay"),
        )
        _fail_rows(
            src,
            "collection_actions",
            "promised_date",
            "on or after the day of the promise",
            acts,
            acts["promised_date"] < acts["action_at"].dt.normalize(),
        )
    if "contact_preferences" in tables:
        prefs = tables["contact_preferences"]
        src = sources["contact_preferences"]
        _fail_rows(
            src,
            "contact_preferences",
            "borrower_id",
            "must exist in applications.borrower_id",
            prefs,
            ~prefs["borrower_id"].isin(apps["borrower_id"]),
        )
        _fail_rows(
            src,
            "contact_preferences",
            "valid_from",
            f"before the extract date {as_of.date()}",
            prefs,
            prefs["valid_from"] >= as_of,
        )
        _fail_rows(
            src,
            "contact_preferences",
            "valid_until",
            "after valid_from",
            prefs,
            prefs["valid_until"] <= prefs["valid_from"],
        )
        _fail_rows(
            src,
            "contact_preferences",
            "channel",
            "set for an opt_out (the channel opted out of)",
            prefs,
            (prefs["kind"] == "opt_out") & prefs["channel"].isna(),
        )
        window = prefs["kind"] == "consent_window"
        start, end = prefs["window_start"].map(_minutes), prefs["window_end"].map(_minutes)
        _fail_rows(
            src,
            "contact_preferences",
            "window_start",
            "a consent window is HH:MM-HH:MM, start before end",
            prefs,
            window & ~(start < end),
        )

    if "emergency_contacts" in tables:
        ec, src = tables["emergency_contacts"], sources["emergency_contacts"]
        _fail_rows(
            src,
            "emergency_contacts",
            "entered_by",
            "'borrower': emergency contacts are entered by the borrower, at most two, and the phone's contact book "
            "is never read (TC260 guidance on the necessary personal information of lending apps)",
            ec,
            ec["entered_by"] != ENTERED_BY_BORROWER,
        )
        _fail_rows(
            src,
            "emergency_contacts",
            "borrower_id",
            "must exist in applications.borrower_id",
            ec,
            ~ec["borrower_id"].isin(apps["borrower_id"]),
        )
        _fail_rows(
            src,
            "emergency_contacts",
            "entered_at",
            f"before the extract date {as_of.date()}",
            ec,
            ec["entered_at"] >= as_of,
        )


def _known_zones(names) -> set[str]:
    from zoneinfo import ZoneInfo

    known = set()
    for name in names:
        try:
            ZoneInfo(str(name))
            known.add(name)
        except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            pass
    return known


def _minutes(text) -> float:
    """HH:MM -> minutes after midnight (NaN when malformed)."""
    try:
        h, m = str(text).split(":")
        value = int(h) * 60 + int(m)
    except ValueError:
        return float("nan")
    return value if 0 <= int(h) <= 24 and 0 <= int(m) < 60 and value <= 24 * 60 else float("nan")


def _check_outcomes(tables: Mapping[str, pd.DataFrame], sources: Mapping[str, str]) -> None:
    if "collection_actions" not in tables:
        return
    acts = tables["collection_actions"]
    pairs = pd.MultiIndex.from_tuples([(c, o) for c, outs in OUTCOMES_BY_ACTION.items() for o in outs])
    possible = pd.Series(pd.MultiIndex.from_arrays([acts["channel"], acts["outcome"]]).isin(pairs), index=acts.index)
    _fail_rows(
        sources["collection_actions"],
        "collection_actions",
        "outcome",
        "an outcome the channel can have (e.g. no wrong_number on an app push)",
        acts,
        ~possible,
    )


def validate_book(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    sources: Mapping[str, str] | None = None,
    contract: Contract = DEFAULT,
    whole: bool = True,
    required: tuple[str, ...] = REQUIRED_TABLES,
) -> dict:
    """Validate all tables; return the row counts and the columns that will be ignored, or raise
    DataValidationError. Absent optional columns count as missing values. `whole` False: the tables are
    one borrower bucket of the book (a required table may be empty there; the book's size is checked
    by the caller). `required`: the tables the book must hold (origination mode: applications alone, a
    label-only book then taking its labels from `outcomes`)."""
    sources = {name: (sources or {}).get(name, name) for name in tables}
    missing = [t for t in required if t not in tables]
    if missing:
        raise DataValidationError(
            f"missing required table(s) {missing}; expected files {[t + '.parquet' for t in missing]}"
        )
    label_only = "installments" not in tables
    if label_only and "outcomes" not in tables:
        raise DataValidationError(
            "no installments table and no outcomes table: a book without a schedule takes its labels from "
            "outcomes (rule: features.mode origination with given labels; see README, label-only books)"
        )
    unknown = sorted(set(tables) - set(ALL_TABLES))
    if unknown:
        raise DataValidationError(f"unknown table(s) {unknown}; known: {list(ALL_TABLES)}")
    for name, df in tables.items():
        validate_table(df, name, sources[name], contract)
    for name in required if whole else ():
        if tables[name].empty:
            raise DataValidationError(f"{sources[name]}: has 0 rows (rule: a required table holds the book)")
    ignored = {name: contract.ignored(name, df.columns) for name, df in tables.items()}
    tables = {name: complete_columns(df, name, contract) for name, df in tables.items()}
    rows = {name: len(df) for name, df in tables.items()}
    if label_only:  # the checks below read an empty schedule; no loan needs one
        tables = dict(tables) | {"installments": empty_table("installments", contract)}
        sources = sources | {"installments": "installments (absent: a label-only book)"}
    _check_refs(tables, sources)
    if not label_only:
        _check_schedule(tables, sources)
    _check_dates(tables, sources, pd.Timestamp(as_of))
    _check_outcomes(tables, sources)
    _check_conduct(tables, sources, pd.Timestamp(as_of))
    return {
        "rows": rows,
        "ignored_columns": {name: cols for name, cols in ignored.items() if cols},
        "protected_present": sorted({c for cols in ignored.values() for c in cols if contract.protected_column(c)}),
    }
