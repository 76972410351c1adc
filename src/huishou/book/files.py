"""The raw book on disk: which table files a folder holds, its manifest, and the validation report.

Readers of the raw folder go through here, so that every stage refuses files that changed since
`huishou validate` passed on them, and tables that were added or removed since.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from huishou.core.errors import DataValidationError
from huishou.core.io import file_md5, read_json, write_parquet
from huishou.core.vocab import ALL_TABLES

REPORT_NAME = "report.json"
MANIFEST = "manifest.json"
# The workbench's contact log (huishou ingest-contacts) holds rows of these tables, read after raw_dir's own
LOG_TABLES = ("collection_actions", "contact_preferences")
LOG_PREFIX = "contact_log/"  # its tables' names in the validation report's hashes


def raw_paths(raw_dir: str | Path) -> dict[str, Path]:
    """Every known table present under raw_dir as `<table>.parquet`."""
    raw_dir = Path(raw_dir)
    return {name: raw_dir / f"{name}.parquet" for name in ALL_TABLES if (raw_dir / f"{name}.parquet").exists()}


UNREADABLE = (pa.ArrowException, OSError, ValueError)


def unreadable(path: str | Path, err: Exception) -> DataValidationError:
    """What a user sees of a table file that is not readable parquet (empty, truncated, another format)."""
    reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return DataValidationError(
        f"{path}: cannot be read as a parquet table (rule: each table is a parquet file; {reason})"
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """One table file; a file that is not readable parquet (empty, truncated, another format) is a clear error."""
    try:
        return pd.read_parquet(path)
    except UNREADABLE as err:
        raise unreadable(path, err) from None


def read_rows(path: str | Path, column: str, values) -> pd.DataFrame:
    """The rows of a parquet table whose `column` is one of `values`, in the file's order and with the dtypes
    `read_table` gives the whole file: pyarrow filters batch by batch, so memory follows the rows kept, not the
    file (a sample of a book too large for memory)."""
    wanted = pa.array(np.unique(np.asarray(values)))
    try:
        table = pads.dataset(str(path), format="parquet").to_table(filter=pads.field(column).isin(wanted))
    except UNREADABLE as err:
        raise unreadable(path, err) from None
    return table.to_pandas()


def read_raw(raw_dir: str | Path) -> dict[str, pd.DataFrame]:
    return {name: read_table(path) for name, path in raw_paths(raw_dir).items()}


def log_paths(log_dir: str | Path | None) -> dict[str, Path]:
    """The contact log's tables present under log_dir as `<table>.parquet`."""
    if not log_dir:
        return {}
    log_dir = Path(log_dir)
    return {name: log_dir / f"{name}.parquet" for name in LOG_TABLES if (log_dir / f"{name}.parquet").exists()}


LOG_EVENT = {"collection_actions": "action_at", "contact_preferences": "valid_from"}


def as_files(tables: Mapping[str, Path | pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """The tables as parquet files (what DuckDB's bucketing reads): paths as they are, a frame (a table the
    contact log adds to) written once to folder/<table>.parquet."""
    out = {}
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            out[name] = Path(folder) / f"{name}.parquet"
            write_parquet(table, out[name])
        else:
            out[name] = Path(table)
    return out


def with_log(tables: dict, log_dir: str | Path | None, as_of=None, left_out: dict | None = None) -> dict:
    """The book's tables (paths or frames) with the contact log's rows after the raw table's own: a table
    the log adds to becomes one frame (the raw table's columns and types first, the log's rows appended).

    The log is live: with `as_of` (the extract date), its rows from that day on are not in this extract yet
    (a contact recorded on the worklist day belongs to the next one); they are counted in `left_out`."""
    out = dict(tables)
    for name, path in log_paths(log_dir).items():
        log = read_table(path)
        if as_of is not None:
            later = pd.to_datetime(log[LOG_EVENT[name]]) >= pd.Timestamp(as_of)
            if later.any() and left_out is not None:
                left_out[LOG_PREFIX + name] = int(later.sum())
            log = log[~later].reset_index(drop=True)
        raw = out.get(name)
        if raw is None:
            out[name] = log
            continue
        raw = read_table(raw) if not isinstance(raw, pd.DataFrame) else raw
        both = pd.concat([raw, log.reindex(columns=raw.columns)], ignore_index=True)
        for col, dtype in raw.dtypes.items():
            try:
                both[col] = both[col].astype(dtype)
            except (TypeError, ValueError):
                pass  # missing values in a column that cannot hold them: validation names the column
        out[name] = both
    return out


def read_manifest(raw_dir: str | Path, today: dt.date | None = None) -> dict:
    """raw_dir/manifest.json: the data source and its extract date `as_of` (YYYY-MM-DD, not after tomorrow)."""
    path = Path(raw_dir) / MANIFEST
    example = 'e.g. {"as_of": "2026-01-01", "source": "core banking extract"}'
    if not path.exists():
        raise DataValidationError(f"{path}: missing; it must name the extract date, {example}")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataValidationError(f"{path}: not valid JSON ({err}); {example}") from None
    if not isinstance(manifest, dict):
        raise DataValidationError(f"{path}: must be a JSON object, {example}")
    manifest["as_of"] = str(parse_as_of(manifest.get("as_of"), path, today))
    return manifest


def parse_as_of(value, source: str | Path, today: dt.date | None = None) -> dt.date:
    """An extract date: a real calendar date written YYYY-MM-DD, no time or zone, not after tomorrow."""
    rule = "rule: key 'as_of' is the extract date, YYYY-MM-DD, no time or zone"
    if not isinstance(value, str):
        raise DataValidationError(f"{source}: key 'as_of' is {value!r}; {rule}")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise DataValidationError(f"{source}: key 'as_of' is {value!r}, not a date; {rule}") from None
    if len(value) != 10:
        raise DataValidationError(f"{source}: key 'as_of' is {value!r}; {rule}")
    today = today or dt.date.today()
    if day > today + dt.timedelta(days=1):
        raise DataValidationError(
            f"{source}: key 'as_of' is {value}, in the future of this run ({today}); an extract cannot hold events "
            "that have not happened (rule: as_of <= tomorrow)"
        )
    return day


def book_files(raw_dir: str | Path, log_dir: str | Path | None = None) -> dict[str, Path]:
    """Every file of the book by its name in the validation report: raw tables, then the contact log's."""
    return raw_paths(raw_dir) | {LOG_PREFIX + name: path for name, path in log_paths(log_dir).items()}


def assert_validated(raw_dir: str | Path, validated_dir: str | Path, log_dir: str | Path | None = None) -> dict:
    """Refuse raw (and contact-log) files that changed, appeared or disappeared since `huishou validate`
    passed on them."""
    report_path = Path(validated_dir) / REPORT_NAME
    if not report_path.exists():
        raise DataValidationError(f"{report_path}: not found; run `huishou validate` first")
    report = read_json(report_path)
    present = book_files(raw_dir, log_dir)
    for name in sorted(set(present) - set(report["md5"])):
        raise DataValidationError(f"{present[name]}: appeared after validation; run `huishou validate` again")
    for name, md5 in report["md5"].items():
        path = present.get(name)
        if path is None:
            folder, table = (log_dir, name[len(LOG_PREFIX) :]) if name.startswith(LOG_PREFIX) else (raw_dir, name)
            path = Path(folder or ".") / f"{table}.parquet"
        if not path.exists() or file_md5(path) != md5:
            raise DataValidationError(f"{path}: changed since validation; run `huishou validate` again")
    return report
