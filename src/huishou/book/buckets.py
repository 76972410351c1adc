"""The book split by borrower: partition k holds every row of the borrowers with hash(borrower_id) % n = k
(their applications, and the rows of every table about their loans or about them).

Features are built from a borrower's own history, so a partition is a complete small book: the Dask
scoring tasks and bucket-by-bucket validation each take one at a time, and memory follows the
partition, not the book. Paths and numbers reach DuckDB as query parameters, never pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from huishou.engine import duckdb_connect


def bucket_book(tables: Mapping[str, Path], n_parts: int, folder: Path, memory_limit: str | None = None) -> dict:
    """Read each raw file once and write its rows into folder/<table>/bucket=<k>/ by their borrower's
    partition k = hash(borrower_id) % n_parts (DuckDB, hive layout), so that each partition's task
    reads only its own rows. Returns rows per table. Runs as one task before the partition tasks."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    con = duckdb_connect(memory_limit=memory_limit, preserve_insertion_order=False)
    rows = {}
    try:
        bucket = "hash(borrower_id) % $n"
        con.execute(
            f"CREATE TEMP TABLE loan_bucket AS SELECT loan_id, {bucket} AS bucket FROM read_parquet($path)",
            {"path": str(tables["applications"]), "n": int(n_parts)},
        )
        for name, path in tables.items():
            key = key_of(con, path)
            if name == "applications" or key == "borrower_id":
                query = f"SELECT *, {bucket} AS bucket FROM read_parquet($path)"
                params = {"path": str(path), "n": int(n_parts)}
            else:
                query = "SELECT t.*, b.bucket FROM read_parquet($path) t JOIN loan_bucket b USING (loan_id)"
                params = {"path": str(path)}
            target = Path(folder) / name
            con.sql(query, params=params).write_parquet(str(target), partition_by=["bucket"], overwrite=True)
            rows[name] = con.execute("SELECT count(*) FROM read_parquet($path)", {"path": str(path)}).fetchone()[0]
    finally:
        con.close()
    return rows


def key_of(con, path: Path) -> str:
    """loan_id for tables about loans; borrower_id for those about borrowers (contact preferences)."""
    columns = set(con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}).df()["column_name"])
    return "loan_id" if "loan_id" in columns else "borrower_id"


def partition_tables(
    tables: Mapping[str, Path], part: int, n_parts: int, buckets: Path | None = None
) -> dict[str, pd.DataFrame]:
    """Whole borrowers of one hash partition: its bucket of `buckets` (written by `bucket_book`), or else
    filtered from the raw parquet files (paths and numbers are query parameters, never pasted into SQL text)."""
    con = duckdb_connect(threads=1)
    out = {}
    try:
        if buckets is not None:
            for name, path in tables.items():
                files = Path(buckets) / name / f"bucket={int(part)}"
                if files.is_dir():
                    query = "SELECT * FROM read_parquet($glob, hive_partitioning = false)"
                    params = {"glob": str(files / "*.parquet")}
                else:  # no row of this table in the partition: an empty frame of the table's columns
                    query, params = "SELECT * FROM read_parquet($path) LIMIT 0", {"path": str(path)}
                out[name] = con.execute(query, params).df()
            return out
        con.execute(
            "CREATE TEMP TABLE apps AS SELECT * FROM read_parquet($path) WHERE hash(borrower_id) % $n = $part",
            {"path": str(tables["applications"]), "n": int(n_parts), "part": int(part)},
        )
        out["applications"] = con.sql("SELECT * FROM apps").df()
        for name, path in tables.items():
            if name == "applications":
                continue
            query = {
                "loan_id": "SELECT * FROM read_parquet($path) t WHERE t.loan_id IN (SELECT loan_id FROM apps)",
                "borrower_id": "SELECT * FROM read_parquet($path) t "
                "WHERE t.borrower_id IN (SELECT borrower_id FROM apps)",
            }[key_of(con, path)]
            out[name] = con.execute(query, {"path": str(path)}).df()
        return out
    finally:
        con.close()
