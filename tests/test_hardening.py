"""Bad input is a clear `huishou <stage>: error:` (exit 2) naming file, column, rule and keys, never a
traceback or a silent accept; model files cannot run code; paths cannot inject SQL; the nightly job's
exit codes say what happened."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from huishou.cli import main
from huishou.core import io as hio
from huishou.core.errors import ModelIntegrityError
from huishou.risk.model import RiskModel

from builders import action, application, book, callback, schedule
from conftest import ROOT

AS_OF = "2025-12-01"


def small_book() -> dict[str, pd.DataFrame]:
    """Three borrowers, one of them with two loans; one loan overdue with collection contacts."""
    apps = [
        application(1, employer="EMP-SECRET-1", declared_income=12345.0),
        application(2),
        application(3, borrower_id=2, disbursed="2025-03-01 10:00"),
    ]
    inst = (
        schedule(1, "2025-01-31", paid={1: ("2025-01-30", 1000.0), 2: ("2025-03-20", 1000.0)})
        + schedule(2, "2025-01-31", paid={s: ("2025-01-20", 1000.0) for s in range(1, 7)})
        + schedule(3, "2025-03-31")
    )
    calls = [callback(1, "2025-01-01 15:00"), callback(2, "2025-01-01 16:00", reached=False)]
    acts = [
        action(1, "2025-03-03 10:00", "sms", "no_answer", collector=None),
        action(1, "2025-03-10 10:00", "call", "promise_to_pay", promised=1000.0),
    ]
    return book(apps, inst, calls, acts)


def write_project(root: Path, tables: dict[str, pd.DataFrame], manifest=None) -> Path:
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    raw = root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(raw / f"{name}.parquet", index=False)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest or {"as_of": AS_OF, "source": "test"})
    (raw / "manifest.json").write_text(text)
    return raw


def run_cli(root: Path, monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    code = main(list(args))
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- every class of bad input


def _mutated(edit) -> dict[str, pd.DataFrame]:
    tables = small_book()
    edit(tables)
    return tables


def _set(table, column, value, row=0):
    def edit(t):
        frame = t[table]
        if column in frame and pd.api.types.is_datetime64_any_dtype(frame[column]) and isinstance(value, str):
            frame[column] = frame[column].astype("datetime64[us]")
            frame.loc[row, column] = pd.Timestamp(value)
        else:
            frame.loc[row, column] = value

    return edit


def _wrong_number_on_app_push(t):
    acts = t["collection_actions"]
    acts["channel"] = ["app_push", "call"]
    acts["outcome"] = ["wrong_number", "reached"]


def _logged_twice(t):
    t["collection_actions"] = pd.concat([t["collection_actions"]] * 2, ignore_index=True)


def _loan_without_installments(t):
    t["installments"] = t["installments"][t["installments"]["loan_id"] != 2]


def _thousand_installments(t):
    inst = t["installments"]
    extra = pd.DataFrame(
        {
            "loan_id": 3,
            "seq": np.arange(7, 1001),
            "due_date": pd.Timestamp("2025-09-27") + pd.to_timedelta(np.arange(994), unit="D"),
            "amount_due": 10.0,
            "paid_date": pd.NaT,
            "amount_paid": 0.0,
        }
    )
    t["installments"] = pd.concat([inst, extra.astype(inst.dtypes.to_dict())], ignore_index=True)


def _paid_date_without_amount(t):
    t["installments"].loc[0, "amount_paid"] = 0.0


def _zoned(t):
    t["callbacks"]["called_at"] = t["callbacks"]["called_at"].dt.tz_localize("Asia/Shanghai")


def _empty(*names):
    def edit(t):
        for name in names or list(t):
            t[name] = t[name].iloc[:0]

    return edit


BAD_TABLES = {
    "infinite amount": (_set("applications", "amount", np.inf), ["applications.parquet", "'amount'", "finite"]),
    "infinite income": (_set("applications", "declared_income", -np.inf), ["'declared_income'", "finite"]),
    "propensity 0": (_set("collection_actions", "propensity", 0.0), ["'propensity'", "greater_than(0)"]),
    "wrong number on an app push": (
        _wrong_number_on_app_push,
        ["collection_actions.parquet", "'outcome'", "an outcome the channel can have", "loan_id=1"],
    ),
    "every action logged twice": (_logged_twice, ["collection_actions.parquet", "loan_id", "action_at", "channel"]),
    "a loan with no installments": (
        _loan_without_installments,
        ["applications.parquet", "every approved loan has installments", "loan_id=2"],
    ),
    "1,000 installments on a 12-month term": (_thousand_installments, ["installments.parquet", "'due_date'", "term"]),
    "paid date without an amount": (
        _paid_date_without_amount,
        ["installments.parquet", "'amount_paid'", "amount_paid > 0 when paid_date is set", "loan_id=1, seq=1"],
    ),
    "zoned timestamps": (_zoned, ["callbacks.parquet", "'called_at'", "time-zone-aware"]),
    "installments with 0 rows": (_empty("installments"), ["installments.parquet", "0 rows"]),
    "every table with 0 rows": (_empty(), ["0 rows"]),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_table_is_a_clear_error_and_keeps_the_last_report(case, tmp_path, monkeypatch, capsys):
    edit, fragments = BAD_TABLES[case]
    write_project(tmp_path, small_book())
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    report = (tmp_path / "data" / "validated" / "report.json").read_text()
    write_project(tmp_path, _mutated(edit))
    code, err = run_cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and err.startswith("huishou validate: error: ")
    for fragment in fragments:
        assert fragment in err, err
    assert (tmp_path / "data" / "validated" / "report.json").read_text() == report


@pytest.mark.parametrize(
    "content", [b"", b"PAR1 then nothing", b"loan_id,seq\n1,1\n"], ids=["empty", "truncated", "csv"]
)
def test_unreadable_table_file_is_named(content, tmp_path, monkeypatch, capsys):
    raw = write_project(tmp_path, small_book())
    (raw / "installments.parquet").write_bytes(content)
    code, err = run_cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "installments.parquet: cannot be read as a parquet table" in err


def test_truncated_real_parquet_is_named(tmp_path, monkeypatch, capsys):
    raw = write_project(tmp_path, small_book())
    data = (raw / "applications.parquet").read_bytes()
    (raw / "applications.parquet").write_bytes(data[: len(data) // 2])
    code, err = run_cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "applications.parquet: cannot be read" in err


@pytest.mark.parametrize(
    "manifest, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("{}", "key 'as_of' is None"),
        ('{"as_of": null}', "key 'as_of' is None"),
        ('{"as_of": "sometime"}', "not a date"),
        ('{"as_of": "2025-12-01T00:00:00+08:00"}', "not a date"),
        ('{"as_of": "2025-12-01 08:00"}', "not a date"),
        ('{"as_of": "2999-01-01"}', "in the future of this run"),
    ],
)
def test_malformed_manifest_or_as_of_is_refused(manifest, fragment, tmp_path, monkeypatch, capsys):
    write_project(tmp_path, small_book(), manifest=manifest)
    code, err = run_cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "manifest.json" in err and fragment in err, err


def test_errors_name_keys_and_values_never_whole_rows_of_personal_data(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, _mutated(_set("applications", "age", 7)))
    code, err = run_cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "'age'" in err and "loan_id=1" in err and "[7]" in err
    assert "EMP-SECRET-1" not in err and "12345" not in err and "consumption" not in err


def test_an_optional_table_added_after_validation_is_refused(tmp_path, monkeypatch, capsys):
    tables = small_book()
    log = tables.pop("collection_actions")
    raw = write_project(tmp_path, tables)
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    log.to_parquet(raw / "collection_actions.parquet", index=False)
    code, err = run_cli(tmp_path, monkeypatch, capsys, "features")
    assert code == 2 and "collection_actions.parquet: appeared after validation" in err


def test_a_snapshot_grid_after_the_extract_date_is_refused(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, small_book())
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    code, err = run_cli(tmp_path, monkeypatch, capsys, "features")  # params.yaml's grid runs to 2025-11-01 < as_of
    assert code == 0, err
    (tmp_path / "data" / "raw" / "manifest.json").write_text(json.dumps({"as_of": "2025-06-01"}))
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    code, err = run_cli(tmp_path, monkeypatch, capsys, "features")
    assert code == 2 and "after the extract date 2025-06-01" in err and "2025-07-01" in err


def test_a_split_without_both_classes_is_a_clear_error(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, small_book())
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    assert run_cli(tmp_path, monkeypatch, capsys, "features")[0] == 0
    code, err = run_cli(tmp_path, monkeypatch, capsys, "train")
    assert code == 2 and "features.parquet: the" in err and "split needs labelled rows of both classes" in err


# ---------------------------------------------------------------- model files run no code


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, features):
    import dataclasses

    from huishou.core.settings import load_settings
    from huishou.features import feature_columns
    from huishou.risk.drift import build_reference
    from huishou.risk.train import fit_lightgbm, fit_logistic

    cfg = dataclasses.replace(load_settings(ROOT / "params.yaml").train, num_boost_round=30)
    cols = feature_columns(features)
    train, valid = features[features["split"] == "train"], features[features["split"] == "valid"]
    root = tmp_path_factory.mktemp("models")
    for name, fit in (("lightgbm", fit_lightgbm), ("logistic", fit_logistic)):
        model = fit(train, valid, cols, cfg)
        model.meta["reference"] = build_reference(model.predict_proba(train), train, cols[:5], 10)
        model.save(root / name)
    return root, valid.head(200)


class _Exploit:
    """Unpickling this writes a marker file: what a tampered pickle could do."""

    marker = ""

    def __reduce__(self):
        return (Path(self.marker).write_text, ("pwned",))


def test_saved_models_round_trip_exactly_without_pickle(saved_models, tmp_path):
    root, rows = saved_models
    for name in ("lightgbm", "logistic"):
        files = sorted(p.name for p in (root / name).iterdir())
        assert "model.json" in files and not any(f.endswith((".pkl", ".joblib")) for f in files)
        again = RiskModel.load(root / name)
        assert again.kind == name and len(again.predict_proba(rows)) == len(rows)


def test_a_tampered_model_file_is_refused_before_it_is_read(saved_models, tmp_path):
    root, _ = saved_models
    copy = shutil.copytree(root / "lightgbm", tmp_path / "lightgbm")
    text = (copy / "booster.txt").read_text()
    (copy / "booster.txt").write_text(text.replace("leaf_value=", "leaf_value=9", 1))
    with pytest.raises(ModelIntegrityError, match="changed since it was saved"):
        RiskModel.load(copy)


def test_a_pickle_planted_as_a_model_does_not_execute(saved_models, tmp_path):
    root, _ = saved_models
    copy = shutil.copytree(root / "logistic", tmp_path / "logistic")
    marker = tmp_path / "marker.txt"
    _Exploit.marker = str(marker)
    (copy / "pipeline.skops").write_bytes(pickle.dumps(_Exploit()))
    doc = json.loads((copy / "model.json").read_text())
    doc["files"]["pipeline.skops"] = hio.file_sha256(copy / "pipeline.skops")  # a careful attacker fixes the hash
    (copy / "model.json").write_text(json.dumps(doc))
    with pytest.raises(Exception) as err:  # noqa: PT011 - refused one way or another, never run
        RiskModel.load(copy)
    assert not marker.exists(), f"the planted pickle ran: {err.value!r}"


def test_score_refuses_a_tampered_model_with_exit_2(saved_models, workspace_scores, monkeypatch, capsys):
    root, _ = saved_models
    project = workspace_scores
    _validated(project, monkeypatch, capsys)
    copy = shutil.copytree(root / "lightgbm", project / "tampered")
    (copy / "booster.txt").write_text((copy / "booster.txt").read_text() + "\n")
    code, err = run_cli(project, monkeypatch, capsys, "score", "--model-path", str(copy))
    assert code == 2 and "tampered/booster.txt: missing or changed since it was saved" in err


# ---------------------------------------------------------------- the nightly job's exit codes


@pytest.fixture(scope="module")
def workspace_scores(tmp_path_factory, book, settings, saved_models):
    """A project with the small simulated book validated, and a model whose training reference is known."""
    root = tmp_path_factory.mktemp("nightly")
    raw = root / "data" / "raw"
    for name, frame in book.raw_tables().items():
        hio.write_parquet(frame, raw / f"{name}.parquet")
    hio.write_json({"as_of": str(settings.simulate.as_of.date()), "source": "simulated"}, raw / "manifest.json")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(saved_models[0] / "lightgbm", root / "model")
    return root


def _validated(root, monkeypatch, capsys):
    assert run_cli(root, monkeypatch, capsys, "validate")[0] == 0


@pytest.mark.parametrize(
    "snapshot, fragment",
    [("not-a-date", "not a date"), ("2026-03-01", "after the extract date"), ("2025-10-01 13:00", "a midnight")],
)
def test_a_bad_snapshot_is_exit_2(snapshot, fragment, workspace_scores, monkeypatch, capsys):
    _validated(workspace_scores, monkeypatch, capsys)
    code, err = run_cli(workspace_scores, monkeypatch, capsys, "score", "--model-path", "model", "--snapshot", snapshot)
    assert code == 2 and fragment in err


def test_nothing_to_score_is_exit_4_and_writes_nothing(workspace_scores, monkeypatch, capsys):
    _validated(workspace_scores, monkeypatch, capsys)
    code, err = run_cli(
        workspace_scores, monkeypatch, capsys, "score", "--model-path", "model", "--snapshot", "2023-06-01"
    )
    assert code == 4 and "no loan is active at 2023-06-01" in err
    assert not (workspace_scores / "data" / "nightly" / "2023-06-01").exists()


def test_a_drift_flag_fails_the_job_only_when_asked(workspace_scores, monkeypatch, capsys):
    _validated(workspace_scores, monkeypatch, capsys)
    model = RiskModel.load(workspace_scores / "model")
    ref = model.meta["reference"]
    ref["score"]["edges"], ref["score"]["shares"] = [0.999], [0.0, 1.0, 0.0]  # nothing like today's scores
    model.save(workspace_scores / "drifting")
    args = ("score", "--model-path", "drifting", "--snapshot", "2025-10-01")
    assert run_cli(workspace_scores, monkeypatch, capsys, *args)[0] == 0
    code, err = run_cli(workspace_scores, monkeypatch, capsys, *args, "--fail-on-drift")
    assert code == 3 and "scores written, but PSI above score.psi_flag" in err and "'score'" in err
    assert (workspace_scores / "data" / "nightly" / "2025-10-01" / "scores.parquet").exists()


def test_a_second_score_run_on_the_same_snapshot_is_refused_with_75(workspace_scores, monkeypatch, capsys):
    _validated(workspace_scores, monkeypatch, capsys)
    with hio.output_lock(workspace_scores / "data" / "nightly" / "2025-09-01"):
        code, err = run_cli(
            workspace_scores, monkeypatch, capsys, "score", "--model-path", "model", "--snapshot", "2025-09-01"
        )
    assert code == 75 and "another huishou score run is writing it" in err


# ---------------------------------------------------------------- SQL cannot be injected through paths


def test_a_path_with_quotes_and_sql_is_read_as_a_path(tmp_path, monkeypatch, capsys):
    from huishou.features import build_features

    tables = small_book()
    evil = tmp_path / "raw'); CREATE TABLE pwned AS SELECT 1; --"
    evil.mkdir()
    for name, frame in tables.items():
        frame.to_parquet(evil / f"{name}.parquet", index=False)
    from huishou.book.files import raw_paths
    from huishou.core.settings import load_settings

    f = load_settings(ROOT / "params.yaml").features
    frame = build_features(raw_paths(evil), [pd.Timestamp("2025-04-01")], **f.build_kwargs(pd.Timestamp(AS_OF)))
    assert set(frame["loan_id"]) == {1, 3}
    import duckdb

    assert duckdb.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pwned'").fetchall() == [(0,)]


# ---------------------------------------------------------------- random single mutations: no traceback, no silent accept


def _bad_mutation(rng: np.random.Generator, tables: dict[str, pd.DataFrame], raw: Path) -> str:
    """Apply one mutation that breaks a rule by construction; return its name (for the failure message)."""
    from huishou.book.contracts import KEYS, SPECS

    name = str(rng.choice(sorted(tables)))
    frame = tables[name]
    row = int(rng.integers(len(frame)))
    spec = SPECS[name]
    numeric = [c for c, col in spec.items() if col.dtype in ("int", "float")]
    bounded = [c for c, col in spec.items() if col.ge is not None or col.gt is not None]
    kind = str(
        rng.choice(
            [
                "null",
                "inf",
                "below",
                "category",
                "drop",
                "retype",
                "duplicate",
                "orphan",
                "future",
                "overpay",
                "file",
                "manifest",
            ]
        )
    )
    if kind == "null":
        column = str(rng.choice([c for c, col in spec.items() if not col.nullable and c in frame]))
        frame[column] = frame[column].astype(
            "float64" if spec[column].dtype in ("int", "bool") else frame[column].dtype
        )
        frame.loc[row, column] = None
    elif kind == "inf":
        column = str(rng.choice([c for c in numeric if spec[c].dtype == "float"]))
        frame.loc[row, column] = float(rng.choice([np.inf, -np.inf]))
    elif kind == "below":
        column = str(rng.choice(bounded))
        floor = spec[column].ge if spec[column].ge is not None else spec[column].gt
        frame.loc[row, column] = floor - 1 if spec[column].dtype == "int" else floor - 0.5
    elif kind == "category":
        column = str(rng.choice([c for c, col in spec.items() if col.isin] or ["__none__"]))
        if column == "__none__":
            return _bad_mutation(rng, tables, raw)
        frame.loc[row, column] = "threat_letter"
    elif kind == "drop":
        tables[name] = frame.drop(columns=[str(rng.choice([c for c, col in spec.items() if col.required]))])
    elif kind == "retype":
        column = str(rng.choice([c for c in numeric if not c.endswith("_id")] or numeric))
        frame[column] = frame[column].astype(str)
    elif kind == "duplicate":
        tables[name] = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)
        assert KEYS[name]
    elif kind == "orphan":
        if name == "applications":
            return _bad_mutation(rng, tables, raw)
        frame.loc[row, "loan_id"] = 10**9
    elif kind == "future":
        column = {
            "applications": "disbursed_at",
            "installments": "paid_date",
            "callbacks": "called_at",
            "collection_actions": "action_at",
        }[name]
        frame.loc[row, column] = pd.Timestamp(AS_OF) + pd.Timedelta(days=int(rng.integers(0, 30)), hours=1)
        if name == "installments":
            frame.loc[row, "amount_paid"] = frame.loc[row, "amount_due"]
    elif kind == "overpay":
        inst = tables["installments"]
        inst.loc[row % len(inst), ["paid_date", "amount_paid"]] = [pd.Timestamp("2025-06-01"), 10_000.0]
        name = "installments"
    for table, frame in tables.items():
        frame.to_parquet(raw / f"{table}.parquet", index=False)
    if kind == "file":
        path = raw / f"{name}.parquet"
        data = path.read_bytes()
        cut = int(rng.integers(0, len(data) - 8))
        path.write_bytes(data[:cut] if rng.random() < 0.5 else bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
    if kind == "manifest":
        (raw / "manifest.json").write_text(str(rng.choice(['{"as_of": "2025-13-01"}', "[]", "{", '{"as_of": 3}'])))
        name = "manifest"
    return f"{kind} in {name}"


def test_random_single_mutations_are_all_refused_clearly(tmp_path, monkeypatch, capsys):
    """200 seeded single mutations of a valid book, each breaking a rule by construction: every one is a
    `huishou validate: error:` naming the file (no traceback, no silent accept)."""
    rng = np.random.default_rng(20261124)
    kinds = set()
    for i in range(200):
        root = tmp_path / f"m{i}"
        root.mkdir()
        raw = write_project(root, small_book())
        what = _bad_mutation(rng, _fresh(), raw)
        kinds.add(what.split(" in ")[0])
        code, err = run_cli(root, monkeypatch, capsys, "validate")
        assert code == 2, f"{what}: accepted"
        table = what.split(" in ")[1]
        assert err.startswith("huishou validate: error: ") and f"{table}." in err, f"{what}: {err}"
        assert not (root / "data" / "validated" / "report.json").exists()
    assert len(kinds) >= 10  # the loop exercised (nearly) every kind


def _fresh() -> dict[str, pd.DataFrame]:
    return {k: v.copy() for k, v in small_book().items()}


@pytest.mark.parametrize("seed", range(6))
def test_lawful_oddities_pass_and_flow_downstream_without_tracebacks(seed, tmp_path, monkeypatch, capsys):
    """Mutations inside the contract (nulls where allowed, an optional table gone, rows shuffled) are
    accepted, and features build on them."""
    from huishou.book.contracts import SPECS

    rng = np.random.default_rng(seed)
    tables = _fresh()
    for name, frame in tables.items():
        nullable = [c for c, col in SPECS[name].items() if col.nullable and c != "paid_date"]  # (paid goes with amount)
        if nullable:
            frame.loc[int(rng.integers(len(frame))), str(rng.choice(nullable))] = None
        tables[name] = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if seed % 2:
        del tables[str(rng.choice(["callbacks", "collection_actions"]))]
    write_project(tmp_path, tables)
    assert run_cli(tmp_path, monkeypatch, capsys, "validate")[0] == 0
    code, err = run_cli(tmp_path, monkeypatch, capsys, "features")
    assert code == 0, err


def _one_borrower():
    return book(
        [application(1)],
        schedule(1, "2025-01-31", paid={1: ("2025-01-30", 1000.0)}),
        [callback(1, "2025-01-01 15:00")],
        [],
    )


def _nobody_delinquent():
    apps = [application(i, disbursed=f"2025-0{1 + i % 3}-0{1 + i % 7} 10:00") for i in range(1, 30)]
    inst = [
        r
        for i in range(1, 30)
        for r in schedule(
            i,
            str((pd.Timestamp(apps[i - 1]["disbursed_at"]) + pd.Timedelta(days=30)).date()),
            paid={
                s: (str((pd.Timestamp(apps[i - 1]["disbursed_at"]) + pd.Timedelta(days=30 * s - 2)).date()), 1000.0)
                for s in range(1, 7)
            },
        )
    ]
    return book(apps, inst, [], [])


def _everybody_delinquent():
    apps = [application(i) for i in range(1, 30)]
    inst = [r for i in range(1, 30) for r in schedule(i, "2025-01-31")]
    acts = [action(i, "2025-02-01 10:00", "sms", "no_answer", collector=None) for i in range(1, 30)]
    return book(apps, inst, [], acts)


@pytest.mark.parametrize("make", [_one_borrower, _nobody_delinquent, _everybody_delinquent])
def test_edge_books_end_every_stage_cleanly(make, tmp_path, monkeypatch, capsys):
    write_project(tmp_path, make())
    results = {}
    for stage in ("validate", "features", "train", "evaluate", "score", "strategy", "evaluate-strategy"):
        code, err = run_cli(tmp_path, monkeypatch, capsys, stage)
        results[stage] = code
        assert code in (0, 2), (stage, code, err)
        assert code == 0 or err.startswith(f"huishou {stage}: error: "), err
    assert results["validate"] == 0
