"""`huishou adapt`: map a lender's own tables (or a public data set) onto the raw table contracts.

`huishou adapt --mapping mapping.yaml [--input PATH]` runs a declarative mapping (huishou.book.mapping);
`huishou adapt NAME --input PATH` runs a mapping shipped with huishou (e.g. taiwan) or a code adapter
installed as a plugin (huishou.book.plugins). Reads the source files or database; publishes
data.raw_dir (the contract tables and manifest.json with the extract date and the adapt report: rows,
values clipped and rows dropped per rule). Not a DVC stage: run it before `dvc repro`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book.contracts import Contract
from huishou.book.mapping import apply_mapping, load_mapping
from huishou.book.plugins import resolve
from huishou.core.errors import ConfigError
from huishou.core.io import publish, write_json, write_parquet

PARAMS = (
    "data.raw_dir",
    "contracts",
    "features.application_columns",
    "features.attributes",
    "features.protected",
    "features.protected_synonyms",
)


def run(settings, name: str | None = None, input: str | None = None, mapping: str | None = None) -> dict:
    """Map the source and publish the raw tables with their manifest."""
    if (name is None) == (mapping is None):
        raise ConfigError("give an adapter NAME or --mapping FILE (one of them)")
    contract = Contract.from_settings(settings.contracts, settings.features)
    override = Path(input) if input else None
    if mapping is not None:
        kind, target, source = "mapping", Path(mapping), str(mapping)
    else:
        kind, target = resolve(name)
        source = name
    with publish(Path(settings.data.raw_dir), what="huishou adapt") as out:
        if kind == "mapping":
            doc = load_mapping(target)
            adapted = apply_mapping(doc, Path(target).parent, contract, override)
            tables, as_of, report = adapted.tables, adapted.as_of, adapted.report
        else:
            if override is None:
                raise ConfigError(f"adapter {name!r} needs --input PATH")
            tables = target.adapt(override)
            as_of = str(pd.Timestamp(target.AS_OF).date())
            report = {"rows": {k: len(v) for k, v in tables.items()}}
        for table, frame in tables.items():
            write_parquet(frame, out / f"{table}.parquet")
        manifest = {"source": source, "input": str(input) if input else None, "as_of": as_of, "adapt": report}
        write_json(manifest, out / "manifest.json")
    return manifest
