"""Reading tables and queries from a database: a DuckDB file or a PostgreSQL server.

PostgreSQL is read with the ADBC driver (Arrow-native, no row-by-row conversion; chosen over
psycopg for that reason, and over DuckDB's postgres extension because extensions download at
run time). The connection URI never sits in params.yaml: params name the environment variable
that holds it. A source is a table name (schema.table allowed, quoted as identifiers) or a
SELECT/WITH query written by the operator; values are never pasted into SQL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from huishou.core.errors import ConfigError, DataValidationError

KINDS = ("duckdb", "postgres")
_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def is_query(source: str) -> bool:
    return bool(_QUERY.match(source))


def quote_identifier(name: str) -> str:
    """schema.table -> "schema"."table" (embedded quotes doubled): a name, never code."""
    parts = name.split(".")
    if not all(parts):
        raise ConfigError(f"table name {name!r} is empty or malformed")
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def select_sql(source: str, order_by: Sequence[str] = ()) -> str:
    """The SELECT that reads a table or wraps a query, ordered by `order_by` (so reads are repeatable)."""
    inner = f"({source.strip().rstrip(';')}) AS q" if is_query(source) else quote_identifier(source)
    order = f" ORDER BY {', '.join(quote_identifier(c) for c in order_by)}" if order_by else ""
    return f"SELECT * FROM {inner}{order}"


def postgres_uri(env_var: str) -> str:
    uri = os.environ.get(env_var or "")
    if not uri:
        raise ConfigError(
            f"data.database names the environment variable {env_var!r} holding the PostgreSQL URI "
            "(postgresql://user:password@host:port/db), but it is not set"
        )
    return uri


def describe(kind: str, database: str, source: str) -> str:
    """How an error names where a table came from (never the password)."""
    where = database if kind == "duckdb" else f"${database}"
    what = "query" if is_query(source) else f"table {source}"
    return f"{kind} {where}: {what}"


def read(kind: str, database: str, sources: dict[str, str], order_by: dict[str, Sequence[str]]) -> dict[str, pa.Table]:
    """Every source (a table or a query) read into Arrow, in one connection."""
    if kind not in KINDS:
        raise ConfigError(f"data.source {kind!r}: must be one of parquet, {', '.join(KINDS)}")
    out = {}
    if kind == "duckdb":
        if not os.path.exists(database):
            raise ConfigError(f"data.database {database!r}: no such DuckDB file")
        con = duckdb.connect(database, read_only=True)
        try:
            for name, source in sources.items():
                out[name] = _run(lambda sql: con.sql(sql).to_arrow_table(), kind, database, name, source, order_by)
        finally:
            con.close()
        return out
    import adbc_driver_postgresql.dbapi as pg

    try:
        con = pg.connect(postgres_uri(database))
    except pg.Error as err:
        raise DataValidationError(f"postgres ${database}: cannot connect ({_first_line(err)})") from None
    try:
        cur = con.cursor()

        def fetch(sql: str) -> pa.Table:
            cur.execute(sql)
            return cur.fetch_arrow_table()

        for name, source in sources.items():
            out[name] = _run(fetch, kind, database, name, source, order_by)
    finally:
        con.close()
    return out


def _run(fetch, kind: str, database: str, name: str, source: str, order_by: dict) -> pa.Table:
    try:
        return fetch(select_sql(source, order_by.get(name, ())))
    except Exception as err:  # any driver error is a statement about the operator's table or query
        raise DataValidationError(
            f"{describe(kind, database, source)} for '{name}': cannot be read ({_first_line(err)})"
        ) from None


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
