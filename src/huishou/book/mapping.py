"""A declarative mapping from a lender's own tables to the raw contracts (`huishou adapt --mapping`).

A mapping file says, without Python, where the source tables are (CSV or parquet files, or tables
and queries in a DuckDB file or PostgreSQL), and how each contract table is made from them:

    as_of: "2006-02-01"            # the extract date written to manifest.json
    timezone: Asia/Taipei          # the lender's local time: zoned source timestamps are converted to it
    source: {kind: files}          # files | duckdb | postgres (with database: file / env variable name)
    inputs:                        # named source tables
      clients: {file: UCI_Credit_Card_named.csv, na_values: ["NA", "?"]}   # text that means "missing"
                                   # (CSV files); or {table: schema.name} / {query: "SELECT ..."}
    tables:
      applications:
        from: clients              # an input, or {sql: "SELECT ... FROM clients"} (DuckDB dialect)
        columns:
          loan_id: ID                               # a source column
          amount: {column: LIMIT_BAL}
          applied_at: {sql: "TIMESTAMP '2005-02-28'"}  # a SQL expression over the source row
          opened: {column: OPEN_DATE, format: "%d/%m/%Y"}   # text parsed with a date format
          term_months: {const: 7}                   # a constant
          education: {column: EDUCATION, map: {1: graduate_school, 2: university}}   # values mapped
          declared_income: {column: INCOME, na_values: ["-1", "unknown"]}   # this column's null markers
        rules: {age: clip, amount: drop}           # out-of-range values: reject (default), clip or drop

File order is kept: a CSV or parquet input is read in file order (DuckDB preserves insertion order), so
`row_number() OVER ()` in a table's SQL numbers rows as they stand in the file (ids for a set without
one), and a value that cannot be read is reported by its row number in that order (1 = the first data
row, the header not counted) with the value itself.

The SQL in a mapping is the operator's code, like params.yaml; constants, date formats and value maps
are applied as values, never pasted into SQL. Every clipped or dropped value is counted in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from huishou.book import database
from huishou.book.contracts import Contract
from huishou.book.database import quote_identifier
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.vocab import ALL_TABLES

RULES = ("reject", "clip", "drop")
_CAST = {"int": "Int64", "float": "float64", "str": "str", "bool": "boolean", "category": "str"}


@dataclass
class Adapted:
    """The raw tables a mapping produced, the extract date and what was clipped or dropped."""

    tables: dict[str, pd.DataFrame]
    as_of: str
    report: dict = field(default_factory=dict)


def load_mapping(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such mapping file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise ConfigError(f"{path}: a mapping has 'inputs' and 'tables' (see huishou.book.mapping)")
    unknown = sorted(set(doc["tables"]) - set(ALL_TABLES))
    missing = [t for t in ("applications",) if t not in doc["tables"]]  # a label-only book has no schedule
    if unknown or missing:
        raise ConfigError(f"{path}: tables {unknown} are not contract tables, {missing} are required")
    if "as_of" not in doc:
        raise ConfigError(f"{path}: key 'as_of' (the extract date, YYYY-MM-DD) is missing")
    return doc


def apply_mapping(doc: Mapping, base: Path, contract: Contract, input_override: Path | None = None) -> Adapted:
    """Read the inputs, build every contract table, type it, apply the rules."""
    con = duckdb.connect()
    try:
        _register_inputs(con, doc, base, input_override)
        timezone = doc.get("timezone", "UTC")
        tables, report = {}, {"rows": {}, "clipped": {}, "dropped": {}}
        for name, spec in doc["tables"].items():
            frame = _build(con, name, spec, timezone, contract)
            frame = _apply_rules(frame, name, spec.get("rules", {}), contract, report)
            tables[name] = frame
    finally:
        con.close()
    tables = _cascade_drops(tables, report)
    report["rows"] = {name: len(frame) for name, frame in tables.items()}
    report["clipped"] = {k: v for k, v in report["clipped"].items() if v}
    report["dropped"] = {k: v for k, v in report["dropped"].items() if v}
    return Adapted(tables, str(doc["as_of"]), report)


def _register_inputs(con: duckdb.DuckDBPyConnection, doc: Mapping, base: Path, override: Path | None) -> None:
    inputs = doc.get("inputs") or {}
    source = doc.get("source") or {"kind": "files"}
    files = [n for n, spec in inputs.items() if "file" in spec]
    if override is not None and len(files) != 1:
        raise ConfigError(f"--input replaces the mapping's one file input, but it has {len(files)}: {files}")
    from_db = {}
    for name, spec in inputs.items():
        if not isinstance(spec, Mapping) or len(set(spec) & {"file", "table", "query"}) != 1:
            raise ConfigError(f"mapping input '{name}': give exactly one of file, table or query")
        if "file" in spec:
            path = override if override is not None else base / spec["file"]
            if not Path(path).is_file():
                raise DataValidationError(f"{path}: input '{name}' of the mapping does not exist")
            na = spec.get("na_values")
            if na is not None and (not isinstance(na, list) or not all(isinstance(v, str) for v in na)):
                raise ConfigError(f'mapping input \'{name}\': na_values is a list of texts, e.g. ["NA", "?"]')
            try:
                if str(path).endswith(".parquet"):
                    relation = con.read_parquet(str(path))
                else:  # a column the mapping parses with a date format is read as text, not sniffed
                    options = (
                        {"na_values": list(dict.fromkeys([*na, ""]))} if na else {}
                    )  # an empty field stays missing
                    text = _formatted_columns(doc) & set(con.read_csv(str(path), **options).columns)
                    relation = con.read_csv(str(path), dtype=dict.fromkeys(text, "VARCHAR") or None, **options)
            except duckdb.Error as err:
                raise DataValidationError(f"{path}: cannot be read ({str(err).splitlines()[0]})") from None
            relation.create_view(name)
        else:
            from_db[name] = spec.get("table") or spec.get("query")
    if from_db:
        arrow = database.read(source.get("kind", "files"), source.get("database") or "", from_db, {})
        for name, table in arrow.items():
            con.register(name, table)


def _formatted_columns(doc: Mapping) -> set[str]:
    return {
        spec["column"]
        for table in doc["tables"].values()
        for spec in (table.get("columns") or {}).values()
        if isinstance(spec, Mapping) and "format" in spec and "column" in spec
    }


def quote_column(name: str) -> str:
    """A column name as one SQL identifier (dots and quotes included): a name, never code."""
    return '"' + str(name).replace('"', '""') + '"'


def _expression(target: str, spec: Any, params: dict) -> str:
    """The SQL for one target column; constants and formats become query parameters."""
    if isinstance(spec, str):
        return f"{quote_column(spec)} AS {quote_column(target)}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"mapping column '{target}': a column name or a mapping, got {spec!r}")
    if "sql" in spec:
        return f"({spec['sql']}) AS {quote_column(target)}"
    if "const" in spec:
        key = f"c{len(params)}"
        params[key] = spec["const"]
        return f"${key} AS {quote_column(target)}"
    if "column" not in spec:
        raise ConfigError(f"mapping column '{target}': needs one of column, sql or const")
    expr = quote_column(spec["column"])
    if "na_values" in spec:  # this column's own null markers, compared as text (bound values, never SQL)
        na = spec["na_values"]
        if not isinstance(na, list) or not na:
            raise ConfigError(f'mapping column \'{target}\': na_values is a list of texts, e.g. ["-1", "unknown"]')
        keys = []
        for value in na:
            keys.append(f"$c{len(params)}")
            params[f"c{len(params)}"] = str(value)
        expr = f"(CASE WHEN trim(CAST({expr} AS VARCHAR)) IN ({', '.join(keys)}) THEN NULL ELSE {expr} END)"
    if "format" in spec:
        key = f"c{len(params)}"
        params[key] = spec["format"]
        expr = f"strptime(CAST({expr} AS VARCHAR), ${key})"
    return f"{expr} AS {quote_column(target)}"


def _build(con, name: str, spec: Mapping, timezone: str, contract: Contract) -> pd.DataFrame:
    source = spec.get("from")
    if isinstance(source, Mapping) and "sql" in source:
        base = f"({source['sql']})"
    elif isinstance(source, str):
        base = quote_identifier(source)
    else:
        raise ConfigError(f"mapping table '{name}': 'from' is an input name or {{sql: ...}}")
    columns = spec.get("columns")
    params: dict = {}
    select = ", ".join(_expression(t, c, params) for t, c in columns.items()) if columns else "*"
    try:
        frame = con.execute(f"SELECT {select} FROM {base} AS src", params).df()
    except duckdb.Error as err:
        raise DataValidationError(f"mapping table '{name}': {str(err).splitlines()[0]}") from None
    for target, col in (columns or {}).items():
        if isinstance(col, Mapping) and "map" in col:
            mapping = {str(k): v for k, v in col["map"].items()}
            text = frame[target].astype("object").map(lambda v: None if pd.isna(v) else str(v).removesuffix(".0"))
            frame[target] = text.map(mapping).where(text.isin(mapping.keys()), None)
    return _typed(frame, name, timezone, contract)


def _typed(frame: pd.DataFrame, name: str, timezone: str, contract: Contract) -> pd.DataFrame:
    """Cast every contract column to its type; zoned timestamps to the lender's local time."""
    spec = contract.spec(name)
    for col, rule in spec.items():
        if col not in frame:
            continue
        try:
            if rule.dtype == "datetime":
                values = pd.to_datetime(frame[col])
                if isinstance(values.dtype, pd.DatetimeTZDtype):
                    values = values.dt.tz_convert(timezone).dt.tz_localize(None)
                frame[col] = values.astype("datetime64[us]")
            elif rule.dtype == "int" and not rule.nullable and frame[col].notna().all():
                frame[col] = frame[col].astype("int64")
            elif rule.dtype == "bool" and not rule.nullable and frame[col].notna().all():
                frame[col] = frame[col].astype(bool)
            else:
                frame[col] = frame[col].astype(_CAST[rule.dtype])
                if rule.dtype in ("str", "category"):
                    frame[col] = frame[col].where(frame[col].notna(), None)
        except (ValueError, TypeError) as err:
            raise DataValidationError(_unreadable(frame[col], name, col, rule.dtype, err)) from None
    return frame


