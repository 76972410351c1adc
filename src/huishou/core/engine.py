"""Compute engines: DuckDB connections and Dask clients, set up in one place, and the one thread count
(compute.threads) every engine uses.

DuckDB settings go through the connection's config (never pasted into SQL); a Dask client is
either a remote scheduler's or a local cluster of single-threaded worker processes.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from pathlib import Path

import duckdb

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP) -> float | None:
    """The CPUs a cgroup quota allows this process (cgroup v2 cpu.max, else v1 cpu.cfs_quota_us /
    cpu.cfs_period_us), or None when there is no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus(root: Path = CGROUP) -> int:
    """The CPUs this process may use: its CPU affinity (what taskset / a scheduler gave it), capped by a
    cgroup CPU quota rounded up (a container's share, not the host's cores); at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def threads(setting: int) -> int:
    """compute.threads made concrete: the setting itself, or for 0 the CPUs this process may use."""
    return int(setting) if int(setting) > 0 else available_cpus()


def spill_directory(setting: str = "") -> Path:
    """compute.spill_directory made concrete: the folder DuckDB spills into when a query outgrows its
    memory_limit (created if missing); "" is the system temp folder ($TMPDIR), never the working directory."""
    base = Path(setting) if str(setting).strip() else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return base


def duckdb_connect(
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    preserve_insertion_order: bool = True,
    spill_to: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection.

    Parameters
    ----------
    threads : int, optional
        Worker threads (default: `available_cpus`, the CPUs this process may use; DuckDB's own default
        counts the machine's cores whatever the process's CPU affinity, so a process pinned to one core
        would run two threads on it here).
    memory_limit : str, optional
        e.g. "2GB"; beyond it DuckDB spills to disk (operators that cannot spill fail cleanly).
    preserve_insertion_order : bool
        False lets DuckDB reorder rows of results without ORDER BY (faster aggregation).
    spill_to : path, optional
        The folder to spill into (compute.spill_directory, resolved by `spill_directory` on the machine
        that runs the query, a Dask worker's own; default: the system temp folder). Each connection
        spills into its own subfolder, which DuckDB creates and removes when the connection closes, so
        concurrent processes never share spill files. Left to itself, an in-memory DuckDB spills into
        `.tmp` in the working directory.
    """
    folder = spill_directory("" if spill_to is None else str(spill_to))  # resolved where the query runs
    config: dict[str, object] = {
        "preserve_insertion_order": preserve_insertion_order,
        "temp_directory": str(folder / f"huishou-duckdb-{os.getpid()}-{uuid.uuid4().hex[:12]}"),
    }
    config["threads"] = int(threads) if threads else available_cpus()
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    con = duckdb.connect(config=config)
    con.execute("SET enable_progress_bar = false")  # the stages' own progress names the step; DuckDB's floods logs
    return con


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


def dask_tasks(scheduler: str | None, n_workers: int, task, items, done=None) -> list:
    """`task(*item)` for every item of `items` as a Dask task on `scheduler` (or a local cluster of `n_workers`
    single-threaded processes, closed afterwards), the results in the items' order whatever order they finish
    in; `done()` is called as each one finishes."""
    from dask.distributed import as_completed

    client = dask_client(scheduler, n_workers)
    try:
        futures = [client.submit(task, *item, pure=False) for item in items]
        order = {f.key: k for k, f in enumerate(futures)}
        results: list = [None] * len(futures)
        for future in as_completed(futures):
            results[order[future.key]] = future.result()
            if done is not None:
                done()
    finally:
        close_dask(client)
    return results
