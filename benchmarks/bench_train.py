"""Benchmark: the train stage on a sample against the full fit, and its memory against a whole-table read.

A young book of `--loans` loans (bench_scale's) is simulated, validated and its features built bucket by
bucket (features.rows_per_partition 250 k: a folder of parts). Then `huishou train` runs in its own process
once on every labelled row (train.max_rows 0) and once per cap in `--max-rows` (a time-stratified sample:
the same share of every snapshot date and outcome), and once with train.engine dask (the single-node fit on
the smallest sample fixes the rounds, lightgbm.dask refits on every labelled train row, each part read by a
worker of a local cluster). Each run: wall and CPU time, peak memory (ru_maxrss of the stage and, for dask,
its workers), rows used, rounds, and the LightGBM model's AUC on every row of the valid and test splits (not
the sample), so the sample's AUC cost against the full fit is measured, not assumed. The reference for memory
is `load_features` of the whole table (what train read before it read only labelled train and valid rows).

    python benchmarks/bench_train.py                      # 1e6 loans -> results/train.json
    python benchmarks/bench_train.py --loans 100000 --max-rows 20000 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench_features import build
from bench_scale import WORK, _cli, step_simulate, step_validate
from child import run_step, usage

RESULTS = Path(__file__).resolve().parent / "results"


def train(folder: Path, name: str, max_rows: int, engine: str) -> dict:
    params = folder / f"{name}.yaml"
    params.write_text(
        f"extends: {folder / 'params.yaml'}\n"
        f"data: {{features_dir: {folder / 'features'}, models_dir: {folder / name}}}\n"
        f"train: {{max_rows: {max_rows}, engine: {engine}}}\n"
    )
    out = _cli(params, "train")
    out.pop("result")
    metrics = json.loads((folder / name / "trained" / "train_metrics.json").read_text())
    keep = ("rows_train_used", "rows_train_available", "rows_valid_used", "rows_valid_available")
    return out | {k: metrics[k] for k in keep} | {"rounds": metrics["lightgbm_best_iteration"]}


def load_whole(folder: Path) -> dict:
    """The reference: the whole feature table in pandas, as train read it before."""
    from huishou.features import load_features

    frame = load_features(folder / "features" / "features.parquet")
    return {"rows": len(frame)} | usage()


def aucs(folder: Path, name: str) -> dict:
    """The trained LightGBM model's AUC on every valid and test row, read part by part."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from huishou.features.store import feature_files
    from huishou.risk.model import RiskModel

    model = RiskModel.load(folder / name / "trained" / "lightgbm")
    scored = {"valid": ([], []), "test": ([], [])}
    for path in feature_files(folder / "features" / "features.parquet"):
        part = pd.read_parquet(path, filters=[("split", "in", ["valid", "test"])])
        part = part[part["target"].notna()]
        for split, (y, p) in scored.items():
            rows = part[part["split"] == split]
            y.append(rows["target"].astype(int).to_numpy())
            p.append(model.predict_proba(rows))
    import numpy as np

    return {f"{s}_auc": float(roc_auc_score(np.concatenate(y), np.concatenate(p))) for s, (y, p) in scored.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--max-rows", type=int, nargs="*", default=[1_000_000, 500_000, 250_000])
    parser.add_argument("--out", type=Path, default=RESULTS / "train.json")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)  # one measured step, in a child
    args = parser.parse_args()
    if args.step:
        kind, folder, *rest = args.step
        if kind == "train":
            print(json.dumps(train(Path(folder), rest[0], int(rest[1]), rest[2])))
        elif kind == "features":
            print(json.dumps(build(Path(folder), "features", 250_000)))  # bench_features' bucketed build
        else:
            print(json.dumps(load_whole(Path(folder))))
        return
    folder = WORK / f"train-{args.loans}"
    shutil.rmtree(folder, ignore_errors=True)
    book = step_simulate(folder, args.loans)
    step_validate(folder)
    built = run_step(__file__, "--step", "features", folder)
    reference = run_step(__file__, "--step", "load_whole", folder)
    runs = {}
    for name, cap, engine in [
        ("full", 0, "local"),
        *((f"sample_{cap}", cap, "local") for cap in args.max_rows),
        (f"dask_sample_{min(args.max_rows)}", min(args.max_rows), "dask"),
    ]:
        runs[name] = run_step(__file__, "--step", "train", folder, name, cap, engine, width=20)
        runs[name] |= aucs(folder, name) | {"max_rows": cap, "engine": engine}
        print(f"  {name:20s} valid AUC {runs[name]['valid_auc']:.4f}  test AUC {runs[name]['test_auc']:.4f}")
    full = runs["full"]
    for run in runs.values():
        run["test_auc_cost_vs_full"] = full["test_auc"] - run["test_auc"]
        run["valid_auc_cost_vs_full"] = full["valid_auc"] - run["valid_auc"]
        run["time_ratio_to_full"] = run["seconds"] / full["seconds"]
        run["peak_memory_ratio_to_whole_table_read"] = run["peak_rss_gib"] / reference["peak_rss_gib"]
    shutil.rmtree(folder, ignore_errors=True)
    result = {
        "loans": book["loans"],
        "features": built,
        "whole_table_read": reference,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
