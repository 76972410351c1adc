"""Adapters: external data sets -> the raw table contracts of huishou.schemas.

An adapter is a pure function `adapt(frame) -> dict[table name, DataFrame]` plus an `as_of`
extract date; `huishou adapt <name> --input PATH` writes the tables and manifest to
`data.raw_dir`. Tables the source does not have (callbacks, collection actions) are simply
not written: their features stay missing downstream, never invented.
"""

from __future__ import annotations

ADAPTERS = {"taiwan": "huishou.adapters.taiwan"}


def run(settings, name: str, input_path: str) -> dict:
    """`huishou adapt NAME --input PATH`: read, map, validate-able raw tables + manifest into data.raw_dir."""
    from importlib import import_module
    from pathlib import Path

    from huishou.io import write_json, write_parquet

    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; available: {sorted(ADAPTERS)}")
    module = import_module(ADAPTERS[name])
    tables = module.adapt(module.read(input_path))
    raw_dir = Path(settings.data.raw_dir)
    for table, frame in tables.items():
        write_parquet(frame, raw_dir / f"{table}.parquet")
    manifest = {"source": name, "input": str(input_path), "as_of": str(module.AS_OF.date()),
                "tables": {k: len(v) for k, v in tables.items()}}
    write_json(manifest, raw_dir / "manifest.json")
    return manifest
