"""Point-in-time feature build: one spine row per (loan, snapshot T); every family is computed per
spine id and the families are placed side by side.

A pure function of the book's tables (DataFrames, or parquet files DuckDB reads in place); DuckDB
does the heavy aggregation (1.4-2.9x a pandas groupby at a million loans, see benchmarks/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from huishou.book.contracts import DEFAULT, Contract, complete_columns, empty_table
from huishou.core.engine import duckdb_connect
from huishou.core.vocab import ALL_TABLES
from huishou.features.application import CATEGORICAL, application_sql
from huishou.features.callback import callback_sql
from huishou.features.collection import collection_sql
from huishou.features.extras import (
    Extra,
    application_extras_sql,
    attributes_sql,
    categorical_names,
    dictionary,
    extras_of,
)
from huishou.features.population import (
    keys_sql,
    loan_status_sql,
    origination_spine_sql,
    population_sql,
    spine_sql,
    target_sql,
)
from huishou.features.repayment import earlier_loans_sql, repayment_sql

FAMILY_PREFIXES = {"app", "rp", "pl", "cb", "cl", "ax", "at"}
PREFIX_OF_OPTIONAL_TABLE = {"callbacks": "cb_", "collection_actions": "cl_", "attributes": "at_"}
MODES = ("servicing", "origination")
_SQL_TYPE = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "str": "VARCHAR",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "category": "VARCHAR",
}


Table = pd.DataFrame | Path


def _register(con: duckdb.DuckDBPyConnection, name: str, table: Table, contract: Contract) -> None:
    """A DataFrame is scanned in place; a parquet file is read by each query that needs it. Absent
    optional columns are added as missing values (or their default, e.g. status 'approved').

    Reading the file in place lets DuckDB push column selection and filters into each scan;
    copying the files into temp tables first cost ~1.4 s at a million loans (mostly faulting in
    ~1 GB of fresh memory), more than the repeated scans it saves.
    """
    if isinstance(table, pd.DataFrame):
        con.register(name, complete_columns(table, name, contract))
        return
    # the path (a file or a glob) is a value, never pasted into SQL text; a bucket's folder name (bucket=k)
    # is not a column
    relation = con.read_parquet(str(Path(table)), hive_partitioning=False)
    absent = {c: col for c, col in contract.spec(name).items() if c not in relation.columns}
    if absent:  # column names and defaults are the contract's constants, not data
        added = [f'CAST({_literal(col.default)} AS {_SQL_TYPE[col.dtype]}) AS "{c}"' for c, col in absent.items()]
        relation = relation.project(", ".join(["*", *added]))
    relation.create_view(name)


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str) and value.isidentifier():
        return f"'{value}'"
    raise ValueError(f"unsupported contract default {value!r}")


def open_book(
    tables: Mapping[str, Table], con: duckdb.DuckDBPyConnection | None = None, contract: Contract = DEFAULT
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (`con`, or a new default one) that sees every table of the book; absent
    optional tables are empty, absent optional columns missing."""
    con = con or duckdb_connect()
    for name, table in tables.items():
        _register(con, name, table, contract)
    for name in ALL_TABLES:  # absent tables read as empty (a label-only book has no installments)
        if name not in tables:
            con.register(name, empty_table(name, contract))
    return con


