"""`huishou validate`: check the raw tables against their contracts and against each other.

Reads data.raw_dir (table files and manifest.json); publishes data.validated_dir/report.json with
the row counts, the MD5 of every file that passed and the columns huishou will ignore (protected
characteristics among them). A broken rule writes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from huishou.book.contracts import Contract
from huishou.book.files import REPORT_NAME, read_manifest, read_raw
from huishou.book.validation import validate_book
from huishou.io import file_md5, publish, write_json

PARAMS = (
    "data.raw_dir",
    "data.validated_dir",
    "contracts",
    "features.application_columns",
    "features.attributes",
    "features.protected",
)

log = logging.getLogger("huishou.validate")


def run(settings) -> dict:
    """Validate the raw folder and record what was validated (file hashes)."""
    raw_dir = Path(settings.data.raw_dir)
    manifest = read_manifest(raw_dir)
    tables = read_raw(raw_dir)
    sources = {name: str(raw_dir / f"{name}.parquet") for name in tables}
    contract = Contract.from_settings(settings.contracts, settings.features)
    checked = validate_book(tables, pd.Timestamp(manifest["as_of"]), sources, contract)
    for table, columns in checked["ignored_columns"].items():
        log.warning(
            "%s: column(s) %s are not in the contract and not declared in params.yaml: ignored", sources[table], columns
        )
    report = {
        "as_of": manifest["as_of"],
        "source": manifest.get("source", "unknown"),
        "md5": {name: file_md5(raw_dir / f"{name}.parquet") for name in tables},
    } | checked
    with publish(settings.data.validated_dir) as out:
        write_json(report, out / REPORT_NAME)
    return report
