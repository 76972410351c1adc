"""Benchmark: one day's assignment beyond a million candidates, with each collector's minutes, skills and
languages.

The day is made from the repro's own plan values (`make repro` first): every candidate of the five worklist
dates (data/worklists/candidates/) gets its value of every action back (`values_matrix` of its estimated
P(paid | action), lawful actions and complaint chance), and borrowers are drawn with replacement until the
day has `--candidates` loans (each drawn borrower a new id, its loans with it). The team grows with the day
at the repro's ratio (strategy.collectors per the repro's mean candidates a day; agencies likewise) and is a
roster of eight: one field collector (visits, calls, plans, settlements), one who also speaks Cantonese, six
on the phone in Mandarin (calls, plans, settlements). Borrowers speak simulate.languages. These rosters and
the language mix are assumptions of the benchmark, not measurements.

Each size runs in its own process (peak memory its own), three ways where they fit:
- `decomposed`: `assign.plan` with strategy.exact_max_rows: the cut (`decompose`), then exact on the kept
  borrowers if they are few enough, else greedy with the bound from prices on capacity (`price_bound`);
- `buckets`: `assign.plan_parts` over 16 borrower buckets, each cut on its own (only the kept rows of every
  bucket are ever held together): the same plan's value;
- `reference` (up to --reference-max candidates): what `plan` did before the cut: greedy on every
  candidate, with the LP relaxation's bound on every candidate, in the same process as `decomposed`.

    python benchmarks/bench_assign.py                 # -> benchmarks/results/assign.json
    python benchmarks/bench_assign.py --candidates 30000 100000 --out /tmp/a.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from child import run_step, usage

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ROSTER = [  # (skills, languages) of each collector in a group of eight
    (["call", "visit", "repayment_plan", "settlement"], ["zh"]),
    (["call", "repayment_plan", "settlement"], ["zh", "yue"]),
    *[(["call", "repayment_plan", "settlement"], ["zh"])] * 6,
]


def repro_values():
    """The repro's candidates with their value of every action (one row per candidate of every date)."""
    import numpy as np
    import pandas as pd

    from huishou.core.settings import load_settings
    from huishou.core.vocab import ACTIONS
    from huishou.strategy import values_matrix

    settings = load_settings(ROOT / "params.yaml")
    files = sorted((ROOT / settings.data.worklists_dir / "candidates").glob("*.parquet"))
    if not files:
        sys.exit("bench_assign: no candidates in data/worklists/candidates (make repro first)")
    cand = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    p = pd.DataFrame({a: cand[f"p_{a}"].fillna(0.0) for a in ACTIONS})
    allowed = pd.DataFrame({a: cand[f"allowed_{a}"].astype(bool) for a in ACTIONS})
    values = values_matrix(p, cand, allowed, settings.strategy, cand["p_complaint"].to_numpy(dtype=float))
    return values.astype(np.float64), cand["borrower_id"].to_numpy(), len(cand) / len(files), settings


