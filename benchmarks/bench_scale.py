"""Benchmark: the loan book at 1e5, 1e6 and 1e7 loans on this machine, stage by stage.

Every step runs in its own process, so its peak memory (ru_maxrss) is its own; CPU seconds are
user + system time of that process and, for Dask, of its worker processes. In the same run:

- the anchor: one DuckDB GROUP BY pass over the installments file (the least any feature build
  must do), as rows/s, against which the feature build is a ratio;
- the floor: `booster.predict` alone on one partition's features, against which scoring is a ratio.

Steps: `huishou simulate` (streamed in chunks of simulate.chunk_borrowers), `huishou validate`,
the local feature build, `huishou score` (local engine, reason codes for the risky bands), the
DVC stages `huishou features` (bucket by bucket beyond 250 k loans), `huishou train` (a time-stratified
sample beyond train.max_rows), `huishou evaluate` (part by part), `huishou portfolio` (bucket by bucket
beyond 1 M loans) and `huishou fit-effects` (the log read in place, at most 200 k decisions a stage), and
the Dask scoring path (`score_dask`: one task reads the book once and splits it by borrower partition,
then one task per partition builds, scores, explains and writes; the driver only adds aggregates), then
`huishou strategy` (the book read in place, one worklist date planned at a time).
`huishou validate` checks books beyond contracts.bucket_loans (1e6) bucket by bucket and `huishou
score` scores books beyond score.rows_per_partition (250 k) one borrower partition at a time. The
whole-book feature build (what the DVC features stage runs over the snapshot grid: one pandas frame)
grows with the book and is run only where the extrapolation of the smaller books stays under
`--max-gib`; the JSON says which were left out and why.

    python benchmarks/bench_scale.py                               # 1e5, 1e6, 1e7 -> results/scale.json
    python benchmarks/bench_scale.py --loans 100000 --out /tmp/s.json
    python benchmarks/bench_scale.py --loans 100000 1000000 10000000 --stages features_stage train_stage \\
        evaluate_stage effects_stage strategy_stage --out benchmarks/results/scale_stages.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from child import TreePeak, run_step, usage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results"


def _params(folder: Path, n_loans: int) -> Path:
    """A params file for a young book (12-month loans from 2025-01, one loan per borrower)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "raw_dir": str(folder / "raw"),
        "truth_dir": str(folder / "truth"),
        "validated_dir": str(folder / "validated"),
        "features_dir": str(folder / "features"),
        "models_dir": str(folder / "models"),
        "worklists_dir": str(folder / "worklists"),  # every output in the book's folder, none in the repository's
        "compliance_dir": str(folder / "compliance"),
        "experiments_dir": str(folder / "experiments"),
    }
    text = (
        f"extends: {ROOT / 'params.yaml'}\n"
        f"data: {json.dumps(data)}\n"
        f"simulate: {{n_borrowers: {n_loans}, start_date: '2025-01-01', months: 13, term_mix: {{12: 1.0}},"
        " extra_loans_mean: 0.0, write_oracle: false}\n"
        f"score: {{scores_dir: {json.dumps(str(folder / 'scores'))}}}\n"
    )
    path = folder / "params.yaml"
    path.write_text(text)
    return path


# `huishou` with reason codes from LightGBM's pred_contrib on any number of rows (the reference for the tables)
PRED_CONTRIB = (
    "import sys; import huishou.risk.model as m; m.TREESHAP_TABLE_ROWS_PER_TREE = float('inf'); "
    "from huishou.cli import main; sys.exit(main())"
)


