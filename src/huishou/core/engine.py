"""Compute engines: DuckDB connections and Dask clients, set up in one place.

DuckDB settings go through the connection's config (never pasted into SQL); a Dask client is
either a remote scheduler's or a local cluster of single-threaded worker processes.
"""

from __future__ import annotations

import duckdb


def duckdb_connect(
    *, threads: int | None = None, memory_limit: str | None = None, preserve_insertion_order: bool = True
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection.

    Parameters
    ----------
    threads : int, optional
        Worker threads (default: DuckDB's, one per core).
    memory_limit : str, optional
        e.g. "2GB"; beyond it DuckDB spills to disk or fails cleanly.
    preserve_insertion_order : bool
        False lets DuckDB reorder rows of results without ORDER BY (faster aggregation).
    """
    config: dict[str, object] = {"preserve_insertion_order": preserve_insertion_order}
    if threads:
        config["threads"] = int(threads)
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    return duckdb.connect(config=config)


def dask_client(scheduler: str | None, n_workers: int):
    """A client for `scheduler`, or a local cluster of `n_workers` single-threaded processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    return Client(cluster)


def close_dask(client) -> None:
    """Close a client and, when it started one, its local cluster."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()