def make_day(n: int, seed: int = 0):
    """A day of about `n` candidates drawn by borrower from the repro's, with its team and agency places."""
    import numpy as np
    import pandas as pd

    from huishou.strategy.team import Team

    values, borrowers, per_day, settings = repro_values()
    cfg = settings.strategy
    rng = np.random.default_rng(seed)
    codes, _ = pd.factorize(borrowers)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1, len(codes)]
    sizes = np.diff(starts)
    draws = rng.integers(0, len(sizes), int(n / sizes.mean() * 1.02))
    draws = draws[np.cumsum(sizes[draws]) <= n]
    rows = np.concatenate([order[starts[d] : starts[d + 1]] for d in draws])
    groups = pd.Series(np.repeat(np.arange(len(draws)), sizes[draws]))
    day = values.iloc[rows].reset_index(drop=True)
    langs, shares = zip(*settings.simulate.languages.items(), strict=True)
    spoken = rng.choice(np.asarray(langs, dtype=object), len(draws), p=np.asarray(shares) / sum(shares))
    languages = pd.Series(spoken[groups.to_numpy()])
    k = max(len(ROSTER), round(cfg.collectors * len(day) / per_day))
    ids = [f"C{i:05d}" for i in range(1, k + 1)]
    team = Team(
        {c: cfg.collector_minutes for c in ids},
        {c: frozenset(ROSTER[i % len(ROSTER)][0]) for i, c in enumerate(ids)},
        {c: frozenset(ROSTER[i % len(ROSTER)][1]) for i, c in enumerate(ids)},
        cfg.default_language,
    )
    places = sum(int(a["capacity"]) for a in cfg.agencies)
    limits = {"agency": max(1, round(places * len(day) / per_day))}
    return day, groups, languages, team, limits, cfg


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start) -> dict:
    wall, cpu = _clock()
    return {"wall_s": round(wall - start[0], 2), "cpu_s": round(cpu - start[1], 2)}


def _summary(result, seconds: dict) -> dict:
    stats = result.stats
    bound = stats.get("mip_bound", stats.get("price_bound", float("nan")))
    return seconds | {
        "method": stats["method"],
        "value": round(result.value, 2),
        "bound": round(bound, 2),
        "bound_kind": "mip_bound" if "mip_bound" in stats else "price_bound",
        "gap_to_bound": round((bound - result.value) / abs(bound), 6),
        "kept_rows": stats.get("decomposed", {}).get("kept_rows"),
        "human_actions": int(result.collector.notna().sum()),
    }


def step(way: str, n: int, reference_max: int) -> dict:
    from huishou.strategy.assign import greedy, lp_bound, plan, plan_parts

    day, groups, languages, team, limits, cfg = make_day(n)
    head = {"candidates": len(day), "borrowers": int(groups.nunique()), "collectors": len(team.minutes)}
    head |= {"agency_places": limits["agency"], "slots": team.slots(cfg.minutes) + limits["agency"]}
    out = {}
    if way == "decomposed":
        start = _clock()
        result = plan(day, cfg.minutes, team, cfg.mip_time_limit_s, groups, limits, cfg.exact_max_rows, languages)
        out["decomposed"] = _summary(result, _since(start))
        if len(day) <= reference_max:
            start = _clock()
            fast = greedy(day, cfg.minutes, team, groups, limits, languages)
            bound = lp_bound(day, cfg.minutes, team, groups, limits, languages)
            out["reference"] = _since(start) | {
                "method": "greedy on every candidate + LP bound on every candidate",
                "value": round(fast.value, 2),
                "bound": round(bound, 2),
                "gap_to_bound": round((bound - fast.value) / abs(bound), 6),
            }
    else:
        bucket = groups.to_numpy() % 16
        start = _clock()
        parts = (
            (day[bucket == b], groups[bucket == b], languages[bucket == b]) for b in range(16)
        )  # one bucket at a time
        result = plan_parts(parts, cfg.minutes, team, cfg.mip_time_limit_s, limits, cfg.exact_max_rows)
        out["buckets"] = _summary(result, _since(start))
    return head | out | {"process": usage()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, nargs="+", default=[30_000, 100_000, 1_000_000, 2_000_000])
    parser.add_argument("--reference-max", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "assign.json")
    parser.add_argument("--step", nargs=3, metavar=("WAY", "N", "REFERENCE_MAX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        way, n, reference_max = args.step
        print(json.dumps(step(way, int(n), int(reference_max))))
        return
    runs = []
    for n in args.candidates:
        print(f"{n:,} candidates", flush=True)
        whole = run_step(__file__, "--step", "decomposed", n, args.reference_max)
        parts = run_step(__file__, "--step", "buckets", n, args.reference_max)
        runs.append(whole | {"buckets": parts["buckets"], "process_buckets": parts["process"]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
