"""`huishou validate`: check the raw tables against their contracts and against each other.

Reads the raw book from data.source (the data.raw_dir parquet folder with its manifest.json, or a
DuckDB / PostgreSQL database read as of data.as_of); publishes data.validated_dir/report.json with
the row counts, a content hash of every table that passed (later stages refuse anything else) and
the columns huishou will ignore (protected characteristics among them). A broken rule writes nothing.
A parquet book of more than contracts.bucket_loans loans is validated bucket by bucket (keys and
references over the whole files in DuckDB first), compute.threads buckets at once in as many processes,
so memory follows that many buckets, not the book.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from huishou.book.buckets import partitions_for, validate_in_buckets
from huishou.book.contracts import Contract
from huishou.book.files import REPORT_NAME, as_files, log_paths, raw_paths, with_log
from huishou.book.source import BookSource
from huishou.book.validation import validate_book
from huishou.core.engine import threads
from huishou.core.io import publish, write_json
from huishou.core.settings import SOURCE_PARAMS
from huishou.core.vocab import REQUIRED_TABLES

PARAMS = (
    "compute",
    *SOURCE_PARAMS,
    "contracts",
    "features.application_columns",
    "features.attributes",
    "features.protected",
    "features.protected_synonyms",
    "features.mode",
)

log = logging.getLogger("huishou.validate")


def run(settings) -> dict:
    """Validate the raw book and record what was validated (content hashes)."""
    source = BookSource.from_settings(settings.data)
    contract = Contract.from_settings(settings.contracts, settings.features)
    paths = raw_paths(source.raw_dir) if source.kind == "parquet" else {}
    parts = partitions_for(paths["applications"], settings.contracts.bucket_loans) if "applications" in paths else 1
    if parts > 1:
        tables, read_info = dict(paths), source.read_info()
        workdir = Path(settings.data.validated_dir).parent  # not inside the raw folder (a DVC output)
        later: dict = {}
        logged = with_log(
            {n: paths[n] for n in log_paths(source.log_dir) if n in paths}, source.log_dir, read_info["as_of"], later
        )
        read_info = read_info | ({"contact_log_after_as_of": later} if later else {})
        # a table the contact log adds to is checked as one file: the raw rows and the log's
        tables |= as_files(logged, workdir / ".contact_log_merged")
        sources = {name: source.describe(name) for name in tables}
        checked = validate_in_buckets(
            tables,
            pd.Timestamp(read_info["as_of"]),
            sources,
            contract,
            parts,
            memory_limit=settings.contracts.duckdb_memory_limit,
            threads=threads(settings.compute.threads),
            spill_to=settings.compute.spill_directory,
            progress=True,
            workdir=workdir,
        )
    else:
        tables, read_info = source.read()
        sources = {name: source.describe(name) for name in tables}
        # origination mode needs applications alone: a label-only book takes its labels from outcomes
        required = ("applications",) if settings.features.mode == "origination" else REQUIRED_TABLES
        checked = validate_book(tables, pd.Timestamp(read_info["as_of"]), sources, contract, required=required)
    for table, columns in checked["ignored_columns"].items():
        log.warning(
            "%s: column(s) %s are not in the contract and not declared in params.yaml: ignored", sources[table], columns
        )
    report = read_info | {"md5": source.fingerprints(tables), "contact_log": str(source.log_dir)} | checked
    with publish(settings.data.validated_dir) as out:
        write_json(report, out / REPORT_NAME)
    return report
