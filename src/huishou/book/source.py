"""Where the raw book comes from: a folder of parquet files (the default), a DuckDB file or PostgreSQL.

Every stage that reads the raw book (validate, features, score, strategy) goes through a
`BookSource`, so a lender points huishou at their own database with params alone:

    data:
      source: postgres              # parquet | duckdb | postgres
      database: HUISHOU_PG_URI      # duckdb: the file; postgres: the environment variable with the URI
      tables: {applications: loans_v, installments: "SELECT ... FROM repayments"}   # default: same name
      as_of: today                  # manifest (parquet) | today | YYYY-MM-DD
      timezone: Asia/Shanghai       # zoned timestamps are converted to the lender's local time

A database is live: it is read as of `as_of` (events on or after it are left out, and counted),
validation records a content hash of what it read, and later stages refuse to run when what they
read differs (re-validate first). Parquet folders are read in place (files hashed), as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from huishou.book import database
from huishou.book.contracts import KEYS
from huishou.book.files import (
    assert_validated,
    book_files,
    log_paths,
    parse_as_of,
    raw_paths,
    read_manifest,
    read_raw,
    read_table,
    with_log,
)
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.io import file_md5, read_json
from huishou.core.vocab import ALL_TABLES, REQUIRED_TABLES

SOURCES = ("parquet", *database.KINDS)
# the event time of each table: rows on or after the extract date are not in the book yet
EVENT_COLUMNS = {
    "callbacks": "called_at",
    "collection_actions": "action_at",
    "attributes": "as_of",
    "outcomes": "snapshot_date",
}


@dataclass
class BookSource:
    """The raw book as params.yaml `data` describes it.

    Parameters
    ----------
    kind : {"parquet", "duckdb", "postgres"}
    raw_dir : the parquet folder (kind parquet)
    database : the DuckDB file, or the environment variable holding the PostgreSQL URI
    tables : per contract table, a table name or a SELECT/WITH query (default: the table's own name)
    as_of : "manifest" (parquet only), "today" (midnight of the run's date) or a YYYY-MM-DD date
    timezone : the lender's local time zone; zoned timestamps read from a database are converted to it
    log_dir : the workbench's contact log (parquet books): its collection_actions and contact_preferences
        rows are read after raw_dir's own (ingest-contacts writes there, no stage does)
    """

    kind: str
    raw_dir: Path
    database: str = ""
    tables: dict[str, str] = field(default_factory=dict)
    as_of: str = "manifest"
    timezone: str = "UTC"
    log_dir: Path | None = None

    @classmethod
    def from_settings(cls, data) -> BookSource:
        if data.source not in SOURCES:
            raise ConfigError(f"params.yaml data.source {data.source!r}: must be one of {list(SOURCES)}")
        unknown = sorted(set(data.tables) - set(ALL_TABLES))
        if unknown:
            raise ConfigError(f"params.yaml data.tables: unknown table(s) {unknown}; known: {list(ALL_TABLES)}")
        if data.source != "parquet" and data.as_of == "manifest":
            raise ConfigError("params.yaml data.as_of: a database has no manifest; use today or YYYY-MM-DD")
        return cls(
            data.source,
            Path(data.raw_dir),
            data.database or "",
            dict(data.tables),
            data.as_of,
            data.timezone,
            Path(data.contact_log),
        )

    # ---------------------------------------------------------------- what the book says

    def extract_date(self) -> str:
        """The extract date as YYYY-MM-DD."""
        if self.as_of == "manifest":
            return read_manifest(self.raw_dir)["as_of"]
        if self.as_of == "today":
            return str(dt.date.today())
        return str(parse_as_of(self.as_of, "params.yaml data.as_of"))

    def describe(self, name: str) -> str:
        if self.kind == "parquet":
            raw = self.raw_dir / f"{name}.parquet"
            log = log_paths(self.log_dir).get(name)
            return f"{raw} + {log}" if log and raw.exists() else str(log or raw)
        return database.describe(self.kind, self.database, self.tables.get(name, name))

    def read(self) -> tuple[dict[str, pd.DataFrame], dict]:
        """Every table present, and what reading did (the extract date, rows left out as not yet known)."""
        if self.kind == "parquet":
            info, later = self.read_info(), {}
            tables = with_log(read_raw(self.raw_dir), self.log_dir, info["as_of"], later)
            return tables, info | ({"contact_log_after_as_of": later} if later else {})
        as_of = self.extract_date()
        names = [t for t in ALL_TABLES if t in self.tables or t in REQUIRED_TABLES]
        sources = {t: self.tables.get(t, t) for t in names}
        arrow = database.read(self.kind, self.database, sources, {t: KEYS[t] for t in names})
        frames = {t: _to_local(table, self.timezone) for t, table in arrow.items()}
        frames, left_out = _as_of_cut(frames, pd.Timestamp(as_of))
        return frames, {
            "as_of": as_of,
            "source": self.describe("applications"),
            "left_out_after_as_of": left_out,
        }

    def read_info(self) -> dict:
        """What reading a parquet book says: its extract date and source (from the manifest)."""
        manifest = read_manifest(self.raw_dir) if self.as_of == "manifest" else {"as_of": self.extract_date()}
        return {"as_of": manifest["as_of"], "source": manifest.get("source", "parquet")}

    def fingerprints(self, tables: dict[str, pd.DataFrame]) -> dict[str, str]:
        """A content hash per table: the file's MD5 for parquet, a hash of the rows read for a database."""
        if self.kind == "parquet":
            return {name: file_md5(path) for name, path in book_files(self.raw_dir, self.log_dir).items()}
        return {name: frame_md5(frame) for name, frame in tables.items()}

    def validated_frames(self, validated_dir: str | Path) -> tuple[pd.Timestamp, dict[str, pd.DataFrame]]:
        """(the extract date, every table as a frame) after the same check as `validated_inputs`."""
        report, inputs = self.validated_inputs(validated_dir)
        tables = {name: read_table(t) if isinstance(t, Path) else t for name, t in inputs.items()}
        return pd.Timestamp(report["as_of"]), tables

    def validated_inputs(self, validated_dir: str | Path) -> tuple[dict, dict]:
        """(the validation report, the tables to build features from) after checking that what is read now
        is what was validated: parquet paths (read in place) or frames read from the database."""
        if self.kind == "parquet":
            report = assert_validated(self.raw_dir, validated_dir, self.log_dir)
            return report, with_log(raw_paths(self.raw_dir), self.log_dir, report["as_of"])
        report_path = Path(validated_dir) / "report.json"
        if not report_path.exists():
            raise DataValidationError(f"{report_path}: not found; run `huishou validate` first")
        report = read_json(report_path)
        if report.get("as_of") != self.extract_date():
            raise DataValidationError(
                f"{report_path}: validated as of {report.get('as_of')}, the source is read as "
                f"of {self.extract_date()}; run `huishou validate` again"
            )
        tables, _ = self.read()
        now = self.fingerprints(tables)
        for name in sorted(set(now) | set(report["md5"])):
            if now.get(name) != report["md5"].get(name):
                raise DataValidationError(
                    f"{self.describe(name)}: changed since validation; run `huishou validate` again"
                )
        return report, tables


def frame_md5(frame: pd.DataFrame) -> str:
    """Hash of a frame's column names and rows in order (the read is ordered by the table's key)."""
    digest = hashlib.md5("|".join(frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _to_local(table: pa.Table, timezone: str) -> pd.DataFrame:
    """Arrow -> pandas; zoned timestamps converted to the lender's local time without a zone."""
    frame = table.to_pandas()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[us]")
        elif pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].astype("datetime64[us]")
    return frame


def _as_of_cut(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> tuple[dict[str, pd.DataFrame], dict]:
    """The book as it was known at `as_of`: later applications (and their rows), calls, actions, attribute
    rows and labels are left out, and a payment dated on or after it is not made yet."""
    out, left = dict(tables), {}
    apps = out["applications"]
    late = (apps["applied_at"] >= as_of) | (apps["disbursed_at"] >= as_of)
    gone = set(apps.loc[late, "loan_id"])
    out["applications"], left["applications"] = apps[~late].reset_index(drop=True), int(late.sum())
    for name, frame in list(out.items()):
        if name == "applications":
            continue
        drop = frame["loan_id"].isin(gone) if "loan_id" in frame else pd.Series(False, index=frame.index)
        if name in EVENT_COLUMNS:
            drop |= frame[EVENT_COLUMNS[name]] >= as_of
        out[name], left[name] = frame[~drop].reset_index(drop=True), int(drop.sum())
    inst = out["installments"]
    unpaid = inst["paid_date"] >= as_of
    if unpaid.any():
        inst = inst.copy()
        inst.loc[unpaid, "paid_date"] = pd.NaT
        inst.loc[unpaid, "amount_paid"] = 0.0
        out["installments"] = inst
    left["payments_after_as_of"] = int(unpaid.sum())
    return out, {k: v for k, v in left.items() if v}
