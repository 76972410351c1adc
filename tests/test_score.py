"""Batch scoring: determinism, atomic output, model/feature mismatch, the Dask path, PSI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from huishou.book.files import raw_paths
from huishou.cli import main
from huishou.core import io as hio
from huishou.core.settings import load_settings
from huishou.features import feature_columns
from huishou.risk.drift import bin_shares, build_reference, drift_report, psi
from huishou.risk.scoring import features_local, reason_key, risk_bands, row_hashes, score_dask, score_rows
from huishou.risk.train import fit_lightgbm, fit_lightgbm_dask

SNAPSHOT = "2025-10-01"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, book, features, settings):
    """A project folder with a validated raw book and a trained model file."""
    root = tmp_path_factory.mktemp("scoring")
    raw = root / "data" / "raw"
    for name, frame in book.raw_tables().items():
        hio.write_parquet(frame, raw / f"{name}.parquet")
    hio.write_json({"as_of": str(settings.simulate.as_of.date()), "source": "simulated"}, raw / "manifest.json")
    params = load_settings(Path(__file__).resolve().parents[1] / "params.yaml")
    fast = dataclasses.replace(params.train, num_boost_round=80)
    cols = feature_columns(features)
    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    model = fit_lightgbm(train, valid, cols, fast)
    model.meta["reference"] = build_reference(model.predict_proba(train), train, cols[:5], 10)
    model.save(root / "model")
    return root, model


def _cli(root, monkeypatch, *args):
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    return main(["--params", str(params), *args])


def test_rerun_of_same_snapshot_is_byte_identical(workspace, monkeypatch):
    root, _ = workspace
    assert _cli(root, monkeypatch, "validate") == 0
    args = ("score", "--snapshot", SNAPSHOT, "--model-path", str(root / "model"))
    assert _cli(root, monkeypatch, *args) == 0
    unit = root / "data" / "nightly" / SNAPSHOT
    first = {name: hio.file_md5(unit / name) for name in ("scores.parquet", "manifest.json", "drift.json")}
    assert _cli(root, monkeypatch, *args) == 0
    assert {name: hio.file_md5(unit / name) for name in first} == first
    scores = pd.read_parquet(unit / "scores.parquet")
    assert scores["loan_id"].is_unique and scores["probability"].between(0, 1).all()
    assert {"risk_band", "model_name", "model_version", "feature_hash"} <= set(scores.columns)
    manifest = json.loads((unit / "manifest.json").read_text())
    assert manifest["rows"] == len(scores) and sum(manifest["bands"].values()) == len(scores)
    assert len(manifest["feature_data_hash"]) == 32 and manifest["run_timestamp"].endswith("Z")
    drift = json.loads((unit / "drift.json").read_text())
    assert drift["status"] in {"ok", "warn", "flag"} and "psi" in drift["score"]


def test_crash_mid_write_leaves_no_partial_file(workspace, monkeypatch):
    root, _ = workspace
    target = root / "data" / "scores" / "crash.parquet"
    frame = pd.DataFrame({"a": np.arange(10)})

    def exploding(self, path, **kw):
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", exploding)
    with pytest.raises(OSError, match="disk full"):
        hio.write_parquet(frame, target)
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".crash")]


def test_model_feature_mismatch_is_a_clear_error(workspace, monkeypatch, capsys):
    root, model = workspace
    bad = dataclasses.replace(model.contract, columns=[*model.contract.columns, "rp_unknown_feature"])
    broken = dataclasses.replace(model, contract=bad)
    broken.save(root / "broken")
    assert _cli(root, monkeypatch, "validate") == 0
    published = root / "data" / "nightly" / SNAPSHOT / "scores.parquet"
    before = hio.file_md5(published) if published.exists() else None
    code = _cli(root, monkeypatch, "score", "--snapshot", SNAPSHOT, "--model-path", str(root / "broken"))
    assert code == 2
    assert "rp_unknown_feature" in capsys.readouterr().err
    assert (hio.file_md5(published) if published.exists() else None) == before  # the old result stands
    assert [p.name for p in (root / "data" / "nightly").iterdir() if ".tmp-" in p.name] == []


def test_registry_without_champion_is_a_clear_error(workspace, monkeypatch, capsys):
    root, _ = workspace
    assert _cli(root, monkeypatch, "score", "--snapshot", SNAPSHOT) == 2
    assert "has no alias 'champion'" in capsys.readouterr().err


def test_dask_engine_matches_local_and_its_parts_read_as_one_dataset(workspace, settings, tmp_path):
    """Each Dask task writes its own part and returns aggregates only; the parts read as one dataset
    (pandas, DuckDB) equal to the local engine's file, and the aggregates equal the local ones."""
    import duckdb

    root, model = workspace
    tables = raw_paths(root / "data" / "raw")
    kwargs = settings.features.build_kwargs(settings.simulate.as_of)
    t = pd.Timestamp(SNAPSHOT)
    info = {"model_name": "m", "model_version": "v1"}
    local_cfg = dataclasses.replace(settings.score, chunk_size=97)
    local, local_totals = score_rows(features_local(tables, t, kwargs), model, info, local_cfg)
    applications = len(pd.read_parquet(tables["applications"], columns=["loan_id"]))
    cfg = dataclasses.replace(settings.score, rows_per_partition=applications // 3 + 1)
    totals, partitions = score_dask(tables, t, kwargs, cfg, model, info, tmp_path / "scores.parquet", workers=2)
    parts = sorted((tmp_path / "scores.parquet").glob("part-*.parquet"))
    assert partitions == 3 and len(parts) == 3 and len(local) > 100
    assert totals == local_totals  # rows, drift bin counts, data hash, bands, reason counts
    for dataset in (
        pd.read_parquet(tmp_path / "scores.parquet"),
        duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'scores.parquet' / '*.parquet'}')").df(),
    ):
        dataset = dataset.sort_values("loan_id", ignore_index=True)
        assert dataset["loan_id"].tolist() == local["loan_id"].tolist()
        np.testing.assert_allclose(dataset["probability"], local["probability"], rtol=1e-12)
        assert (dataset["feature_hash"].to_numpy() == local["feature_hash"].to_numpy()).all()  # the same inputs
        for col in ("risk_band", "reason_1", "reason_2", "reason_3"):
            assert dataset[col].astype(str).tolist() == local[col].astype(str).tolist(), col


