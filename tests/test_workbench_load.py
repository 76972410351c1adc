"""200 collectors recording contacts at once against a real `huishou serve` process on 127.0.0.1
(benchmarks/bench_workbench.py, bounded: 3 recordings each, 10 minutes at most): every accepted recording
is stored exactly once, every refused one is a logged refusal, nothing else is answered. Latency is the
benchmark's business (benchmarks/results/workbench.json), not this test's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_workbench import run  # noqa: E402

pytestmark = pytest.mark.e2e


def test_200_collectors_at_once_lose_and_duplicate_nothing():
    result = run(collectors=200, contacts=3, think=(0.2, 1.5))
    assert result["requests"] == 600 and result["other_status"] == []
    assert result["lost"] == result["duplicated"] == result["unexpected"] == 0
    assert result["stored"] == result["accepted"] > 0
    assert result["refusals_stored"] == result["refused"]
