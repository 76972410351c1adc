"""The partition plan for a book of `--loans` (1e8 by default) on a Dask cluster, checked by a dry run.

The plan takes its per-partition costs from the last measured runs on this machine
(`results/scale.json`: the 1e7 book stage by stage, with the stages of later `--stages` runs in place of
theirs: `results/scale_stages.json`, then `results/scale_validate.json` with its validate too;
`results/train.json`: the training sample) and
lays them over `--workers` workers of `--worker-gib` memory: partitions (the loans per partition of
params.yaml, as `huishou.book.buckets.partitions_for` counts them), memory per worker, and the expected
wall time of each stage, with the stages that do not run by partition (they hold the book) named as such.

The dry run checks what the plan assumes without building the book: it writes the book's keys only
(`--loans` applications rows: loan_id and borrower_id, DuckDB from range(), one loan per borrower like
bench_scale's books), counts the partitions from that file's footer with `partitions_for`, and counts the
loans of every partition with the very expression `bucket_book` splits by (hash(borrower_id) % n). The
largest partition against the mean (the skew) scales the per-partition memory and time. Nothing of the
plan is hard-coded: rerun the benchmarks and this, and the figures follow.

    python benchmarks/plan_scale.py                                   # 1e8 loans, 64 workers of 16 GiB
    python benchmarks/plan_scale.py --loans 1e7 --workers 2 --worker-gib 8 --out /tmp/p.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORK = HERE / "work"
# later `bench_scale.py --stages` runs, oldest first, and what each replaces besides its *_stage steps
LATER = {"scale_stages.json": (), "scale_validate.json": ("validate",)}


def dry_run(n_loans: int, rows_per_partition: int, folder: Path) -> dict:
    """The book's keys written, then its partitions counted and filled exactly as the pipeline would."""
    from huishou.book.buckets import partitions_for
    from huishou.core.engine import duckdb_connect

    folder.mkdir(parents=True, exist_ok=True)
    keys = folder / "applications.parquet"
    con = duckdb_connect(memory_limit="4GB", preserve_insertion_order=False)
    try:
        t0 = time.perf_counter()
        con.sql(
            "SELECT range AS loan_id, range AS borrower_id FROM range(CAST($n AS BIGINT))", params={"n": n_loans}
        ).write_parquet(str(keys))
        written = time.perf_counter() - t0
        n_parts = partitions_for(keys, rows_per_partition)
        t0 = time.perf_counter()
        sizes = [
            int(n)
            for (n,) in con.execute(
                "SELECT count(*) FROM read_parquet($path) GROUP BY hash(borrower_id) % $n ORDER BY 1",
                {"path": str(keys), "n": n_parts},
            ).fetchall()
        ]
        counted = time.perf_counter() - t0
    finally:
        con.close()
    mean = n_loans / n_parts
    return {
        "loans": n_loans,
        "partitions": n_parts,
        "partitions_filled": len(sizes),
        "loans_per_partition": {"min": min(sizes), "mean": mean, "max": max(sizes)},
        "skew_max_over_mean": max(sizes) / mean,
        "keys_file_gib": keys.stat().st_size / 2**30,
        "seconds": {"write_keys": written, "count_partitions": counted},
    }


