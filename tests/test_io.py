"""Outputs are published whole: a failure, a kill -9 at any moment or a second writer never leaves a mix of
old and new files, stale files never survive, temporaries of killed runs are cleaned by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from huishou.core import io as hio
from huishou.core.errors import BusyError

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from huishou.core.io import publish

    target, version, n, pause = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with publish(target) as out:
        for i in range(n):
            (out / f"part_{i}.txt").write_text(version)
            time.sleep(pause)
        (out / "sub").mkdir()
        (out / "sub" / "deep.txt").write_text(version)
    print("published", flush=True)
    """
)


def _versions(folder: Path) -> tuple[set[str], set[str]]:
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != ".gitignore"}
    return files, {(folder / f).read_text() for f in files}


def _writer(target: Path, version: str, n: int, pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), version, str(n), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_publish_replaces_the_whole_folder_and_drops_stale_files(tmp_path):
    target = tmp_path / "out"
    with hio.publish(target) as out:
        (out / "a.txt").write_text("1")
        (out / "collector_C003.csv").write_text("yesterday")
    with hio.publish(target) as out:
        (out / "a.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and (target / "a.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.") and not p.name.endswith(".lock")] == []


def test_a_failure_inside_the_block_leaves_the_old_result(tmp_path):
    target = tmp_path / "out"
    with hio.publish(target) as out:
        (out / "a.txt").write_text("old")
    with pytest.raises(OSError, match="disk full"), hio.publish(target) as out:
        (out / "a.txt").write_text("new")
        raise OSError("disk full")
    assert _versions(target) == ({"a.txt"}, {"old"})


def test_dvc_gitignore_inside_a_folder_is_carried_over(tmp_path):
    target = tmp_path / "out"
    with hio.publish(target) as out:
        (out / "a.txt").write_text("1")
    (target / ".gitignore").write_text("/a.txt\n")
    (target / "plots").mkdir()
    (target / "plots" / ".gitignore").write_text("/roc.png\n")
    with hio.publish(target) as out:
        (out / "a.txt").write_text("2")
    assert (target / ".gitignore").read_text() == "/a.txt\n"
    assert (target / "plots" / ".gitignore").read_text() == "/roc.png\n"


def test_kill_9_at_any_moment_leaves_old_or_new_never_a_mix(tmp_path):
    target = tmp_path / "unit"
    first = _writer(target, "v0", 6, 0.0)
    assert first.wait(60) == 0
    expected = {f"part_{i}.txt" for i in range(6)} | {"sub/deep.txt"}
    assert _versions(target) == (expected, {"v0"})
    seen = set()
    for k, delay in enumerate([0.0, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.1, 1.3]):
        proc = _writer(target, f"v{k + 1}", 6, 0.1)
        time.sleep(0.5 + delay)  # interpreter start-up (~0.4 s), then somewhere in the writes or the switch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        files, versions = _versions(target)
        assert files == expected and len(versions) == 1, (delay, files, versions)
        seen |= versions
    assert len(seen) >= 2  # some kills landed before the switch, some after: the test is not vacuous
    assert _writer(target, "final", 2, 0.0).wait(60) == 0
    assert _versions(target) == ({"part_0.txt", "part_1.txt", "sub/deep.txt"}, {"final"})
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []  # the next run removed what the killed ones left


def test_an_interrupted_two_rename_switch_is_repaired_by_the_next_run(tmp_path, monkeypatch):
    """Where renameat2 cannot exchange, the switch is two renames; a crash between them is undone."""
    target = tmp_path / "out"
    with hio.publish(target) as out:
        (out / "a.txt").write_text("old")
    monkeypatch.setattr(hio, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def crash_after_first_rename(src, dst):
        calls.append((src, dst))
        real_replace(src, dst)
        if len(calls) == 1:
            raise KeyboardInterrupt("killed between the renames")

    monkeypatch.setattr(hio.os, "replace", crash_after_first_rename)
    with pytest.raises(KeyboardInterrupt), hio.publish(target) as out:
        (out / "a.txt").write_text("new")
    assert not target.exists()  # the window the recovery exists for
    monkeypatch.setattr(hio.os, "replace", real_replace)
    with hio.output_lock(target):
        hio._recover(target)
    assert _versions(target) == ({"a.txt"}, {"old"})


def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path):
    target = tmp_path / "scores"
    slow = _writer(target, "first", 20, 0.1)
    time.sleep(1.0)
    try:
        with pytest.raises(BusyError, match="another huishou run is writing it"), hio.publish(target):
            pass
    finally:
        assert slow.wait(60) == 0
    assert _versions(target)[1] == {"first"}
    with hio.publish(target) as out:  # the lock died with its holder: the next run proceeds
        (out / "x").write_text("next")


def test_a_file_unit_is_replaced_in_one_step(tmp_path):
    target = tmp_path / "truth.json"
    with hio.publish(target, kind="file") as tmp:
        tmp.write_text("{}")
    with pytest.raises(RuntimeError), hio.publish(target, kind="file") as tmp:
        tmp.write_text('{"half"')
        raise RuntimeError
    assert target.read_text() == "{}"


def test_significant_digits_absorb_last_bit_differences_and_keep_small_values():
    """strategy_truth.json mixes shares and millions: decimals would zero a small share or keep a large
    sum's noise; significant digits do neither, so a sum that differs in its last bits (another CPU's SIMD
    math) writes the same bytes."""
    a = {"recovery": 3574576.3358277623, "share": [1.23456789e-7, -13.457464225117292], "n": 3, "x": None}
    b = {"recovery": 3574576.3358277627, "share": [1.23456789e-7, -13.4574642251755], "n": 3, "x": None}
    assert a != b and hio.significant(a) == hio.significant(b)
    assert hio.significant(a) == {"recovery": 3574580.0, "share": [1.23457e-7, -13.4575], "n": 3, "x": None}
    assert hio.significant({"inf": float("inf")})["inf"] == float("inf") and hio.rounded(1.23456789e-7) == 0.0
