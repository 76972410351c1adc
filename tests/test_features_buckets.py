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
from huishou.features.store import read_training_rows

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


def _built(project: Path, monkeypatch) -> int:
    """The test book's features whole and in 3 buckets (built once per module, whichever test runs first);
    returns the book's loans."""
    loans = len(pd.read_parquet(project / "data" / "raw" / "applications.parquet", columns=["loan_id"]))
    if not (project / "whole" / "features.parquet").exists():
        _features(project, monkeypatch, "whole")
    if not (project / "parts" / "features.parquet").exists():
        _features(project, monkeypatch, "parts", f"features: {{rows_per_partition: {loans // 3 + 1}}}\n")
    return loans


def _stages(project: Path, monkeypatch, name: str, settings: str, *stages: str) -> None:
    """Run `stages` in the project with params.yaml extended by `settings` (MLflow in the project's store)."""
    params = project / f"{name}.yaml"
    params.write_text(f"extends: {REPO / 'params.yaml'}\n{settings}")
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    for stage in stages:
        assert main(["--params", str(params), stage]) == 0


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


def test_a_bucket_read_in_place_builds_the_features_its_frames_build(project, book, settings, tmp_path):
    """partition_files hands the build each table's bucket files (an empty frame where a bucket has none of a
    table's rows): the same features, row for row, as the bucket's rows read into pandas."""
    from huishou.book.buckets import bucket_book, partition_files, partition_tables
    from huishou.features import build_features

    raw = project / "data" / "raw"
    paths = {name: raw / f"{name}.parquet" for name in book.raw_tables()}
    prefs = pd.read_parquet(paths["contact_preferences"])
    paths["contact_preferences"] = tmp_path / "one_borrower.parquet"  # a table most buckets hold no row of
    hio.write_parquet(prefs[prefs["borrower_id"] == prefs["borrower_id"].iloc[0]], paths["contact_preferences"])
    bucket_book(paths, 3, tmp_path / "buckets")
    kwargs = settings.features.build_kwargs(settings.simulate.as_of)
    snapshots = [settings.simulate.as_of - pd.Timedelta(days=d) for d in (0, 90)]
    empty = 0
    for k in range(3):
        files = partition_files(paths, k, tmp_path / "buckets")
        frames = partition_tables(paths, k, 3, tmp_path / "buckets")
        if isinstance(files["contact_preferences"], pd.DataFrame):
            empty += 1
            assert files["contact_preferences"].empty
            assert list(files["contact_preferences"].columns) == list(prefs.columns)
        assert all(isinstance(files[name], Path) for name in ("applications", "installments"))
        pd.testing.assert_frame_equal(
            build_features(files, snapshots, **kwargs), build_features(frames, snapshots, **kwargs)
        )
    assert empty == 2


def _expected_windows(frame: pd.DataFrame) -> dict:
    """The windows the model card showed when train held the whole table (pandas, for comparison)."""
    out = {}
    for split in ("train", "valid", "test"):
        part = frame[frame["split"] == split]
        if len(part):
            out[split] = {
                "rows": len(part),
                "snapshots": int(part["snapshot_date"].nunique()),
                "from": str(part["snapshot_date"].min().date()),
                "to": str(part["snapshot_date"].max().date()),
                "bad_rate": round(float(part["target"].dropna().mean()), 6),
            }
    return out


def test_training_rows_are_read_without_the_whole_table_the_same_from_a_file_or_parts(project, monkeypatch):
    """Issue 23: train reads only the labelled train and valid rows; under train.max_rows exactly the rows,
    order and categories load_features gives; beyond it a time-stratified sample: every (split, snapshot,
    outcome) stratum keeps its share to one row, exactly max_rows in all, the same rows from a file or parts
    and on every run."""
    _built(project, monkeypatch)
    whole_dir, parts_dir = project / "whole", project / "parts"
    full = load_features(whole_dir / "features.parquet")
    labelled = full[full["split"].isin(["train", "valid"]) & full["target"].notna()].reset_index(drop=True)
    for source in (whole_dir / "features.parquet", parts_dir / "features.parquet"):
        rows = read_training_rows(source)
        pd.testing.assert_frame_equal(rows.frame, labelled, check_exact=True)
        assert not rows.sampled and rows.taken == rows.available
        assert rows.windows == _expected_windows(full)
    cap = len(labelled) // 4
    a = read_training_rows(whole_dir / "features.parquet", cap, seed=7)
    b = read_training_rows(parts_dir / "features.parquet", cap, seed=7)
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    pd.testing.assert_frame_equal(a.frame, read_training_rows(whole_dir / "features.parquet", cap, seed=7).frame)
    assert len(a.frame) == cap and a.sampled and a.fraction == pytest.approx(cap / len(labelled))
    keys = ["split", "snapshot_date", "target"]
    share = a.frame.groupby(keys, observed=True).size() / labelled.groupby(keys, observed=True).size()
    strata = labelled.groupby(keys, observed=True).size()
    assert ((share * strata - strata * cap / len(labelled)).abs() <= 1).all()  # each stratum within one row
    assert set(strata.index) == set(share.dropna().index)  # no snapshot or outcome lost
    sampled = a.frame.merge(labelled, on=["loan_id", "snapshot_date"], suffixes=("", "_full"))
    assert len(sampled) == cap  # every sampled row is a row of the table, unchanged
    assert (sampled["rp_dpd_now"].fillna(-1) == sampled["rp_dpd_now_full"].fillna(-1)).all()
    other = read_training_rows(whole_dir / "features.parquet", cap, seed=8).frame
    assert not other[["loan_id", "snapshot_date"]].equals(a.frame[["loan_id", "snapshot_date"]])  # seed draws


