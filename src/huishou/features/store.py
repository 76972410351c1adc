"""The features file: its summary counted part by part as it is written, and the file read back (categorical
columns as categories, a folder of bucket parts in the whole-book build's order)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from huishou.core.errors import DataValidationError
from huishou.core.paths import DICTIONARY_FILE
from huishou.features.application import CATEGORICAL
from huishou.features.build import as_categories

BUILD_ORDER = ["snapshot_date", "loan_id"]  # the spine's order (origination: snapshot_date is applied_at)


@dataclass
class SplitTally:
    """Rows, target rate and snapshots per split of a feature table, added up over its parts (the features
    summary without holding the book), and the rows whose label was given."""

    splits: dict[str, list] = field(default_factory=dict)  # split -> [rows, target sum, labelled rows, snapshots]
    given: int = 0

    @property
    def rows(self) -> int:
        return sum(c[0] for c in self.splits.values())

    @property
    def snapshot_dates(self) -> set:
        """The snapshot dates with rows, in any split."""
        return set().union(*(c[3] for c in self.splits.values()))

    def add(self, frame: pd.DataFrame) -> None:
        self.given += int((frame["target_source"] == "given").sum())
        for split, g in frame.groupby("split"):
            target = g["target"].astype(float)
            counts = self.splits.setdefault(split, [0, 0.0, 0, set()])
            counts[0] += len(g)
            counts[1] += float(target.sum())
            counts[2] += int(target.notna().sum())
            counts[3].update(g["snapshot_date"].unique())

    def summary(self) -> dict:
        """Per split (by name): rows, target_rate (mean of the labelled rows' target), snapshots."""
        return {
            split: {"rows": n, "target_rate": total / labelled if labelled else float("nan"), "snapshots": len(dates)}
            for split, (n, total, labelled, dates) in sorted(self.splits.items())
        }


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a features parquet; categorical columns (the dictionary beside it says which) come back as
    categories even when all missing. A folder of parts (a book built bucket by bucket) comes back as the
    whole-book build would have made it: rows in the spine's order, categories in order of appearance."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: not found; run `huishou features` first (or `dvc repro`)")
    dictionary = path.parent / DICTIONARY_FILE
    categorical = list(CATEGORICAL)
    if dictionary.exists():
        entries = json.loads(dictionary.read_text())["features"]
        categorical = [n for n, e in entries.items() if e["kind"] == "categorical"]
    if not path.is_dir():
        return as_categories(pd.read_parquet(path), categorical)
    parts = [pd.read_parquet(p) for p in sorted(path.glob("part-*.parquet"))]
    frame = pd.concat(parts, ignore_index=True).sort_values(BUILD_ORDER, kind="stable", ignore_index=True)
    for name in categorical:
        if name in frame.columns:
            values = frame[name].astype(object)
            seen = pd.unique(values[values.notna()].to_numpy())
            frame[name] = pd.Categorical(values, categories=seen)
    return frame
