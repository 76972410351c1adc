"""`huishou features`: point-in-time features and target for every snapshot, with the train/valid/test split.

Reads data.raw_dir (refused unless unchanged since `huishou validate`) and the validation report;
writes data.features_dir/features.parquet (one row per loan and snapshot T) and summary.json
(rows, target rate and snapshots per split; DVC metrics).
"""

from __future__ import annotations

import pandas as pd

from huishou.artifacts import SUMMARY_FILE, features_path
from huishou.book.files import assert_validated, raw_paths
from huishou.errors import ConfigError, DataValidationError
from huishou.features import assign_hash_split, assign_split, build_features, feature_columns
from huishou.io import publish, write_json, write_parquet

PARAMS = ("data.raw_dir", "data.validated_dir", "data.features_dir", "features")


def run(settings) -> dict:
    """Build, split and write the features of every snapshot in the grid."""
    f = settings.features
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    snapshots = f.snapshot_dates()
    late = [str(t.date()) for t in snapshots if t > as_of]
    if late or not snapshots:
        raise ConfigError(
            f"params.yaml features.first_snapshot/last_snapshot: snapshot(s) {late or 'none'} after the extract date "
            f"{as_of.date()} (rule: every snapshot T <= as_of, and at least one)"
        )
    tables = raw_paths(settings.data.raw_dir)
    frame = build_features(tables, snapshots, **f.build_kwargs(as_of))
    if frame.empty:
        raise DataValidationError(
            f"{settings.data.raw_dir}: no loan is active at any snapshot {snapshots[0].date()}..{snapshots[-1].date()} "
            "(rule: the snapshot grid lies inside the book's history)"
        )
    if f.split_mode == "hash":
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
    with publish(settings.data.features_dir) as out:
        write_parquet(frame, features_path(out))
        write_json(summary, out / SUMMARY_FILE)
    return summary
