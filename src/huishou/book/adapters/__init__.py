"""Adapters: external data sets -> the raw table contracts of huishou.book.contracts.

An adapter module has `read(path) -> DataFrame`, a pure `adapt(frame) -> dict[table name, DataFrame]`
and an `AS_OF` extract date; `huishou adapt <name> --input PATH` writes the tables and manifest to
`data.raw_dir`. Tables the source does not have (callbacks, collection actions) are simply not
written: their features stay missing downstream, never invented.
"""

from huishou.book.adapters import taiwan

ADAPTERS = {"taiwan": taiwan}

__all__ = ["ADAPTERS"]
