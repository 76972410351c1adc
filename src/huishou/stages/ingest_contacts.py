"""`huishou ingest-contacts`: the workbench's recorded contacts and the borrowers' spoken requests into the book.

Reads the workbench database (contacts and refusals not yet ingested, spoken requests as they stand);
writes the contact log (data.contact_log_dir, by default data/contacts: collection_actions.parquet and
contact_preferences.parquet, each switched whole; data.source parquet), which every stage reads after
raw_dir's own tables and no stage writes, so a later `dvc repro` (a new simulated book included) never
overwrites an ingested contact; or inserts into the lender's PostgreSQL collection_actions and
contact_preferences tables (data.source postgres, bound parameters). Each contact carries the plan's
propensity. Also the audit log's data.compliance_dir/workbench/<date>.parquet (recorded and refused
contacts, calls to emergency contacts). Idempotent: a contact whose (loan, time, channel) is already in the book is not added again; a
request's row is updated once a lead ends it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from huishou.book.contracts import KEYS
from huishou.book.files import read_table
from huishou.core.errors import ConfigError
from huishou.core.io import publish
from huishou.workbench.ingest import action_rows, append_new, audit_rows, preference_rows, upsert_preferences
from huishou.workbench.store import (
    contacts,
    create_schema,
    database_url,
    engine_for,
    fetch_all,
    locates,
    refusals,
    requests,
    users,
    utcnow,
)

PARAMS = (
    "data.source",
    "data.database",
    "data.tables",
    "data.raw_dir",
    "data.contact_log_dir",
    "data.timezone",
    "data.compliance_dir",
    "strategy.compliance",
    "workbench.database",
    "workbench.database_env",
)


def run(settings, date: str | None = None) -> dict:
    wb, data = settings.workbench, settings.data
    engine = engine_for(database_url(wb.database, wb.database_env))
    create_schema(engine)
    with engine.connect() as conn:
        query = sa.select(contacts).where(contacts.c.ingested_at.is_(None))
        rquery = sa.select(refusals, users.c.collector_id).join(users, users.c.id == refusals.c.user_id)
        rquery = rquery.where(refusals.c.ingested_at.is_(None))
        if date:
            query = query.where(contacts.c.worklist_date == date)
            rquery = rquery.where(refusals.c.worklist_date == date)
        recorded = fetch_all(conn, query.order_by(contacts.c.id))
        refused = fetch_all(conn, rquery.order_by(refusals.c.id))
        wishes = fetch_all(conn, sa.select(requests).where(requests.c.ingested_at.is_(None)).order_by(requests.c.id))
        lquery = sa.select(locates).where(locates.c.ingested_at.is_(None))
        if date:
            lquery = lquery.where(locates.c.worklist_date == date)
        located = fetch_all(conn, lquery.order_by(locates.c.id))
    rows, prefs = action_rows(recorded), preference_rows(wishes)
    if data.source == "parquet":
        added, requests_added, where = _write_log(Path(data.raw_dir), Path(data.contact_log), rows, prefs)
    elif data.source == "postgres":
        added, where = _insert_postgres(data, rows)
        requests_added = _upsert_postgres_preferences(data, prefs)
    else:
        raise ConfigError(f"params.yaml data.source {data.source!r}: ingest-contacts writes to parquet or postgres")
    profile = settings.strategy.compliance["profile"]
    for r in refused:
        r["rules"] = json.loads(r["rules"])
    _write_audit(Path(data.compliance_dir) / "workbench", audit_rows(recorded, refused, profile, located))
    now = utcnow()
    with engine.begin() as conn:
        ids = [c["id"] for c in recorded]
        if ids:
            conn.execute(contacts.update().where(contacts.c.id.in_(ids)).values(ingested_at=now))
        rids = [r["id"] for r in refused]
        if rids:
            conn.execute(refusals.update().where(refusals.c.id.in_(rids)).values(ingested_at=now))
        lids = [r["id"] for r in located]
        if lids:
            conn.execute(locates.update().where(locates.c.id.in_(lids)).values(ingested_at=now))
        qids = [r["id"] for r in wishes]
        if qids:
            conn.execute(requests.update().where(requests.c.id.in_(qids)).values(ingested_at=now))
    return {
        "contacts": len(recorded),
        "added": int(added),
        "already_in_log": len(rows) - int(added),
        "off_plan": int(sum(not c["planned"] for c in recorded)),
        "refusals": len(refused),
        "requests": len(wishes),
        "locate_attempts": len(located),
        "requests_added": int(requests_added),
        "collection_actions": where,
    }


def _write_log(raw_dir: Path, log_dir: Path, rows: pd.DataFrame, prefs: pd.DataFrame) -> tuple[int, int, str]:
    """Contacts not yet in the book (raw_dir's log or the contact log) and the requests' current state into
    the contact log, each file switched whole; (contacts added, requests added, where)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    target = log_dir / "collection_actions.parquet"
    existing = read_table(target) if target.exists() else None
    raw = raw_dir / "collection_actions.parquet"
    if raw.exists():  # a contact ingested before the log had its own folder is in the raw table: not again
        have = pd.read_parquet(raw, columns=KEYS["collection_actions"]).astype({"action_at": "datetime64[us]"})
        rows = rows[~pd.MultiIndex.from_frame(rows[KEYS["collection_actions"]]).isin(pd.MultiIndex.from_frame(have))]
    merged, added = append_new(existing, rows)
    if added:
        with publish(target, kind="file", what="huishou ingest-contacts") as tmp:
            merged.to_parquet(tmp, index=False)
    requests_added = 0
    if len(prefs):
        ptarget = log_dir / "contact_preferences.parquet"
        table, requests_added = upsert_preferences(read_table(ptarget) if ptarget.exists() else None, prefs)
        with publish(ptarget, kind="file", what="huishou ingest-contacts") as tmp:
            table.to_parquet(tmp, index=False)
    return added, requests_added, str(target)


def _upsert_postgres_preferences(data, prefs: pd.DataFrame) -> int:
    """The requests into the lender's contact_preferences table (reflected; bound parameters): a new key is
    inserted, a known one takes the new valid_until. Returns the rows inserted."""
    if prefs.empty:
        return 0
    engine, table = _lender_table(data, "contact_preferences")
    zone = ZoneInfo(data.timezone)
    added = 0
    with engine.begin() as conn:
        for rec in prefs.to_dict("records"):
            values = _db_values(rec, table, zone, ("valid_from", "valid_until"))
            key = [
                table.c[k] == values[k] if values.get(k) is not None else table.c[k].is_(None)
                for k in KEYS["contact_preferences"]
            ]
            if conn.execute(sa.select(sa.func.count()).select_from(table).where(*key)).scalar():
                conn.execute(table.update().where(*key).values(valid_until=values.get("valid_until")))
                continue
            conn.execute(table.insert().values(**values))
            added += 1
    return added


def _db_values(rec: dict, table: sa.Table, zone: ZoneInfo, times) -> dict:
    """A row's values for the lender's table: its columns only, missing as None, the `times` columns as
    datetimes (in the lender's zone where the column is zoned)."""
    values = {k: (None if pd.isna(v) else v) for k, v in rec.items() if k in table.c}
    for col in times:
        if values.get(col) is not None:
            values[col] = pd.Timestamp(values[col]).to_pydatetime()
            if getattr(table.c[col].type, "timezone", False):
                values[col] = values[col].replace(tzinfo=zone)
    return values


def _lender_table(data, name: str) -> tuple[sa.Engine, sa.Table]:
    url = os.environ.get(data.database or "")
    if not url:
        raise ConfigError(f"params.yaml data.database: environment variable {data.database!r} is not set")
    full = data.tables.get(name, name)
    if not full.replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"params.yaml data.tables.{name} {full!r}: ingest needs a table name, not a query")
    schema, _, table_name = full.rpartition(".")
    engine = engine_for(url)
    return engine, sa.Table(table_name, sa.MetaData(), schema=schema or None, autoload_with=engine)