def per_partition_costs(
    scale: dict,
    train: dict,
    measured: str,
    before: str,
    bucket_loans: int,
    rows_per_partition: int,
    portfolio_loans: int = 1_000_000,
) -> dict:
    """What one partition of each stage cost at the `measured` size: wall seconds in one process (stages run
    partition after partition) or CPU seconds (Dask tasks run on single-threaded workers), the loans it held,
    the stage's peak memory there and at the smaller size `before` (for the growth), and how it runs."""
    at, small = scale["sizes"][measured], scale["sizes"][before]
    loans = at["simulate"]["loans"]

    def entry(step: str, partitions: int, target_loans: int, how: str, dask: bool, peak: str = "peak_rss_gib"):
        return {
            "seconds": (at[step]["cpu_s"] if dask else at[step]["seconds"]) / partitions,
            "loans": loans / partitions,
            "target_loans": target_loans,
            "peak_gib": at[step][peak],
            "peak_gib_before": small[step][peak] if step in small else None,
            "dask": dask,
            "how": how,
        }

    out = {}
    rows = rows_per_partition
    if "validate" in at:
        # buckets run compute.threads at once in processes: the memory is the tree's where it was measured
        tree = "tree_peak_gib" in at["validate"] and "tree_peak_gib" in small["validate"]
        how = "bucket by bucket, compute.threads buckets at once (2 on this VM) in processes"
        peak = "tree_peak_gib" if tree else "peak_rss_gib"
        out["validate"] = entry("validate", at["validate"].get("buckets", 1), bucket_loans, how, False, peak)
    if "features_stage" in at:
        out["features"] = entry(
            "features_stage",
            at["features_stage"]["buckets"],
            rows,
            "one Dask task per borrower bucket (features.engine dask); measured in one process, CPU s per bucket",
            True,
        )
    if "score_dask" in at:
        out["score"] = entry(
            "score_dask",
            at["score_dask"]["partitions"],
            rows,
            "one Dask task per borrower partition (score.engine dask)",
            True,
            peak="worker_peak_rss_gib",
        )
    if "evaluate_stage" in at and "features_stage" in at:
        sampled = at["evaluate_stage"].get("test_rows_used", 0) < at["evaluate_stage"].get("test_rows", 0)
        out["evaluate"] = entry(
            "evaluate_stage",
            at["features_stage"]["buckets"],
            rows,
            "part by part in one process; holds the test rows it scores"
            + (
                " (a stratified sample of evaluate.max_test_rows at the measured size: memory stays)" if sampled else ""
            ),
            False,
        ) | ({"memory_capped": True} if sampled else {})
    if "portfolio_stage" in at:
        out["portfolio"] = entry(
            "portfolio_stage",
            at["portfolio_stage"]["buckets"],
            portfolio_loans,
            "one Dask task per borrower bucket (portfolio.engine dask), every report a sum of per-bucket counts; "
            "measured in one process, CPU s per bucket",
            True,
        )
    if "effects_stage" in at:
        out["fit_effects"] = entry(
            "effects_stage",
            1,
            loans,
            "one process: DuckDB scans the whole log (time carried on in proportion, an upper bound: the fits "
            "learn from at most strategy.effect_model.max_decisions a stage)",
            False,
        )
    if "strategy_stage" in at:
        out["strategy"] = entry(
            "strategy_stage",
            1,
            loans,
            "one process: the book read in place by DuckDB, one worklist date's candidates planned at a time "
            "(time and memory carried on in proportion to the candidates)",
            False,
        )
    if "train_stage" in at:
        used = at["train_stage"]["rows_used"]
        out["train"] = entry(
            "train_stage",
            1,
            0,
            f"one process on a time-stratified sample of train.max_rows ({used:,} rows at the measured size): "
            "constant in book size",
            False,
        ) | {"constant": True}
    dask = next((r for k, r in train["runs"].items() if k.startswith("dask")), None)
    if dask:
        out["train_dask_refit"] = {
            "seconds": dask["seconds"],
            "rows": dask["rows_train_available"],
            "peak_gib": dask["peak_rss_gib"],
            "auc_cost_vs_full": dask["test_auc_cost_vs_full"],
        }
    return out


