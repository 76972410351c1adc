"""The collector workbench as an ASGI app (FastAPI, server-rendered Jinja2 pages, no scripts).

Collectors see their own accounts of the day in rank order, with the action, why, the rule path and the
window in the borrower's local time, and record each contact; the rules (huishou.compliance, through
huishou.workbench.rules) are checked as the contact is recorded and a refusal is shown and logged. Team
leads see progress, promises, compliance events and recovery, and reassign accounts.

Security: Argon2id passwords, server-side sessions (HttpOnly, SameSite=Strict cookie), a CSRF token in
every form, accounts looked up together with their owner and day (another collector's id answers 404),
names and phone numbers only for the assigned collector on the day, every change in wb_audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError

from huishou.compliance import Profile, may_locate, settlement_discount
from huishou.core.vocab import LOCATE_OUTCOMES, SPOKEN_REQUESTS
from huishou.risk.scoring import risk_bands
from huishou.workbench import i18n
from huishou.workbench.auth import (
    LoginGuard,
    TooManyLogins,
    authenticate,
    close_session,
    csrf_ok,
    hasher,
    open_session,
    session_user,
)
from huishou.workbench.forms import OPT_OUT_CHANNELS, check_form, request_channel
from huishou.workbench.rules import (
    FORM_OUTCOMES,
    RECORDABLE,
    Refusal,
    check_contact,
    context_now,
    logged_outcome,
    window_text,
)
from huishou.workbench.store import (
    accounts,
    callbacks,
    contacts,
    emergency,
    fetch_all,
    fetch_one,
    history,
    locates,
    preferences,
    record_audit,
    refusals,
    requests,
    teams,
    users,
)
from huishou.workbench.team import team_day

HERE = Path(__file__).parent
COOKIE = "hs_session"
NEEDS = {  # the contact details an action needs
    "call": ("phone",),
    "sms": ("phone",),
    "repayment_plan": ("phone",),
    "settlement": ("phone",),
    "visit": ("address",),
    "email_letter": ("address",),
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Config:
    """What the app needs: the workbench settings, the strategy rules and the lender's time zone."""

    workbench: object  # WorkbenchSettings
    strategy: object  # StrategySettings (the rules' thresholds)
    profile: Profile
    lender_zone: str
    band_thresholds: tuple = ()  # score.band_thresholds / band_labels: the risk band of a score
    band_labels: tuple = ()
    default_dpd: int = 30  # features.default_dpd: the overdue-risk model scores loans before this DPD


