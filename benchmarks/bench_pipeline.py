"""Benchmark: simulate books of 1e5 and 1e6 loans (12 installments each), time the feature build,
training and end-to-end scoring, with peak memory; compare the DuckDB build against a plain
pandas groupby implementation in the same process.

    python benchmarks/bench_pipeline.py                 # 1e5 and 1e6 loans -> benchmarks/results/pipeline.json
    python benchmarks/bench_pipeline.py --loans 100000  # one size

Each phase runs in its own process so that its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
from child import run_step, usage

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results"
START, MONTHS = "2025-01-01", 13  # a young book: most loans are still active at the extract date


def _settings():
    from huishou.core.settings import load_settings

    return load_settings(HERE.parent / "params.yaml")


def phase_simulate(n_loans: int, raw: Path) -> dict:
    from huishou.core.io import write_json, write_parquet
    from huishou.simulate import simulate_book

    base = _settings().simulate
    cfg = dataclasses.replace(
        base,
        n_borrowers=n_loans,
        start_date=START,
        months=MONTHS,
        term_mix={12: 1.0},
        extra_loans_mean=0.0,
        write_oracle=False,
    )
    t0 = time.perf_counter()
    book = simulate_book(cfg, progress=False)
    seconds = time.perf_counter() - t0
    for name, frame in book.raw_tables().items():
        write_parquet(frame, raw / f"{name}.parquet")
    write_json({"as_of": str(cfg.as_of.date()), "source": "benchmark"}, raw / "manifest.json")
    return {"seconds": seconds, "loans": len(book.applications), "installments": len(book.installments)}


def _snapshots(raw: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    as_of = pd.Timestamp(json.loads((raw / "manifest.json").read_text())["as_of"])
    return as_of, as_of - pd.Timedelta(days=_settings().features.horizon_days + 1)


def _kwargs(as_of: pd.Timestamp) -> dict:
    return _settings().features.build_kwargs(as_of)


def phase_features(raw: Path, warm_runs: int = 3) -> dict:
    """Full DuckDB build (all families) from the parquet files, at the nightly snapshot: the first
    build in the process (cold) and the median of `warm_runs` more (timings swing run to run here)."""
    import statistics

    from huishou.book import raw_paths
    from huishou.core.io import write_parquet
    from huishou.features import build_features

    as_of, _ = _snapshots(raw)
    tables = raw_paths(raw)
    rows = pd.read_parquet(tables["installments"], columns=["loan_id"]).shape[0]
    timings = []
    for _ in range(1 + warm_runs):
        t0 = time.perf_counter()
        frame = build_features(tables, [as_of], **_kwargs(as_of))
        timings.append(time.perf_counter() - t0)
    write_parquet(frame, raw.parent / "features.parquet")
    cold, warm = timings[0], statistics.median(timings[1:])
    return {
        "seconds_cold": cold,
        "seconds_warm": warm,
        "seconds_warm_runs": timings[1:],
        "installment_rows": rows,
        "installment_rows_per_s_cold": rows / cold,
        "installment_rows_per_s_warm": rows / warm,
        "feature_rows": len(frame),
        "feature_columns": frame.shape[1],
    }


def phase_compare(raw: Path, repeats: int = 3) -> dict:
    """Population + repayment family: DuckDB SQL vs plain pandas groupby, same process, same data in
    memory; the median of `repeats` alternating runs of each. The pandas side computes a subset of
    the family (10 of its ~30 columns), so the comparison flatters pandas."""
    import statistics

    import duckdb

    from huishou.features import reference_pandas as ref
    from huishou.features.build import _connect
    from huishou.features.population import loan_status_sql, spine_sql
    from huishou.features.repayment import repayment_sql

    as_of, _ = _snapshots(raw)
    f = _settings().features
    apps = pd.read_parquet(raw / "applications.parquet", columns=["loan_id", "borrower_id", "disbursed_at"])
    inst = pd.read_parquet(raw / "installments.parquet")

    def with_pandas() -> pd.DataFrame:
        spine = ref.spine(apps, inst, as_of, f.default_dpd, f.paid_tolerance)
        return ref.repayment(spine, inst, as_of, f.paid_tolerance)

    def with_duckdb() -> pd.DataFrame:
        con: duckdb.DuckDBPyConnection = _connect({"applications": apps, "installments": inst}, [as_of], None, None)
        params = {"tol": f.paid_tolerance, "share": f.settle_share, "dpd": f.default_dpd}
        con.execute(f"CREATE TEMP TABLE loan_status AS {loan_status_sql()}", params)
        con.execute(f"CREATE TEMP TABLE spine AS {spine_sql()}")
        sql = repayment_sql(f.late_thresholds, f.recent_days)
        out = con.execute(sql, {"tol": f.paid_tolerance, "share": f.settle_share}).to_arrow_table().to_pandas()
        con.close()
        return out

    timings: dict[str, list[float]] = {"pandas": [], "duckdb": []}
    rows: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in (("pandas", with_pandas), ("duckdb", with_duckdb)):
            t0 = time.perf_counter()
            rows[name] = len(fn())
            timings[name].append(time.perf_counter() - t0)
    assert rows["pandas"] == rows["duckdb"], rows
    pandas_s, duck_s = statistics.median(timings["pandas"]), statistics.median(timings["duckdb"])
    return {
        "installment_rows": len(inst),
        "duckdb_seconds": duck_s,
        "pandas_seconds": pandas_s,
        "duckdb_rows_per_s": len(inst) / duck_s,
        "pandas_rows_per_s": len(inst) / pandas_s,
        "speedup": pandas_s / duck_s,
        "feature_rows": rows["duckdb"],
        "repeats": repeats,
    }


def phase_train(raw: Path) -> dict:
    """LightGBM on a labelled snapshot (features built first, not timed here)."""
    from huishou.book import raw_paths
    from huishou.features import build_features, feature_columns
    from huishou.risk.train import fit_lightgbm

    as_of, t_train = _snapshots(raw)
    frame = build_features(raw_paths(raw), [t_train], **_kwargs(as_of))
    cols = feature_columns(frame)
    valid_mask = frame["loan_id"] % 5 == 0
    cfg = dataclasses.replace(_settings().train, early_stopping_rounds=10_000)  # fixed rounds: comparable timing
    t0 = time.perf_counter()
    model = fit_lightgbm(frame[~valid_mask], frame[valid_mask], cols, cfg)
    seconds = time.perf_counter() - t0
    from huishou.risk.drift import build_reference
    from huishou.risk.train import top_features

    train = frame[~valid_mask]
    top = top_features(model, cfg.reference_features)
    model.meta["reference"] = build_reference(model.predict_proba(train), train, top, cfg.reference_bins)
    model.save(raw.parent / "model")
    return {
        "seconds": seconds,
        "train_rows": int((~valid_mask).sum()),
        "rounds": cfg.num_boost_round,
        "rows_x_rounds_per_s": int((~valid_mask).sum()) * cfg.num_boost_round / seconds,
    }


def phase_score(raw: Path) -> dict:
    """End to end: read the features parquet, score in chunks, write the scores parquet.

    Timed three ways: without reason codes (read, score, band, write), as the nightly job runs it
    (TreeSHAP reason codes for the risky bands), and a re-run of the same night (every reason
    carried over by input hash); plus `booster.predict` alone on the same rows, the floor.
    """
    from huishou.core.io import write_parquet
    from huishou.features import load_features
    from huishou.risk.model import RiskModel
    from huishou.risk.scoring import ReasonCache, explained_bands, risk_bands, score_frame, score_rows

    s = _settings()
    model = RiskModel.load(raw.parent / "model")
    info = {"model_name": "bench", "model_version": "0"}
    out: dict = {}
    features = load_features(raw.parent / "features.parquet")
    x = model.contract.align(features)
    t0 = time.perf_counter()
    model.estimator.predict(x)
    out["booster_predict_seconds"] = time.perf_counter() - t0
    for label in ("without_reasons", "with_reasons", "rerun_with_reasons"):
        t0 = time.perf_counter()
        features = load_features(raw.parent / "features.parquet")
        if label == "without_reasons":
            probability = score_frame(model, features, s.score.chunk_size)
            scores = features[["loan_id", "borrower_id", "snapshot_date"]].assign(
                probability=probability,
                risk_band=risk_bands(probability, s.score.band_thresholds, s.score.band_labels),
            )
            stats = {}
        else:
            cache = None
            if label.startswith("rerun"):
                cache = ReasonCache.read(raw.parent / "scores_with_reasons.parquet", explained_bands(s.score))
            scores, totals = score_rows(features, model, info, s.score, cache)
            stats = totals["reasons"]
        write_parquet(scores, raw.parent / f"scores_{label}.parquet")
        seconds = time.perf_counter() - t0
        out[label] = {"seconds": seconds, "loans_scored": len(scores), "loans_per_s": len(scores) / seconds} | stats
    out["with_reasons_vs_predict"] = out["with_reasons"]["seconds"] / out["booster_predict_seconds"]
    return out | out["with_reasons"]


PHASES = {
    "simulate": phase_simulate,
    "features": phase_features,
    "compare": phase_compare,
    "train": phase_train,
    "score": phase_score,
}


def _run_phase(name: str, *args: str) -> dict:
    return run_step(__file__, "--phase", name, *args, width=9)


def bench_size(n_loans: int) -> dict:
    raw = WORK / f"loans_{n_loans}" / "raw"
    print(f"book of {n_loans:,} loans", flush=True)
    out = {"simulate": _run_phase("simulate", str(n_loans), str(raw))}
    for name in ("features", "compare", "train", "score"):
        out[name] = _run_phase(name, str(raw))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "pipeline.json"))
    ns = parser.parse_args()
    if ns.phase:
        args = [int(ns.args[0]), Path(ns.args[1])] if ns.phase == "simulate" else [Path(ns.args[0])]
        result = PHASES[ns.phase](*args)
        result["peak_rss_gib"] = round(usage()["peak_rss_gib"], 3)
        print(json.dumps(result))
        return
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "sizes": {str(n): bench_size(n) for n in ns.loans},
    }
    from huishou.core.io import write_json

    write_json(report, ns.out)
    print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