def test_a_book_larger_than_a_partition_is_scored_one_partition_at_a_time(workspace, monkeypatch, tmp_path):
    """Beyond score.rows_per_partition loans the local engine scores one borrower partition at a time and
    publishes a folder of parts, which reads as one dataset equal to the single-file run, with the same
    manifest and drift."""
    root, _ = workspace
    assert _cli(root, monkeypatch, "validate") == 0
    args = ("score", "--snapshot", SNAPSHOT, "--model-path", str(root / "model"))
    assert _cli(root, monkeypatch, *args, "--out", str(tmp_path / "whole")) == 0
    applications = len(pd.read_parquet(root / "data" / "raw" / "applications.parquet", columns=["loan_id"]))
    params = tmp_path / "params.yaml"
    repo = Path(__file__).resolve().parents[1]
    params.write_text(f"extends: {repo / 'params.yaml'}\nscore: {{rows_per_partition: {applications // 4 + 1}}}\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    assert main(["--params", str(params), *args, "--out", str(tmp_path / "parts")]) == 0
    whole, parts = tmp_path / "whole" / SNAPSHOT, tmp_path / "parts" / SNAPSHOT
    assert whole.joinpath("scores.parquet").is_file()
    assert len(list(parts.joinpath("scores.parquet").glob("part-*.parquet"))) == 4
    a = pd.read_parquet(whole / "scores.parquet")
    b = pd.read_parquet(parts / "scores.parquet").sort_values("loan_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_categorical=False)
    assert json.loads((whole / "drift.json").read_text()) == json.loads((parts / "drift.json").read_text())
    strip = lambda m: {k: v for k, v in m.items() if k != "run_timestamp"}  # noqa: E731
    assert strip(json.loads((whole / "manifest.json").read_text())) == strip(
        json.loads((parts / "manifest.json").read_text())
    )
    assert not [p for p in (tmp_path / "parts").rglob(".*") if "buckets" in p.name or ".tmp-" in p.name]


def test_reason_codes_are_reused_only_for_unchanged_inputs(workspace, settings):
    """A loan whose model inputs hash the same keeps the earlier run's reasons; one whose inputs changed
    is explained again (the earlier reasons are planted wrong to tell the two apart)."""
    from huishou.risk.scoring import REASON_COLUMNS, ReasonCache, explained_bands

    root, model = workspace
    tables = raw_paths(root / "data" / "raw")
    kwargs = settings.features.build_kwargs(settings.simulate.as_of)
    cfg, info = settings.score, {"model_name": "m", "model_version": "v1"}
    features = features_local(tables, pd.Timestamp(SNAPSHOT), kwargs)
    first, totals = score_rows(features, model, info, cfg)
    risky = first["risk_band"].astype(str) >= cfg.reasons_min_band
    assert totals["reasons"] == {"explained": int(risky.sum()), "computed": int(risky.sum()), "reused": 0}
    # every adverse decision (an explained band) carries its codes and its record; no other loan does
    assert (first.loc[risky, "reason_codes"] != "").all() and (first.loc[~risky, "reason_codes"] == "").all()
    assert first.loc[risky, "explanation"].map(lambda r: json.loads(r)["model_version"] == "v1").all()
    planted = first.copy()
    planted.loc[risky, "reason_1"] = "planted"
    key = reason_key(model, "v1", cfg.reasons_min_band)
    cache = ReasonCache(planted.loc[risky].set_index("feature_hash")[REASON_COLUMNS])
    again, totals = score_rows(features, model, info, cfg, cache)
    assert totals["reasons"]["reused"] == risky.sum() and totals["reasons"]["computed"] == 0
    assert (again.loc[risky, "reason_1"] == "planted").all()
    # one risky loan's history changes: a late payment recorded, so its inputs (and hash) change
    changed = features.copy()
    target = first.loc[risky, "loan_id"].iloc[0]
    row = changed.index[changed["loan_id"] == target][0]
    changed.loc[row, "rp_n_partial"] = changed.loc[row, "rp_n_partial"] + 1
    assert row_hashes(model, changed.loc[[row]])[0] != row_hashes(model, features.loc[[row]])[0]
    third, totals = score_rows(changed, model, info, cfg, cache)
    redone = third["loan_id"] == target
    if third.loc[redone, "risk_band"].astype(str).iloc[0] >= cfg.reasons_min_band:
        assert totals["reasons"]["computed"] == 1 and third.loc[redone, "reason_1"].iloc[0] != "planted"
    assert (third.loc[~redone & risky.to_numpy(), "reason_1"] == "planted").all()
    # a cache read back from a published file holds the explained bands only
    path = root / "reasons.parquet"
    hio.write_parquet(first, path)
    read = ReasonCache.read(path, explained_bands(cfg))
    assert len(read.reasons) == first.loc[risky, "feature_hash"].nunique()
    # a different model version, band or vocabulary makes a different key: no reuse across them
    assert len({key, reason_key(model, "v2", cfg.reasons_min_band), reason_key(model, "v1", "E")}) == 3


def test_nightly_run_carries_reasons_over_from_the_latest_earlier_run(workspace, monkeypatch):
    """The earlier run's reasons (planted wrong to be recognisable) come back exactly for the loans whose
    inputs hash the same: all of them when the same snapshot is scored again, and none whose inputs changed."""
    root, _ = workspace
    out = root / "data" / "reuse"
    assert _cli(root, monkeypatch, "validate") == 0
    args = ("score", "--model-path", str(root / "model"), "--out", str(out))
    assert _cli(root, monkeypatch, *args, "--snapshot", "2025-09-01") == 0
    scores = pd.read_parquet(out / "2025-09-01" / "scores.parquet")
    explained = scores["reason_1"] != ""
    assert explained.sum() > 10
    planted = scores.assign(reason_1=scores["reason_1"].where(~explained, "planted"))
    hio.write_parquet(planted, out / "2025-09-01" / "scores.parquet")
    assert _cli(root, monkeypatch, *args, "--snapshot", "2025-09-01") == 0
    again = pd.read_parquet(out / "2025-09-01" / "scores.parquet")
    assert (again.loc[explained, "reason_1"] == "planted").all()
    assert _cli(root, monkeypatch, *args, "--snapshot", "2025-09-02") == 0
    nxt = pd.read_parquet(out / "2025-09-02" / "scores.parquet")
    same = nxt["feature_hash"].isin(scores.loc[explained, "feature_hash"])
    assert (nxt.loc[same, "reason_1"] == "planted").all()
    assert not (nxt.loc[~same, "reason_1"] == "planted").any()


def test_lightgbm_dask_trains_every_row_of_the_parts_with_the_single_node_rounds(features, tmp_path):
    """train.engine dask: the single-node fit fixes the rounds (lightgbm.dask cannot early-stop); the workers
    read the feature parts themselves (each with its own category dictionary) and train on every labelled train
    row; the partitioning is recorded and the model is as good as the local one."""
    from sklearn.metrics import roc_auc_score

    cfg = dataclasses.replace(load_settings("params.yaml").train, num_boost_round=60)
    cols = feature_columns(features)
    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    test = features[features["split"] == "test"]
    files = []
    for k in range(3):  # a bucketed build: three parts, categories of each part's own rows
        part = features[features["loan_id"] % 3 == k].copy()
        for col in ("app_purpose", "app_channel"):
            part[col] = part[col].astype(object).astype("category")
        files.append(tmp_path / f"part-{k:05d}.parquet")
        part.to_parquet(files[-1])
    local_model = fit_lightgbm(train, valid, cols, cfg)
    dask_model = fit_lightgbm_dask(files, local_model, valid, cfg, threads=2)
    y = test["target"].astype(int)
    auc_dask = roc_auc_score(y, dask_model.predict_proba(test))
    auc_local = roc_auc_score(y, local_model.predict_proba(test))
    rounds = local_model.meta["best_iteration"]
    assert dask_model.meta["engine"] == "dask" and dask_model.meta["best_iteration"] == rounds
    assert dask_model.estimator.num_trees() == rounds < 60 or rounds == 60
    layout = dask_model.meta["partitioning"]
    assert layout["rows"] == int(train["target"].notna().sum()) and layout["files"] == 3
    assert layout["partitions"] >= 2 and layout["workers"] == 2 and layout["rounds_from_single_node"] == rounds
    assert dask_model.meta["params"]["num_threads"] == 1  # one per worker process, whatever compute.threads says
    assert auc_dask > 0.75 and abs(auc_dask - auc_local) < 0.03


def test_psi_hand_computed_and_thresholds():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * np.log(0.5) * -1 + 0.25 * np.log(1.5))
    shares = bin_shares(np.array([0.0, 1.0, 2.0, np.nan]), [0.5, 1.5])
    assert shares == [0.25, 0.25, 0.25, 0.25]
    rng = np.random.default_rng(1)
    base = pd.DataFrame({"x": rng.normal(0, 1, 5000)})
    ref = build_reference(rng.uniform(0, 1, 5000), base, ["x"], 10)
    same = drift_report(ref, rng.uniform(0, 1, 5000), pd.DataFrame({"x": rng.normal(0, 1, 5000)}), 0.1, 0.25)
    moved = drift_report(ref, rng.uniform(0, 1, 5000), pd.DataFrame({"x": rng.normal(1.0, 1, 5000)}), 0.1, 0.25)
    assert same["status"] == "ok" and same["features"]["x"]["psi"] < 0.02
    assert moved["features"]["x"]["status"] == "flag" and moved["status"] == "flag"


def test_risk_bands_cut_at_thresholds():
    bands = risk_bands(np.array([0.0, 0.0099, 0.01, 0.5]), [0.01, 0.1], ["A", "B", "C"])
    assert list(bands) == ["A", "A", "B", "C"]


def test_scores_carry_reason_codes_for_the_risky_bands(workspace, monkeypatch):
    root, _ = workspace
    assert _cli(root, monkeypatch, "validate") == 0
    assert _cli(root, monkeypatch, "score", "--snapshot", SNAPSHOT, "--model-path", str(root / "model")) == 0
    scores = pd.read_parquet(root / "data" / "nightly" / SNAPSHOT / "scores.parquet")
    risky = scores["risk_band"].astype(str) >= "D"
    assert risky.any() and (scores.loc[risky, "reason_1"] != "").all()
    assert (scores.loc[~risky, "reason_1"] == "").all()
    assert not scores["reason_1"].str.contains("_").any()  # plain words, not column names


def test_the_book_is_read_once_and_split_into_whole_borrower_buckets(workspace, tmp_path):
    """bucket_book reads each raw file once into per-partition folders; a partition's task then reads its
    own folder only (the raw files moved away, it still gets exactly what filtering the raw files gives, the
    same dtypes too: a boolean column with nulls stays pandas' nullable boolean)."""
    import shutil

    from huishou.book.buckets import bucket_book
    from huishou.book.buckets import partition_tables as _partition_tables

    root, _ = workspace
    raw = tmp_path / "raw"
    shutil.copytree(root / "data" / "raw", raw)
    tables = raw_paths(raw)
    n = 3
    rows = bucket_book(tables, n, tmp_path / "buckets", "1GB")
    expected = {k: [_partition_tables(tables, k, n)[name] for name in tables] for k in range(n)}
    for name, path in tables.items():
        assert rows[name] == len(pd.read_parquet(path))
    moved = tmp_path / "moved"
    raw.rename(moved)
    for k in range(n):
        frames = _partition_tables(tables, k, n, tmp_path / "buckets")
        for name, want in zip(tables, expected[k], strict=True):
            got = frames[name]
            key = [c for c in ("loan_id", "borrower_id") if c in want][0]
            sort = [key, *[c for c in want.columns if c != key][:3]]
            pd.testing.assert_frame_equal(
                got.sort_values(sort, ignore_index=True), want.sort_values(sort, ignore_index=True)
            )
    assert (
        sum(len(_partition_tables(tables, k, n, tmp_path / "buckets")["installments"]) for k in range(n))
        == rows["installments"]
    )


def test_partitioned_scoring_takes_a_table_held_as_a_frame(workspace, settings, tmp_path):
    """A table the contact log adds to reaches scoring as a frame (raw rows and the log's); beyond one
    partition it is written once for DuckDB's split, and the scores are those of the same table as a file."""
    from huishou.risk.scoring import score_partitions

    root, model = workspace
    tables = raw_paths(root / "data" / "raw")
    kwargs = settings.features.build_kwargs(settings.simulate.as_of)
    applications = len(pd.read_parquet(tables["applications"], columns=["loan_id"]))
    cfg = dataclasses.replace(settings.score, rows_per_partition=applications // 2 + 1)
    info, t = {"model_name": "m", "model_version": "v1"}, pd.Timestamp(SNAPSHOT)
    files, n = score_partitions(tables, t, kwargs, cfg, model, info, tmp_path / "a" / "scores.parquet")
    framed = tables | {"collection_actions": pd.read_parquet(tables["collection_actions"])}
    frames, m = score_partitions(framed, t, kwargs, cfg, model, info, tmp_path / "b" / "scores.parquet")
    assert n == m == 2 and files == frames  # rows, drift, data hash, bands, reason counts
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "scores.parquet"), pd.read_parquet(tmp_path / "b" / "scores.parquet")
    )
    assert not list(tmp_path.glob("*/.*buckets"))  # the split and the written frame are removed