def _cli(params: Path, *args: str, reference: bool = False) -> dict:
    """A huishou command in a child process: wall time, its CPU time, its peak memory (ru_maxrss: the largest
    single process) and the peak of it and the processes it starts together (`TreePeak`). `reference`: with
    LightGBM's own TreeSHAP for the reason codes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    command = [sys.executable, "-c", PRED_CONTRIB] if reference else [sys.executable, "-m", "huishou"]
    proc = subprocess.Popen(
        [*command, "--params", str(params), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ
        | {
            "MLFLOW_TRACKING_URI": f"sqlite:///{params.parent / 'mlflow.db'}",
            "HUISHOU_LOGS": str(params.parent / "logs"),
            "TQDM_DISABLE": "1",
        },
    )
    with TreePeak(proc.pid) as tree:
        stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"huishou {' '.join(args)} failed:\n{stderr[-3000:]}")
    return {
        "seconds": seconds,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_gib": after.ru_maxrss / 2**20,  # the largest child so far: each step runs in a fresh parent
        "tree_peak_gib": tree.gib,
        "result": json.loads(stdout.strip().splitlines()[-1]),
    }


# ---------------------------------------------------------------- steps (each in its own process)


def step_simulate(folder: Path, n_loans: int) -> dict:
    out = _cli(_params(folder, n_loans), "simulate")
    tables = out.pop("result")["tables"]
    return out | {"loans": tables["applications"], "installments": tables["installments"]}


def step_validate(folder: Path) -> dict:
    return _cli(folder / "params.yaml", "validate")


def _book(folder: Path):
    import pandas as pd

    from huishou.book.files import raw_paths
    from huishou.core.io import read_json
    from huishou.core.settings import load_settings

    settings = load_settings(folder / "params.yaml")
    as_of = pd.Timestamp(read_json(folder / "raw" / "manifest.json")["as_of"])
    return settings, raw_paths(folder / "raw"), as_of


def step_anchor(folder: Path) -> dict:
    """One DuckDB GROUP BY pass over the installments (count and sums per loan)."""
    from huishou.core.engine import duckdb_connect

    _, tables, _ = _book(folder)
    con = duckdb_connect(memory_limit="2GB", preserve_insertion_order=False)
    query = (
        "SELECT count(*), sum(n) FROM (SELECT loan_id, count(*) AS n, sum(amount_due) AS due, "
        "sum(amount_paid) AS paid, max(paid_date) AS last FROM read_parquet($path) GROUP BY loan_id)"
    )
    t0 = time.perf_counter()
    loans, rows = con.execute(query, {"path": str(tables["installments"])}).fetchone()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "installment_rows": int(rows), "rows_per_s": rows / seconds, "loans": int(loans)}


def step_features(folder: Path) -> dict:
    """The local feature build of every active loan at the extract date (what `huishou score` runs)."""
    import pandas as pd

    from huishou.risk.scoring import features_local

    settings, tables, as_of = _book(folder)
    rows = pd.read_parquet(tables["installments"], columns=["loan_id"]).shape[0]
    t0 = time.perf_counter()
    frame = features_local(tables, as_of, settings.features.build_kwargs(as_of) | {"memory_limit": "4GB"})
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "installment_rows": rows, "rows_per_s": rows / seconds, "feature_rows": len(frame)}


def step_train(folder: Path, model_dir: Path) -> dict:
    """The model every size is scored with: LightGBM on a labelled snapshot of this book, with its reference."""
    import pandas as pd

    from huishou.features import build_features, feature_columns
    from huishou.risk.drift import build_reference
    from huishou.risk.train import fit_lightgbm, top_features

    settings, tables, as_of = _book(folder)
    t_train = as_of - pd.Timedelta(days=settings.features.horizon_days + 1)
    frame = build_features(tables, [t_train], **settings.features.build_kwargs(as_of))
    cols = feature_columns(frame)
    valid = frame["loan_id"] % 5 == 0
    t0 = time.perf_counter()
    model = fit_lightgbm(frame[~valid], frame[valid], cols, settings.train)
    seconds = time.perf_counter() - t0
    train = frame[~valid]
    top = top_features(model, settings.train.reference_features)
    model.meta["reference"] = build_reference(model.predict_proba(train), train, top, settings.train.reference_bins)
    model.save(model_dir)
    return {"seconds": seconds, "rows": int((~valid).sum()), "trees": model.estimator.num_trees()}


def run_features(params: Path) -> dict:
    """`huishou features` with `params` in a child process: its time and memory, feature rows and buckets."""
    out = _cli(params, "features")
    summary = out.pop("result")
    rows = sum(summary[s]["rows"] for s in ("train", "valid", "gap", "test") if s in summary)
    return out | {"feature_rows": rows, "buckets": summary.get("buckets", 1)}


def step_features_stage(folder: Path) -> dict:
    """`huishou features` over the snapshot grid: one borrower bucket at a time beyond
    features.rows_per_partition (250 k loans)."""
    out = run_features(folder / "params.yaml")
    return out | {"feature_rows_per_s": out["feature_rows"] / out["seconds"]}


def step_train_stage(folder: Path) -> dict:
    """`huishou train`: LightGBM, logistic and scorecard on the labelled train and valid rows, a time-stratified
    sample beyond train.max_rows."""
    out = _cli(folder / "params.yaml", "train")
    metrics = json.loads((folder / "models" / "trained" / "train_metrics.json").read_text())
    out.pop("result")
    return out | {
        "rows_used": metrics["rows_train_used"] + metrics["rows_valid_used"],
        "rows_available": metrics["rows_train_available"] + metrics["rows_valid_available"],
        "valid_auc": metrics["valid_lightgbm_auc"],
    }


def step_evaluate_stage(folder: Path) -> dict:
    """`huishou evaluate`: every model on the labelled test rows (beyond evaluate.max_test_rows a stratified
    sample), the table read part by part."""
    out = _cli(folder / "params.yaml", "evaluate")
    result = out.pop("result")
    rows = result["test_rows"]
    return out | {"test_auc": result["lightgbm"]["auc"], "test_rows_used": rows["used"], "test_rows": rows["available"]}


def step_portfolio_stage(folder: Path) -> dict:
    """`huishou portfolio`: the reports counted one borrower bucket at a time beyond
    portfolio.rows_per_partition (1 M loans)."""
    out = _cli(folder / "params.yaml", "portfolio")
    result = out.pop("result")
    return out | {"buckets": result["buckets"], "open_loans": result["open_loans"]}


def step_effects_stage(folder: Path) -> dict:
    """`huishou fit-effects`: the log read in place by DuckDB, at most strategy.effect_model.max_decisions
    (200 k) decisions per stage learnt from (whole loans chosen by hash beyond)."""
    out = _cli(folder / "params.yaml", "fit-effects")
    result = out.pop("result")
    return out | {"decisions": sum(result["decisions"].values()), "fitted": len(result["fitted"])}


def step_strategy_stage(folder: Path) -> dict:
    """`huishou strategy`: every worklist date's candidates, lawful plans and the published worklists (the book
    in pandas; needs the features, train and fit-effects stages' outputs)."""
    out = _cli(folder / "params.yaml", "strategy")
    result = out.pop("result")
    return out | {
        "worklist_rows": result["worklist_rows"],
        "human_actions": result["human_actions"],
        "candidates": sum(sum(day["candidates"].values()) for day in result["plans"].values()),
    }