def plan(n_loans: int, workers: int, worker_gib: float, costs: dict, dry: dict, measured_loans: int) -> dict:
    """Partitions, memory and expected wall time of each stage for the book on the cluster. Memory two ways:
    flat (a partition's, as measured at the largest size) and linear (the growth from the smaller to the
    larger measured size carried on to this book: an upper bound where the growth is a DuckDB buffer that
    its memory limit caps, the truth where a stage holds rows of the whole book)."""
    skew = dry["skew_max_over_mean"]
    stages = {}
    for name, c in costs.items():
        if name == "train_dask_refit":
            continue
        grow = 0.0
        if c.get("peak_gib_before") is not None:
            grow = max(0.0, (c["peak_gib"] - c["peak_gib_before"]) / (0.9 * measured_loans))  # GiB per loan
        linear = c["peak_gib"] + grow * max(0, n_loans - measured_loans)
        if c.get("memory_capped"):  # a sample at its cap at the measured size: memory stays, time grows
            linear = c["peak_gib"]
        if c.get("constant"):  # a capped sample: what grew below the cap stops growing at it
            stages[name] = {"wall_s": c["seconds"], "peak_gib_flat": c["peak_gib"], "peak_gib_linear": c["peak_gib"]}
        else:
            n_parts = max(1, math.ceil(n_loans / c["target_loans"]))
            one = c["seconds"] * (n_loans / n_parts) / c["loans"] * skew
            rounds = math.ceil(n_parts / workers) if c["dask"] else n_parts
            stages[name] = {
                "partitions": n_parts,
                "seconds_per_partition": one,
                "wall_s": rounds * one,
                "runs_on": f"{workers} single-threaded workers" if c["dask"] else "one process, part after part",
                "peak_gib_flat": c["peak_gib"] * skew,
                "peak_gib_linear": linear * skew,
            }
        stage = stages[name]
        stage["fits_worker_flat"] = stage["peak_gib_flat"] <= worker_gib
        stage["fits_worker_linear"] = stage["peak_gib_linear"] <= worker_gib
        stage["how"] = c["how"]
    not_partitioned = ["evaluate-strategy"]
    return {
        "loans": n_loans,
        "workers": workers,
        "worker_gib": worker_gib,
        "partitions": dry["partitions"],
        "skew_max_over_mean": skew,
        "stages": stages,
        "wall_s_total": sum(s["wall_s"] for s in stages.values()),
        "not_partitioned": {
            name: "reads its closed loop's sample and one worklist date's candidates with their truth at a time from "
            "the files (results/scale_evaluate_strategy.json: 1e5 and 1e6 only): not run at 1e7, not planned here"
            for name in not_partitioned
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=float, default=1e8)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--worker-gib", type=float, default=16.0)
    parser.add_argument("--measured", default="10000000", help="the size in results/scale.json to take costs from")
    parser.add_argument("--before", default="1000000", help="the smaller size, for the growth of memory")
    parser.add_argument("--out", type=Path, default=RESULTS / "plan_1e8.json")
    args = parser.parse_args()
    from huishou.core.settings import load_settings

    settings = load_settings(ROOT / "params.yaml")
    rows_per_partition = settings.score.rows_per_partition
    n_loans = int(args.loans)
    scale = json.loads((RESULTS / "scale.json").read_text())
    for later in LATER:  # later --stages runs of some stages, oldest first: their figures replace theirs
        if (RESULTS / later).exists():
            for size, steps in json.loads((RESULTS / later).read_text())["sizes"].items():
                replaced = {k: v for k, v in steps.items() if k.endswith("_stage") or k in LATER[later]}
                scale["sizes"].setdefault(size, {}).update(replaced)
    train = json.loads((RESULTS / "train.json").read_text())
    folder = WORK / f"plan-{n_loans}"
    try:
        dry = dry_run(n_loans, rows_per_partition, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    costs = per_partition_costs(
        scale,
        train,
        args.measured,
        args.before,
        settings.contracts.bucket_loans,
        rows_per_partition,
        settings.portfolio.rows_per_partition,
    )
    measured_loans = scale["sizes"][args.measured]["simulate"]["loans"]
    result = {
        "dry_run": dry,
        "measured_at": int(args.measured),
        "per_partition_costs": costs,
        "plan": plan(n_loans, args.workers, args.worker_gib, costs, dry, measured_loans),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
