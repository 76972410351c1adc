"""`huishou ingest-contacts`: append the workbench's recorded contacts to the book's collection_actions.

Reads the workbench database (contacts and refusals not yet ingested); writes data.raw_dir/
collection_actions.parquet whole (temp + rename; data.source parquet) or inserts into the PostgreSQL
collection_actions table (data.source postgres, bound parameters), each contact with the plan's
propensity; and the audit log's data.compliance_dir/workbench/<date>.parquet (recorded and refused
contacts). Idempotent: a contact whose (loan, time, channel) is already in the log is not added again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from huishou.book.contracts import KEYS
from huishou.core.errors import ConfigError
from huishou.core.io import publish
from huishou.workbench.ingest import action_rows, append_new, audit_rows
from huishou.workbench.store import (
    contacts,
    create_schema,
    database_url,
    engine_for,
    fetch_all,
    refusals,
    users,
    utcnow,
)

PARAMS = (
    "data.source",
    "data.database",
    "data.tables",
    "data.raw_dir",
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
    rows = action_rows(recorded)
    if data.source == "parquet":
        target = Path(data.raw_dir) / "collection_actions.parquet"
        existing = pd.read_parquet(target) if target.exists() else None
        merged, added = append_new(existing, rows)
        if added:
            with publish(target, kind="file", what="huishou ingest-contacts") as tmp:
                merged.to_parquet(tmp, index=False)
        where = str(target)
    elif data.source == "postgres":
        added, where = _insert_postgres(data, rows)
    else:
        raise ConfigError(f"params.yaml data.source {data.source!r}: ingest-contacts writes to parquet or postgres")
    profile = settings.strategy.compliance["profile"]
    for r in refused:
        r["rules"] = json.loads(r["rules"])
    _write_audit(Path(data.compliance_dir) / "workbench", audit_rows(recorded, refused, profile))
    now = utcnow()
    with engine.begin() as conn:
        ids = [c["id"] for c in recorded]
        if ids:
            conn.execute(contacts.update().where(contacts.c.id.in_(ids)).values(ingested_at=now))
        rids = [r["id"] for r in refused]
        if rids:
            conn.execute(refusals.update().where(refusals.c.id.in_(rids)).values(ingested_at=now))
    return {
        "contacts": len(recorded),
        "added": int(added),
        "already_in_log": len(rows) - int(added),
        "off_plan": int(sum(not c["planned"] for c in recorded)),
        "refusals": len(refused),
        "collection_actions": where,
    }


def _insert_postgres(data, rows: pd.DataFrame) -> tuple[int, str]:
    """Insert rows whose key is not in the lender's collection_actions table (reflected; bound parameters)."""
    url = os.environ.get(data.database or "")
    if not url:
        raise ConfigError(f"params.yaml data.database: environment variable {data.database!r} is not set")
    name = data.tables.get("collection_actions", "collection_actions")
    if not name.replace("_", "").replace(".", "").isalnum():
        raise ConfigError(
            f"params.yaml data.tables.collection_actions {name!r}: ingest needs a table name, not a query"
        )
    schema, _, table_name = name.rpartition(".")
    engine = engine_for(url)
    table = sa.Table(table_name, sa.MetaData(), schema=schema or None, autoload_with=engine)
    zone = ZoneInfo(data.timezone)
    added = 0
    with engine.begin() as conn:
        for rec in rows.to_dict("records"):
            values = {k: (None if pd.isna(v) else v) for k, v in rec.items() if k in table.c}
            for col in ("action_at", "promised_date"):
                if values.get(col) is not None:
                    values[col] = pd.Timestamp(values[col]).to_pydatetime()
                    if getattr(table.c[col].type, "timezone", False):
                        values[col] = values[col].replace(tzinfo=zone)
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
