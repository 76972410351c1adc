"""The features file: its summary counted part by part as it is written, and the file read back (categorical
columns as categories, a folder of bucket parts in the whole-book build's order)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from huishou.core.engine import duckdb_connect
from huishou.core.errors import DataValidationError
from huishou.core.paths import DICTIONARY_FILE
from huishou.features.application import CATEGORICAL
from huishou.features.build import as_categories

BUILD_ORDER = ["snapshot_date", "loan_id"]  # the spine's order (origination: snapshot_date is applied_at)


@dataclass
class SplitTally:
    """Rows, target rate and snapshots per split of a feature table, added up over its parts (the features
    summary without holding the book), and the rows whose label was given."""

    splits: dict[str, list] = field(default_factory=dict)  # split -> [rows, target sum, labelled rows, snapshots]
    given: int = 0

    @property
    def rows(self) -> int:
        return sum(c[0] for c in self.splits.values())

    @property
    def snapshot_dates(self) -> set:
        """The snapshot dates with rows, in any split."""
        return set().union(*(c[3] for c in self.splits.values()))

    def _count(self, split: str, rows: int, total: float, labelled: int, dates) -> None:
        counts = self.splits.setdefault(split, [0, 0.0, 0, set()])
        counts[0] += rows
        counts[1] += total
        counts[2] += labelled
        counts[3].update(dates)

    def merge(self, other: SplitTally) -> None:
        """Add another part's tally (parts merged in bucket order add up as the parts' rows would)."""
        self.given += other.given
        for split, counts in other.splits.items():
            self._count(split, *counts)

    def add(self, frame: pd.DataFrame) -> None:
        self.given += int((frame["target_source"] == "given").sum())
        for split, g in frame.groupby("split"):
            target = g["target"].astype(float)
            self._count(split, len(g), float(target.sum()), int(target.notna().sum()), g["snapshot_date"].unique())

    def summary(self) -> dict:
        """Per split (by name): rows, target_rate (mean of the labelled rows' target), snapshots."""
        return {
            split: {"rows": n, "target_rate": total / labelled if labelled else float("nan"), "snapshots": len(dates)}
            for split, (n, total, labelled, dates) in sorted(self.splits.items())
        }


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a features parquet; categorical columns (the dictionary beside it says which) come back as
    categories even when all missing. A folder of parts (a book built bucket by bucket) comes back as the
    whole-book build would have made it: rows in the spine's order, categories in order of appearance."""
    path = Path(path)
    files = feature_files(path)
    categorical = _categorical(path)
    if not path.is_dir():
        return as_categories(pd.read_parquet(path), categorical)
    parts = [pd.read_parquet(p) for p in files]
    frame = pd.concat(parts, ignore_index=True).sort_values(BUILD_ORDER, kind="stable", ignore_index=True)
    for name in categorical:
        if name in frame.columns:
            values = frame[name].astype(object)
            seen = pd.unique(values[values.notna()].to_numpy())
            frame[name] = pd.Categorical(values, categories=seen)
    return frame


TRAINING_SPLITS = ("train", "valid")
WINDOW_SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TrainingRows:
    """The labelled train and valid rows of a feature table as the models get them, and what they were drawn
    from: `available` labelled rows per split in the table, `windows` (rows, snapshots, first and last date,
    bad rate) of the train, valid and test splits of the whole table, `max_rows` the cap that applied (0:
    none). Beyond the cap the rows are a time-stratified sample: the same share of every (split, snapshot
    date, target) stratum."""

    frame: pd.DataFrame
    available: dict[str, int]
    windows: dict[str, dict]
    max_rows: int

    @property
    def taken(self) -> dict[str, int]:
        return {s: int((self.frame["split"] == s).sum()) for s in TRAINING_SPLITS}

    @property
    def sampled(self) -> bool:
        return sum(self.taken.values()) < sum(self.available.values())

    @property
    def fraction(self) -> float:
        total = sum(self.available.values())
        return sum(self.taken.values()) / total if total else 1.0


def read_training_rows(path: str | Path, max_rows: int = 0, seed: int = 0, con=None) -> TrainingRows:
    """The labelled train and valid rows of the features at `path` (a file, or a folder of bucket parts read
    one part at a time), never the whole table in pandas: DuckDB (`con`, an open connection with the
    stage's memory limit, threads and spill folder) counts the strata and draws the sample's keys.

    Up to `max_rows` labelled rows (0: no cap) the rows are exactly those `load_features` gives, in its order
    with its categories. Beyond it each (split, snapshot date, target) stratum keeps round(share x its rows)
    (largest remainders, so exactly `max_rows` in all), the rows with the smallest hash of (loan id,
    snapshot date, `seed`): the same rows on every run, whatever the number of parts.
    """
    path = Path(path)
    files = feature_files(path)
    names = [str(f) for f in files]
    with _connection(con) as con:
        windows = _windows(con, names)
        strata, chosen = _stratified_keys(con, names, TRAINING_SPLITS, max_rows, seed)
        available = {s: int(strata.loc[strata["split"] == s, "n"].sum()) for s in TRAINING_SPLITS}
        categorical = _categorical(path)
        order = _category_order(con, names, categorical) if path.is_dir() else {}
    parts = []
    for f in files:
        part = pd.read_parquet(f, filters=[("split", "in", list(TRAINING_SPLITS))])
        part = part[part["target"].notna()]
        if chosen is not None:
            part = part[pd.MultiIndex.from_frame(part[["loan_id", "snapshot_date"]]).isin(chosen)]
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if path.is_dir():
        frame = frame.sort_values(BUILD_ORDER, kind="stable", ignore_index=True)
        for name in categorical:
            if name in frame.columns:
                values = frame[name].astype(object)
                frame[name] = pd.Categorical(values.where(values.notna(), None), categories=order.get(name, []))
    else:
        frame = as_categories(frame, categorical)
    return TrainingRows(frame, available, windows, int(max_rows))


def evaluation_keys(path: str | Path, max_rows: int = 0, seed: int = 0, con=None) -> tuple[int, pd.MultiIndex | None]:
    """The labelled test rows of the features at `path` (their count) and, beyond `max_rows` (0: no cap), the
    keys (loan id, snapshot date) of a stratified sample of exactly `max_rows` of them, per (snapshot date,
    target) as `read_training_rows` draws (None: every row). Counted and drawn by DuckDB over the files."""
    names = [str(f) for f in feature_files(path)]
    with _connection(con) as con:
        strata, chosen = _stratified_keys(con, names, ("test",), max_rows, seed)
    return int(strata["n"].sum()), chosen


def feature_files(path: str | Path) -> list[Path]:
    """The parquet files of a features table: the file itself, or a bucketed build's parts in order; a table
    that is not there is a clear error."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: not found; run `huishou features` first (or `dvc repro`)")
    return sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]


@contextmanager
def _connection(con) -> Iterator:
    """`con`, or a DuckDB connection of this function's own, closed after use."""
    if con is not None:
        yield con
        return
    own = duckdb_connect()
    try:
        yield own
    finally:
        own.close()


def _stratified_keys(
    con, names: list[str], splits: tuple[str, ...], max_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.MultiIndex | None]:
    """The labelled rows of `splits` counted per (split, snapshot date, target) stratum, and beyond `max_rows`
    (0: no cap) the keys (loan id, snapshot date) of a stratified sample of exactly `max_rows`: each stratum
    keeps round(share x its rows) (largest remainders), the rows with the smallest hash of (loan id, snapshot
    date, `seed`). None: every row."""
    strata = con.execute(
        "SELECT split, snapshot_date, CAST(target AS INTEGER) AS target, count(*) AS n FROM read_parquet(?) "
        "WHERE list_contains(?, split) AND target IS NOT NULL GROUP BY ALL ORDER BY ALL",
        [names, list(splits)],
    ).df()
    if not max_rows or int(strata["n"].sum()) <= max_rows:
        return strata, None
    strata["k"] = _quotas(strata["n"].to_numpy(), max_rows)
    con.register("huishou_quotas", strata[["split", "snapshot_date", "target", "k"]])
    keys = con.execute(
        "WITH ranked AS (SELECT loan_id, snapshot_date, split, CAST(target AS INTEGER) AS target, "
        "row_number() OVER (PARTITION BY split, snapshot_date, CAST(target AS INTEGER) "
        "ORDER BY hash(loan_id, snapshot_date, ?), loan_id) AS r FROM read_parquet(?) "
        "WHERE list_contains(?, split) AND target IS NOT NULL) "
        "SELECT loan_id, snapshot_date FROM ranked JOIN huishou_quotas USING (split, snapshot_date, target) "
        "WHERE r <= k",
        [int(seed), names, list(splits)],
    ).df()
    con.unregister("huishou_quotas")
    return strata, pd.MultiIndex.from_frame(keys[["loan_id", "snapshot_date"]])


def _quotas(sizes, total: int) -> list[int]:
    """Each stratum's share of `total` rows, proportional to its size, rounded by largest remainders."""
    import numpy as np

    exact = np.asarray(sizes, dtype=float) * total / float(np.sum(sizes))
    k = np.floor(exact).astype(int)
    rest = total - int(k.sum())
    k[np.argsort(-(exact - k), kind="stable")[:rest]] += 1
    return k.tolist()


def _categorical(path: Path) -> list[str]:
    dictionary = path.parent / DICTIONARY_FILE
    if dictionary.exists():
        entries = json.loads(dictionary.read_text())["features"]
        return [n for n, e in entries.items() if e["kind"] == "categorical"]
    return list(CATEGORICAL)


def _category_order(con, names: list[str], categorical: list[str]) -> dict[str, list]:
    """Each categorical column's levels in order of first appearance in the spine's order over the whole table
    (what `load_features` gives a folder of parts)."""
    present = set(con.execute("SELECT name FROM parquet_schema(?)", [names[0]]).df()["name"])
    out = {}
    for name in (c for c in categorical if c in present):
        column = '"' + name.replace('"', '""') + '"'  # a dictionary's column name, quoted as an identifier
        rows = con.execute(
            f"SELECT {column} AS v, min(struct_pack(d := snapshot_date, l := loan_id)) AS first "
            f"FROM read_parquet(?) WHERE {column} IS NOT NULL GROUP BY ALL ORDER BY first",
            [names],
        ).fetchall()
        out[name] = [v for v, _ in rows]
    return out


def split_windows(path: str | Path, splits: tuple[str, ...] | None = WINDOW_SPLITS, con=None) -> dict[str, dict]:
    """Rows, snapshots, first and last snapshot date and the labelled rows' bad rate of each split of the
    features at `path` (`splits`; None: every split in the table), counted by DuckDB over its files."""
    names = [str(f) for f in feature_files(path)]
    with _connection(con) as con:
        return _windows(con, names, splits)


def _windows(con, names: list[str], splits: tuple[str, ...] | None = WINDOW_SPLITS) -> dict[str, dict]:
    rows = con.execute(
        "SELECT split, count(*) AS rows, count(DISTINCT snapshot_date) AS snapshots, min(snapshot_date) AS first, "
        "max(snapshot_date) AS last, avg(CAST(target AS DOUBLE)) AS bad_rate FROM read_parquet(?) GROUP BY split",
        [names],
    ).fetchall()
    found = {r[0]: r[1:] for r in rows}
    return {
        split: {
            "rows": int(n),
            "snapshots": int(snapshots),
            "from": str(pd.Timestamp(first).date()),
            "to": str(pd.Timestamp(last).date()),
            "bad_rate": None if bad is None else round(float(bad), 6),
        }
        for split in (sorted(found) if splits is None else splits)
        if split in found
        for n, snapshots, first, last, bad in [found[split]]
    }