def test_train_fits_a_sample_beyond_max_rows_and_says_so(project, monkeypatch):
    """The train stage with train.max_rows below the labelled rows: the metrics count rows used and available,
    the model card says how the rows were drawn, and the models still validate."""
    _built(project, monkeypatch)
    _stages(
        project,
        monkeypatch,
        "sampled",
        "data: {features_dir: parts, models_dir: sampled_models}\ntrain: {max_rows: 6000, num_boost_round: 60}\n",
        "train",
    )
    metrics = json.loads((project / "sampled_models" / "trained" / "train_metrics.json").read_text())
    assert metrics["rows_train_used"] + metrics["rows_valid_used"] == 6000
    assert metrics["rows_train_available"] + metrics["rows_valid_available"] > 6000
    assert metrics["valid_lightgbm_auc"] > 0.7
    card = json.loads((project / "sampled_models" / "trained" / "cards" / "lightgbm.json").read_text())
    assert "train.max_rows 6000: a time-stratified sample" in card["data"]["sampling"]
    assert set(card["data"]["splits"]) == {"train", "valid", "test"}


def test_train_on_dask_fits_every_row_of_the_parts_with_the_sample_s_rounds(project, monkeypatch):
    """train.engine dask: the single-node fit on the max_rows sample fixes the rounds; lightgbm.dask then
    trains on every labelled train row, each part read by a worker; the partitioning is in the metrics."""
    _built(project, monkeypatch)
    _stages(
        project,
        monkeypatch,
        "dask",
        "data: {features_dir: parts, models_dir: dask_models}\n"
        "compute: {threads: 2}\ntrain: {engine: dask, max_rows: 6000, num_boost_round: 60}\n",
        "train",
    )
    metrics = json.loads((project / "dask_models" / "trained" / "train_metrics.json").read_text())
    assert metrics["rows_train_used"] < metrics["rows_train_available"] == metrics["dask_rows"]
    assert metrics["dask_files"] == 3 and metrics["dask_partitions"] == 3 and metrics["dask_workers"] == 2
    assert metrics["dask_rounds_from_single_node"] == metrics["lightgbm_best_iteration"]
    assert metrics["valid_lightgbm_auc"] > 0.7


def test_evaluate_reads_the_table_part_by_part_with_the_same_numbers(project, monkeypatch):
    """evaluate holds the test rows' keys, targets and probabilities, never the whole table: on the parts of a
    bucketed build it gives the metrics, plots' tables and by-group table of the single file."""
    _built(project, monkeypatch)
    outputs = {}
    for features_dir in ("whole", "parts"):
        stages = ("train", "evaluate") if features_dir == "whole" else ("evaluate",)
        settings = f"data: {{features_dir: {features_dir}, models_dir: eval_models}}\ntrain: {{num_boost_round: 60}}\n"
        _stages(project, monkeypatch, f"evaluate-{features_dir}", settings, *stages)
        folder = project / "eval_models" / "evaluation"
        outputs[features_dir] = {
            name: (folder / name).read_text()
            for name in ("metrics.json", "by_group.csv", "plots/roc.csv", "plots/lift.csv", "plots/calibration.csv")
        } | {"report": (folder / "report.html").read_text()}
    whole, parts = outputs["whole"], outputs["parts"]
    for name in ("metrics.json", "by_group.csv", "plots/roc.csv", "plots/lift.csv", "plots/calibration.csv"):
        assert whole[name] == parts[name], name
    metrics = json.loads(whole["metrics.json"])
    assert metrics["lightgbm"]["auc"] > 0.7 and metrics["test_snapshots"]
    for page in (whole["report"], parts["report"]):
        assert "Score stability (PSI by month vs training)" in page and "SHAP summary" in page
        assert "test snapshots" in page and "gap snapshots" in page


def test_features_on_dask_build_one_task_per_bucket_into_the_same_table(project, monkeypatch):
    """features.engine dask: each bucket is a task on a local cluster (2 workers) writing its own part; the
    summary, dictionary and table are those of the whole-book build."""
    loans = _built(project, monkeypatch)
    whole = json.loads((project / "whole" / "summary.json").read_text())
    extra = f"features: {{rows_per_partition: {loans // 3 + 1}, engine: dask}}\ncompute: {{threads: 2}}\n"
    on_dask = _features(project, monkeypatch, "dask_parts", extra)
    assert on_dask.pop("buckets") == 3 and on_dask == whole
    folder = project / "dask_parts" / "features.parquet"
    assert len(list(folder.glob("part-*.parquet"))) == 3
    pd.testing.assert_frame_equal(load_features(project / "whole" / "features.parquet"), load_features(folder))
    dictionaries = [json.loads((project / d / "dictionary.json").read_text()) for d in ("whole", "dask_parts")]
    assert dictionaries[0] == dictionaries[1]


