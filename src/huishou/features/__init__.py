"""Point-in-time features: one module per family, joined in `build`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.features.build import as_categories, assign_hash_split, assign_split, build_features, feature_columns

__all__ = ["FEATURES_FILE", "assign_hash_split", "assign_split", "build_features", "feature_columns",
           "load_features", "run"]

FEATURES_FILE = "features.parquet"


def load_features(path) -> pd.DataFrame:
    """Read a features parquet; categorical columns come back as categories even when all missing."""
    return as_categories(pd.read_parquet(path))


def run(settings) -> dict:
    """`huishou features`: features and target for every snapshot, with the train/valid/test split."""
    from huishou.io import write_json, write_parquet
    from huishou.validate import assert_validated, raw_paths

    f = settings.features
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    tables = raw_paths(settings.data.raw_dir)
    frame = build_features(tables, f.snapshot_dates(), **f.build_kwargs(report["as_of"]))
    if f.split_mode == "hash":
        frame["split"] = assign_hash_split(frame, f.hash_valid_share, f.hash_test_share)
    else:
        frame["split"] = assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)
    out_dir = Path(settings.data.features_dir)
    write_parquet(frame, out_dir / FEATURES_FILE)
    summary = {
        split: {"rows": len(g), "target_rate": float(g["target"].astype(float).mean()),
                "snapshots": int(g["snapshot_date"].nunique())}
        for split, g in frame.groupby("split")
    }
    summary["n_features"] = len(feature_columns(frame))
    write_json(summary, out_dir / "summary.json")
    return summary
