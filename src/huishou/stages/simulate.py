"""`huishou simulate`: write the built-in simulated loan book and its hidden ground truth.

Reads params only; writes data.raw_dir (the raw tables and manifest.json) and data.truth_dir
(borrowers' latent state, true installment and action-effect probabilities and the exact oracle
for the snapshot grid), which only the evaluation stages read. A book of more than
simulate.chunk_borrowers borrowers is simulated and written chunk by chunk (one row group per chunk
in each file), so memory stays that of one chunk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from huishou.book.truth import write_truth
from huishou.core.io import ParquetAppender, publish, write_json, write_parquet
from huishou.core.progress import progress_bar
from huishou.core.settings import SimulateSettings
from huishou.simulate import book_chunks, offset_ids, simulate_book

PARAMS = (
    "data.raw_dir",
    "data.truth_dir",
    "simulate",
    "features.first_snapshot",
    "features.last_snapshot",
    "features.snapshot_every_months",
    "features.horizon_days",
    "features.default_dpd",
)


def run(settings) -> dict:
    """Simulate the book, then write the raw tables, their manifest and the truth."""
    f = settings.features
    raw_dir, truth_dir = Path(settings.data.raw_dir), Path(settings.data.truth_dir)
    sim = settings.simulate
    chunks = book_chunks(
        SimulateSettings(**{f.name: getattr(sim, f.name) for f in dataclasses.fields(SimulateSettings)})
    )
    grid = (f.snapshot_dates(), f.horizon_days, f.default_dpd)
    # both folders are published whole; the truth first, so raw tables never exist without their truth
    with publish(raw_dir) as raw_tmp, publish(truth_dir) as truth_tmp:
        if len(chunks) == 1:
            book = simulate_book(chunks[0], *grid)
            tables = _observed(book.raw_tables(), settings.simulate)
            for name, frame in tables.items():
                write_parquet(frame, raw_tmp / f"{name}.parquet")
            write_truth(book.truth, truth_tmp)
            counts = {k: len(v) for k, v in tables.items()}
        else:
            counts = _simulate_in_chunks(chunks, grid, settings.simulate, raw_tmp, truth_tmp)
        manifest = {"source": "simulated", "as_of": str(settings.simulate.as_of.date()), "tables": counts}
        write_json(manifest, raw_tmp / "manifest.json")
    return manifest | {"chunks": len(chunks)}


def _observed(tables: dict, cfg) -> dict:
    if not cfg.write_collection_log:
        tables = {k: v for k, v in tables.items() if k != "collection_actions"}
    return tables


def _simulate_in_chunks(chunks, grid, cfg, raw_tmp: Path, truth_tmp: Path) -> dict[str, int]:
    raw, truth = ParquetAppender(raw_tmp), ParquetAppender(truth_tmp)
    counts: dict[str, int] = {}
    borrowers = loans = 0
    try:
        for part in progress_bar(chunks, desc="simulate chunks", unit="chunk"):
            book = simulate_book(part, *grid, progress=False)
            for name, frame in offset_ids(_observed(book.raw_tables(), cfg), borrowers, loans).items():
                raw.write(name, frame)
                counts[name] = counts.get(name, 0) + len(frame)
            for name, frame in offset_ids(book.truth, borrowers, loans).items():
                truth.write(name, frame)
            borrowers += part.n_borrowers
            loans += len(book.applications)
    finally:
        raw.close()
        truth.close()
    return counts