def step_score_stage(folder: Path) -> dict:
    """`huishou score`: the nightly scores of the extract date with the model train_stage just trained (what
    evaluate-strategy's expected-loss worklists rank by), then the same command with reason codes from
    LightGBM's own TreeSHAP (`pred_contrib`) as the reference: the same scores, the ratio of the two times."""
    model = folder / "models" / "trained" / "lightgbm"
    out = _score(folder, model, "scores")
    reference = _score(folder, model, "scores_pred_contrib", reference=True)
    return out | {"pred_contrib_reference": reference, "vs_pred_contrib": reference["seconds"] / out["seconds"]}


def step_evaluate_strategy_stage(folder: Path) -> dict:
    """`huishou evaluate-strategy`: the published worklists against the simulator's truth one day at a time, and
    the closed loop on strategy.closed_loop.sample_borrowers (3,000) drawn from the book, its files read in place
    (needs the score, fit-effects and strategy stages' outputs)."""
    out = _cli(folder / "params.yaml", "evaluate-strategy")
    result = out.pop("result")
    loop = result.get("closed_loop", {})
    return out | {"loop_collections_uplift_vs_strongest": loop.get("loop_collections_uplift_vs_strongest")}


def _score(folder: Path, model_dir: Path, name: str, reference: bool = False) -> dict:
    """`huishou score` with `model_dir` into folder/name; `reference`: reason codes from LightGBM's own
    TreeSHAP (pred_contrib) instead of huishou's tables."""
    out = _cli(
        folder / "params.yaml",
        "score",
        "--model-path",
        str(model_dir),
        "--out",
        str(folder / name),
        reference=reference,
    )
    result = out.pop("result")
    rows = result["rows"]
    return out | {"loans": rows, "loans_per_s": rows / out["seconds"], "reasons": result["reasons_computed"]}


def step_score_local(folder: Path, model_dir: Path) -> dict:
    return _score(folder, model_dir, "scores_local")


