"""Benchmark: the closed loop of `huishou evaluate-strategy` (every policy, seed and world, day by day) on the
repro's book (make repro first), this checkout's code against a reference revision's, back to back on the same
machine, each run in a process of its own: wall and CPU seconds (the loop's worker processes included), and
whether both give the same figures to the last bit.

    python benchmarks/bench_closed_loop.py                    # -> benchmarks/results/closed_loop.json
    python benchmarks/bench_closed_loop.py --reference <rev> --repeats 3

The reference is checked out into a temporary git worktree (removed afterwards) and imported instead of this
checkout (PYTHONPATH); the default is the last revision before the loop decided a day for every stacked run at
once and queried DuckDB's own copy of the book.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
REFERENCE = "b13a050"  # the loop one run at a time, frames scanned by DuckDB anew every day


def child(src: str) -> None:
    """Run the closed loop with the code under `src`; print wall and CPU seconds and a digest of the figures."""
    os.chdir(ROOT)
    import huishou
    from huishou.core.settings import load_settings
    from huishou.core.settings.view import ParamsView
    from huishou.stages import evaluate_strategy

    if not Path(huishou.__file__).resolve().is_relative_to(Path(src).resolve()):
        raise RuntimeError(f"imported {huishou.__file__}, not the code under {src}")
    settings = ParamsView(load_settings(ROOT / "params.yaml"), evaluate_strategy.PARAMS, "evaluate_strategy")
    start, cpu = time.perf_counter(), _cpu()
    loop = evaluate_strategy.run_closed_loop(settings)
    seconds, cpu_s = time.perf_counter() - start, _cpu() - cpu
    digest = hashlib.sha256(json.dumps(loop, sort_keys=True, default=repr).encode()).hexdigest()
    runs = sum(len(e["per_seed"]) for e in loop["by_stage"]["all"].values() if isinstance(e, dict) and "per_seed" in e)
    print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "digest": digest, "headline_runs": runs}))


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _run(src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(src)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"closed loop with {src} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=REFERENCE, help=f"git revision to compare with (default {REFERENCE})")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating (default 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if not (ROOT / "models" / "effects").is_dir():
        sys.exit("bench_closed_loop: run `make repro` first (the loop needs the repro's book, scores and effects)")
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    runs: dict[str, list[dict]] = {"reference": [], "current": []}
    with tempfile.TemporaryDirectory(prefix="huishou-ref-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.reference], check=True)
        try:
            for k in range(args.repeats):
                for label, src in (("reference", tree / "src"), ("current", ROOT / "src")):
                    runs[label].append(_run(src))
                    print(f"  {label:9s} run {k + 1}: {json.dumps(runs[label][-1])}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    summary = {
        label: {
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in rs),
            "runs": rs,
        }
        for label, rs in runs.items()
    }
    digests = {r["digest"] for rs in runs.values() for r in rs}
    out = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "reference": args.reference,
        "current": rev.stdout.strip(),
        "same_figures": len(digests) == 1,
        "speedup_wall": summary["reference"]["seconds_median"] / summary["current"]["seconds_median"],
        "speedup_cpu": summary["reference"]["cpu_s_median"] / summary["current"]["cpu_s_median"],
        **summary,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "closed_loop.json").write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"closed loop: {out['speedup_wall']:.2f}x wall, {out['speedup_cpu']:.2f}x CPU against {args.reference}; "
        f"same figures: {out['same_figures']} -> {RESULTS / 'closed_loop.json'}"
    )


if __name__ == "__main__":
    main()
