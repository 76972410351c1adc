"""The workbench's database: accounts (the published worklists), contacts, refusals, users, sessions, audit.

SQLAlchemy Core over SQLite (a file, WAL) or PostgreSQL (psycopg); every statement is built from table
objects with bound parameters, never by pasting values into SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from huishou.core.errors import ConfigError

metadata = sa.MetaData()

users = sa.Table(
    "wb_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # collector | lead
    sa.Column("collector_id", sa.String(64)),  # the worklists' collector id (collectors only)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "wb_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the cookie's token
    sa.Column("user_id", sa.Integer, sa.ForeignKey("wb_users.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)

accounts = sa.Table(
    "wb_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("worklist_date", sa.String(10), nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("collector_id", sa.String(64), nullable=False, index=True),  # assigned now (a lead may reassign)
    sa.Column("planned_collector_id", sa.String(64), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("expected_value", sa.Float),
    sa.Column("p_paid", sa.Float),
    sa.Column("risk_score", sa.Float),
    sa.Column("dpd", sa.Float),
    sa.Column("overdue_amount", sa.Float),
    sa.Column("outstanding", sa.Float),
    sa.Column("broken_promises", sa.Float),
    sa.Column("p_promise_kept", sa.Float),
    sa.Column("promise_due", sa.String(10)),  # date of the pending promise, when there is one
    sa.Column("reason_1", sa.String(128)),
    sa.Column("reason_2", sa.String(128)),
    sa.Column("reason_3", sa.String(128)),
    sa.Column("rule_path", sa.Text),
    sa.Column("time_window", sa.String(16)),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("policy", sa.String(32)),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("context", sa.Text, nullable=False),  # JSON: the plan's rule and context columns for this loan
    sa.Column("name", sa.String(128)),
    sa.Column("phone", sa.String(64)),
    sa.Column("address", sa.String(255)),
    sa.UniqueConstraint("worklist_date", "loan_id", name="wb_accounts_day_loan"),
)

contacts = sa.Table(
    "wb_contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),  # the form's one-time id: a resubmit adds nothing
    sa.Column("account_id", sa.Integer, sa.ForeignKey("wb_accounts.id"), nullable=False, index=True),
    sa.Column("worklist_date", sa.String(10), nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("wb_users.id"), nullable=False),
    sa.Column("collector_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action_at", sa.String(32), nullable=False),  # lender's local time, ISO (as collection_actions)
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("amount", sa.Float),  # promised or paid amount
    sa.Column("promised_date", sa.String(10)),
    sa.Column("hardship", sa.Boolean, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("planned", sa.Boolean, nullable=False),  # the channel is the plan's action
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("policy_stage", sa.String(16), nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True)),
)

refusals = sa.Table(
    "wb_refusals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("wb_accounts.id"), nullable=False),
    sa.Column("worklist_date", sa.String(10), nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("wb_users.id"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("rules", sa.Text, nullable=False),  # JSON list of [rule, source]
    sa.Column("ingested_at", sa.DateTime(timezone=True)),
)

teams = sa.Table(  # which collectors' accounts a team lead sees and may reassign
    "wb_teams",
    metadata,
    sa.Column("lead", sa.String(64), nullable=False),  # the lead's username
    sa.Column("collector_id", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("lead", "collector_id"),
)

history = sa.Table(  # the book's collection log for the borrowers on a list (every loan), loaded by `huishou serve`
    "wb_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("action_at", sa.String(32), nullable=False),  # lender's local time, ISO
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("collector_id", sa.String(64)),
    sa.Column("promised_amount", sa.Float),
    sa.Column("promised_date", sa.String(10)),
    sa.Column("promise_state", sa.String(16)),  # kept | broken | pending (promises only)
    sa.Column("hardship", sa.Boolean, nullable=False),
    sa.UniqueConstraint("loan_id", "action_at", "channel", name="wb_history_key"),
)

# what the borrower answered in the verification call (回访), and what contradicted the application
callbacks = sa.Table(
    "wb_callbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("called_at", sa.String(32), nullable=False),
    sa.Column("answers", sa.Text, nullable=False),  # JSON: reached, answered_by, stated purpose/income/employer/plan
    sa.Column("flags", sa.Text, nullable=False),  # JSON list of inconsistency codes
    sa.UniqueConstraint("loan_id", "called_at", name="wb_callbacks_key"),
)

preferences = sa.Table(  # the book's contact preferences of the borrowers on a list, loaded by `huishou serve`
    "wb_preferences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(32)),
    sa.Column("valid_from", sa.String(32), nullable=False),
    sa.Column("valid_until", sa.String(32)),
    sa.UniqueConstraint("borrower_id", "kind", "channel", "valid_from", name="wb_preferences_key"),
)

emergency = sa.Table(  # the borrower's emergency contacts (at most two, entered by the borrower), for locating only
    "wb_emergency",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("relation", sa.String(32), nullable=False),
    sa.Column("name", sa.String(128)),
    sa.Column("phone", sa.String(64)),
    sa.UniqueConstraint("borrower_id", "slot", name="wb_emergency_borrower_slot"),
)

locates = sa.Table(  # calls to an emergency contact to locate an unreachable borrower
    "wb_locates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("wb_accounts.id"), nullable=False),
    sa.Column("worklist_date", sa.String(10), nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("wb_users.id"), nullable=False),
    sa.Column("collector_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),  # vocab.LOCATE_OUTCOMES
    sa.Column("ingested_at", sa.DateTime(timezone=True)),
)

requests = sa.Table(  # what a borrower asked for in a conversation: in force from `valid_from` until ended
    "wb_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("borrower_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("loan_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # vocab.SPOKEN_REQUESTS
    sa.Column("channel", sa.String(32)),  # opt_out: the channel the borrower stopped
    sa.Column("contact_uid", sa.String(36), nullable=False),  # the recorded contact it was said in
    sa.Column("user_id", sa.Integer, sa.ForeignKey("wb_users.id"), nullable=False),
    sa.Column("valid_from", sa.String(32), nullable=False),  # lender's local time, ISO (as contact_preferences)
    sa.Column("valid_until", sa.String(32)),  # ended by a lead (a dispute verified, a lawyer withdrawn)
    sa.Column("ended_by", sa.Integer, sa.ForeignKey("wb_users.id")),
    sa.Column("ingested_at", sa.DateTime(timezone=True)),  # the last ingest that carried its current state
    sa.UniqueConstraint("contact_uid", "kind", name="wb_requests_contact_kind"),
)

audit = sa.Table(
    "wb_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_id", sa.Integer),
    sa.Column("username", sa.String(64)),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("target", sa.String(64)),
    sa.Column("detail", sa.Text),  # JSON: ids and codes only, never names or phone numbers
)


login_throttle = sa.Table(  # failed logins per account ("user:<name>") and per address ("addr:<ip>")
    "wb_login_throttle",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),  # in the current window
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lockouts", sa.Integer, nullable=False),  # lockouts so far: each doubles the next one
    sa.Column("locked_until", sa.DateTime(timezone=True)),
)


def database_url(database: str, database_env: str | None) -> str:
    """The workbench database: the PostgreSQL URL in the named environment variable, else the SQLite file."""
    if database_env:
        url = os.environ.get(database_env)
        if not url:
            raise ConfigError(f"params.yaml workbench.database_env: environment variable {database_env} is not set")
        return url
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    return database


def engine_for(url: str) -> sa.Engine:
    """An engine for a SQLite file path, a sqlite:/// URL or a postgresql:// URL (psycopg)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    elif "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith("sqlite"):
        engine = sa.create_engine(  # a connection per server thread (Starlette's pool has 40)
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=10
        )

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def create_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they were written as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_AUDIT = audit.insert()  # built once: the hot path (every recording) only binds values


