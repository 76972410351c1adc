"""The partition plan for a book larger than any benchmark (benchmarks/plan_scale.py): its dry run counts and
fills the partitions the pipeline would make, and the plan's arithmetic follows the measured costs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from plan_scale import dry_run, plan  # noqa: E402


def test_the_dry_run_counts_and_fills_the_partitions_the_pipeline_would_make(tmp_path):
    dry = dry_run(200_000, 50_000, tmp_path)
    assert dry["partitions"] == 4 == dry["partitions_filled"]  # partitions_for on the keys file's footer
    sizes = dry["loans_per_partition"]
    assert sizes["min"] <= sizes["mean"] == 50_000 <= sizes["max"]
    assert 1.0 <= dry["skew_max_over_mean"] < 1.02  # hash(borrower_id) % n spreads sequential ids evenly


def test_the_plan_runs_dask_stages_in_rounds_of_workers_and_flags_what_does_not_fit():
    dry = {"partitions": 400, "skew_max_over_mean": 1.01}
    common = {"loans": 250_000, "target_loans": 250_000, "peak_gib_before": None}
    costs = {
        "score": common | {"seconds": 8.0, "peak_gib": 2.2, "dask": True, "how": "one Dask task"},
        "features": common | {"seconds": 7.0, "peak_gib": 3.4, "dask": False, "how": "in one process"},
        # measured on partitions ten times smaller than it will run: ten times the seconds
        "small": common | {"seconds": 1.0, "loans": 25_000, "peak_gib": 2.0, "dask": True, "how": "one Dask task"},
        # grew from 3 to 7 GiB between 1e6 and 1e7 loans: holds rows of the whole book
        "grows": common | {"seconds": 8.0, "peak_gib": 7.0, "peak_gib_before": 3.0, "dask": False, "how": "held"},
        "train": common | {"seconds": 90.0, "peak_gib": 5.0, "dask": False, "how": "a sample", "constant": True},
        # grew below a sample's cap, measured at it: time per partition as measured, memory stays
        "capped": common
        | {"seconds": 8.0, "peak_gib": 4.0, "peak_gib_before": 2.0, "dask": False, "how": "a sample of rows"}
        | {"memory_capped": True},
    }
    out = plan(100_000_000, 64, 16.0, costs, dry, 10_000_000)
    score = out["stages"]["score"]
    assert score["partitions"] == 400 and score["wall_s"] == pytest.approx(math.ceil(400 / 64) * 8.0 * 1.01)
    assert score["fits_worker_flat"] and score["fits_worker_linear"]
    # not a Dask task: partition after partition
    assert out["stages"]["features"]["wall_s"] == pytest.approx(400 * 7.0 * 1.01)
    assert out["stages"]["small"]["seconds_per_partition"] == pytest.approx(10.0 * 1.01)
    grows = out["stages"]["grows"]  # 4 GiB per 9e6 loans, carried on to 1e8: 7 + 40 GiB
    assert grows["peak_gib_linear"] == pytest.approx((7.0 + 4.0 / 9e6 * 9e7) * 1.01)
    assert grows["fits_worker_flat"] and not grows["fits_worker_linear"]
    assert out["stages"]["train"]["wall_s"] == 90.0  # a sample: constant in book size
    capped = out["stages"]["capped"]
    assert capped["peak_gib_linear"] == capped["peak_gib_flat"] == pytest.approx(4.0 * 1.01)
    assert capped["wall_s"] == pytest.approx(400 * 8.0 * 1.01)
    assert set(out["not_partitioned"]) == {"evaluate-strategy"}


def test_tree_peak_adds_the_memory_of_the_processes_a_step_starts():
    """A stage that works in processes (bucket validation, the closed loop) holds what all of them hold:
    ru_maxrss gives the largest one alone; TreePeak sums the tree (two 300 MB children: over 550 MB)."""
    import subprocess

    from child import TreePeak

    hold = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    parent = f"import subprocess, sys; ps = [subprocess.Popen([sys.executable, '-c', {hold!r}]) for _ in range(2)]; [p.wait() for p in ps]"
    proc = subprocess.Popen([sys.executable, "-c", parent])
    with TreePeak(proc.pid, every=0.1) as tree:
        assert proc.wait(timeout=60) == 0
    assert tree.peak > 550 * 2**20 and tree.gib == tree.peak / 2**30