def copy_book(
    tables: Mapping[str, pd.DataFrame], contract: Contract = DEFAULT, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A new DuckDB connection holding a copy of every table of the book (frames, completed as `open_book`
    completes them; absent optional tables empty) as DuckDB's own tables, each row at its frame position
    (rowid). For a caller that queries a book many times and changes it a little in between (the closed
    loop: one query a day, a few rows added and paid): DuckDB reads its own tables about twice as fast as
    frames scanned in place, and nothing is registered anew per query. The caller keeps the copy current.
    `threads`: DuckDB's worker threads (default: the CPUs this process may use)."""
    con = duckdb_connect(threads=threads)
    try:
        for name in [*tables, *(n for n in ALL_TABLES if n not in tables)]:
            if name not in ALL_TABLES:
                raise ValueError(f"copy_book: {name!r} is not a table of the book")
            frame = complete_columns(tables[name], name, contract) if name in tables else empty_table(name, contract)
            con.register("book_input", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM book_input')  # a contract table name, not data
            con.unregister("book_input")
    except BaseException:
        con.close()
        raise
    return con


def contract_for(extras: Sequence[Extra]) -> Contract:
    """The contract that completes the declared columns (ranges do not matter for reading)."""
    out: dict[str, dict[str, str]] = {}
    for e in extras:
        out.setdefault(e.table, {})[e.name] = e.kind
    return Contract(extras=out)


def _connect(
    tables: Mapping[str, Table],
    snapshots: Sequence[pd.Timestamp],
    threads: int | None,
    memory_limit: str | None,
    contract: Contract = DEFAULT,
    spill_to: str | None = None,
) -> duckdb.DuckDBPyConnection:
    con = duckdb_connect(threads=threads, memory_limit=memory_limit, preserve_insertion_order=False, spill_to=spill_to)
    open_book(tables, con, contract)
    snaps = pd.DataFrame({"snapshot_date": pd.to_datetime(list(snapshots)).astype("datetime64[us]")})
    con.register("snapshots", snaps)
    return con


def whole_borrowers(tables: Mapping[str, Table], loan_ids) -> dict[str, pd.DataFrame]:
    """Every table cut to the borrowers of `loan_ids` (all their loans, earlier ones too): each feature is
    built from a borrower's own history, so those loans' features from the cut equal the whole book's
    (a plan that explains a few hundred candidates need not build features for the whole book). Frames are
    filtered in place; parquet files by DuckDB (only the cut is read into memory)."""
    if not any(isinstance(t, Path) for t in tables.values()):
        apps = tables["applications"]
        borrowers = apps.loc[apps["loan_id"].isin(loan_ids), "borrower_id"].unique()
        loans = apps.loc[apps["borrower_id"].isin(borrowers), "loan_id"].unique()
        out = {}
        for name, frame in tables.items():
            key, ids = ("loan_id", loans) if "loan_id" in frame.columns else ("borrower_id", borrowers)
            out[name] = frame[frame[key].isin(ids)].reset_index(drop=True) if key in frame.columns else frame
        return out
    con = open_book(tables)
    try:
        con.register("wanted", pd.DataFrame({"loan_id": np.asarray(loan_ids)}))
        con.execute(
            "CREATE TEMP TABLE cut_borrowers AS SELECT DISTINCT borrower_id FROM applications SEMI JOIN wanted "
            "USING (loan_id)"
        )
        con.execute(
            "CREATE TEMP TABLE cut_loans AS SELECT loan_id FROM applications SEMI JOIN cut_borrowers "
            "USING (borrower_id)"
        )
        out = {}
        for name in tables:  # the book's table names (constants of the contract), never user input
            columns = con.table(name).columns
            key = "loan_id" if "loan_id" in columns else "borrower_id" if "borrower_id" in columns else None
            where = f" SEMI JOIN cut_{key.split('_')[0]}s USING ({key})" if key else ""
            out[name] = con.execute(f'SELECT * FROM "{name}"{where}').df()
        return out
    finally:
        con.close()


def build_features(
    tables: Mapping[str, Table],
    snapshots: Sequence[pd.Timestamp],
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    default_dpd: int,
    paid_tolerance: float,
    settle_share: float,
    late_thresholds: Sequence[int],
    recent_days: Sequence[int],
    promise_grace_days: int,
    income_understated_ratio: float,
    extras: Sequence = (),
    mode: str = "servicing",
    threads: int | None = None,
    memory_limit: str | None = None,
    spill_to: str | None = None,
) -> pd.DataFrame:
    """One row per (active loan, snapshot T) with every feature family and the target.

    `tables` maps table names to DataFrames or parquet paths. Features use only events
    dated strictly before T. `target` is NULL for snapshots whose outcome window
    (T, T + horizon] is not covered by the extract date `as_of`; a given label (outcomes table)
    overrides it. The keyword arguments are params.yaml `features` (`FeatureSettings.build_kwargs`)
    plus the engine's threads, memory limit and spill folder (compute.spill_directory). `mode`
    "origination" builds one row per application at its decision time instead (snapshots are then
    ignored): application, earlier-loan, callback and the lender's features only.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    declared = extras_of(extras)
    origination = mode == "origination"
    con = _connect(tables, snapshots, threads, memory_limit, contract_for(declared), spill_to)
    params = {
        "tol": paid_tolerance,
        "share": settle_share,
        "dpd": default_dpd,
        "horizon": horizon_days,
        "as_of": pd.Timestamp(as_of),
        "grace": promise_grace_days,
        "understated": income_understated_ratio,
    }
    families = {"application": application_sql(origination)}
    if not origination:
        families["repayment"] = repayment_sql(late_thresholds, recent_days)
    families |= {"earlier_loans": earlier_loans_sql(), "callback": callback_sql()}
    if not origination:
        families["collection"] = collection_sql()
    for name, sql in (
        ("application_extras", application_extras_sql(declared)),
        ("attribute_family", attributes_sql(declared)),
    ):
        if sql:
            families[name] = sql
    categorical = {*CATEGORICAL, *categorical_names(declared)}

    def run(sql: str, create: str) -> None:
        needed = {k: v for k, v in params.items() if f"${k}" in sql}
        con.execute(f"CREATE TEMP TABLE {create} AS {sql}", needed)

    try:
        run(loan_status_sql(), "loan_status")
        run(origination_spine_sql() if origination else spine_sql(), "spine")
        parts = {"keys": keys_sql(origination)} | families | {"target": target_sql(origination)}
        for name, sql in parts.items():
            run(sql, name)
        frame = _assemble(con, list(parts), categorical)
    finally:
        con.close()
    return _finish(frame, set(tables), categorical)


def population_counts(
    tables: Mapping[str, Table],
    snapshots: Sequence[pd.Timestamp],
    *,
    default_dpd: int,
    paid_tolerance: float,
    settle_share: float,
    **_: object,
) -> pd.DataFrame:
    """Per snapshot: loans in the population, and every other application counted by why it is not."""
    con = _connect(tables, snapshots, None, None)
    try:
        params = {"tol": paid_tolerance, "share": settle_share, "dpd": default_dpd}
        con.execute(f"CREATE TEMP TABLE loan_status AS {loan_status_sql()}", params)
        return con.sql(population_sql()).df()
    finally:
        con.close()


def _assemble(con: duckdb.DuckDBPyConnection, parts: list[str], categorical: set[str]) -> pd.DataFrame:
    """Side-by-side concatenation of tables that each hold one row per spine id, in spine order.

    Cheaper than a 7-way join: each part is sorted by `sid` and its Arrow columns are placed
    next to each other without copying. Numeric features leave DuckDB as DOUBLE (the model's
    input type) and categorical ones dictionary-encoded, so pandas receives them as they are.
    """
    columns, names = [], []
    n_rows = None
    for part in parts:
        table = con.sql(f"SELECT {_output_columns(con, part, categorical)} FROM {part} ORDER BY sid").to_arrow_table()
        n_rows = table.num_rows if n_rows is None else n_rows
        if table.num_rows != n_rows:
            raise AssertionError(f"feature part '{part}' has {table.num_rows} rows for {n_rows} spine rows")
        for name in table.column_names:
            col = table[name]
            if name in categorical:
                col = pc.dictionary_encode(col)
            columns.append(col)
            names.append(name)
    return as_categories(pa.table(columns, names=names).to_pandas(self_destruct=True), categorical)


def _output_columns(con: duckdb.DuckDBPyConnection, part: str, categorical: set[str]) -> str:
    """The part's columns except `sid`, with numeric features cast to DOUBLE."""
    out = []
    relation = con.table(part)
    for name, dtype in zip(relation.columns, relation.dtypes, strict=True):
        if name == "sid":
            continue
        is_number = is_feature(name) and name not in categorical
        out.append(f'"{name}"::DOUBLE AS "{name}"' if is_number and str(dtype) != "DOUBLE" else f'"{name}"')
    return ", ".join(out)


def as_categories(frame: pd.DataFrame, categorical=CATEGORICAL) -> pd.DataFrame:
    """Give the categorical features the category dtype the model contract expects.

    They lose it when all missing (Arrow/parquet null type) or when partitions with different
    levels are concatenated.
    """
    for name in categorical:
        if name in frame.columns and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("category")
    return frame


def _finish(frame: pd.DataFrame, present: set[str], categorical: set[str]) -> pd.DataFrame:
    """Absent source tables leave their family missing (NaN), never zero-filled."""
    for table, prefix in PREFIX_OF_OPTIONAL_TABLE.items():
        if table not in present:
            for col in [c for c in frame.columns if c.startswith(prefix)]:
                frame[col] = pd.Categorical([None] * len(frame)) if col in categorical else np.nan
    if "rp_last_amount_due" in frame:
        # the latest amount due relative to the loan (a card's utilisation; an instalment loan's annuity share)
        amount = frame["app_amount"].where(frame["app_amount"] > 0)
        frame["rp_last_due_to_amount"] = frame["rp_last_amount_due"] / amount
    frame["target"] = frame["target"].astype("Int8")
    return frame


def feature_dictionary(frame: pd.DataFrame, extras: Sequence = ()) -> dict:
    """Every feature column's family, kind (numeric / categorical), description and monotone direction
    (the lender's declared columns carry theirs; built-in ones are described by huishou.risk.explain)."""
    declared = dictionary(extras_of(extras))
    out = {}
    for name in feature_columns(frame):
        kind = "categorical" if isinstance(frame[name].dtype, pd.CategoricalDtype) else "numeric"
        entry = {"family": name.split("_", 1)[0], "kind": kind, "description": "", "monotone": 0}
        out[name] = entry | {k: v for k, v in declared.get(name, {}).items() if k in entry}
    return {"features": out}


def is_feature(name: str) -> bool:
    """A model input: a family column (prefix app_, rp_, pl_, cb_, cl_)."""
    return name.split("_", 1)[0] in FAMILY_PREFIXES


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Model inputs, in frame order."""
    return [c for c in frame.columns if is_feature(c)]


def assign_hash_split(frame: pd.DataFrame, valid_share: float, test_share: float) -> pd.Series:
    """train / valid / test by a stable hash of loan_id (for books with one snapshot, e.g. the Taiwan data)."""
    u = (pd.util.hash_array(frame["loan_id"].to_numpy()) % 10_000) / 10_000
    split = np.select([u < test_share, u < test_share + valid_share], ["test", "valid"], default="train")
    return pd.Series(split, index=frame.index, name="split")


def assign_split(
    frame: pd.DataFrame, valid_from: pd.Timestamp, test_from: pd.Timestamp, horizon_days: int
) -> pd.Series:
    """train / valid / test by snapshot date, with gaps so no training label is observed after a later set's T.

    train: T + horizon <= valid_from; valid: valid_from <= T and T + horizon <= test_from;
    test (out of time): T >= test_from; snapshots in the gaps are 'gap' and unused.
    """
    t = frame["snapshot_date"]
    end = t + pd.Timedelta(days=horizon_days)
    split = np.select(
        [end <= valid_from, (t >= valid_from) & (end <= test_from), t >= test_from],
        ["train", "valid", "test"],
        default="gap",
    )
    return pd.Series(split, index=frame.index, name="split")
