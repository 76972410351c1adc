"""`huishou validate`: check the raw tables against their contracts and against each other.

Reads data.raw_dir (table files and manifest.json); writes data.validated_dir/report.json with
the row counts and MD5 of every file that passed. A broken rule writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book.files import REPORT_NAME, read_manifest, read_raw
from huishou.book.validation import validate_book
from huishou.io import file_md5, publish, write_json

PARAMS = ("data.raw_dir", "data.validated_dir")


def run(settings) -> dict:
    """Validate the raw folder and record what was validated (file hashes)."""
    raw_dir = Path(settings.data.raw_dir)
    manifest = read_manifest(raw_dir)
    tables = read_raw(raw_dir)
    sources = {name: str(raw_dir / f"{name}.parquet") for name in tables}
    counts = validate_book(tables, pd.Timestamp(manifest["as_of"]), sources)
    report = {
        "as_of": manifest["as_of"],
        "source": manifest.get("source", "unknown"),
        "rows": counts,
        "md5": {name: file_md5(raw_dir / f"{name}.parquet") for name in tables},
    }
    with publish(settings.data.validated_dir) as out:
        write_json(report, out / REPORT_NAME)
    return report
