"""`huishou features`: point-in-time features and target for every snapshot, with the train/valid/test split.

Reads data.raw_dir (refused unless unchanged since `huishou validate`) and the validation report;
publishes data.features_dir as one unit: features.parquet (one row per loan and snapshot T, or per
application in origination mode), dictionary.json (every feature's family, kind, description and
monotone direction) and summary.json (rows, target rate and snapshots per split, and per snapshot
the loans in the population and every other application counted by why it is left out; DVC metrics).

A book of more than features.rows_per_partition loans is built one borrower bucket at a time (the
hive buckets validation and scoring use: each raw file read once and split by hash(borrower_id), a
bucket's rows built, split, counted and written as features.parquet/part-<k>.parquet), so memory is a
bucket's, not the book's; `load_features` reads the parts back in the whole-book build's row order.
"""

from __future__ import annotations

import logging
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd

from huishou.book.buckets import partition_files, partitions_for, split_book
from huishou.book.source import BookSource
from huishou.core.engine import dask_tasks, threads
from huishou.core.errors import ConfigError, DataValidationError
from huishou.core.io import publish, rounded, write_json, write_parquet
from huishou.core.paths import DICTIONARY_FILE, SUMMARY_FILE, features_path
from huishou.core.progress import progress_bar
from huishou.core.settings import SOURCE_PARAMS
from huishou.features import (
    SplitTally,
    assign_hash_split,
    assign_split,
    build_features,
    feature_dictionary,
    population_counts,
)

PARAMS = ("compute", *SOURCE_PARAMS, "data.features_dir", "features")

log = logging.getLogger("huishou.features")


def run(settings) -> dict:
    """Build, split and write the features of every snapshot in the grid (or every application)."""
    f = settings.features
    report, tables = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    origination = f.mode == "origination"
    snapshots = f.snapshot_dates()
    late = [str(t.date()) for t in snapshots if t > as_of]
    if not origination and (late or not snapshots):
        raise ConfigError(
            f"params.yaml features.first_snapshot/last_snapshot: snapshot(s) {late or 'none'} after the extract date "
            f"{as_of.date()} (rule: every snapshot T <= as_of, and at least one)"
        )
    kwargs = f.build_kwargs(as_of)
    engine = {
        "memory_limit": f.duckdb_memory_limit,
        "threads": threads(settings.compute.threads),
        "spill_to": settings.compute.spill_directory,
    }
    by_hash = f.split_mode == "hash" or origination or len(snapshots) == 1
    work = Path(settings.data.features_dir).parent
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".features-buckets-", dir=work) as tmp:
        n_parts = 1
        if "applications" in tables and not isinstance(tables["applications"], pd.DataFrame):
            n_parts = partitions_for(tables["applications"], f.rows_per_partition)
        steps = 2 if n_parts == 1 else n_parts + 2  # (split the book,) build each bucket, population and summary
        bar = progress_bar(total=steps, desc="features", unit="step")
        with publish(settings.data.features_dir) as out:
            target = features_path(out)
            if n_parts == 1:
                bar.set_postfix_str(f"build {len(snapshots)} snapshots")
                frame = build_features(tables, snapshots, **kwargs | engine)
                files = [target]
            else:
                bar.set_postfix_str(f"split the book into {n_parts} borrower buckets")
                paths, buckets = split_book(
                    tables, n_parts, Path(tmp), f.duckdb_memory_limit, engine["threads"], engine["spill_to"]
                )
                target.mkdir(parents=True)
                files = [target / f"part-{k:05d}.parquet" for k in range(n_parts)]
            bar.update()
            if n_parts == 1:
                tally, dictionary = _write_part(frame, target, by_hash, f, kwargs["extras"])
            else:
                build = {"paths": paths, "buckets": buckets, "snapshots": snapshots}
                build |= {"kwargs": kwargs | engine, "by_hash": by_hash, "f": f.whole()}
                parts = (_dask_parts if f.engine == "dask" else _local_parts)(build, files, settings.compute, bar)
                tally, dictionary = SplitTally(), None
                for part, found in parts:  # in bucket order: the sums and the dictionary of the one-by-one build
                    tally.merge(part)
                    dictionary = dictionary or found
            if tally.rows == 0:
                where = (
                    "any application" if origination else f"any snapshot {snapshots[0].date()}..{snapshots[-1].date()}"
                )
                raise DataValidationError(
                    f"{settings.data.raw_dir}: no row to build at {where} (rule: the snapshot grid lies inside the "
                    "book's history)"
                )
            if not by_hash and len(tally.snapshot_dates) == 1:  # one snapshot with rows: a time split cannot split
                by_hash, tally = True, SplitTally()
                for path in files:
                    frame = pd.read_parquet(path)
                    frame["split"] = _split(frame, by_hash, f)
                    tally.add(frame)
                    write_parquet(frame, path)
            bar.set_postfix_str("population and summary")
            summary = tally.summary() | {
                "n_features": len(dictionary["features"]),
                "split_by": "hash of loan_id" if by_hash else "snapshot date",
                "target_given": tally.given,
            }
            if n_parts > 1:
                summary["buckets"] = n_parts
            if not origination:
                counts = population_counts(tables, snapshots, **kwargs)
                summary["population"] = {
                    str(pd.Timestamp(r.pop("snapshot_date")).date()): {k: int(v) for k, v in r.items()}
                    for r in counts.to_dict(orient="records")
                }
                _log_left_out(summary["population"])
            write_json(dictionary, out / DICTIONARY_FILE)
            write_json(summary, out / SUMMARY_FILE)
            headline = {s: summary[s] for s in ("train", "valid", "gap", "test") if s in summary}
            write_json(rounded(headline | {"n_features": summary["n_features"]}), out / "headline.json")
            bar.update()
        bar.close()
    return summary