class Respond(Exception):  # noqa: N818 - a response to send instead of the route's own, not an error
    """Raised by a route's dependency (no session, a bad CSRF token): the app answers with `response`."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


# The recording's statements, built once (each request only binds its values)
_OWNED = sa.select(accounts).where(
    accounts.c.id == sa.bindparam("id"),
    accounts.c.collector_id == sa.bindparam("collector"),
    accounts.c.worklist_date == sa.bindparam("day"),
)
_REFUSAL, _CONTACT = refusals.insert(), contacts.insert()
_ANY_ACCOUNT = sa.select(accounts).where(accounts.c.id == sa.bindparam("id"))
_TODAY = sa.select(contacts.c.channel, contacts.c.outcome, contacts.c.hardship).where(
    contacts.c.borrower_id == sa.bindparam("borrower"), contacts.c.worklist_date == sa.bindparam("day")
)
_IN_FORCE = (
    sa.select(requests)
    .where(
        requests.c.borrower_id.in_(sa.bindparam("borrowers", expanding=True)),
        requests.c.valid_from <= sa.bindparam("at"),
        sa.or_(requests.c.valid_until.is_(None), requests.c.valid_until > sa.bindparam("at")),
    )
    .order_by(requests.c.id)
)


_HISTORY = sa.select(history).where(history.c.borrower_id == sa.bindparam("borrower"))
_RECORDED = sa.select(contacts).where(contacts.c.borrower_id == sa.bindparam("borrower"))
_CALLBACKS = (
    sa.select(callbacks).where(callbacks.c.borrower_id == sa.bindparam("borrower")).order_by(callbacks.c.called_at)
)
_PREFERENCES = sa.select(preferences).where(preferences.c.borrower_id == sa.bindparam("borrower"))
_TEAM = sa.select(teams.c.collector_id).where(teams.c.lead == sa.bindparam("lead"))
_EMERGENCY = sa.select(emergency).where(emergency.c.borrower_id == sa.bindparam("borrower")).order_by(emergency.c.slot)
_STOPPED = sa.select(locates.c.slot).where(
    locates.c.borrower_id == sa.bindparam("borrower"), locates.c.outcome == "asked_to_stop"
)


def _rows(conn: sa.Connection, stmt, params: dict) -> list[dict]:
    return [dict(r) for r in conn.execute(stmt, params).mappings()]


def create_app(engine: sa.Engine, config: Config, clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The workbench over `engine` (schema created, worklists loaded). `clock` returns aware UTC time."""
    wb = config.workbench
    ph = hasher(wb.password_hash)
    zone = ZoneInfo(config.lender_zone)
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    guard = LoginGuard(engine, wb.login, clock)
    app = FastAPI(title="huishou workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.login_guard = guard
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    # ------------------------------------------------------------ time and people

    started = clock()  # the demo clock runs from here
    clock_seconds = time.monotonic

    latest_cache: dict = {}

    def latest_list_day() -> str | None:
        """The latest loaded list's date, read again at most every 10 s (a list is loaded by `huishou serve`)."""
        if latest_cache and clock_seconds() - latest_cache["at"] < 10:
            return latest_cache["day"]
        with engine.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(accounts.c.worklist_date))).scalar()
        latest_cache.update(day=latest, at=clock_seconds())
        return latest

    def list_time(real: dt.datetime, latest: str | None) -> dt.datetime:
        """The workbench's time (aware, lender's zone) at real time `real`: system: `real`; worklist_day: the
        list's date at the wall-clock time; demo: the list's date at workbench.demo_start plus the time since
        the server started."""
        now = real.astimezone(zone)
        if wb.clock == "system" or not latest:
            return now
        day = dt.date.fromisoformat(latest)
        if wb.clock == "demo":
            hour, minute = map(int, wb.demo_start.split(":"))
            start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
            return (start + (real - started)).astimezone(zone)
        return now.replace(year=day.year, month=day.month, day=day.day)

    def now_and_day() -> tuple[dt.datetime, str]:
        """The time a contact is recorded at (aware) and the workbench's day (YYYY-MM-DD, lender's zone)."""
        now = list_time(clock(), latest_list_day() if wb.clock != "system" else None)
        return now, now.date().isoformat()

    def day_note() -> dict | None:
        """What the page says about its day: a stale list under the real clock (a warning), or that a demo or
        worklist_day clock shows the list's date, not today's."""
        real, latest = clock(), latest_list_day()
        today = real.astimezone(zone).date().isoformat()
        if not latest:
            return None
        if wb.clock == "system":
            return {"kind": "stale", "list_day": latest, "today": today} if latest < today else None
        if latest != today:
            time_shown = list_time(real, latest).strftime("%H:%M")
            return {"kind": wb.clock, "list_day": latest, "today": today, "time": time_shown}
        return None

    def lang_of(request: Request) -> str:
        lang = request.cookies.get("hs_lang")
        return lang if lang in i18n.LANGUAGES else wb.language

    def current(request: Request) -> dict | None:
        return session_user(engine, request.cookies.get(COOKIE), wb.session_idle_minutes, wb.session_max_hours)

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        lang = lang_of(request)
        helpers = {
            "t": lambda key: i18n.text(key, lang),
            "rule_text": lambda rule: i18n.rule_text(rule, lang),
            "spoken": lambda code: i18n.spoken(code, lang),
            "reason": lambda words: i18n.reason(words, lang),
            "path_text": lambda path: i18n.rule_path(path, lang),
            "source_text": lambda source: i18n.source(source, lang),
            "money": lambda v: i18n.money(v, wb.currency, lang),
            "num": lambda v, d=0: i18n.number(v, lang, d),
            "pct": lambda v: i18n.percent(v, lang),
            "fdate": lambda v: i18n.date(v, lang) if v else "–",
            "lang": lang,
            "day_note": day_note(),
            "here": request.url.path.removesuffix("/contacts") if request.method == "POST" else request.url.path,
        }
        response = templates.TemplateResponse(request, name, helpers | context, status_code=status)
        return _harden(response)

    def to_login(request: Request, expired: bool = False) -> RedirectResponse:
        response = RedirectResponse("/login?expired=1" if expired else "/login", status_code=303)
        if expired:
            response.delete_cookie(COOKIE)
        return response

    def signed_in(request: Request) -> dict:
        """The signed-in user of a page; without a live session the request goes to the login page instead."""
        user = current(request)
        if user is None:
            raise Respond(to_login(request, expired=COOKIE in request.cookies))
        return user

    def signed_in_form(request: Request, csrf: str = Form("")) -> dict:
        """The signed-in user of a form post whose CSRF token matches the session's (else a 403 page)."""
        user = current(request)
        if user is None:
            raise Respond(to_login(request, expired=True))
        if not csrf_ok(user["csrf"], csrf):
            raise Respond(page(request, "error.html", 403, user=user, message="csrf"))
        return user

    @app.exception_handler(Respond)
    def respond(request: Request, exc: Respond) -> Response:
        return exc.response

    # ------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, expired: int = 0):
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", user=None, csrf=token, error=None, expired=bool(expired))
        response.set_cookie("hs_login", token, httponly=True, samesite="strict", secure=wb.secure_cookies)
        return response

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form("")):
        if not csrf_ok(request.cookies.get("hs_login", ""), csrf):
            return page(request, "error.html", 403, user=None, message="csrf")
        name = username[:64]
        keys = guard.keys(name, request.client.host if request.client else "unknown")
        try:
            guard.check(keys)  # a locked account or address: no password work at all
            with guard.hashing():
                user = authenticate(engine, ph, name, password[:256])
        except TooManyLogins as refused:
            with engine.begin() as conn:
                record_audit(conn, None, "login_throttled", name, reason=refused.reason)
            return login_again(request, 503 if refused.reason == "busy" else 429, refused.reason, refused.retry_after)
        if user is None:
            with engine.begin() as conn:
                record_audit(conn, None, "login_failed", name)
                locked = guard.failed(keys, conn)
                for key in locked:  # the address as a hash prefix: no IP address in the audit log
                    what = key if key.startswith("user:") else "addr:" + hashlib.sha256(key.encode()).hexdigest()[:12]
                    record_audit(conn, None, "login_lockout", what[:64])
            if locked:
                return login_again(request, 429, "locked", guard.cfg["lockout_minutes"] * 60)
            return login_again(request, 401, "bad_login")
        with engine.begin() as conn:
            guard.succeeded(keys[0], conn)
        token = open_session(engine, user)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=wb.secure_cookies,
            max_age=wb.session_max_hours * 3600,
        )
        response.delete_cookie("hs_login")
        return response

    def login_again(request: Request, status: int, error: str, retry_after: int | None = None) -> HTMLResponse:
        """The login page again with a fresh form token, the reason, and Retry-After when throttled."""
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", status, user=None, csrf=token, error=error, expired=False)
        response.set_cookie("hs_login", token, httponly=True, samesite="strict", secure=wb.secure_cookies)
        if retry_after is not None:
            response.headers["Retry-After"] = str(int(retry_after))
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        user = current(request)
        if user is None:
            return to_login(request)
        if not csrf_ok(user["csrf"], csrf):
            return page(request, "error.html", 403, user=user, message="csrf")
        close_session(engine, request.cookies[COOKIE], user)
        response = to_login(request)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/lang/{code}")
    def switch_language(request: Request, code: str, next: str = "/"):
        target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/"
        response = RedirectResponse(target, status_code=303)
        if code in i18n.LANGUAGES:
            response.set_cookie("hs_lang", code, samesite="lax", max_age=365 * 86400, secure=wb.secure_cookies)
        return response

    @app.get("/")
    def home(request: Request, user: dict = Depends(signed_in)):
        return RedirectResponse("/lead" if user["role"] == "lead" else "/list", status_code=303)

    @app.get("/healthz")
    def health():
        return {"ok": True}

    # ------------------------------------------------------------ the collector's day

    def in_force(conn: sa.Connection, borrower_ids, at: str) -> list[dict]:
        """The spoken requests in force at `at` (lender's local time, ISO) for these borrowers."""
        return _rows(conn, _IN_FORCE, {"borrowers": list(borrower_ids), "at": at})

    def log_refusal(conn, account: dict, user: dict, day: str, now: dt.datetime, channel: str, refused) -> None:
        """A refused attempt in wb_refusals: which account, who, when, the channel and every rule with its source."""
        conn.execute(
            _REFUSAL,
            {
                "account_id": account["id"],
                "worklist_date": day,
                "loan_id": account["loan_id"],
                "user_id": user["id"],
                "at": now.astimezone(dt.UTC),
                "channel": channel,
                "rules": json.dumps([[r.rule, r.source] for r in refused], ensure_ascii=False),
            },
        )

    def local_iso(now: dt.datetime) -> str:
        return now.astimezone(zone).replace(tzinfo=None).isoformat(timespec="microseconds")

    def my_accounts(user: dict, day: str) -> list[dict]:
        done = (
            sa.select(contacts.c.account_id, sa.func.count().label("n"), sa.func.max(contacts.c.id).label("last"))
            .where(contacts.c.worklist_date == day)
            .group_by(contacts.c.account_id)
            .subquery()
        )
        with engine.connect() as conn:
            rows = fetch_all(
                conn,
                sa.select(accounts, done.c.n, contacts.c.outcome.label("last_outcome"))
                .outerjoin(done, done.c.account_id == accounts.c.id)
                .outerjoin(contacts, contacts.c.id == done.c.last)
                .where(accounts.c.collector_id == user["collector_id"], accounts.c.worklist_date == day)
                .order_by(accounts.c.rank, accounts.c.loan_id),
            )
            now, _ = now_and_day()
            held: dict[int, list[str]] = {}
            for r in in_force(conn, {r["borrower_id"] for r in rows}, local_iso(now)):
                held.setdefault(r["borrower_id"], []).append(r["kind"])
        for r in rows:
            r["requests"] = sorted(set(held.get(r["borrower_id"], [])))
        return rows

    @app.get("/list", response_class=HTMLResponse)
    def worklist(request: Request, user: dict = Depends(signed_in)):
        if user["role"] != "collector":
            return RedirectResponse("/lead", status_code=303)
        _, day = now_and_day()
        return page(request, "list.html", user=user, day=day, rows=my_accounts(user, day))

    @app.get("/sheet", response_class=HTMLResponse)
    def sheet(request: Request, collector: str = "", user: dict = Depends(signed_in)):
        _, day = now_and_day()
        if user["role"] == "lead" and collector:
            if collector[:64] not in team_of(user):
                return page(request, "error.html", 404, user=user, message="not_found")
            who = {"collector_id": collector[:64]}
        elif user["role"] == "collector":
            who = user
        else:
            return RedirectResponse("/lead", status_code=303)
        rows = my_accounts(who, day)
        show = user["role"] == "collector"
        return page(request, "sheet.html", user=user, day=day, rows=rows, collector=who["collector_id"], show=show)

    def team_of(user: dict) -> set[str]:
        """The collectors whose accounts a lead sees (wb_teams); a collector: themselves."""
        if user["role"] == "collector":
            return {user["collector_id"]}
        with engine.connect() as conn:
            return {r["collector_id"] for r in _rows(conn, _TEAM, {"lead": user["username"]})}

    def owned_account(user: dict, account_id: int, day: str) -> dict | None:
        """The account, for a collector only when it is theirs on `day`, for a lead when it is their team's."""
        with engine.connect() as conn:
            if user["role"] == "collector":
                found = _rows(conn, _OWNED, {"id": account_id, "collector": user["collector_id"], "day": day})
            else:
                found = _rows(conn, _ANY_ACCOUNT, {"id": account_id})
                found = [a for a in found if a["collector_id"] in team_of(user)]
        return found[0] if found else None

    def account_page(request, user, account, day, status=200, error=None, refused=None, saved=False, page_no=1):
        """The account as a collector needs it for a good conversation; every render is a logged view."""
        now, _ = now_and_day()
        borrower = {"borrower": account["borrower_id"]}
        with engine.begin() as conn:
            recorded = _rows(conn, _RECORDED, borrower)
            booked = _rows(conn, _HISTORY, borrower)
            calls = _rows(conn, _CALLBACKS, borrower)
            held = _rows(conn, _PREFERENCES, borrower)
            wishes = in_force(conn, [account["borrower_id"]], local_iso(now))
            ec = _rows(conn, _EMERGENCY, borrower)
            stopped = {r["slot"] for r in _rows(conn, _STOPPED, borrower)}
            record_audit(conn, user, "view_account", str(account["loan_id"]), account=account["id"], status=status)
        today = [c for c in recorded if c["worklist_date"] == day]
        context = json.loads(account["context"])
        unreachable = may_locate(context_now(context, today, wishes))
        for e in ec:
            e["stopped"] = e["slot"] in stopped
        timeline = _timeline(booked, recorded, account, zone)
        size = wb.history_page_size
        pages = max(1, -(-len(timeline) // size))
        page_no = min(max(1, page_no), pages)
        windows = {c: window_text(context, c, config.strategy, config.profile) for c in RECORDABLE}
        show = user["role"] == "collector" and account["worklist_date"] == day
        needs = NEEDS.get(account["action"], ())
        first = dt.date.fromisoformat(day)
        return page(
            request,
            "account.html",
            status,
            user=user,
            day=day,
            a=account,
            language=context.get("language"),  # the borrower's, which the planned collector speaks
            history=today,
            timeline=timeline[(page_no - 1) * size : page_no * size],
            timeline_total=len(timeline),
            page_no=page_no,
            pages=pages,
            callbacks=[c | {"answers": json.loads(c["answers"]), "flags": json.loads(c["flags"])} for c in calls],
            held=[p for p in held if p["valid_until"] is None or p["valid_until"] > local_iso(now)],
            hardship=[t for t in timeline if t["hardship"]],
            care=_care(timeline),
            offers=_offers(account, context, config.strategy, wb.offers),
            risk=_risk(account, config),
            wishes=wishes,
            emergency=ec,
            unreachable=unreachable,
            locate_outcomes=LOCATE_OUTCOMES,
            channels=RECORDABLE,
            outcomes=FORM_OUTCOMES,
            opt_out_channels=OPT_OUT_CHANNELS,
            windows=windows,
            show=show,
            needs=needs,
            uid=str(uuid.uuid4()),
            error=error,
            refused=refused,
            saved=saved,
            promise_days=[(first + dt.timedelta(days=k)).isoformat() for k in range(wb.max_promise_days + 1)],
        )

    @app.get("/accounts/{account_id}", response_class=HTMLResponse)
    def account_view(
        request: Request,
        account_id: int,
        saved: int = 0,
        history_page: int = Query(1, alias="page"),
        user: dict = Depends(signed_in),
    ):
        _, day = now_and_day()
        account = owned_account(user, account_id, day)
        if account is None:
            return page(request, "error.html", 404, user=user, message="not_found")
        return account_page(request, user, account, day, saved=bool(saved), page_no=history_page)

    @app.post("/accounts/{account_id}/contacts")
    def record_contact(
        request: Request,
        account_id: int,
        user: dict = Depends(signed_in_form),
        uid: str = Form(""),
        channel: str = Form(""),
        outcome: str = Form(""),
        amount: str = Form(""),
        promised_date: str = Form(""),
        note: str = Form(""),
        stopped_channel: str = Form(""),
    ):
        now, day = now_and_day()
        account = owned_account(user, account_id, day)
        if account is None or user["role"] != "collector":
            return page(request, "error.html", 404, user=user, message="not_found")
        problem, value, promised = check_form(channel, outcome, amount, promised_date, day, wb.max_promise_days)
        if not problem:
            problem, stopped = request_channel(outcome, channel, stopped_channel)
        if problem:
            return account_page(request, user, account, day, 422, error=problem)
        try:
            uid = str(uuid.UUID(uid))
        except ValueError:
            uid = str(uuid.uuid4())
        context = json.loads(account["context"])
        row = {
            "uid": uid,
            "account_id": account["id"],
            "worklist_date": day,
            "loan_id": account["loan_id"],
            "borrower_id": account["borrower_id"],
            "user_id": user["id"],
            "collector_id": user["collector_id"],
            "recorded_at": now.astimezone(dt.UTC),
            "action_at": now.replace(tzinfo=None).isoformat(timespec="microseconds"),
            "channel": channel,
            "outcome": logged_outcome(outcome),
            "amount": value,
            "promised_date": promised,
            "hardship": outcome == "hardship",
            "note": note[:1000] or None,
            "planned": channel == account["action"],
            "propensity": float(account["propensity"]) if channel == account["action"] else 1.0,
            "policy_stage": account["stage"],
        }
        try:
            with engine.begin() as conn:  # one transaction: the check and what it decides
                today = _rows(conn, _TODAY, {"borrower": account["borrower_id"], "day": day})
                wishes = in_force(conn, [account["borrower_id"]], local_iso(now))
                refused = check_contact(
                    context, today, channel, now, account["timezone"], config.strategy, config.profile, wishes
                )
                if refused:
                    log_refusal(conn, account, user, day, now, channel, refused)
                    record_audit(
                        conn,
                        user,
                        "refused_contact",
                        str(account["loan_id"]),
                        channel=channel,
                        rules=[r.rule for r in refused],
                    )
                else:
                    conn.execute(_CONTACT, row)
                    record_audit(
                        conn, user, "record_contact", str(account["loan_id"]), uid=uid, channel=channel, outcome=outcome
                    )
                    if outcome in SPOKEN_REQUESTS:  # in force from now: the next check and the next plan honour it
                        conn.execute(
                            requests.insert().values(
                                borrower_id=account["borrower_id"],
                                loan_id=account["loan_id"],
                                kind=outcome,
                                channel=stopped,
                                contact_uid=uid,
                                user_id=user["id"],
                                valid_from=row["action_at"],
                            )
                        )
                        record_audit(
                            conn,
                            user,
                            "spoken_request",
                            str(account["loan_id"]),
                            uid=uid,
                            kind=outcome,
                            channel=stopped,
                        )
        except IntegrityError:  # the same form sent twice: it was saved the first time
            refused = []
        if refused:
            return account_page(request, user, account, day, 409, refused=refused)
        return RedirectResponse(f"/accounts/{account_id}?saved=1", status_code=303)

    @app.post("/accounts/{account_id}/locate")
    def record_locate(
        request: Request,
        account_id: int,
        user: dict = Depends(signed_in_form),
        uid: str = Form(""),
        slot: int = Form(0),
        outcome: str = Form(""),
    ):
        """A call to one of the borrower's emergency contacts, to locate them: allowed only while the borrower is
        unreachable and the contact has not asked to stop (compliance.may_locate); refused and logged otherwise."""
        now, day = now_and_day()
        account = owned_account(user, account_id, day)
        if account is None or user["role"] != "collector":
            return page(request, "error.html", 404, user=user, message="not_found")
        if outcome not in LOCATE_OUTCOMES:
            return account_page(request, user, account, day, 422, error="bad_form")
        try:
            uid = str(uuid.UUID(uid))
        except ValueError:
            uid = str(uuid.uuid4())
        borrower = account["borrower_id"]
        try:
            with engine.begin() as conn:
                slots = {r["slot"] for r in _rows(conn, _EMERGENCY, {"borrower": borrower})}
                if slot not in slots:
                    return page(request, "error.html", 404, user=user, message="not_found")
                stopped = slot in {r["slot"] for r in _rows(conn, _STOPPED, {"borrower": borrower})}
                today = _rows(conn, _TODAY, {"borrower": borrower, "day": day})
                wishes = in_force(conn, [borrower], local_iso(now))
                ctx = context_now(json.loads(account["context"]), today, wishes)
                if not may_locate(ctx, stopped):
                    refused = [Refusal("emergency_contact", config.profile.source("emergency_contact"))]
                    log_refusal(conn, account, user, day, now, "locate", refused)
                    record_audit(
                        conn,
                        user,
                        "refused_contact",
                        str(account["loan_id"]),
                        channel="locate",
                        rules=["emergency_contact"],
                        slot=slot,
                    )
                else:
                    refused = []
                    conn.execute(
                        locates.insert(),
                        {
                            "uid": uid,
                            "account_id": account["id"],
                            "worklist_date": day,
                            "loan_id": account["loan_id"],
                            "borrower_id": borrower,
                            "slot": slot,
                            "user_id": user["id"],
                            "collector_id": user["collector_id"],
                            "recorded_at": now.astimezone(dt.UTC),
                            "outcome": outcome,
                        },
                    )
                    record_audit(
                        conn, user, "locate_attempt", str(account["loan_id"]), uid=uid, slot=slot, outcome=outcome
                    )
        except IntegrityError:  # the same form sent twice
            refused = []
        if refused:
            return account_page(request, user, account, day, 409, refused=refused)
        return RedirectResponse(f"/accounts/{account_id}?saved=1", status_code=303)

    # ------------------------------------------------------------ the team lead

    @app.get("/lead", response_class=HTMLResponse)
    def lead(request: Request, user: dict = Depends(signed_in)):
        if user["role"] != "lead":
            return page(request, "error.html", 404, user=user, message="not_found")
        now, day = now_and_day()
        locked = guard.locked_logins()
        with engine.connect() as conn:
            team_ids = sa.select(accounts.c.borrower_id).where(
                accounts.c.worklist_date == day, accounts.c.collector_id.in_(team_of(user))
            )
            wishes = fetch_all(
                conn,
                sa.select(requests, users.c.username)
                .join(users, users.c.id == requests.c.user_id)
                .where(
                    requests.c.borrower_id.in_(team_ids),
                    sa.or_(requests.c.valid_until.is_(None), requests.c.valid_until > local_iso(now)),
                )
                .order_by(requests.c.id),
            )
        return page(
            request,
            "lead.html",
            user=user,
            day=day,
            locked_logins=locked,
            wishes=wishes,
            zone_info=zone,
            **team_day(engine, day, zone, team_of(user)),
        )

    @app.post("/lead/unlock")
    def unlock(request: Request, username: str = Form(""), user: dict = Depends(signed_in_form)):
        if user["role"] != "lead":
            return page(request, "error.html", 404, user=user, message="not_found")
        with engine.begin() as conn:
            if not guard.unlock(username[:64], conn):
                return page(request, "error.html", 404, user=user, message="not_found")
            record_audit(conn, user, "login_unlock", username[:64])
        return RedirectResponse("/lead", status_code=303)

    @app.post("/lead/requests/{request_id}/end")
    def end_request(request: Request, request_id: int, user: dict = Depends(signed_in_form)):
        """A lead ends a request in force (a dispute verified and answered, a lawyer no longer acting, a
        borrower who asks to be called again): from now on the rules no longer apply it."""
        if user["role"] != "lead":
            return page(request, "error.html", 404, user=user, message="not_found")
        now, _ = now_and_day()
        with engine.begin() as conn:
            wish = fetch_one(conn, sa.select(requests).where(requests.c.id == request_id))
            theirs = sa.select(accounts.c.id).where(
                accounts.c.borrower_id == (wish or {}).get("borrower_id"), accounts.c.collector_id.in_(team_of(user))
            )
            if wish is None or wish["valid_until"] is not None or conn.execute(theirs).first() is None:
                return page(request, "error.html", 404, user=user, message="not_found")
            conn.execute(
                requests.update()
                .where(requests.c.id == request_id)
                .values(valid_until=local_iso(now), ended_by=user["id"], ingested_at=None)
            )
            record_audit(conn, user, "request_ended", str(wish["loan_id"]), kind=wish["kind"], channel=wish["channel"])
        return RedirectResponse("/lead", status_code=303)

    @app.post("/lead/reassign")
    def reassign(
        request: Request, loan_id: str = Form(""), collector_id: str = Form(""), user: dict = Depends(signed_in_form)
    ):
        if user["role"] != "lead":
            return page(request, "error.html", 404, user=user, message="not_found")
        _, day = now_and_day()
        with engine.begin() as conn:
            known = fetch_one(
                conn,
                sa.select(users.c.id).where(users.c.role == "collector", users.c.collector_id == collector_id[:64]),
            )
            account = fetch_one(
                conn,
                sa.select(accounts).where(accounts.c.worklist_date == day, accounts.c.loan_id == _int(loan_id)),
            )
            team = team_of(user)
            if known is None or account is None or collector_id[:64] not in team or account["collector_id"] not in team:
                return page(request, "error.html", 404, user=user, message="not_found")
            conn.execute(accounts.update().where(accounts.c.id == account["id"]).values(collector_id=collector_id[:64]))
            record_audit(
                conn, user, "reassign", str(account["loan_id"]), **{"from": account["collector_id"], "to": collector_id}
            )
        return RedirectResponse("/lead", status_code=303)

    return app


def _timeline(booked: list[dict], recorded: list[dict], account: dict, zone) -> list[dict]:
    """The borrower's whole contact history, newest first: the book's log (before the list's day) and every
    contact recorded in the workbench (any day), each in the borrower's local time, with the promise's state
    (the book's: kept / broken / pending; a workbench promise: pending, the workbench sees no payments)."""
    borrower_zone = ZoneInfo(account["timezone"]) if account.get("timezone") else zone
    rows = [
        {
            "at": h["action_at"],
            "loan_id": h["loan_id"],
            "channel": h["channel"],
            "collector": h["collector_id"],
            "outcome": h["outcome"],
            "hardship": bool(h["hardship"]),
            "amount": h["promised_amount"],
            "promised_date": h["promised_date"],
            "state": h["promise_state"],
            "note": None,
        }
        for h in booked
    ]
    rows += [
        {
            "at": c["action_at"],
            "loan_id": c["loan_id"],
            "channel": c["channel"],
            "collector": c["collector_id"],
            "outcome": c["outcome"],
            "hardship": bool(c["hardship"]),
            "amount": c["amount"],
            "promised_date": c["promised_date"],
            "state": "pending" if c["outcome"] == "promise_to_pay" else None,
            "note": c["note"],
        }
        for c in recorded
    ]
    for r in rows:
        lender = dt.datetime.fromisoformat(r["at"]).replace(tzinfo=zone)
        r["local"] = lender.astimezone(borrower_zone)
        r["this_loan"] = r["loan_id"] == account["loan_id"]
    return sorted(rows, key=lambda r: r["at"], reverse=True)


def _care(timeline: list[dict]) -> list[dict]:
    """What was offered after hardship was first reported: plan and settlement talks since then."""
    reports = [t["at"] for t in timeline if t["hardship"]]
    if not reports:
        return []
    since = min(reports)
    return [t for t in timeline if t["at"] >= since and t["channel"] in ("repayment_plan", "settlement")]


def _offers(account: dict, context: dict, cfg, offers: dict) -> list[dict]:
    """What the collector may offer on this account today, within the caps in params: a repayment plan (from
    strategy.plan_min_dpd, or in hardship), an extension, a settlement discount (recovery, the DPD band's cap)."""
    dpd = float(account.get("dpd") or 0)
    hardship = (context.get("hardship_reported") or 0) > 0
    out = []
    if hardship or dpd >= cfg.plan_min_dpd:
        out.append({"kind": "plan", "value": int(offers["plan_max_months"])})
        out.append({"kind": "extension", "value": int(offers["extension_max_days"])})
    discount = float(settlement_discount(np.array([dpd]), cfg)[0])
    if account.get("stage") == "recovery" and discount > 0:
        out.append({"kind": "settlement", "value": discount})
    return out


def _risk(account: dict, config: Config) -> dict:
    """The risk band of the account's score with the model's reasons, or why there is no score."""
    score = account.get("risk_score")
    if score is None or score != score:
        why = "risk_in_default" if float(account.get("dpd") or 0) >= config.default_dpd else "risk_not_scored"
        return {"band": None, "score": None, "why": why}
    band = None
    if config.band_labels:  # the nightly scoring's own banding
        band = risk_bands(np.array([score]), config.band_thresholds, config.band_labels)[0]
    return {"band": band, "score": score, "why": None}


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["Config", "create_app"]