def step_score_dask(folder: Path, model_dir: Path) -> dict:
    """The Dask path on a local cluster of compute.threads single-threaded processes."""
    import numpy as np

    from huishou.book.buckets import partitions_for
    from huishou.core.engine import close_dask, dask_client, threads
    from huishou.risk.model import RiskModel
    from huishou.risk.scoring import partition_features, score_dask

    settings, tables, as_of = _book(folder)
    cfg = settings.score
    model = RiskModel.load(model_dir)
    kwargs = settings.features.build_kwargs(as_of)
    target = folder / "scores_dask" / "scores.parquet"
    shutil.rmtree(target.parent, ignore_errors=True)
    workers = threads(settings.compute.threads)
    client = dask_client(None, workers)
    try:
        t0 = time.perf_counter()
        totals, parts = score_dask(
            tables, as_of, kwargs, cfg, model, {"model_name": "b", "model_version": "0"}, target, client=client
        )
        seconds = time.perf_counter() - t0
        import child
        import cloudpickle

        cloudpickle.register_pickle_by_value(child)  # the workers do not have benchmarks/ on their path
        worker_usage = client.run(usage)
    finally:
        close_dask(client)
    driver = usage()
    # the floor: booster.predict alone on one partition's rows, all cores
    one = partition_features(tables, 0, partitions_for(tables["applications"], cfg.rows_per_partition), as_of, kwargs)
    x = model.contract.align(one)
    t0 = time.perf_counter()
    model.estimator.predict(x, num_threads=workers)
    predict_rate = len(x) / (time.perf_counter() - t0)
    rate = totals["rows"] / seconds
    return {
        "seconds": seconds,
        "partitions": parts,
        "loans": totals["rows"],
        "loans_per_s": rate,
        "reasons_computed": totals["reasons"]["computed"],
        "driver_peak_rss_gib": driver["peak_rss_gib"],
        "worker_peak_rss_gib": max(w["peak_rss_gib"] for w in worker_usage.values()),
        "cpu_s": driver["cpu_s"] + float(np.sum([w["cpu_s"] for w in worker_usage.values()])),
        "predict_rows_per_s": predict_rate,
        "vs_predict": predict_rate / rate,
    }


STEPS = {
    "simulate": step_simulate,
    "validate": step_validate,
    "anchor": step_anchor,
    "features": step_features,
    "train": step_train,
    "score_local": step_score_local,
    "score_dask": step_score_dask,
    "features_stage": step_features_stage,
    "train_stage": step_train_stage,
    "evaluate_stage": step_evaluate_stage,
    "portfolio_stage": step_portfolio_stage,
    "effects_stage": step_effects_stage,
    "strategy_stage": step_strategy_stage,
    "score_stage": step_score_stage,
    "evaluate_strategy_stage": step_evaluate_strategy_stage,
}
STAGES = ("features_stage", "train_stage", "evaluate_stage", "portfolio_stage", "effects_stage", "strategy_stage")
GROWS_WITH_BOOK = ("features",)  # the whole-book build in one frame: skipped past --max-gib


def _run(name: str, *args) -> dict:
    return run_step(__file__, "--step", name, *args)


def _predicted_gib(done: dict, step: str, n: int) -> float | None:
    """Peak memory of `step` at n loans, extrapolated linearly from the largest smaller book measured."""
    sizes = sorted(s for s in done if step in done[s] and "peak_rss_gib" in done[s][step])
    if not sizes:
        return None
    last = sizes[-1]
    return done[last][step]["peak_rss_gib"] * n / last


