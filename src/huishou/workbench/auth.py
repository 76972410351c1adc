"""Users, passwords (Argon2id, argon2-cffi) and server-side sessions with a CSRF token each.

The session cookie carries a random token; the database keeps only its SHA-256, so a copy of the database
opens no session. A session ends after workbench.session_idle_minutes without use or
workbench.session_max_hours in all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import threading

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from huishou.core.errors import UserError
from huishou.workbench.store import as_utc, fetch_one, login_throttle, record_audit, sessions, users, utcnow

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


_SESSION = (  # built once: every request looks its session up
    sa.select(sessions, users.c.username, users.c.role, users.c.collector_id)
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.token_hash == sa.bindparam("key"))
)


def session_user(engine: sa.Engine, token: str | None, idle_minutes: int, max_hours: int) -> dict | None:
    """The user and CSRF token of a live session (its last use moved to now), or None."""
    if not token:
        return None
    now = utcnow()
    key = _digest(token)
    with engine.begin() as conn:
        found = conn.execute(_SESSION, {"key": key}).mappings().first()
        row = dict(found) if found is not None else None
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


class TooManyLogins(Exception):
    """A login refused before any password work: the account or the address is locked (or hashing is busy)."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after, self.reason = max(1, int(retry_after)), reason


class LoginGuard:
    """Failed-login throttling per account and per address, kept in the database (every server process shares
    it): `max_failures_*` wrong passwords within `window_minutes` lock the key for `lockout_minutes`, doubling
    with each further lockout up to `max_lockout_minutes`. Argon2 verifications run at most
    `concurrent_hashes` at a time (each takes the hash's memory), so a flood of logins cannot exhaust memory;
    `peak` is the most that ever ran at once."""

    def __init__(self, engine: sa.Engine, cfg: dict, clock) -> None:
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self._gate = threading.BoundedSemaphore(cfg["concurrent_hashes"])
        self._count = threading.Lock()
        self.inside = self.peak = 0

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username[:64]}", f"addr:{address[:64]}"

    def check(self, keys: tuple[str, ...]) -> None:
        """Raise TooManyLogins while any key is locked."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(login_throttle.c.key, login_throttle.c.locked_until).where(login_throttle.c.key.in_(keys))
            ).all()
        waits = [(as_utc(until) - now).total_seconds() for _, until in rows if until is not None]
        waits = [w for w in waits if w > 0]
        if waits:
            raise TooManyLogins(max(waits), "locked")

    def failed(self, keys: tuple[str, ...], conn: sa.Connection) -> list[str]:
        """Count a failure against each key; the keys this failure locked."""
        now, cfg = self.clock(), self.cfg
        window = dt.timedelta(minutes=cfg["window_minutes"])
        limits = {"user": cfg["max_failures_account"], "addr": cfg["max_failures_address"]}
        locked = []
        for key in keys:
            row = fetch_one(conn, sa.select(login_throttle).where(login_throttle.c.key == key))
            if row is None:
                conn.execute(
                    login_throttle.insert().values(key=key, failures=0, window_start=now, lockouts=0, locked_until=None)
                )
                row = {"failures": 0, "window_start": now, "lockouts": 0}
            fresh = now - as_utc(row["window_start"]) > window
            failures = 1 if fresh else row["failures"] + 1
            values = {"failures": failures, "window_start": now if fresh else as_utc(row["window_start"])}
            if failures >= limits[key.split(":", 1)[0]]:
                minutes = min(cfg["lockout_minutes"] * 2 ** row["lockouts"], cfg["max_lockout_minutes"])
                values |= {
                    "failures": 0,
                    "window_start": now,
                    "lockouts": row["lockouts"] + 1,
                    "locked_until": now + dt.timedelta(minutes=minutes),
                }
                locked.append(key)
            conn.execute(login_throttle.update().where(login_throttle.c.key == key).values(**values))
        return locked

    def succeeded(self, account_key: str, conn: sa.Connection) -> None:
        conn.execute(login_throttle.delete().where(login_throttle.c.key == account_key))

    def unlock(self, username: str, conn: sa.Connection) -> bool:
        """A lead's unlock of one login: its failures and lockouts forgotten. True when it was throttled."""
        key = self.keys(username, "")[0]
        return conn.execute(login_throttle.delete().where(login_throttle.c.key == key)).rowcount > 0

    def locked_logins(self) -> list[dict]:
        """The logins locked now, for the lead: name and until when."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(login_throttle.c.key, login_throttle.c.locked_until).where(
                    login_throttle.c.key.like("user:%"), login_throttle.c.locked_until.is_not(None)
                )
            ).all()
        return [
            {"username": key.split(":", 1)[1], "until": as_utc(until)} for key, until in rows if as_utc(until) > now
        ]

    @contextlib.contextmanager
    def hashing(self):
        """One Argon2 verification's turn (TooManyLogins 'busy' after hash_wait_seconds)."""
        if not self._gate.acquire(timeout=self.cfg["hash_wait_seconds"]):
            raise TooManyLogins(self.cfg["hash_wait_seconds"], "busy")
        try:
            with self._count:
                self.inside += 1
                self.peak = max(self.peak, self.inside)
            yield
        finally:
            with self._count:
                self.inside -= 1
            self._gate.release()
