"""The compute engines' set-up: DuckDB spills into compute.spill_directory instead of failing."""

from __future__ import annotations

import os

import duckdb
import pytest

from huishou.core.engine import duckdb_connect, spill_directory

# a GROUP BY whose hash table outgrows 100 MB: it needs to spill
QUERY = "SELECT count(*), sum(c) FROM (SELECT i, count(*) AS c FROM range(12000000) t(i) GROUP BY i)"


def test_a_query_beyond_the_memory_limit_spills_into_its_own_folder_and_cleans_up(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    no_spill = duckdb.connect(
        config={"memory_limit": "100MB", "threads": 2, "temp_directory": "", "preserve_insertion_order": False}
    )
    with pytest.raises(duckdb.OutOfMemoryException):  # the query does need the disk
        no_spill.execute(QUERY).fetchall()
    no_spill.close()

    base = tmp_path / "disk" / "spill"  # created when missing
    con = duckdb_connect(threads=2, memory_limit="100MB", preserve_insertion_order=False, spill_to=str(base))
    assert con.execute(QUERY).fetchall() == [(12_000_000, 12_000_000)]
    (used,) = os.listdir(base)  # this connection's own folder, named after the process
    assert used.startswith(f"huishou-duckdb-{os.getpid()}-")
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)  # no bar in logs
    other = duckdb_connect(memory_limit="100MB", spill_to=str(base))
    assert other.execute("SELECT current_setting('temp_directory')").fetchone()[0] != str(base / used)
    other.close()
    con.close()
    assert os.listdir(base) == []  # DuckDB removes the folder it spilled into
    assert os.listdir(cwd) == []  # and never spilled into the working directory (its own default: .tmp)


def test_an_empty_spill_setting_is_the_system_temp_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert spill_directory("") == tmp_path
    con = duckdb_connect()
    folder = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    con.close()
    assert os.path.dirname(folder) == str(tmp_path)


def test_a_connection_without_a_thread_count_uses_the_cpus_this_process_may_use(monkeypatch):
    """DuckDB's own default counts the machine's cores even for a process pinned to fewer (taskset, a
    scheduler's slot): a connection given no count takes `available_cpus` instead; one given a count keeps it."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # pinned to one core
    con = duckdb_connect()
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    con.close()
    con = duckdb_connect(threads=3)
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 3
    con.close()
