"""A workbench over a planned day of a small simulated book: users, a fixed clock, a test client."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from huishou.compliance import Profile
from huishou.core.settings import Settings
from huishou.simulate.people import contact_details
from huishou.strategy import BookRules, worklist
from huishou.strategy.plan import plan_day
from huishou.workbench.app import Config, create_app
from huishou.workbench.auth import add_user, hasher
from huishou.workbench.loading import account_context, account_rows, emergency_rows
from huishou.workbench.store import create_schema, engine_for, load_accounts, load_context, load_rows, set_team
from huishou.workbench.store import emergency as emergency_table

CHEAP = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}  # Argon2id at test cost
PASSWORD = "correct horse battery"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def wb_settings(settings: Settings, database: str, **overrides) -> Settings:
    overrides = {"clock": "worklist_day"} | overrides  # the tests set the time of day themselves (Clock)
    wb = dataclasses.replace(settings.workbench, database=database, password_hash=CHEAP, **overrides)
    return dataclasses.replace(settings, workbench=wb)


def book_rules(settings: Settings) -> BookRules:
    f = settings.features
    return BookRules.from_settings(f, settings.data.timezone)


def planned_day(tables: dict, settings: Settings, day: pd.Timestamp):
    """The cold-start plan of `day` (no effect models): its candidates and the published worklist. The ladder's
    visits are left out (the workbench's tests work calls and messages; two 90-minute visits would take the
    first collector's whole day)."""
    cfg = dataclasses.replace(settings.strategy, ladder_visit_from_dpd=10**6)
    result = plan_day(
        tables, day, {}, cfg, Profile.from_settings(cfg.compliance), book_rules(settings), np.random.default_rng(0)
    )
    cand = result.candidates
    reasons = pd.DataFrame(
        {
            "reason_1": "currently overdue",
            "reason_2": "large amount outstanding",
            "reason_3": "verification call: n attempts",  # words made for a feature without its own
        },
        index=cand["loan_id"],
    )
    lists = worklist(cand, reasons, pd.Series(0.2, index=cand["loan_id"])).assign(worklist_date=str(day.date()))
    return cand, lists


class Clock:
    """A settable clock (aware UTC); starts at 10:00 Shanghai time."""

    def __init__(self, local: str = "2026-01-01 10:00"):
        self.set(local)

    def set(self, local: str) -> None:
        self.now = pd.Timestamp(local).to_pydatetime().replace(tzinfo=SHANGHAI).astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def make_workbench(
    settings: Settings, url: str, cand, lists, actions=None, clock=None, users=None, emergency=None, book=None
):
    """(app, engine) with the worklist loaded and a login per collector ('c001' ...) and 'lead'."""
    engine = engine_for(url)
    create_schema(engine)
    details = contact_details(lists["borrower_id"], 7)
    load_accounts(engine, account_rows(lists, cand, details, actions))
    load_rows(engine, emergency_table, emergency_rows(lists, emergency, details))
    if book is not None:  # the account pages' context, as `huishou serve` loads it
        day = str(lists["worklist_date"].iloc[0])
        f = settings.features
        load_context(engine, account_context(lists, book, day, f.promise_grace_days, f.income_understated_ratio))
    ph = hasher(CHEAP)
    collectors = users if users is not None else sorted(set(lists["collector_id"]) - {"AUTO"})
    for c in collectors:
        add_user(engine, ph, c.lower(), PASSWORD, "collector", c)
    add_user(engine, ph, "lead", PASSWORD, "lead", None)
    set_team(engine, "lead", collectors)
    cfg = settings.strategy
    config = Config(
        settings.workbench,
        cfg,
        Profile.from_settings(cfg.compliance),
        settings.data.timezone,
        tuple(settings.score.band_thresholds),
        tuple(settings.score.band_labels),
        settings.features.default_dpd,
    )
    return create_app(engine, config, clock=clock), engine


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)}, follow_redirects=False
    )
