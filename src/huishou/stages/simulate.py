"""`huishou simulate`: write the built-in simulated loan book and its hidden ground truth.

Reads params only; writes data.raw_dir (the four raw tables and manifest.json) and
data.truth_dir (borrowers' latent state, true installment and action-effect probabilities and
the exact oracle for the snapshot grid), which only the evaluation stages read.
"""

from __future__ import annotations

from pathlib import Path

from huishou.book.truth import write_truth
from huishou.io import publish, write_json, write_parquet
from huishou.simulate import simulate_book

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
    # both folders are published whole; the truth first, so raw tables never exist without their truth
    with publish(raw_dir) as raw_tmp, publish(truth_dir) as truth_tmp:
        book = simulate_book(settings.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd)
        tables = book.raw_tables()
        if not settings.simulate.write_collection_log:
            del tables["collection_actions"]
        for name, frame in tables.items():
            write_parquet(frame, raw_tmp / f"{name}.parquet")
        manifest = {
            "source": "simulated",
            "as_of": str(settings.simulate.as_of.date()),
            "tables": {k: len(v) for k, v in tables.items()},
        }
        write_json(manifest, raw_tmp / "manifest.json")
        write_truth(book.truth, truth_tmp)
    return manifest
