"""Benchmark: what reason codes cost and which shortcuts keep them right.

On the pipeline's simulated book and model (`make repro` first), at snapshots a month and two
months before the extract, for the loans the nightly job explains (bands score.reasons_min_band
and riskier):

- the cost of exact TreeSHAP (`pred_contrib`) per explained loan, against `booster.predict` on
  the same rows, in the same process, and of the same values from per-leaf tables
  (`huishou.risk.treeshap`, what `huishou score` runs from 24 loans a tree), with their difference;
- exact reuse by input hash (what `huishou score` does): the share of risky loans whose inputs
  hash the same 1, 3 and 7 days later (re-runs of the same night reuse all of them);
- carrying yesterday's reasons over when only the clock moved (loan age, days to the next due
  date, days since the last payment or contact): agreement with the exact top-3 set;
- contributions over the first k trees only: agreement with the exact top-3 set and the cost.

An approximation is acceptable only where the exact top-3 set is kept for >= 99 % of loans (the
reasons go on adverse-action notices); the JSON says which, if any, pass.

    python benchmarks/bench_reasons.py   # -> benchmarks/results/reasons.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BAR = 0.99
CLOCK = ["app_loan_age_days", "rp_days_to_next_due", "rp_days_since_payment", "cl_days_since_contact"]


def top3(contrib: np.ndarray, names: np.ndarray) -> list[frozenset]:
    """The top-3 positive contributors per row, as sets of feature names (what the reasons say)."""
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    positive = np.take_along_axis(contrib, order, axis=1) > 0
    return [
        frozenset(n for n, p in zip(names[o], pos, strict=True) if p) for o, pos in zip(order, positive, strict=True)
    ]


def measure(snapshot: pd.Timestamp, tables, kwargs, model, cfg) -> dict:
    from huishou.risk.scoring import features_local, risk_bands, row_hashes, score_frame

    base = features_local(tables, snapshot, kwargs).set_index("loan_id")
    p = score_frame(model, base)
    risky = base.index[np.asarray(risk_bands(p, cfg.band_thresholds, cfg.band_labels).codes) >= 3]
    x = model.contract.align(base.loc[risky])
    names = np.asarray(model.contract.columns)
    booster = model.estimator

    t0 = time.perf_counter()
    booster.predict(x)
    predict_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = booster.predict(x, pred_contrib=True)[:, :-1]
    exact_s = time.perf_counter() - t0
    exact_sets = top3(exact, names)
    from huishou.risk.treeshap import TreeShap, lightgbm_matrix

    t0 = time.perf_counter()
    explainer = TreeShap(booster)  # its tables, built once per model
    build_s = time.perf_counter() - t0
    explainer.contributions(lightgbm_matrix(x.iloc[:1]))  # the compiled kernel loaded (once per process)
    t0 = time.perf_counter()
    tabulated = explainer.contributions(lightgbm_matrix(x))[:, :-1]
    tabulated_s = time.perf_counter() - t0
    out: dict = {
        "snapshot": str(snapshot.date()),
        "risky_loans": len(risky),
        "exact_treeshap_ms_per_loan": 1000 * exact_s / max(len(risky), 1),
        "treeshap_vs_predict": exact_s / predict_s,
        "tabulated_treeshap": {  # the same values from per-leaf tables (what score uses on many rows)
            "tables_built_s": build_s,
            "ms_per_loan": 1000 * tabulated_s / max(len(risky), 1),
            "speedup_vs_exact": exact_s / tabulated_s,
            "max_abs_difference": float(np.abs(tabulated - exact).max()) if len(risky) else 0.0,
            "top3_set_agreement": float(
                np.mean([a == b for a, b in zip(top3(tabulated, names), exact_sets, strict=True)])
            ),
        },
        "first_k_trees": {},
        "days_later": {},
    }
    trees = booster.num_trees()
    for k in (25, 50, 100, 200):
        if k >= trees:
            continue
        t0 = time.perf_counter()
        approx = booster.predict(x, pred_contrib=True, num_iteration=k)[:, :-1]
        seconds = time.perf_counter() - t0
        sets = top3(approx, names)
        out["first_k_trees"][k] = {
            "top3_set_agreement": float(np.mean([a == b for a, b in zip(sets, exact_sets, strict=True)])),
            "cost_vs_exact": seconds / exact_s,
        }
    h0 = pd.Series(row_hashes(model, base.loc[risky]), index=risky)
    exact_by_loan = pd.Series(exact_sets, index=risky)
    rest = [c for c in model.contract.columns if c not in CLOCK]
    for days in (1, 3, 7):
        later = features_local(tables, snapshot + pd.Timedelta(days=days), kwargs).set_index("loan_id")
        common = risky.intersection(later.index)
        same_hash = pd.Series(row_hashes(model, later.loc[common]), index=common) == h0.loc[common]
        x_later = model.contract.align(later.loc[common])
        clock_only = (x.loc[common, rest].astype(object).fillna(-999) == x_later[rest].astype(object).fillna(-999)).all(
            axis=1
        )
        later_sets = pd.Series(top3(booster.predict(x_later, pred_contrib=True)[:, :-1], names), index=common)
        kept = later_sets == exact_by_loan.loc[common]
        out["days_later"][days] = {
            "still_active": len(common),
            "same_input_hash": float(same_hash.mean()),
            "only_clock_moved": float(clock_only.mean()),
            "carry_over_top3_set_agreement": float(kept[clock_only].mean()) if clock_only.any() else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(RESULTS / "reasons.json"))
    ns = parser.parse_args()

    from huishou.book.files import raw_paths
    from huishou.core.io import read_json, write_json
    from huishou.core.settings import load_settings
    from huishou.risk.model import RiskModel

    settings = load_settings(ROOT / "params.yaml")
    raw = ROOT / settings.data.raw_dir
    as_of = pd.Timestamp(read_json(raw / "manifest.json")["as_of"])
    kwargs = settings.features.build_kwargs(as_of)
    model = RiskModel.load(ROOT / settings.data.models_dir / "trained" / "lightgbm")
    runs = [measure(as_of - pd.Timedelta(days=d), raw_paths(raw), kwargs, model, settings.score) for d in (30, 60)]
    candidates = {
        f"first_{k}_trees": [r["first_k_trees"][k]["top3_set_agreement"] for r in runs]
        for k in runs[0]["first_k_trees"]
    }
    candidates |= {
        f"carry_over_{d}d_clock_only": [r["days_later"][d]["carry_over_top3_set_agreement"] for r in runs]
        for d in (1, 3, 7)
    }
    verdict = {name: {"worst_agreement": min(v), "acceptable": min(v) >= BAR} for name, v in candidates.items()}
    tabulated = [r["tabulated_treeshap"] for r in runs]
    exact_tables = {
        "slowest_speedup_vs_exact": min(t["speedup_vs_exact"] for t in tabulated),
        "max_abs_difference": max(t["max_abs_difference"] for t in tabulated),
        "worst_top3_set_agreement": min(t["top3_set_agreement"] for t in tabulated),
    }
    report = {
        "bar_top3_set_agreement": BAR,
        "runs": runs,
        "approximations": verdict,
        "tabulated_treeshap": exact_tables,
    }
    write_json(report, ns.out)
    print(json.dumps(verdict | {"tabulated_treeshap (exact)": exact_tables}, indent=1))
    print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
