"""`huishou workbench-user`: add a workbench login (collector or team lead).

Reads the password from the environment variable HUISHOU_PASSWORD or asks for it; writes the user (an
Argon2id hash, never the password) to the workbench database, and a lead's team (--team C001,C002: the
collectors whose accounts the lead sees and may reassign).
"""

from __future__ import annotations

import getpass
import os

from huishou.core.errors import UserError
from huishou.workbench.auth import add_user, hasher
from huishou.workbench.store import create_schema, database_url, engine_for, set_team

PARAMS = ("workbench",)


def run(settings, username: str, role: str, collector_id: str | None = None, team: str | None = None) -> dict:
    wb = settings.workbench
    password = os.environ.get("HUISHOU_PASSWORD")
    if password is None:
        if not os.isatty(0):
            raise UserError("no password: set HUISHOU_PASSWORD or run in a terminal")
        password = getpass.getpass(f"password for {username}: ")
    engine = engine_for(database_url(wb.database, wb.database_env))
    create_schema(engine)
    uid = add_user(engine, hasher(wb.password_hash), username, password, role, collector_id)
    members = [c.strip() for c in (team or "").split(",") if c.strip()]
    if members and role != "lead":
        raise UserError(f"user {username!r}: --team is for a team lead")
    if members:
        set_team(engine, username, members)
    return {"user": username, "id": uid, "role": role, "collector_id": collector_id, "team": members}
