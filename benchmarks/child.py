"""What the benchmark scripts share: each measured step runs in a child process of the script itself
(`<script> <flag> <name> <args>`), so its peak memory is its own, and prints one JSON line as its result."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


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
