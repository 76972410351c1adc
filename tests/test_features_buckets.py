"""The features stage beyond features.rows_per_partition loans: one borrower bucket at a time, the same table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from huishou.book.files import as_files
from huishou.cli import main
from huishou.core import io as hio
from huishou.core.io import path_md5
from huishou.features import load_features

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory, book, settings):
    """A project folder with the test book validated."""
    root = tmp_path_factory.mktemp("features-buckets")
    raw = root / "data" / "raw"
    for name, frame in book.raw_tables().items():
        hio.write_parquet(frame, raw / f"{name}.parquet")
    hio.write_json({"as_of": str(settings.simulate.as_of.date()), "source": "simulated"}, raw / "manifest.json")
    return root


def _features(root: Path, monkeypatch, out: str, extra: str = "") -> dict:
    params = root / f"{out}.yaml"
    params.write_text(f"extends: {REPO / 'params.yaml'}\ndata: {{features_dir: {out}}}\n{extra}")
    monkeypatch.chdir(root)
    assert main(["--params", str(params), "validate"]) == 0
    assert main(["--params", str(params), "features"]) == 0
    return json.loads((root / out / "summary.json").read_text())


def test_a_book_beyond_a_partition_is_built_bucket_by_bucket_into_the_same_table(project, monkeypatch):
    loans = len(pd.read_parquet(project / "data" / "raw" / "applications.parquet", columns=["loan_id"]))
    whole = _features(project, monkeypatch, "whole")
    parts = _features(project, monkeypatch, "parts", f"features: {{rows_per_partition: {loans // 3 + 1}}}\n")
    folder = project / "parts" / "features.parquet"
    assert folder.is_dir() and len(list(folder.glob("part-*.parquet"))) == 3
    assert (project / "whole" / "features.parquet").is_file()
    assert parts.pop("buckets") == 3
    assert parts == whole  # rows, target rate and snapshots per split, population, feature count
    a, b = load_features(project / "whole" / "features.parquet"), load_features(folder)
    pd.testing.assert_frame_equal(a, b)  # same rows, order, dtypes and category order: the models see one table
    dictionaries = [json.loads((project / d / "dictionary.json").read_text()) for d in ("whole", "parts")]
    assert dictionaries[0] == dictionaries[1]
    assert path_md5(folder).endswith(".dir") and path_md5(folder) != path_md5(project / "whole" / "features.parquet")
    assert not list((project).glob(".features-buckets-*"))  # the buckets are removed


def test_tables_held_as_frames_are_written_once_for_the_bucketing(tmp_path):
    frame = pd.DataFrame({"loan_id": [1, 2], "borrower_id": [7, 8]})
    files = as_files({"applications": Path("/books/a.parquet"), "collection_actions": frame}, tmp_path)
    assert files["applications"] == Path("/books/a.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(files["collection_actions"]), frame)
