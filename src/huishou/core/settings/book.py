"""Settings of the book room: where the raw book comes from and its table contracts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSettings:
    """Where the raw book comes from (huishou.book.source) and the folders of the pipeline's files."""

    source: str
    database: str | None
    tables: dict[str, str]
    as_of: str
    timezone: str
    raw_dir: str
    contact_log_dir: str | None  # None: "contacts" beside raw_dir (see `contact_log`)
    truth_dir: str
    validated_dir: str
    features_dir: str
    models_dir: str
    worklists_dir: str
    compliance_dir: str
    experiments_dir: str

    @property
    def contact_log(self) -> str:
        """The workbench's contact log of this book: contact_log_dir, or the folder "contacts" beside raw_dir."""
        if self.contact_log_dir:
            return self.contact_log_dir
        parent = self.raw_dir.rstrip("/").rpartition("/")[0]
        return f"{parent}/contacts" if parent else "contacts"


@dataclass(frozen=True)
class ContractSettings:
    """Business ranges of raw columns ("table.column": [low, high]), on top of the structural contracts."""

    ranges: dict[str, list[float]]
    bucket_loans: int
    duckdb_memory_limit: str


# The data keys a BookSource reads: every stage that reads the raw book declares them.
SOURCE_PARAMS = (
    "data.source",
    "data.database",
    "data.tables",
    "data.as_of",
    "data.timezone",
    "data.raw_dir",
    "data.contact_log_dir",
    "data.validated_dir",
)