def _insert_postgres(data, rows: pd.DataFrame) -> tuple[int, str]:
    """Insert rows whose key is not in the lender's collection_actions table (reflected; bound parameters)."""
    engine, table = _lender_table(data, "collection_actions")
    name = data.tables.get("collection_actions", "collection_actions")
    zone = ZoneInfo(data.timezone)
    added = 0
    with engine.begin() as conn:
        for rec in rows.to_dict("records"):
            values = _db_values(rec, table, zone, ("action_at", "promised_date"))
            key = [table.c[k] == values[k] for k in KEYS["collection_actions"]]
            if conn.execute(sa.select(sa.func.count()).select_from(table).where(*key)).scalar():
                continue
            conn.execute(table.insert().values(**values))
            added += 1
    return added, f"postgres table {name}"


def _write_audit(folder: Path, rows: pd.DataFrame) -> None:
    """Per day, the workbench's audit rows appended to <date>.parquet (the file switched whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    for day, part in rows.groupby("date"):
        target = folder / f"{day}.parquet"
        old = pd.read_parquet(target) if target.exists() else None
        both = pd.concat([old, part], ignore_index=True) if old is not None else part
        both = both.drop_duplicates(["event", "loan_id", "at", "action", "rule"])
        with publish(target, kind="file", what="huishou ingest-contacts") as tmp:
            both.to_parquet(tmp, index=False)