def test_an_aligned_frame_is_taken_as_it_is_and_anything_else_is_aligned():
    """score_rows aligns the features once; align returns an already-aligned frame itself (no copy) and
    realigns one whose columns, order, levels or dtypes differ."""
    from huishou.core.errors import FeatureMismatchError
    from huishou.risk.model import FeatureContract

    contract = FeatureContract(["x", "city"], {"city": ["a", "b"]})
    raw = pd.DataFrame({"loan_id": [1, 2, 3], "city": ["b", "z", None], "x": [1.0, 2.0, np.nan]})
    aligned = contract.align(raw)
    assert list(aligned.columns) == ["x", "city"] and aligned["city"].tolist()[0] == "b"
    assert aligned["city"].isna().tolist() == [False, True, True]  # an unseen level is missing
    assert contract.align(aligned) is aligned
    other_levels = aligned.assign(city=aligned["city"].cat.set_categories(["b", "a"]))
    assert contract.align(other_levels) is not other_levels
    assert list(contract.align(other_levels)["city"].cat.categories) == ["a", "b"]
    ordered = aligned.assign(city=aligned["city"].cat.as_ordered())
    assert not contract.align(ordered)["city"].cat.ordered
    assert contract.align(aligned[["city", "x"]]) is not aligned
    with pytest.raises(FeatureMismatchError, match="numeric"):
        contract.align(aligned.assign(x=["1", "2", "3"]))
