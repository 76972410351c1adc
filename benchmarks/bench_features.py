"""Benchmark: the features stage built whole against bucket by bucket, on the same simulated book.

For each size in `--loans`, a young book (12-month loans, one per borrower; `bench_scale`'s) is simulated
and validated, then `huishou features` runs twice over the snapshot grid of params.yaml, each in its own
process: once with the whole book in one build (features.rows_per_partition above the book) and once
one borrower bucket of `--rows-per-partition` loans at a time. Wall time, CPU time and peak memory
(ru_maxrss) of each, feature rows per second, and whether the two tables are equal (read back with
`load_features`).

    python benchmarks/bench_features.py                        # 1e6 and 2e6 loans -> results/features.json
    python benchmarks/bench_features.py --loans 100000 --out /tmp/f.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench_scale import WORK, run_features, step_simulate, step_validate
from child import run_step

RESULTS = Path(__file__).resolve().parent / "results"


def build(folder: Path, name: str, rows_per_partition: int) -> dict:
    params = folder / f"{name}.yaml"
    params.write_text(
        f"extends: {folder / 'params.yaml'}\n"
        f"data: {{features_dir: {folder / name}}}\n"
        f"features: {{rows_per_partition: {rows_per_partition}}}\n"
    )
    return run_features(params)


def measure(n_loans: int, rows_per_partition: int) -> dict:
    import pandas as pd

    from huishou.features import load_features

    folder = WORK / f"features-{n_loans}"
    shutil.rmtree(folder, ignore_errors=True)
    simulate = step_simulate(folder, n_loans)
    step_validate(folder)
    whole = run_step(__file__, "--build", str(folder), "whole", 10 * n_loans)
    buckets = run_step(__file__, "--build", str(folder), "buckets", rows_per_partition)
    try:
        pd.testing.assert_frame_equal(
            load_features(folder / "whole" / "features.parquet"), load_features(folder / "buckets" / "features.parquet")
        )
        equal = True
    except AssertionError:
        equal = False
    for run in (whole, buckets):
        run["feature_rows_per_s"] = run["feature_rows"] / run["seconds"]
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "loans": simulate["loans"],
        "installments": simulate["installments"],
        "whole": whole,
        "buckets": buckets,
        "tables_equal": equal,
        "peak_memory_ratio_buckets_to_whole": buckets["peak_rss_gib"] / whole["peak_rss_gib"],
        "time_ratio_buckets_to_whole": buckets["seconds"] / whole["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, nargs="*", default=[1_000_000, 2_000_000])
    parser.add_argument("--rows-per-partition", type=int, default=250_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "features.json")
    parser.add_argument("--build", nargs=3, help=argparse.SUPPRESS)  # folder name rows: one build, in a child
    args = parser.parse_args()
    if args.build:  # this child's only child is the huishou process: its ru_maxrss is that build's own
        folder, name, rows = args.build
        print(json.dumps(build(Path(folder), name, int(rows))))
        return
    runs = [measure(n, args.rows_per_partition) for n in args.loans]
    result = {"rows_per_partition": args.rows_per_partition, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
