"""The features file read back: categorical columns come back as categories (the dictionary says which)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from huishou.core.errors import DataValidationError
from huishou.core.paths import DICTIONARY_FILE
from huishou.features.build import as_categories


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a features parquet; categorical columns (the dictionary beside it says which) come back as
    categories even when all missing."""
    if not Path(path).exists():
        raise DataValidationError(f"{path}: not found; run `huishou features` first (or `dvc repro`)")
    frame = pd.read_parquet(path)
    dictionary = Path(path).parent / DICTIONARY_FILE
    if dictionary.exists():
        entries = json.loads(dictionary.read_text())["features"]
        return as_categories(frame, [n for n, e in entries.items() if e["kind"] == "categorical"])
    return as_categories(frame)
