"""Simulator ground truth under data/truth/: written by `simulate`, read only by `evaluate`.

Nothing that trains or scores may import this module; tests/test_truth_isolation.py
enforces that on imports and on dvc.yaml deps.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou.book.files import read_rows
from huishou.core.errors import DataValidationError
from huishou.core.io import write_parquet

ORACLE = "oracle.parquet"


def write_truth(tables: dict[str, pd.DataFrame], truth_dir: str | Path) -> None:
    for name, frame in tables.items():
        write_parquet(frame, Path(truth_dir) / f"{name}.parquet")


def load_oracle(truth_dir: str | Path) -> pd.DataFrame | None:
    """True probabilities per (loan_id, snapshot_date), or None when the book has no oracle (real data)."""
    path = Path(truth_dir) / ORACLE
    return pd.read_parquet(path) if path.exists() else None


def truth_file(truth_dir: str | Path, name: str) -> Path:
    """The path of one table of the simulator's truth; refused where there is none (a lender's own book)."""
    path = Path(truth_dir) / f"{name}.parquet"
    if not path.exists():
        raise DataValidationError(f"{path}: no simulator truth; this check runs on the simulated book only")
    return path


def load_borrowers(truth_dir: str | Path, borrower_ids=None) -> pd.DataFrame:
    """Latent borrower state (z, hardship, drift) of the simulated book: every borrower, or those of
    `borrower_ids` (only their rows are read)."""
    return load_truth_table(truth_dir, "borrowers", "borrower_id", borrower_ids)


def load_truth_table(truth_dir: str | Path, name: str, column: str = "loan_id", values=None) -> pd.DataFrame:
    """One table of the simulator's truth (e.g. installments: true miss log-odds): every row, or those whose
    `column` is one of `values` (only they are read: a day's candidates, a sample, not the whole book)."""
    path = truth_file(truth_dir, name)
    return pd.read_parquet(path) if values is None else read_rows(path, column, values)
