"""The raw book read straight from a database: a real PostgreSQL server the tests start, and a DuckDB file.
The same validation, features and scores as from parquet; a live table that changed after validation is
refused; a database is read as of the extract date."""

from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from huishou.cli import main

from conftest import ROOT

pytestmark = pytest.mark.e2e
AS_OF = "2026-01-01"


def _load_postgres(uri: str, tables: dict[str, pd.DataFrame], schema: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri) as con:
        cur = con.cursor()
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        cur.execute(f"CREATE SCHEMA {schema}")
        for name, frame in tables.items():
            cur.adbc_ingest(
                name, pa.Table.from_pandas(frame, preserve_index=False), mode="create", db_schema_name=schema
            )
        con.commit()


def _project(root, data: dict) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] |= data
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _cli(root, monkeypatch, capsys, *args):
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def parquet_features(book, tmp_path_factory):
    """The reference: the same book from a parquet folder."""
    root = tmp_path_factory.mktemp("parquet")
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    for name, frame in book.raw_tables().items():
        frame.to_parquet(raw / f"{name}.parquet", index=False)
    (raw / "manifest.json").write_text(json.dumps({"as_of": AS_OF}))
    _project(root, {})
    return root


def _features(root, monkeypatch, capsys) -> pd.DataFrame:
    for stage in ("validate", "features"):
        code, _, err = _cli(root, monkeypatch, capsys, stage)
        assert code == 0, (stage, err)
    return pd.read_parquet(root / "data" / "features" / "features.parquet")


def test_postgres_source_gives_the_parquet_features_and_refuses_a_changed_table(
    postgres, book, parquet_features, tmp_path, monkeypatch, capsys
):
    reference = _features(parquet_features, monkeypatch, capsys)
    tables = book.raw_tables()
    _load_postgres(postgres, tables, "lender")
    monkeypatch.setenv("HUISHOU_PG_URI", postgres)
    _project(
        tmp_path,
        {
            "source": "postgres",
            "database": "HUISHOU_PG_URI",
            "as_of": AS_OF,
            "tables": {
                "applications": "lender.applications",
                "installments": "SELECT loan_id, seq, due_date, amount_due, paid_date, amount_paid FROM lender.installments",
                "callbacks": "lender.callbacks",
                "collection_actions": "lender.collection_actions",
            },
        },
    )
    from_pg = _features(tmp_path, monkeypatch, capsys)
    pd.testing.assert_frame_equal(from_pg, reference, check_categorical=False)
    report = json.loads((tmp_path / "data" / "validated" / "report.json").read_text())
    assert report["source"].startswith("postgres $HUISHOU_PG_URI") and "@" not in json.dumps(report)  # no secrets

    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres) as con:  # the live table moves on after validation
        cur = con.cursor()
        cur.execute("UPDATE lender.installments SET amount_paid = 0, paid_date = NULL WHERE loan_id = 1 AND seq = 1")
        con.commit()
    code, _, err = _cli(tmp_path, monkeypatch, capsys, "features")
    assert code == 2 and "postgres $HUISHOU_PG_URI: query: changed since validation" in err


def test_a_database_is_read_as_of_the_extract_date(postgres, book, tmp_path, monkeypatch, capsys):
    tables = {k: v.copy() for k, v in book.raw_tables().items()}
    _load_postgres(postgres, tables, "asof")
    monkeypatch.setenv("HUISHOU_PG_URI", postgres)
    _project(
        tmp_path,
        {
            "source": "postgres",
            "database": "HUISHOU_PG_URI",
            "as_of": "2025-10-01",
            "tables": {
                "applications": "asof.applications",
                "installments": "asof.installments",
                "collection_actions": "asof.collection_actions",
            },
        },
    )
    code, out, err = _cli(tmp_path, monkeypatch, capsys, "--json", "validate")
    assert code == 0, err
    report = json.loads(out)
    late = (tables["applications"]["applied_at"] >= "2025-10-01") | (
        tables["applications"]["disbursed_at"] >= "2025-10-01"
    )
    assert report["left_out_after_as_of"]["applications"] == int(late.sum()) > 0
    assert report["left_out_after_as_of"]["payments_after_as_of"] > 0 and "callbacks" not in report["rows"]


def test_zoned_database_timestamps_become_the_lenders_local_time(postgres, tmp_path, monkeypatch, capsys):
    from builders import application, book, schedule

    tables = book([application(1, disbursed="2025-01-01 10:00")], schedule(1, "2025-01-31"))
    zoned = tables["applications"].copy()
    for col in ("applied_at", "disbursed_at"):  # stored in UTC, as a database would: 10:00 Beijing = 02:00 UTC
        zoned[col] = zoned[col].dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
    _load_postgres(postgres, {"applications": zoned, "installments": tables["installments"]}, "zoned")
    monkeypatch.setenv("HUISHOU_PG_URI", postgres)
    _project(
        tmp_path,
        {
            "source": "postgres",
            "database": "HUISHOU_PG_URI",
            "as_of": "2025-12-01",
            "tables": {"applications": "zoned.applications", "installments": "zoned.installments"},
        },
    )
    from huishou.book.source import BookSource
    from huishou.core.settings import load_settings

    read, _ = BookSource.from_settings(load_settings(tmp_path / "params.yaml").data).read()
    assert read["applications"].loc[0, "disbursed_at"] == pd.Timestamp("2025-01-01 10:00")


def test_duckdb_file_source_and_clear_errors(book, parquet_features, tmp_path, monkeypatch, capsys):
    reference = _features(parquet_features, monkeypatch, capsys)
    con = duckdb.connect(str(tmp_path / "lender.duckdb"))
    for name, frame in book.raw_tables().items():
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    _project(
        tmp_path,
        {
            "source": "duckdb",
            "database": "lender.duckdb",
            "as_of": AS_OF,
            "tables": {"callbacks": "callbacks", "collection_actions": "collection_actions"},
        },
    )
    pd.testing.assert_frame_equal(_features(tmp_path, monkeypatch, capsys), reference, check_categorical=False)
    _project(
        tmp_path,
        {
            "source": "duckdb",
            "database": "lender.duckdb",
            "as_of": AS_OF,
            "tables": {"installments": "SELECT * FROM no_such_table"},
        },
    )
    code, _, err = _cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "duckdb lender.duckdb: query for 'installments': cannot be read" in err
    _project(tmp_path, {"source": "postgres", "database": "NOT_SET_ANYWHERE", "as_of": AS_OF})
    code, _, err = _cli(tmp_path, monkeypatch, capsys, "validate")
    assert code == 2 and "NOT_SET_ANYWHERE" in err and "not set" in err
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
