"""Benchmark: where `huishou fit-effects` spends its time, and what the staged round selection saves.

On the pipeline's validated book (`make repro`, or `dvc repro validate`, first), for every lifecycle
stage with enough logged decisions:

- the steps of the stage: choosing the boosting rounds (cv_folds models grown together grid value by
  grid value, each scored at every grid value it reaches, until strategy.effect_model.rounds_patience
  values in a row score below the best: the values tried are in the JSON), the final fit, the
  off-policy fit and report;
- inside the round selection, per fold: one fit to the largest rounds tried, and the scoring of the
  held-out decisions at every value tried two ways in the same process: the reference (a prediction
  from the first tree for each value, and the lawful actions with their explanations) against what
  fit-effects does (each tree evaluated once, raw scores accumulated over the grid; lawful actions
  without the explanation text). Both must give the same plan values (max abs difference in the JSON);
- one fit at the chosen rounds with 1 LightGBM thread against compute.threads;
- `huishou fit-effects` itself, end to end in a child process (imports, reading the log, every stage,
  publishing), `--repeats` times alternating with the reference: the same command with the effect
  model's settings before the scaling issue's speed-up (learning rate 0.05, rounds 100-1200, 4 folds).
  The medians and their ratio are in the JSON, with the ratio to the 85 s the issue was filed with
  (a figure from its text, not measured here).

    python benchmarks/bench_effects.py   # -> benchmarks/results/effects.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_scale import _cli

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILED_S = 85.0  # huishou fit-effects on the default book when the scaling issue was filed (its text)
# the effect model's settings before the speed-up: the reference the command is measured against
REFERENCE = {"learning_rate": 0.05, "rounds_grid": [100, 200, 400, 800, 1200], "cv_folds": 4}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict:
    wall, cpu = _clock()
    return {"wall_s": round(wall - start[0], 3), "cpu_s": round(cpu - start[1], 3)}


def reference_scores(model, held, grid, cfg, profile) -> tuple[list[float], float]:
    """The round selection's scoring before it was staged: a full prediction per grid value."""
    from huishou.compliance import evaluate
    from huishou.strategy.learning import _dr_value

    start = time.perf_counter()
    allowed = evaluate(held, cfg, profile).allowed
    scores = [_dr_value(held, model.predict(held, rounds), allowed, cfg) for rounds in grid]
    return scores, time.perf_counter() - start


def staged_scores(model, held, grid, cfg, profile) -> tuple[list[float], float]:
    from huishou.compliance import evaluate
    from huishou.strategy.learning import _dr_value

    start = time.perf_counter()
    allowed = evaluate(held, cfg, profile, explain=False).allowed
    scores = [_dr_value(held, p, allowed, cfg) for p in model.predict_staged(held, grid)]
    return scores, time.perf_counter() - start


def measure_command(repeats: int) -> dict:
    """The command with params.yaml against the reference settings, alternating, each publishing into a
    temporary models folder (the repository's models/effects is left alone; logs and MLflow beside the params
    file, as bench_scale's `_cli` puts them)."""
    runs: dict[str, list[dict]] = {"current": [], "reference": []}
    with tempfile.TemporaryDirectory(prefix="bench_effects_") as tmp:
        folder = Path(tmp)
        files = {}
        for name, effect_model in (("current", {}), ("reference", REFERENCE)):
            text = f"extends: {ROOT / 'params.yaml'}\ndata: {json.dumps({'models_dir': str(folder / name)})}\n"
            if effect_model:
                text += f"strategy: {json.dumps({'effect_model': effect_model})}\n"
            files[name] = folder / f"{name}.yaml"
            files[name].write_text(text)
        for _ in range(repeats):
            for name in runs:  # from the repository root (main has moved there): params.yaml's relative paths
                out = _cli(files[name], "fit-effects")
                runs[name].append({"wall_s": round(out["seconds"], 2), "cpu_s": round(out["cpu_s"], 2)})
    median = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in runs.items()}
    return {
        "repeats": repeats,
        "reference_settings": REFERENCE,
        "runs": runs,
        "median_wall_s": median,
        "speedup_vs_reference": round(median["reference"] / median["current"], 2),
        "filed_s": FILED_S,
        "speedup_vs_filed": round(FILED_S / median["current"], 2),
    }