def _unreadable(values: pd.Series, table: str, col: str, dtype: str, err: Exception) -> str:
    """Which rows hold a value that is not a `dtype` (row numbers in the table's order, 1 = the first), the
    first value, and how to declare a null marker."""
    if dtype == "datetime":
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    elif dtype in ("int", "float"):
        parsed = pd.to_numeric(values, errors="coerce")
    else:
        parsed = pd.Series([_bool_or_none(v) for v in values], index=values.index)
    bad = values.notna() & parsed.isna()
    if not bad.any():
        return f"mapping table '{table}': column '{col}' cannot be read as {dtype} ({str(err).splitlines()[0][:120]})"
    rows = np.flatnonzero(bad.to_numpy()) + 1
    shown = ", ".join(str(r) for r in rows[:5])
    return (
        f"mapping table '{table}': column '{col}' cannot be read as {dtype}: row {rows[0]} holds "
        f"{values[bad].iloc[0]!r} ({len(rows)} row(s): {shown}{' ...' if len(rows) > 5 else ''}; rows counted in "
        "file order from 1); if that text means missing, declare it with na_values on the input or the column"
    )


def _bool_or_none(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text)


def _apply_rules(frame: pd.DataFrame, name: str, rules: Mapping, contract: Contract, report: dict) -> pd.DataFrame:
    """Out-of-range values: reject (validation refuses them later), clip into the range, or drop the row."""
    spec = contract.spec(name)
    for col, rule in rules.items():
        if rule not in RULES:
            raise ConfigError(f"mapping table '{name}': rule for '{col}' must be one of {RULES}, got {rule!r}")
        if col not in spec or col not in frame:
            raise ConfigError(f"mapping table '{name}': rule for '{col}', which the table does not have")
        lo, hi = spec[col].ge, spec[col].le
        values = pd.to_numeric(frame[col], errors="coerce")
        outside = values.notna() & (
            ((values < lo) if lo is not None else False) | ((values > hi) if hi is not None else False)
        )
        key = f"{name}.{col}"
        if rule == "clip":
            report["clipped"][key] = int(outside.sum())
            clipped = values.clip(lower=lo, upper=hi)
            frame[col] = (
                clipped.astype(frame[col].dtype)
                if spec[col].dtype != "int"
                else np.round(clipped).astype(frame[col].dtype)
            )
        elif rule == "drop":
            report["dropped"][key] = int(outside.sum())
            frame = frame[~outside].reset_index(drop=True)
    return frame


def _cascade_drops(tables: dict[str, pd.DataFrame], report: dict) -> dict[str, pd.DataFrame]:
    """Rows of dropped applications go too (counted), so the book stays whole."""
    apps = tables["applications"]
    for name, frame in tables.items():
        if name != "applications" and "loan_id" in frame:
            orphan = ~frame["loan_id"].isin(apps["loan_id"])
            if orphan.any():
                report["dropped"][f"{name} (their application was dropped)"] = int(orphan.sum())
                tables[name] = frame[~orphan].reset_index(drop=True)
    return tables
