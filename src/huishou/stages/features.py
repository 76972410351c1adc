"""`huishou features`: point-in-time features and target for every snapshot, with the train/valid/test split.

Reads data.raw_dir (refused unless unchanged since `huishou validate`) and the validation report;
writes data.features_dir/features.parquet (one row per loan and snapshot T) and summary.json
(rows, target rate and snapshots per split; DVC metrics).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.artifacts import SUMMARY_FILE, features_path
from huishou.book.files import assert_validated, raw_paths
from huishou.features import assign_hash_split, assign_split, build_features, feature_columns
from huishou.io import write_json, write_parquet

PARAMS = ("data.raw_dir", "data.validated_dir", "data.features_dir", "features")


def run(settings) -> dict:
    """Build, split and write the features of every snapshot in the grid."""
    f = settings.features
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    tables = raw_paths(settings.data.raw_dir)
    frame = build_features(tables, f.snapshot_dates(), **f.build_kwargs(report["as_of"]))
    if f.split_mode == "hash":
        frame["split"] = assign_hash_split(frame, f.hash_valid_share, f.hash_test_share)
    else:
        frame["split"] = assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)
    out_dir = Path(settings.data.features_dir)
    write_parquet(frame, features_path(out_dir))
    summary = {
        split: {
            "rows": len(g),
            "target_rate": float(g["target"].astype(float).mean()),
            "snapshots": int(g["snapshot_date"].nunique()),
        }
        for split, g in frame.groupby("split")
    }
    summary["n_features"] = len(feature_columns(frame))
    write_json(summary, out_dir / SUMMARY_FILE)
    return summary