def test_portfolio_counted_bucket_by_bucket_gives_the_whole_books_reports(project, monkeypatch):
    """Beyond portfolio.rows_per_partition the reports are counted one borrower bucket at a time and added
    up, here or one Dask task per bucket (portfolio.engine dask): every report, the headline and the loans
    above the cost ceiling as from the whole book."""
    loans = _built(project, monkeypatch)
    runs = (
        ("portfolio_whole", 10 * loans, "local"),
        ("portfolio_parts", loans // 3 + 1, "local"),
        ("portfolio_dask", loans // 3 + 1, "dask"),  # a local cluster of compute.threads (2) workers
    )
    for name, rows, engine in runs:
        _stages(
            project,
            monkeypatch,
            name,
            f"data: {{models_dir: {name}}}\ncompute: {{threads: 2}}\n"
            f"portfolio: {{rows_per_partition: {rows}, engine: {engine}}}\n",
            "portfolio",
        )
        log = json.loads((project / "logs" / "portfolio.json").read_text())
        assert log["open_loans"] > 0 and log["buckets"] == (1 if name == "portfolio_whole" else 3)
    whole = project / "portfolio_whole" / "portfolio"
    csvs = sorted(p.name for p in whole.glob("*.csv"))
    assert {"roll_rates.csv", "vintages.csv", "operations.csv", "above_cost_ceiling.csv"} <= set(csvs)
    for other in ("portfolio_parts", "portfolio_dask"):
        parts = project / other / "portfolio"
        assert json.loads((whole / "portfolio.json").read_text()) == json.loads((parts / "portfolio.json").read_text())
        for name in csvs:
            a, b = pd.read_csv(whole / name), pd.read_csv(parts / name)
            assert len(a) > 0 or name == "above_cost_ceiling.csv", name
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=f"{other}/{name}")


def test_evaluate_beyond_max_test_rows_scores_a_stratified_sample_and_says_so(project, monkeypatch):
    """Issue 23: evaluate holds the test rows it scores; beyond evaluate.max_test_rows it holds a sample of
    exactly that many, stratified by snapshot and outcome (every snapshot's bad rate kept to one row), the same
    keys from a file or parts; the metrics say how many rows they used, and the sample's AUC is the whole
    test split's within sampling error."""
    from huishou.features.store import evaluation_keys

    _built(project, monkeypatch)
    full = load_features(project / "whole" / "features.parquet")
    test = full[(full["split"] == "test") & full["target"].notna()]
    cap = len(test) // 3
    n, everything = evaluation_keys(project / "whole" / "features.parquet")
    assert n == len(test) and everything is None
    keys = {src: evaluation_keys(project / src / "features.parquet", cap, seed=3) for src in ("whole", "parts")}
    assert keys["whole"][0] == keys["parts"][0] == len(test)
    chosen = keys["whole"][1]
    assert len(chosen) == cap and set(chosen) == set(keys["parts"][1])
    picked = test[pd.MultiIndex.from_frame(test[["loan_id", "snapshot_date"]]).isin(chosen)]
    assert len(picked) == cap
    strata = test.groupby(["snapshot_date", "target"], observed=True).size()
    kept = picked.groupby(["snapshot_date", "target"], observed=True).size().reindex(strata.index, fill_value=0)
    assert ((kept - strata * cap / len(test)).abs() <= 1).all()

    common = "data: {features_dir: parts, models_dir: eval_models}\ntrain: {num_boost_round: 60}\n"
    _stages(project, monkeypatch, "eval_all", common, "train", "evaluate")
    whole = json.loads((project / "eval_models" / "evaluation" / "metrics.json").read_text())
    assert whole["test_rows"] == {"used": len(test), "available": len(test), "max_test_rows": 2_000_000}
    _stages(
        project,
        monkeypatch,
        "eval_sample",
        common + f"evaluate: {{max_test_rows: {cap}, sample_seed: 3}}\n",
        "evaluate",
    )
    sampled = json.loads((project / "eval_models" / "evaluation" / "metrics.json").read_text())
    assert sampled["test_rows"] == {"used": cap, "available": len(test), "max_test_rows": cap}
    assert sampled["test_snapshots"] == whole["test_snapshots"]
    assert sampled["lightgbm"]["auc"] != whole["lightgbm"]["auc"]  # computed on the sample, not the whole split
    assert abs(sampled["lightgbm"]["auc"] - whole["lightgbm"]["auc"]) < 0.03
    assert sampled["lightgbm"]["auc"] > 0.7
    report = (project / "eval_models" / "evaluation" / "report.html").read_text()
    assert f"{cap:,} of {len(test):,} labelled test rows" in report
