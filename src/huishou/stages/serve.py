"""`huishou serve`: load the published worklists into the workbench database and serve the workbench.

Reads data.worklists_dir (index.json, published/worklist.parquet, candidates/<date>.parquet), the
collection log in data.raw_dir and the contact log (pending promises' dates), the emergency contacts
(data.raw_dir, with names and phones from the contact details) and workbench.contact_details; writes the
workbench database (workbench.database, or PostgreSQL by workbench.database_env): accounts added for
the published date (a reload keeps assignments and contacts), users with --demo-users.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path

import pandas as pd

from huishou.book.files import with_log
from huishou.compliance import Profile
from huishou.core.errors import DataValidationError, UserError
from huishou.core.io import read_json
from huishou.core.paths import candidates_path, published_dir
from huishou.simulate.people import contact_details
from huishou.workbench.app import Config, create_app
from huishou.workbench.auth import add_user, hasher
from huishou.workbench.loading import account_context, account_rows, emergency_rows
from huishou.workbench.store import (
    create_schema,
    database_url,
    emergency,
    engine_for,
    fetch_all,
    load_accounts,
    load_context,
    load_rows,
    set_team,
    users,
)

SETTINGS_ENV = "HUISHOU_WORKBENCH_SETTINGS"  # the settings, as JSON, of `huishou serve`'s worker processes

log = logging.getLogger("huishou.serve")

PARAMS = (
    "data.raw_dir",
    "data.contact_log_dir",
    "features.promise_grace_days",
    "features.income_understated_ratio",
    "features.default_dpd",
    "score.band_thresholds",
    "score.band_labels",
    "data.worklists_dir",
    "data.timezone",
    "simulate.seed",
    "strategy",
    "workbench",
)


def run(settings, host=None, port=None, demo_users=False, load_only=False) -> dict:
    wb = settings.workbench
    engine = engine_for(database_url(wb.database, wb.database_env))
    create_schema(engine)
    loaded = load_worklist(settings, engine)
    made = _demo_users(engine, wb, loaded["collectors"]) if demo_users else {}
    for name, password in made.items():  # shown once, on the terminal only
        print(f"  user {name:<10} password {password}")
    result = {"worklist_date": loaded["date"], "accounts": loaded["accounts"], "added": loaded["added"]}
    if load_only:
        return result | {"demo_users": sorted(made)}
    import uvicorn

    host, port = host or wb.host, int(port or wb.port)
    print(
        f"huishou workbench on http://{host}:{port}/ ({loaded['accounts']} accounts of {loaded['date']}; "
        f"{wb.workers} worker process{'es' if wb.workers > 1 else ''})"
    )
    serve = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if wb.workers > 1:  # uvicorn starts the processes; each builds the app from the same settings
        engine.dispose()
        worker = {
            "workbench": dataclasses.asdict(settings.workbench.whole()),
            "strategy": dataclasses.asdict(settings.strategy.whole()),
            "timezone": settings.data.timezone,
            "risk": _risk_settings(settings),
        }
        os.environ[SETTINGS_ENV] = json.dumps(worker, default=str)
        uvicorn.run("huishou.stages.serve:app_from_environment", factory=True, workers=wb.workers, **serve)
    else:
        uvicorn.run(_app(settings, engine), **serve)
    return result


def _app(settings, engine):
    return _create(settings.workbench, settings.strategy, settings.data.timezone, _risk_settings(settings), engine)


def _risk_settings(settings) -> dict:
    return {
        "band_thresholds": list(settings.score.band_thresholds),
        "band_labels": list(settings.score.band_labels),
        "default_dpd": int(settings.features.default_dpd),
    }


def _create(wb, strategy, timezone: str, risk: dict, engine):
    profile = Profile.from_settings(strategy.compliance)
    config = Config(
        wb,
        strategy,
        profile,
        timezone,
        tuple(risk["band_thresholds"]),
        tuple(risk["band_labels"]),
        risk["default_dpd"],
    )
    return create_app(engine, config)


def app_from_environment():
    """The app of one worker process of `huishou serve` (uvicorn's factory): the workbench and strategy
    settings `run` put in SETTINGS_ENV (JSON)."""
    from huishou.core.settings import StrategySettings, WorkbenchSettings

    given = json.loads(os.environ[SETTINGS_ENV])
    wb, strategy = WorkbenchSettings(**given["workbench"]), StrategySettings(**given["strategy"])
    engine = engine_for(database_url(wb.database, wb.database_env))
    return _create(wb, strategy, given["timezone"], given["risk"], engine)


def load_worklist(settings, engine) -> dict:
    root = Path(settings.data.worklists_dir)
    index_path = root / "index.json"
    if not index_path.exists():
        raise DataValidationError(f"{index_path}: not found; run `huishou strategy` (or `make repro`) first")
    index = read_json(index_path)
    if not index.get("published"):
        raise DataValidationError(f"{index_path}: no published worklist ({index.get('skipped', 'empty')})")
    day = pd.Timestamp(index["published"])
    worklist = pd.read_parquet(published_dir(root) / "worklist.parquet")
    candidates = pd.read_parquet(candidates_path(root, day))
    book = _book(settings)
    actions = book.get("collection_actions")
    details = _details(settings, worklist)
    rows = account_rows(worklist, candidates, details, actions)
    stats = load_accounts(engine, rows)
    stats["emergency_contacts"] = load_rows(
        engine, emergency, emergency_rows(worklist, book.get("emergency_contacts"), details)
    )
    # the account page's context: history, verification calls, preferences in force
    f = settings.features
    context = account_context(worklist, book, str(day.date()), f.promise_grace_days, f.income_understated_ratio)
    stats |= load_context(engine, context)
    collectors = sorted({r["collector_id"] for r in rows})
    return {"date": index["published"], "collectors": collectors} | stats


def _book(settings) -> dict[str, pd.DataFrame]:
    """The parquet book's tables the workbench shows (raw_dir's, with the contact log's rows)."""
    raw = Path(settings.data.raw_dir)
    names = ("applications", "installments", "callbacks", "collection_actions", "contact_preferences")
    paths = {n: raw / f"{n}.parquet" for n in (*names, "emergency_contacts") if (raw / f"{n}.parquet").exists()}
    tables = with_log(paths, settings.data.contact_log)
    return {n: pd.read_parquet(t) if isinstance(t, Path) else t for n, t in tables.items()}


def _details(settings, worklist: pd.DataFrame) -> pd.DataFrame:
    source = settings.workbench.contact_details
    if source == "simulated":
        return contact_details(worklist["borrower_id"], settings.simulate.seed)
    path = Path(source)
    if not path.exists():
        raise DataValidationError(f"{path} (workbench.contact_details): not found")
    frame = pd.read_csv(path, dtype={"phone": str}) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = sorted({"borrower_id", "name", "phone", "address"} - set(frame.columns))
    if missing:
        raise DataValidationError(f"{path}: column(s) {missing} missing (rule: borrower_id, name, phone, address)")
    return frame


def _demo_users(engine, wb, collectors: list[str]) -> dict[str, str]:
    """A login for every collector on the list and one team lead, where missing; passwords random."""
    ph = hasher(wb.password_hash)
    with engine.connect() as conn:
        have = {r["username"] for r in fetch_all(conn, users.select())}
    made = {}
    set_team(engine, "lead", collectors)  # the demo lead leads every collector on the list
    for name, role, cid in [*((c.lower(), "collector", c) for c in collectors), ("lead", "lead", None)]:
        if name in have:
            continue
        password = secrets.token_urlsafe(12)
        try:
            add_user(engine, ph, name, password, role, cid)
        except UserError as err:
            log.warning("%s", err)
            continue
        made[name] = password
    return made
