"""What the benchmark scripts share: each measured step runs in a child process of the script itself
(`<script> <flag> <name> <args>`), so its peak memory is its own, and prints one JSON line as its result."""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import threading

import psutil


def usage() -> dict:
    """This process's CPU seconds (user + system) and peak resident memory in GiB (ru_maxrss: KiB on Linux)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": me.ru_utime + me.ru_stime, "peak_rss_gib": me.ru_maxrss / 2**20}


def run_step(script: str, flag: str, name: str, *args, width: int = 12) -> dict:
    """Run step `name` of `script` in a child process; its last stdout line is the result (printed too)."""
    proc = subprocess.run(
        [sys.executable, script, flag, name, *map(str, args)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {name:{width}s} {json.dumps(result)}", flush=True)
    return result


class TreePeak:
    """The peak memory of a process and every process it starts, sampled while it runs: the sum of their
    proportional set sizes (PSS: a page shared by n of them counts 1/n to each, so the sum is what the tree
    holds), where ru_maxrss only gives the largest single process. `with TreePeak(pid) as peak: ...`, then
    `peak.gib`."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak = pid, every, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    @property
    def gib(self) -> float:
        return self.peak / 2**30

    def _watch(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in tree:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_full_info().pss
            self.peak = max(self.peak, total)
            self._done.wait(self.every)