def record_audit(
    conn: sa.Connection, user: dict | None, event_name: str, target: str | None = None, **detail: Any
) -> None:
    conn.execute(
        _AUDIT,
        {
            "at": utcnow(),
            "user_id": user["id"] if user else None,
            "username": user["username"] if user else None,
            "event": event_name,
            "target": target,
            "detail": json.dumps(detail, default=str, ensure_ascii=False) if detail else None,
        },
    )


def load_accounts(engine: sa.Engine, rows: Iterable[dict]) -> dict:
    """Insert the published worklist's accounts not yet loaded (a reload keeps assignments and contacts)."""
    rows = list(rows)
    added = 0
    with engine.begin() as conn:
        days = {r["worklist_date"] for r in rows}
        have = {
            (d, int(loan))
            for d, loan in conn.execute(
                sa.select(accounts.c.worklist_date, accounts.c.loan_id).where(accounts.c.worklist_date.in_(days))
            )
        }
        new = [r for r in rows if (r["worklist_date"], int(r["loan_id"])) not in have]
        if new:
            conn.execute(accounts.insert(), new)
            added = len(new)
        record_audit(conn, None, "load_worklist", ",".join(sorted(days)), added=added, rows=len(rows))
    return {"accounts": len(rows), "added": added}


def set_team(engine: sa.Engine, lead: str, collector_ids: Iterable[str]) -> int:
    """Add collectors to a lead's team (those already in it stay); how many were added."""
    wanted = {str(c) for c in collector_ids}
    with engine.begin() as conn:
        have = {r[0] for r in conn.execute(sa.select(teams.c.collector_id).where(teams.c.lead == lead))}
        new = sorted(wanted - have)
        if new:
            conn.execute(teams.insert(), [{"lead": lead, "collector_id": c} for c in new])
            record_audit(conn, None, "set_team", lead, added=new)
    return len(new)


def load_rows(engine: sa.Engine, table: sa.Table, rows: Iterable[dict]) -> int:
    """Insert the rows whose unique key the table lacks (a reload adds nothing twice); how many were added."""
    rows = list(rows)
    if not rows:
        return 0
    key = next(c for c in table.constraints if isinstance(c, sa.UniqueConstraint))
    cols = [c.name for c in key.columns]
    with engine.begin() as conn:
        have = set()
        first = cols[0]
        values = list({r[first] for r in rows})
        for i in range(0, len(values), 5000):
            chunk = values[i : i + 5000]
            have |= {
                tuple(r) for r in conn.execute(sa.select(*[table.c[c] for c in cols]).where(table.c[first].in_(chunk)))
            }
        new = [r for r in rows if tuple(r[c] for c in cols) not in have]
        if new:
            conn.execute(table.insert(), new)
    return len(new)


def load_context(engine: sa.Engine, rows_by_table: dict[str, list[dict]]) -> dict[str, int]:
    """Load the account pages' context (loading.account_context) into its tables; rows added per table."""
    return {name: load_rows(engine, metadata.tables[name], rows) for name, rows in rows_by_table.items()}


def fetch_one(conn: sa.Connection, stmt) -> dict | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def fetch_all(conn: sa.Connection, stmt) -> list[dict]:
    return [dict(r) for r in conn.execute(stmt).mappings()]
