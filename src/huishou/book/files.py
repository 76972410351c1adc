"""The raw book on disk: which table files a folder holds, its manifest, and the validation report.

Readers of the raw folder go through here, so that every stage refuses files that changed
since `huishou validate` passed on them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.errors import DataValidationError
from huishou.io import file_md5, read_json
from huishou.vocab import ALL_TABLES

REPORT_NAME = "report.json"


def raw_paths(raw_dir: str | Path) -> dict[str, Path]:
    """Every known table present under raw_dir as `<table>.parquet`."""
    raw_dir = Path(raw_dir)
    return {name: raw_dir / f"{name}.parquet" for name in ALL_TABLES if (raw_dir / f"{name}.parquet").exists()}


def read_raw(raw_dir: str | Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in raw_paths(raw_dir).items()}


def read_manifest(raw_dir: str | Path) -> dict:
    """raw_dir/manifest.json: the data source and its extract date `as_of`."""
    path = Path(raw_dir) / "manifest.json"
    if not path.exists():
        raise DataValidationError(f'{path}: missing; it must name the extract date, e.g. {{"as_of": "2026-01-01"}}')
    manifest = read_json(path)
    if "as_of" not in manifest:
        raise DataValidationError(f"{path}: key 'as_of' (extract date) is missing")
    return manifest


def assert_validated(raw_dir: str | Path, validated_dir: str | Path) -> dict:
    """Refuse raw files that changed since `huishou validate` passed on them."""
    report_path = Path(validated_dir) / REPORT_NAME
    if not report_path.exists():
        raise DataValidationError(f"{report_path}: not found; run `huishou validate` first")
    report = read_json(report_path)
    for name, md5 in report["md5"].items():
        path = Path(raw_dir) / f"{name}.parquet"
        if not path.exists() or file_md5(path) != md5:
            raise DataValidationError(f"{path}: changed since validation; run `huishou validate` again")
    return report