def _write_part(frame: pd.DataFrame, path: Path, by_hash: bool, f, extras) -> tuple[SplitTally, dict | None]:
    """Split, count and write one built part; its tally and, when it has rows, the features' dictionary."""
    frame["split"] = _split(frame, by_hash, f)
    tally = SplitTally()
    tally.add(frame)
    dictionary = feature_dictionary(frame, extras) if len(frame) else None
    write_parquet(frame, path)
    return tally, dictionary


def build_bucket(k: int, path: Path, build: dict) -> tuple[SplitTally, dict | None]:
    """Build, split, count and write borrower bucket k (a Dask task with features.engine dask)."""
    tables = partition_files(build["paths"], k, build["buckets"])  # read in place by the build's DuckDB
    frame = build_features(tables, build["snapshots"], **build["kwargs"])
    return _write_part(frame, path, build["by_hash"], build["f"], build["kwargs"]["extras"])


def _local_parts(build: dict, files: list[Path], compute, bar) -> list:
    out = []
    for k, path in enumerate(files):
        bar.set_postfix_str(f"build {len(build['snapshots'])} snapshots, bucket {k + 1}/{len(files)}")
        out.append(build_bucket(k, path, build))
        bar.update()
    return out


def _dask_parts(build: dict, files: list[Path], compute, bar) -> list:
    """One task per bucket on compute.scheduler (or a local cluster of compute.threads single-threaded
    workers, DuckDB on one thread each); the workers read the buckets and write the parts themselves."""
    task = partial(build_bucket, build=build | {"kwargs": build["kwargs"] | {"threads": 1}})  # one object to ship
    bar.set_postfix_str(f"build {len(build['snapshots'])} snapshots, {len(files)} buckets on Dask")
    return dask_tasks(compute.scheduler, threads(compute.threads), task, list(enumerate(files)), bar.update)


def _split(frame: pd.DataFrame, by_hash: bool, f) -> pd.Series:
    if by_hash:
        return assign_hash_split(frame, f.hash_valid_share, f.hash_test_share)
    return assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)


def _log_left_out(population: dict) -> None:
    for snapshot, counts in population.items():
        left = {k: v for k, v in counts.items() if k not in ("in_population", "not_yet_applied") and v}
        if left:
            log.info("%s: %d loans scored; left out: %s", snapshot, counts["in_population"], left)
