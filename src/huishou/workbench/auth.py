"""Users, passwords (Argon2id, argon2-cffi) and server-side sessions with a CSRF token each.

The session cookie carries a random token; the database keeps only its SHA-256, so a copy of the database
opens no session. A session ends after workbench.session_idle_minutes without use or
workbench.session_max_hours in all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from huishou.core.errors import UserError
from huishou.workbench.store import as_utc, fetch_one, record_audit, sessions, users, utcnow

ROLES = ("collector", "lead")


def hasher(cost: dict) -> PasswordHasher:
    return PasswordHasher(
        time_cost=int(cost["time_cost"]), memory_cost=int(cost["memory_kib"]), parallelism=int(cost["parallelism"])
    )


def add_user(
    engine: sa.Engine, ph: PasswordHasher, username: str, password: str, role: str, collector_id: str | None
) -> int:
    if role not in ROLES:
        raise UserError(f"role {role!r}: must be one of {list(ROLES)}")
    if role == "collector" and not collector_id:
        raise UserError(f"user {username!r}: a collector needs the worklists' collector id (e.g. C001)")
    if len(password) < 10:
        raise UserError(f"user {username!r}: the password must have at least 10 characters")
    with engine.begin() as conn:
        if fetch_one(conn, sa.select(users.c.id).where(users.c.username == username)):
            raise UserError(f"user {username!r} exists already")
        uid = conn.execute(
            users.insert().values(
                username=username,
                password_hash=ph.hash(password),
                role=role,
                collector_id=collector_id if role == "collector" else None,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
        record_audit(conn, None, "add_user", username, role=role, collector_id=collector_id)
    return int(uid)


_DUMMY: dict[int, str] = {}


def authenticate(engine: sa.Engine, ph: PasswordHasher, username: str, password: str) -> dict | None:
    """The user when the password matches; the same work is done for an unknown name (no timing oracle)."""
    with engine.connect() as conn:
        user = fetch_one(conn, sa.select(users).where(users.c.username == username))
    stored = user["password_hash"] if user else _DUMMY.setdefault(id(ph), ph.hash(secrets.token_hex(16)))
    try:
        ph.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: sa.Engine, user: dict) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sessions.insert().values(
                token_hash=_digest(token),
                user_id=user["id"],
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                last_seen=now,
            )
        )
        record_audit(conn, user, "login")
    return token


def session_user(engine: sa.Engine, token: str | None, idle_minutes: int, max_hours: int) -> dict | None:
    """The user and CSRF token of a live session (its last use moved to now), or None."""
    if not token:
        return None
    now = utcnow()
    key = _digest(token)
    with engine.begin() as conn:
        row = fetch_one(
            conn,
            sa.select(sessions, users.c.username, users.c.role, users.c.collector_id)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_hash == key),
        )
        if row is None:
            return None
        expired = now - as_utc(row["last_seen"]) > dt.timedelta(minutes=idle_minutes) or now - as_utc(
            row["created_at"]
        ) > dt.timedelta(hours=max_hours)
        if expired:
            conn.execute(sessions.delete().where(sessions.c.token_hash == key))
            return None
        if now - as_utc(row["last_seen"]) > dt.timedelta(seconds=30):  # keep writes off the hot path
            conn.execute(sessions.update().where(sessions.c.token_hash == key).values(last_seen=now))
    return {
        "id": row["user_id"],
        "username": row["username"],
        "role": row["role"],
        "collector_id": row["collector_id"],
        "csrf": row["csrf"],
    }


def close_session(engine: sa.Engine, token: str, user: dict) -> None:
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.token_hash == _digest(token)))
        record_audit(conn, user, "logout")


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
