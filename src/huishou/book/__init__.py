"""The loan book: table contracts, validation, the raw folder on disk, adapters and (for evaluation) the truth."""

from huishou.book.contracts import SPECS, empty_table, validate_table
from huishou.book.files import assert_validated, raw_paths, read_manifest, read_raw
from huishou.book.validation import validate_book

__all__ = [
    "SPECS",
    "assert_validated",
    "empty_table",
    "raw_paths",
    "read_manifest",
    "read_raw",
    "validate_book",
    "validate_table",
]
