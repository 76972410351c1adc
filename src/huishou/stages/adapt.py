"""`huishou adapt NAME --input PATH`: map an external data set onto the raw table contracts.

Reads the source file; writes data.raw_dir/<table>.parquet and manifest.json (not a DVC stage:
run it before `dvc repro` on a lender's or public data set).
"""

from __future__ import annotations

from pathlib import Path

from huishou.book.adapters import ADAPTERS
from huishou.io import publish, write_json, write_parquet

PARAMS = ("data.raw_dir",)


def run(settings, name: str, input: str) -> dict:
    """Read, map and write the raw tables and their manifest."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; available: {sorted(ADAPTERS)}")
    module = ADAPTERS[name]
    with publish(Path(settings.data.raw_dir), what="huishou adapt") as out:
        tables = module.adapt(module.read(input))
        for table, frame in tables.items():
            write_parquet(frame, out / f"{table}.parquet")
        manifest = {
            "source": name,
            "input": str(input),
            "as_of": str(module.AS_OF.date()),
            "tables": {k: len(v) for k, v in tables.items()},
        }
        write_json(manifest, out / "manifest.json")
    return manifest
