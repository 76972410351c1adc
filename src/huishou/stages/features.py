"""`huishou features`: point-in-time features and target for every snapshot, with the train/valid/test split.

Reads data.raw_dir (refused unless unchanged since `huishou validate`) and the validation report;
publishes data.features_dir as one unit: features.parquet (one row per loan and snapshot T, or per
application in origination mode), dictionary.json (every feature's family, kind, description and
monotone direction) and summary.json (rows, target rate and snapshots per split, and per snapshot
the loans in the population and every other application counted by why it is left out; DVC metrics).
"""

from __future__ import annotations

import logging

import pandas as pd

from huishou.book.source import BookSource
from huishou.core.engine import threads
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.io import publish, rounded, write_json, write_parquet
from huishou.core.paths import DICTIONARY_FILE, SUMMARY_FILE, features_path
from huishou.core.progress import progress_bar
from huishou.core.settings import SOURCE_PARAMS
from huishou.features import (
    assign_hash_split,
    assign_split,
    build_features,
    feature_columns,
    feature_dictionary,
    population_counts,
)

PARAMS = ("compute", *SOURCE_PARAMS, "data.features_dir", "features")

log = logging.getLogger("huishou.features")


def run(settings) -> dict:
    """Build, split and write the features of every snapshot in the grid (or every application)."""
    f = settings.features
    report, tables = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    origination = f.mode == "origination"
    snapshots = f.snapshot_dates()
    late = [str(t.date()) for t in snapshots if t > as_of]
    if not origination and (late or not snapshots):
        raise ConfigError(
            f"params.yaml features.first_snapshot/last_snapshot: snapshot(s) {late or 'none'} after the extract date "
            f"{as_of.date()} (rule: every snapshot T <= as_of, and at least one)"
        )
    kwargs = f.build_kwargs(as_of)
    bar = progress_bar(total=3, desc="features", unit="step")
    bar.set_postfix_str(f"build {len(snapshots)} snapshots")
    frame = build_features(
        tables,
        snapshots,
        **kwargs
        | {
            "memory_limit": f.duckdb_memory_limit,
            "threads": threads(settings.compute.threads),
            "spill_to": settings.compute.spill_directory,
        },
    )
    bar.update()
    bar.set_postfix_str("split and population")
    if frame.empty:
        where = "any application" if origination else f"any snapshot {snapshots[0].date()}..{snapshots[-1].date()}"
        raise DataValidationError(
            f"{settings.data.raw_dir}: no row to build at {where} (rule: the snapshot grid lies inside the book's history)"
        )
    by_hash = f.split_mode == "hash" or origination or frame["snapshot_date"].nunique() == 1
    if by_hash:
        frame["split"] = assign_hash_split(frame, f.hash_valid_share, f.hash_test_share)
    else:
        frame["split"] = assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)
    summary = {
        split: {
            "rows": len(g),
            "target_rate": float(g["target"].astype(float).mean()),
            "snapshots": int(g["snapshot_date"].nunique()),
        }
        for split, g in frame.groupby("split")
    }
    summary["n_features"] = len(feature_columns(frame))
    summary["split_by"] = "hash of loan_id" if by_hash else "snapshot date"
    summary["target_given"] = int((frame["target_source"] == "given").sum())
    if not origination:
        counts = population_counts(tables, snapshots, **kwargs)
        summary["population"] = {
            str(pd.Timestamp(r.pop("snapshot_date")).date()): {k: int(v) for k, v in r.items()}
            for r in counts.to_dict(orient="records")
        }
        _log_left_out(summary["population"])
    bar.update()
    bar.set_postfix_str("write")
    with publish(settings.data.features_dir) as out:
        write_parquet(frame, features_path(out))
        write_json(feature_dictionary(frame, kwargs["extras"]), out / DICTIONARY_FILE)
        write_json(summary, out / SUMMARY_FILE)
        headline = {s: summary[s] for s in ("train", "valid", "gap", "test") if s in summary}
        write_json(rounded(headline | {"n_features": summary["n_features"]}), out / "headline.json")
    bar.update()
    bar.close()
    return summary


def _log_left_out(population: dict) -> None:
    for snapshot, counts in population.items():
        left = {k: v for k, v in counts.items() if k not in ("in_population", "not_yet_applied") and v}
        if left:
            log.info("%s: %d loans scored; left out: %s", snapshot, counts["in_population"], left)