def _run_if_it_fits(done: dict, skipped: dict, step: str, n: int, max_gib: float, folder: Path) -> None:
    """Run `step` on the book of n loans unless its memory, extrapolated from the smaller books, would pass
    `max_gib` (then the JSON says so under `skipped`)."""
    predicted = _predicted_gib(done, step, n)
    if predicted is not None and predicted > max_gib:
        skipped.setdefault(str(n), {})[step] = f"memory grows with the book: ~{predicted:.1f} GiB predicted"
        return
    done[n][step] = _run(step, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--max-gib", type=float, default=8.0, help="skip steps whose memory would pass this")
    parser.add_argument("--out", default=str(RESULTS / "scale.json"))
    parser.add_argument("--keep", action="store_true", help="keep the simulated books under benchmarks/work")
    parser.add_argument(
        "--stages",
        nargs="*",
        help="only simulate, validate and these stage steps, in this order (e.g. features_stage train_stage "
        "effects_stage strategy_stage: the strategy's figures without the rest)",
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.step:
        args = [Path(a) if "/" in a else int(a) for a in ns.args]
        result = STEPS[ns.step](*args)
        result.setdefault("peak_rss_gib", usage()["peak_rss_gib"])
        result.setdefault("cpu_s", usage()["cpu_s"])
        print(json.dumps(result))
        return

    model_dir = WORK / "scale_model"
    done: dict[int, dict] = {}
    skipped: dict[str, dict] = {}
    for n in sorted(ns.loans):
        folder = WORK / f"scale_{n}"
        shutil.rmtree(folder, ignore_errors=True)
        print(f"book of {n:,} loans", flush=True)
        out = done[n] = {"simulate": _run("simulate", folder, n)}
        if ns.stages:
            out["validate"] = _run("validate", folder)
            out["validate"]["buckets"] = out["validate"].pop("result", {}).get("buckets", 1)
            for step in ns.stages:
                out[step] = _run(step, folder)
            if not ns.keep:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        out["anchor"] = _run("anchor", folder)
        if not model_dir.exists() or n == min(ns.loans):
            shutil.rmtree(model_dir, ignore_errors=True)
            out["train"] = _run("train", folder, model_dir)
        out["validate"] = _run("validate", folder)
        for step in GROWS_WITH_BOOK:
            _run_if_it_fits(done, skipped, step, n, ns.max_gib, folder)
        out["score_local"] = _run("score_local", folder, model_dir)
        out["validate"]["buckets"] = out["validate"].pop("result", {}).get("buckets", 1)
        out["score_dask"] = _run("score_dask", folder, model_dir)
        for step in STAGES:
            out[step] = _run(step, folder)
        if "features" in out:
            out["features"]["vs_anchor"] = out["anchor"]["rows_per_s"] / out["features"]["rows_per_s"]
        if not ns.keep:
            shutil.rmtree(folder, ignore_errors=True)

    sizes = sorted(done)
    exponents = {}
    for a, b in zip(sizes, sizes[1:], strict=False):
        for step in (
            "simulate",
            "anchor",
            "validate",
            "features",
            "score_local",
            "score_dask",
            *STAGES,
        ):
            if step in done[a] and step in done[b]:
                ratio = done[b]["simulate"]["loans"] / done[a]["simulate"]["loans"]
                exponents.setdefault(step, {})[f"{a}->{b}"] = math.log(
                    done[b][step]["seconds"] / done[a][step]["seconds"]
                ) / math.log(ratio)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "sizes": {str(n): v for n, v in done.items()},
        "skipped": skipped,
        "time_exponents": exponents,
    }
    from huishou.core.io import write_json

    write_json(report, ns.out)
    _plot(report, Path(ns.out).with_suffix(".png"))
    print(f"wrote {ns.out}")


def _plot(report: dict, path: Path) -> None:
    """Time and peak memory per step against the book size (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in report["sizes"])
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, step in enumerate(("simulate", "validate", "features", "score_local", "score_dask", *STAGES)):
        xs = [n for n in sizes if step in report["sizes"][str(n)]]
        if not xs:
            continue
        colour = f"C{i}"  # the same colour for a step in both panels
        rows = [report["sizes"][str(n)][step] for n in xs]
        ax_t.plot(xs, [r["seconds"] for r in rows], marker="o", color=colour, label=step)
        mem = [r.get("driver_peak_rss_gib", r["peak_rss_gib"]) for r in rows]
        ax_m.plot(xs, mem, marker="o", color=colour, label=step + (" (driver)" if step == "score_dask" else ""))
        if step == "score_dask":
            worker = [r["worker_peak_rss_gib"] for r in rows]
            ax_m.plot(xs, worker, marker="s", ls="--", color=colour, label="score_dask (worker)")
    ax_m.axhline(8, color="grey", lw=0.8, ls=":")
    for ax, title in ((ax_t, "wall time (s)"), (ax_m, "peak memory (GiB)")):
        ax.set(xscale="log", yscale="log", xlabel="loans in the book", title=title)
        ax.grid(True, which="both", lw=0.3)
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