def measure_stage(stage: str, logged, cutoff, cfg, profile, threads: int) -> dict:
    import pandas as pd
    from sklearn.model_selection import GroupKFold

    from huishou.core.vocab import STAGE_ACTIONS
    from huishou.strategy.effects import fit_effect_model
    from huishou.strategy.learning import _learn_stage, select_rounds

    em, actions = cfg.effect_model, STAGE_ACTIONS[stage]
    grid = sorted({int(r) for r in em["rounds_grid"]})
    out: dict = {"logged_decisions": len(logged), "grid": grid, "folds": []}

    start = _clock()
    _learn_stage(stage, logged, cutoff, cfg, profile)
    out["whole_stage"] = _since(start)

    start = _clock()
    rounds, report = select_rounds(logged, cfg, profile, actions)
    grid = sorted(int(r) for r in report["cv_dr_by_rounds"])  # the values tried (rounds_patience may stop early)
    out["select_rounds"] = _since(start) | {"rounds": rounds, "tried": grid}

    splits = GroupKFold(n_splits=int(em["cv_folds"])).split(logged, groups=logged["loan_id"])
    for train, test in splits:
        t0 = time.perf_counter()
        model = fit_effect_model(logged.iloc[train], em, actions, grid[-1])
        fit_s = time.perf_counter() - t0
        held = logged.iloc[test].reset_index(drop=True)
        ref, ref_s = reference_scores(model, held, grid, cfg, profile)
        new, new_s = staged_scores(model, held, grid, cfg, profile)
        out["folds"].append(
            {
                "rows": len(train),
                "fit_s": round(fit_s, 3),
                "scoring_reference_s": round(ref_s, 3),
                "scoring_staged_s": round(new_s, 3),
                "speedup": round(ref_s / new_s, 2),
                "max_abs_value_difference": float(np.max(np.abs(np.subtract(ref, new)))),
                "same_best_rounds": int(np.argmax(ref)) == int(np.argmax(new)),
            }
        )

    for n in sorted({1, threads}):
        params = dict(em, num_threads=n)
        t0 = _clock()
        fit_effect_model(logged, params, actions, rounds)
        out[f"final_fit_threads_{n}"] = _since(t0)
    holdout = logged["t"] >= cutoff - pd.Timedelta(days=cfg.ope_holdout_days)
    out["ope_holdout_decisions"] = int(holdout.sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "effects.json")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the command and of its reference")
    args = parser.parse_args()
    os.environ.setdefault("HUISHOU_PROGRESS", "off")

    from huishou.book.source import BookSource
    from huishou.compliance import Profile
    from huishou.core.engine import available_cpus, threads
    from huishou.core.settings import load_settings, with_threads
    from huishou.strategy.learning import BookRules, learning_cutoff, logged_by_stage

    settings = load_settings(ROOT / "params.yaml")
    n = threads(settings.compute.threads)
    cfg = with_threads(settings.strategy, n)
    profile = Profile.from_settings(cfg.compliance)
    total = _clock()
    start = _clock()
    os.chdir(ROOT)
    as_of, tables = BookSource.from_settings(settings.data).validated_frames(settings.data.validated_dir)
    load = _since(start)
    book = BookRules.from_settings(settings.features, settings.data.timezone)
    cutoff = learning_cutoff(as_of, cfg)
    start = _clock()
    logged_by = logged_by_stage(tables, cutoff, cfg, book)
    logged = _since(start)
    stages = {
        stage: measure_stage(stage, frame, cutoff, cfg, profile, n)
        for stage, frame in logged_by.items()
        if len(frame) >= cfg.min_logged_decisions and frame["paid"].nunique() == 2
    }
    command = measure_command(args.repeats)
    result = {
        "cpus": available_cpus(),
        "command": command,
        "threads": n,
        "load_tables": load,
        "logged_decisions": logged,
        "stages": stages,
        "fit_effects_estimate_s": round(
            load["wall_s"] + logged["wall_s"] + sum(s["whole_stage"]["wall_s"] for s in stages.values()), 1
        ),
        "benchmark_wall_s": _since(total)["wall_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("stages", "command")}, indent=2))
    print(
        f"huishou fit-effects: {command['median_wall_s']['current']} s (median of {args.repeats}), reference settings "
        f"{command['median_wall_s']['reference']} s: {command['speedup_vs_reference']}x; "
        f"{command['speedup_vs_filed']}x the {FILED_S:.0f} s of the issue"
    )
    for stage, s in stages.items():
        folds = s["folds"]
        print(
            f"{stage}: stage {s['whole_stage']['wall_s']} s, select_rounds {s['select_rounds']['wall_s']} s, "
            f"fold fit {np.mean([f['fit_s'] for f in folds]):.1f} s, scoring reference "
            f"{np.mean([f['scoring_reference_s'] for f in folds]):.2f} s vs staged "
            f"{np.mean([f['scoring_staged_s'] for f in folds]):.2f} s, "
            f"max diff {max(f['max_abs_value_difference'] for f in folds):.2e}"
        )


if __name__ == "__main__":
    main()
