"""The collector workbench through HTTP (Starlette's test client, a real SQLite file or PostgreSQL server):
lists, recording, the rules at record time, access control, CSRF, sessions, injection, i18n, the team
lead, and ingestion back into collection_actions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from huishou.compliance import Profile, evaluate
from huishou.strategy.plan import candidates
from huishou.workbench.i18n import spoken
from huishou.workbench.store import accounts, audit, contacts, refusals, sessions, users
from workbench_helpers import Clock, book_rules, csrf_of, login, make_workbench, planned_day, wb_settings


@pytest.fixture(scope="module")
def planned(book, settings):
    tables = book.raw_tables()
    day = settings.simulate.as_of
    cand, lists = planned_day(tables, settings, day)
    return tables, cand, lists, day


@pytest.fixture
def bench(tmp_path, settings, planned):
    tables, cand, lists, day = planned
    s = wb_settings(settings, str(tmp_path / "wb.db"))
    clock = Clock(f"{day.date()} 10:00")
    app, engine = make_workbench(
        s,
        str(tmp_path / "wb.db"),
        cand,
        lists,
        tables.get("collection_actions"),
        clock,
        emergency=tables.get("emergency_contacts"),
    )
    return TestClient(app), engine, clock, lists, s


def _mine(engine, collector="C001"):
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(accounts).where(accounts.c.collector_id == collector).order_by(accounts.c.rank)
            ).mappings()
        ]


def _record(client, account_id, **form):
    page = client.get(f"/accounts/{account_id}")
    data = {"csrf": csrf_of(page.text), "uid": _uid(page.text)} | form
    return client.post(f"/accounts/{account_id}/contacts", data=data, follow_redirects=False)


def _table_row(html, table_id, first):
    """The cells of the row of table `table_id` whose first cell is `first`."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first} in {table_id}")


def _uid(html):
    return re.search(r'name="uid" value="([^"]+)"', html).group(1)


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_a_collector_sees_their_list_in_rank_order_with_why_and_window(bench):
    client, engine, _, lists, _ = bench
    assert login(client, "c001").status_code == 303
    page = client.get("/list")
    assert page.status_code == 200
    mine = lists[lists["collector_id"] == "C001"].sort_values("rank")
    shown = [int(x) for x in re.findall(r'class="account-link">(\d+)<', page.text)]
    assert shown == mine["loan_id"].tolist()
    other = lists[(lists["collector_id"] != "C001") & (lists["collector_id"] != "AUTO")]["loan_id"]
    assert not any(f">{loan}<" in page.text for loan in other)
    assert mine["time_window"].iloc[0] in page.text and "今日工作清单" in page.text


def test_recording_a_contact_stores_it_with_the_plan_propensity_and_audits_it(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    r = _record(client, acct["id"], channel=acct["action"], outcome="no_answer", note="无人接听")
    assert r.status_code == 303
    with engine.connect() as conn:
        row = conn.execute(sa.select(contacts)).mappings().one()
        events = [e["event"] for e in conn.execute(sa.select(audit)).mappings()]
    assert row["outcome"] == "no_answer" and row["planned"] and row["propensity"] == pytest.approx(acct["propensity"])
    assert row["action_at"].startswith(acct["worklist_date"] + "T10:00")
    assert "record_contact" in events
    page = client.get(f"/accounts/{acct['id']}?saved=1")
    assert "未接通" in page.text and "无人接听" in page.text


def test_the_account_page_names_the_borrowers_language(bench, planned):
    """The language the borrower is collected in (applications.language, carried by the plan) is on the
    account page, by name in the reader's language."""
    client, engine, _, _, _ = bench
    cand = planned[1].set_index("loan_id")
    login(client, "c001")
    for acct in _mine(engine)[:3]:
        code = cand.at[acct["loan_id"], "language"]
        page = client.get(f"/accounts/{acct['id']}")
        assert f'data-language="{code}"' in page.text and spoken(code, "zh-CN") in page.text
    assert spoken("yue", "en") == "Cantonese" and spoken("xx", "en") == "xx"


def test_a_resubmitted_form_is_saved_once(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    page = client.get(f"/accounts/{acct['id']}")
    form = {"csrf": csrf_of(page.text), "uid": _uid(page.text), "channel": acct["action"], "outcome": "no_answer"}
    for _ in range(2):
        assert client.post(f"/accounts/{acct['id']}/contacts", data=form, follow_redirects=False).status_code == 303
    assert _count(engine, contacts) == 1


def test_hardship_then_a_call_is_refused_with_the_rule_and_logged(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    assert _record(client, acct["id"], channel=acct["action"], outcome="hardship").status_code == 303
    r = _record(client, acct["id"], channel="call", outcome="no_answer")
    assert r.status_code == 409
    assert "不允许此次联系" in r.text and "hardship" in r.text
    with engine.connect() as conn:
        refusal = conn.execute(sa.select(refusals)).mappings().one()
        events = [e["event"] for e in conn.execute(sa.select(audit)).mappings()]
    assert [x[0] for x in json.loads(refusal["rules"])] == ["hardship"]
    assert "refused_contact" in events
    assert _count(engine, contacts) == 1  # the refused call was not recorded
    # a repayment plan is what hardship gets
    plan = _record(
        client,
        acct["id"],
        channel="repayment_plan",
        outcome="promise_to_pay",
        amount="500",
        promised_date=acct["worklist_date"],
    )
    assert plan.status_code in (303, 409)
    if plan.status_code == 409:  # only the contact cap or the stage may stop it, never hardship
        assert "hardship)" not in plan.text


def test_quiet_hours_are_the_borrowers_local_time(bench):
    client, engine, clock, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    clock.set(f"{acct['worklist_date']} 22:30")
    r = _record(client, acct["id"], channel=acct["action"], outcome="no_answer")
    assert r.status_code == 409 and "contact_hours" in r.text
    clock.set(f"{acct['worklist_date']} 07:30")
    assert _record(client, acct["id"], channel=acct["action"], outcome="no_answer").status_code == 409
    # 08:30 in Beijing is 06:30 in Urumqi (UTC+6): a call to a borrower there is still refused
    with engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == acct["id"]).values(timezone="Asia/Urumqi"))
    clock.set(f"{acct['worklist_date']} 08:30")
    r = _record(client, acct["id"], channel="sms", outcome="no_answer")
    assert r.status_code == 409 and "contact_hours" in r.text
    clock.set(f"{acct['worklist_date']} 10:30")
    assert _record(client, acct["id"], channel="sms", outcome="no_answer").status_code == 303


def test_unanswered_attempts_per_method_a_day_are_capped(tmp_path, settings, planned):
    tables, cand, lists, day = planned
    strategy = dataclasses.replace(settings.strategy, max_contacts_7d=50)
    s = dataclasses.replace(wb_settings(settings, str(tmp_path / "wb.db")), strategy=strategy)
    app, engine = make_workbench(s, str(tmp_path / "wb.db"), cand, lists, clock=Clock(f"{day.date()} 10:00"))
    client = TestClient(app)
    login(client, "c001")
    calls = [a for a in _mine(engine) if a["action"] == "call"]
    acct = calls[0]
    limit = Profile.from_settings(settings.strategy.compliance).unanswered_per_method_day
    codes = [_record(client, acct["id"], channel="call", outcome="no_answer").status_code for _ in range(limit + 1)]
    assert codes == [303] * limit + [409]
    with engine.connect() as conn:
        rules = json.loads(conn.execute(sa.select(refusals.c.rules)).scalar())
    assert [r[0] for r in rules] == ["unanswered_per_method_day"]


def test_the_contact_cap_counts_todays_contacts(bench):
    client, engine, _, _, s = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    ctx = json.loads(acct["context"])
    room = int(s.strategy.max_contacts_7d - ctx["contacts_7d"])
    codes = [_record(client, acct["id"], channel="sms", outcome="no_answer").status_code for _ in range(room + 1)]
    assert codes == [303] * room + [409]


def test_form_rules_promise_needs_amount_and_date_and_outcome_must_fit_channel(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    assert _record(client, acct["id"], channel="call", outcome="promise_to_pay").status_code == 422
    far = (dt.date.fromisoformat(acct["worklist_date"]) + dt.timedelta(days=400)).isoformat()
    assert (
        _record(
            client, acct["id"], channel="call", outcome="promise_to_pay", amount="100", promised_date=far
        ).status_code
        == 422
    )
    assert _record(client, acct["id"], channel="sms", outcome="refused").status_code == 422
    assert _record(client, acct["id"], channel="teleport", outcome="paid").status_code == 422
    assert _count(engine, contacts) == 0


# ---------------------------------------------------------------- access control and privacy


def test_another_collectors_account_by_id_is_not_found(bench):
    client, engine, _, _, _ = bench
    theirs = _mine(engine, "C002")[0]
    login(client, "c001")
    page = client.get(f"/accounts/{theirs['id']}")
    assert page.status_code == 404
    assert theirs["phone"] not in page.text and theirs["name"] not in page.text
    page = client.get("/list")
    r = client.post(
        f"/accounts/{theirs['id']}/contacts",
        data={"csrf": csrf_of(page.text), "channel": "call", "outcome": "no_answer"},
        follow_redirects=False,
    )
    assert r.status_code == 404 and _count(engine, contacts) == 0


def test_contact_details_only_for_the_assigned_collector(bench):
    client, engine, _, _, _ = bench
    acct = next(a for a in _mine(engine) if a["action"] in ("call", "repayment_plan"))
    login(client, "c001")
    assert acct["phone"] in client.get(f"/accounts/{acct['id']}").text
    lead = TestClient(client.app)
    login(lead, "lead")
    page = lead.get(f"/accounts/{acct['id']}")
    assert page.status_code == 200 and acct["phone"] not in page.text and acct["name"] not in page.text
    assert acct["phone"] not in lead.get("/lead").text


def test_missing_or_wrong_csrf_token_is_refused(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    for token in (None, "forged"):
        data = {"channel": acct["action"], "outcome": "no_answer"} | ({"csrf": token} if token else {})
        r = client.post(f"/accounts/{acct['id']}/contacts", data=data, follow_redirects=False)
        assert r.status_code == 403
    lead = TestClient(client.app)
    login(lead, "lead")
    r = lead.post("/lead/reassign", data={"loan_id": acct["loan_id"], "collector_id": "C002"}, follow_redirects=False)
    assert r.status_code == 403
    fresh = TestClient(client.app)
    r = fresh.post("/login", data={"username": "c001", "password": "correct horse battery"}, follow_redirects=False)
    assert r.status_code == 403  # the login form has its own token
    assert _count(engine, contacts) == 0 and _mine(engine)[0]["collector_id"] == "C001"


def test_an_expired_session_is_refused(bench):
    client, engine, _, _, s = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    page = client.get(f"/accounts/{acct['id']}")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=s.workbench.session_idle_minutes + 1)
    with engine.begin() as conn:
        conn.execute(sessions.update().values(last_seen=old))
    r = client.post(
        f"/accounts/{acct['id']}/contacts",
        data={"csrf": csrf_of(page.text), "channel": acct["action"], "outcome": "no_answer"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/list", follow_redirects=False).headers["location"].startswith("/login")
    assert _count(engine, contacts) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0


INJECTIONS = ["'; DROP TABLE wb_contacts; --", "1 OR 1=1", '" OR ""="', "C001' --", "<script>alert(1)</script>"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_in_every_text_field_is_inert(bench, payload):
    client, engine, _, _, _ = bench
    fresh = TestClient(client.app)
    assert login(fresh, payload, payload).status_code == 401  # username and password
    assert login(fresh, "c001' --", "x").status_code == 401
    login(client, "c001")
    acct = _mine(engine)[0]
    for field in ("channel", "outcome", "amount", "promised_date", "uid"):
        form = {"channel": acct["action"], "outcome": "no_answer"} | {field: payload}
        r = _record(client, acct["id"], **form)
        assert r.status_code in (303, 422), field
    r = _record(client, acct["id"], channel="sms", outcome="no_answer", note=payload)
    assert r.status_code == 303
    page = client.get(f"/accounts/{acct['id']}")
    assert "<script>alert(1)</script>" not in page.text  # escaped on the way out
    lead = TestClient(client.app)
    login(lead, "lead")
    page = lead.get("/lead")
    for loan, who in ((payload, "C002"), (str(acct["loan_id"]), payload)):
        r = lead.post("/lead/reassign", data={"csrf": csrf_of(page.text), "loan_id": loan, "collector_id": who})
        assert r.status_code == 404
    assert client.get(f"/accounts/{payload}").status_code in (404, 422)
    with engine.connect() as conn:
        notes = [r["note"] for r in conn.execute(sa.select(contacts)).mappings()]
        assert payload in notes  # stored as text
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() > 1
    assert _mine(engine)[0]["collector_id"] == "C001"


# ---------------------------------------------------------------- team lead, language, the printable sheet


def test_team_lead_sees_progress_and_refusals_and_reassigns(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    first, second = _mine(engine)[:2]
    _record(
        client,
        first["id"],
        channel=first["action"],
        outcome="promise_to_pay",
        amount="300",
        promised_date=first["worklist_date"],
    )
    _record(client, first["id"], channel="call", outcome="no_answer")  # pending promise: refused
    lead = TestClient(client.app)
    login(lead, "lead")
    page = lead.get("/lead")
    row = _table_row(page.text, "progress", "C001")
    assert (row[1], row[2], row[4], row[6]) == (str(len(_mine(engine))), "1", "1", "1")
    assert "借款人有未到期的还款承诺" in page.text and 'id="progress-chart"' in page.text
    assert client.get("/lead").status_code == 404  # collectors have no team view
    r = lead.post(
        "/lead/reassign",
        data={"csrf": csrf_of(page.text), "loan_id": second["loan_id"], "collector_id": "C002"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert second["id"] not in [a["id"] for a in _mine(engine)]
    assert client.get(f"/accounts/{second['id']}").status_code == 404
    other = TestClient(client.app)
    login(other, "c002")
    assert other.get(f"/accounts/{second['id']}").status_code == 200
    with engine.connect() as conn:
        moved = conn.execute(sa.select(audit).where(audit.c.event == "reassign")).mappings().one()
    assert moved["username"] == "lead" and json.loads(moved["detail"]) == {"from": "C001", "to": "C002"}


def test_chinese_by_default_english_on_request_with_local_formats(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    zh = client.get(f"/accounts/{acct['id']}").text
    assert "记录联系" in zh and "¥" in zh
    client.get("/lang/en?next=/list")
    en = client.get(f"/accounts/{acct['id']}").text
    assert "Record a contact" in en and "CN¥" in en
    assert client.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"


def test_every_upstream_text_has_its_chinese_words():
    from huishou.compliance.rules import RULES
    from huishou.risk.explain import REASONS
    from huishou.workbench import i18n

    assert not [w for w in REASONS.values() if w not in i18n.REASON_ZH]
    sources = {text for _, _, by_profile in RULES.values() for text in by_profile.values()}
    assert not [s for s in sources if s not in i18n.SOURCE_ZH]
    assert i18n.reason("verification call: n attempts", "zh-CN") == "回访:n attempts"  # the family in Chinese
    assert i18n.reason("lender's own words", "zh-CN") == "lender's own words"  # a lender's description as written


def test_the_chinese_page_shows_reasons_rule_paths_and_sources_in_chinese(bench):
    """Every plan's rule path on the day translates whole (no English step left but the profile's name); the
    account page and a refusal show reasons, path and source in Chinese, and in English on request."""
    client, engine, clock, lists, _ = bench
    from huishou.workbench import i18n

    for path in lists["rule_path"].dropna().unique():
        zh = i18n.rule_path(path, "zh-CN")
        leftover = re.sub(r"cn_cba_2026|us_reg_f|\d\d:\d\d|[\d/ ›,:()-]", "", zh)
        assert not re.search(r"[A-Za-z]", leftover), (path, zh)
    login(client, "c001")
    acct = _mine(engine)[0]
    page = client.get(f"/accounts/{acct['id']}").text
    assert "当前逾期 · 未还金额较大 · 回访:n attempts" in page and "currently overdue" not in page
    assert "仅联系借款人本人" in page and "borrower only" not in page
    clock.set(f"{acct['worklist_date']} 23:00")
    refused = _record(client, acct["id"], channel="call", outcome="no_answer")
    assert refused.status_code == 409
    assert "中国银行业协会指引(2026-01-30):未经债务人同意,22:00-08:00 不得催收" in refused.text
    client.cookies.set("hs_lang", "en")
    en = client.get(f"/accounts/{acct['id']}").text
    assert "currently overdue" in en and "borrower only" in en


def test_pages_send_a_strict_content_security_policy(bench):
    client, _, _, _, _ = bench
    login(client, "c001")
    r = client.get("/list")
    assert "script-src 'none'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    cookie = next(h for h in r.request.headers.get("cookie", "").split("; ") if h.startswith("hs_session"))
    assert cookie


# ---------------------------------------------------------------- closing the loop


def _ingest(tmp_path, s, raw_dir):
    from huishou.cli import main

    params = tmp_path / "params.yaml"
    params.write_text(
        "extends: " + str(__import__("pathlib").Path(__file__).resolve().parents[1] / "params.yaml") + "\n"
        f"data:\n  raw_dir: {raw_dir}\n  compliance_dir: {tmp_path / 'compliance'}\n"
        f"workbench:\n  database: {s.workbench.database}\n"
    )
    return main(["--params", str(params), "--json", "ingest-contacts"])


def _book_log(raw):
    """collection_actions as the stages read it: raw_dir's table, then the contact log's rows."""
    from huishou.book.files import with_log

    return with_log({"collection_actions": raw / "collection_actions.parquet"}, raw.parent / "contacts")[
        "collection_actions"
    ]


def test_ingest_appends_once_and_the_next_days_plan_reflects_the_contacts(bench, planned, tmp_path, settings, capsys):
    client, engine, _, _, s = bench
    tables, _, _, day = planned
    raw = tmp_path / "raw"
    raw.mkdir()
    tables["collection_actions"].to_parquet(raw / "collection_actions.parquet", index=False)
    before = len(tables["collection_actions"])
    login(client, "c001")
    mine = _mine(engine)
    hard, promise, wrong = mine[0], mine[1], mine[2]
    assert _record(client, hard["id"], channel=hard["action"], outcome="hardship").status_code == 303
    assert (
        _record(
            client,
            promise["id"],
            channel=promise["action"],
            outcome="promise_to_pay",
            amount="250",
            promised_date=str((day + pd.Timedelta(days=3)).date()),
        ).status_code
        == 303
    )
    assert _record(client, wrong["id"], channel="call", outcome="wrong_number").status_code in (303, 409)
    _record(client, hard["id"], channel="call", outcome="no_answer")  # refused: hardship
    capsys.readouterr()
    assert _ingest(tmp_path, s, raw) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(pd.read_parquet(raw / "collection_actions.parquet")) == before  # the raw table is never written
    log = _book_log(raw)
    assert first["added"] == first["contacts"] == len(log) - before >= 2 and first["refusals"] == 1
    assert _ingest(tmp_path, s, raw) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 0
    with engine.begin() as conn:  # even if the database forgot it ingested them, the log keys hold
        conn.execute(contacts.update().values(ingested_at=None))
    assert _ingest(tmp_path, s, raw) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["contacts"] == first["contacts"] and again["added"] == 0
    assert len(_book_log(raw)) == len(log)
    audit_log = pd.read_parquet(tmp_path / "compliance" / "workbench" / f"{day.date()}.parquet")
    assert set(audit_log["event"]) == {"recorded", "refused_at_record"}
    assert "name" not in audit_log.columns and "phone" not in audit_log.columns
    # tomorrow's plan starts from these contacts
    new = dict(tables) | {"collection_actions": log}
    nxt = day + pd.Timedelta(days=1)
    ctx = candidates(new, nxt, s.strategy, book_rules(s)).set_index("loan_id")
    old = candidates(tables, nxt, s.strategy, book_rules(s)).set_index("loan_id")
    rules = evaluate(ctx.reset_index(), s.strategy, Profile.from_settings(s.strategy.compliance))
    allowed = rules.allowed.set_index(ctx.index)
    assert ctx.at[hard["loan_id"], "hardship_reported"] > 0 and old.at[hard["loan_id"], "hardship_reported"] == 0
    assert not allowed.at[hard["loan_id"], "call"]
    assert ctx.at[promise["loan_id"], "pending_promise"] > 0 and not allowed.at[promise["loan_id"], "call"]
    assert ctx.at[hard["loan_id"], "contacts_7d"] == old.at[hard["loan_id"], "contacts_7d"] + 1


def test_workbench_and_ingest_on_postgresql(tmp_path, settings, planned, postgres, monkeypatch, capsys):
    tables, cand, lists, day = planned
    monkeypatch.setenv("HUISHOU_WB_URL", postgres)
    s = wb_settings(settings, str(tmp_path / "unused.db"), database_env="HUISHOU_WB_URL")
    engine_pg = sa.create_engine(postgres.replace("postgresql://", "postgresql+psycopg://"))
    with engine_pg.begin() as conn:
        for t in ("wb_audit", "wb_refusals", "wb_contacts", "wb_sessions", "wb_accounts", "wb_users"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {t} CASCADE"))
        conn.execute(sa.text("DROP TABLE IF EXISTS wb_collection_actions"))
    app, engine = make_workbench(s, postgres, cand, lists, clock=Clock(f"{day.date()} 10:00"))
    client = TestClient(app)
    login(client, "c001")
    acct = _mine(engine)[0]
    assert _record(client, acct["id"], channel=acct["action"], outcome="no_answer").status_code == 303
    assert _record(client, acct["id"], channel="sms", outcome="paid", amount="99.5").status_code == 303
    # the lender's collection_actions table in the same server
    tables["collection_actions"].head(50).to_sql("wb_collection_actions", engine_pg, index=False)
    from huishou.cli import main

    monkeypatch.setenv("HUISHOU_BOOK_URL", postgres)
    params = tmp_path / "params.yaml"
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    params.write_text(
        f"extends: {root / 'params.yaml'}\n"
        "data:\n  source: postgres\n  database: HUISHOU_BOOK_URL\n  as_of: 2026-01-01\n"
        f"  tables: {{collection_actions: wb_collection_actions}}\n  compliance_dir: {tmp_path / 'compliance'}\n"
        "workbench:\n  database_env: HUISHOU_WB_URL\n"
    )
    for expected in (2, 0):
        capsys.readouterr()
        assert main(["--params", str(params), "--json", "ingest-contacts"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["added"] == expected
    with engine_pg.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM wb_collection_actions WHERE loan_id = :l"), {"l": acct["loan_id"]}
        ).scalar()
    assert n >= 2


def test_team_lead_counts_every_refusal_of_the_day_not_only_the_listed_ones(bench):
    """The list shows the latest 100 refusals; the KPI and the per-collector counts are counted in the
    database (a busy day has more)."""
    client, engine, _, _, _ = bench
    login(client, "c001")
    first = _mine(engine)[0]
    with engine.begin() as conn:
        user_id = conn.execute(sa.select(users.c.id).where(users.c.username == "c001")).scalar()
        row = {
            "account_id": first["id"],
            "worklist_date": first["worklist_date"],
            "loan_id": first["loan_id"],
            "user_id": user_id,
            "at": pd.Timestamp("2026-01-01 02:00", tz="UTC").to_pydatetime(),
            "channel": "call",
            "rules": json.dumps([["hardship", "CBA 2026"]]),
        }
        conn.execute(refusals.insert(), [row] * 130)
    lead = TestClient(client.app)
    login(lead, "lead")
    page = lead.get("/lead")
    assert _table_row(page.text, "progress", "C001")[6] == "130"
    assert '<strong id="n-refused">130</strong>' in page.text


@pytest.mark.parametrize(
    ("key", "rule"), [("cease", "cease"), ("complaint_hold", "complaint_hold"), ("opt_out_sms", "opt_out")]
)
def test_cease_complaint_holds_and_opt_outs_refuse_at_record_time(bench, key, rule):
    client, engine, _, _, _ = bench
    acct = _mine(engine)[0]
    ctx = json.loads(acct["context"]) | {key: 1.0}
    with engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == acct["id"]).values(context=json.dumps(ctx)))
    login(client, "c001")
    r = _record(client, acct["id"], channel="sms", outcome="no_answer")
    assert r.status_code == 409 and f'data-rule="{rule}"' in r.text
    assert _count(engine, contacts) == 0 and _count(engine, refusals) == 1


def test_demo_clock_runs_on_the_lists_date_from_demo_start_and_says_so(tmp_path, settings, planned):
    """At 23:50 real time a demo can still record: the demo clock starts at workbench.demo_start on the list's
    date and runs on; every page says which day the clock shows."""
    tables, cand, lists, day = planned
    s = wb_settings(settings, str(tmp_path / "wb.db"), clock="demo", demo_start="09:30")
    clock = Clock("2026-12-05 23:50")  # a real night, months after the list
    app, engine = make_workbench(
        s,
        str(tmp_path / "wb.db"),
        cand,
        lists,
        tables.get("collection_actions"),
        clock,
        emergency=tables.get("emergency_contacts"),
    )
    client = TestClient(app)
    login(client, "c001")
    acct = _mine(engine)[0]
    page = client.get("/list").text
    assert f"演示时钟：按名单日期 {day.date()} 运行，当前演示时间 09:30（实际日期 2026-12-05）" in page
    clock.set("2026-12-06 00:20")  # 30 minutes later: the demo is at 10:00, inside the allowed hours
    assert _record(client, acct["id"], channel="call", outcome="no_answer").status_code == 303
    with engine.connect() as conn:
        at = conn.execute(sa.select(contacts.c.action_at)).scalar()
    assert at.startswith(f"{day.date()}T10:00"), at


def test_a_live_workbench_warns_when_the_list_is_older_than_today(tmp_path, settings, planned):
    tables, cand, lists, day = planned
    s = wb_settings(settings, str(tmp_path / "wb.db"), clock="system")
    clock = Clock(f"{(day + pd.Timedelta(days=2)).date()} 10:00")
    client = TestClient(
        make_workbench(s, str(tmp_path / "wb.db"), cand, lists, tables.get("collection_actions"), clock)[0]
    )
    login(client, "c001")
    client.cookies.set("hs_lang", "en")
    text = client.get("/list").text
    assert f"Warning: this list is for {day.date()}, before today {(day + pd.Timedelta(days=2)).date()}" in text
    clock.set(f"{day.date()} 10:00")
    assert 'id="day-note"' not in client.get("/list").text  # the list is today's: nothing to say


def test_loading_the_worklist_warns_of_nothing(settings, planned):
    import warnings

    from huishou.workbench.loading import account_rows

    tables, cand, lists, _ = planned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = account_rows(lists, cand, None, tables.get("collection_actions"))
    assert rows and all(json.loads(r["context"]) for r in rows)


def _login_status(client, username, password):
    r = login(client, username, password)
    return r.status_code, r.headers.get("retry-after")


def test_wrong_passwords_lock_the_login_with_429_until_a_lead_unlocks_it(bench):
    """30 wrong passwords in a row: the 5th locks the login (429, Retry-After), every later try is refused
    before any password work, the right password too; the failures and the lockout are in the audit log;
    the lead sees the locked login and unlocks it, and the right password works again."""
    from workbench_helpers import PASSWORD

    client, engine, clock, _, _ = bench
    statuses = [_login_status(client, "c001", "wrong")[0] for _ in range(30)]
    assert statuses[:4] == [401] * 4 and set(statuses[4:]) == {429}
    status, retry = _login_status(client, "c001", PASSWORD)
    assert status == 429 and 0 < int(retry) <= 15 * 60
    with engine.connect() as conn:
        events = [r.event for r in conn.execute(sa.select(audit.c.event, audit.c.target))]
    assert events.count("login_failed") == 5 and events.count("login_lockout") == 1
    assert events.count("login_throttled") == 26  # refused while locked: no password checked
    lead = TestClient(client.app)
    assert login(lead, "lead").status_code == 303
    page = lead.get("/lead").text
    assert 'id="locked-logins"' in page and "c001" in page.split('id="locked-logins"', 1)[1].split("</ul>", 1)[0]
    assert lead.post("/lead/unlock", data={"csrf": csrf_of(page), "username": "c001"}).status_code == 200
    assert _login_status(client, "c001", PASSWORD)[0] == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit.c.target).where(audit.c.event == "login_unlock")).scalar() == "c001"


def test_a_lockout_ends_by_itself_and_doubles_when_it_comes_again(bench):
    from workbench_helpers import PASSWORD

    client, _, clock, lists, _ = bench
    day = lists["worklist_date"].iloc[0]
    for _ in range(5):
        status, retry = _login_status(client, "c002", "wrong")
    assert status == 429 and int(retry) == 15 * 60
    clock.set(f"{day} 10:16")  # the first lockout (15 min) is over
    for _ in range(5):
        status, retry = _login_status(client, "c002", "wrong")
    assert status == 429
    clock.set(f"{day} 10:40")  # 24 min later: the second lockout is 30 min
    assert _login_status(client, "c002", PASSWORD)[0] == 429
    clock.set(f"{day} 10:47")
    assert _login_status(client, "c002", PASSWORD)[0] == 303


def test_one_address_trying_many_logins_is_locked_too(bench):
    """20 failures from one address across names lock the address, whichever name it tries next."""
    client, _, _, _, _ = bench
    statuses = [_login_status(client, f"nobody{i}", "wrong")[0] for i in range(21)]
    assert statuses[:19] == [401] * 19 and statuses[19:] == [429, 429]
    assert _login_status(client, "c003", "wrong")[0] == 429


def test_password_hashing_runs_at_most_concurrent_hashes_at_once(bench):
    """40 logins at once: Argon2 runs at most workbench.login.concurrent_hashes at a time (each hash takes its
    memory_kib), the others wait their turn; none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    client, _, _, _, s = bench
    guard = client.app.state.login_guard

    def attempt(i):
        c = TestClient(client.app)
        return login(c, f"c00{1 + i % 4}" if i % 2 else f"x{i}", "wrong").status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(attempt, range(40)))
    assert set(codes) <= {401, 429} and len(codes) == 40
    assert 1 <= guard.peak <= s.workbench.login["concurrent_hashes"]


# ---------------------------------------------------------------- spoken requests


def _refused_rules(html):
    return set(re.findall(r'<li data-rule="([a-z_0-9]+)"', html))


@pytest.mark.parametrize("kind", ["cease", "opt_out", "dispute", "attorney"])
def test_a_spoken_request_is_recorded_takes_effect_at_once_and_is_audited(bench, kind):
    """The borrower says it on the call: the collector records it as the outcome; the next contact it forbids
    is refused at once with its rule, the account and the list show it, and the audit log holds it."""
    from huishou.workbench.store import requests

    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = next(a for a in _mine(engine) if a["action"] in ("call", "sms", "repayment_plan"))
    extra = {"stopped_channel": "call"} if kind == "opt_out" else {}
    assert _record(client, acct["id"], channel=acct["action"], outcome=kind, **extra).status_code == 303
    with engine.connect() as conn:
        wish = conn.execute(sa.select(requests)).mappings().one()
        events = {e["event"]: e for e in conn.execute(sa.select(audit)).mappings()}
        logged = conn.execute(sa.select(contacts.c.outcome)).scalar()
    assert wish["kind"] == kind and wish["borrower_id"] == acct["borrower_id"] and wish["valid_until"] is None
    assert wish["channel"] == ("call" if kind == "opt_out" else None) and logged == "reached"
    assert json.loads(events["spoken_request"]["detail"])["kind"] == kind
    refused = _record(client, acct["id"], channel="call", outcome="no_answer")
    assert refused.status_code == 409 and _refused_rules(refused.text) == {"opt_out" if kind == "opt_out" else kind}
    page = client.get(f"/accounts/{acct['id']}")
    assert f'data-request="{kind}"' in page.text.split('id="requests"', 1)[1]
    assert f'data-request="{kind}"' in client.get("/list").text


def test_an_opt_out_names_a_channel_and_a_third_party_answer_is_logged_as_such(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = next(a for a in _mine(engine) if a["action"] == "call")
    bad = _record(client, acct["id"], channel="call", outcome="opt_out", stopped_channel="agency")
    assert bad.status_code == 422
    assert _record(client, acct["id"], channel="call", outcome="third_party").status_code == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(contacts.c.outcome)).scalar() == "third_party"
    assert _record(client, acct["id"], channel="sms", outcome="third_party").status_code == 422  # not on a text


def test_a_lead_ends_a_dispute_and_contact_is_lawful_again(bench):
    from huishou.workbench.store import requests

    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = next(a for a in _mine(engine) if a["action"] == "call")
    assert _record(client, acct["id"], channel="call", outcome="dispute").status_code == 303
    lead = TestClient(client.app)
    login(lead, "lead")
    page = lead.get("/lead")
    assert 'data-request="dispute"' in page.text
    wish_id = re.search(r'action="/lead/requests/(\d+)/end"', page.text).group(1)
    assert (
        client.post(f"/lead/requests/{wish_id}/end", data={"csrf": csrf_of(client.get("/list").text)}).status_code
        == 404
    )
    assert (
        lead.post(
            f"/lead/requests/{wish_id}/end", data={"csrf": csrf_of(page.text)}, follow_redirects=False
        ).status_code
        == 303
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(requests.c.valid_until)).scalar() is not None
        assert "request_ended" in {e for (e,) in conn.execute(sa.select(audit.c.event))}
    after = _record(client, acct["id"], channel="call", outcome="no_answer")
    assert "dispute" not in _refused_rules(after.text)


def test_do_not_visit_said_today_refuses_the_visit_the_rules_would_otherwise_allow():
    from huishou.compliance import check_one
    from huishou.core.settings import load_settings
    from huishou.workbench.rules import context_now

    from builders import CN, ctx_row

    cfg = load_settings("params.yaml").strategy
    visit = ctx_row(
        stage="recovery",
        dpd=float(cfg.visit_min_dpd),
        outstanding=cfg.visit_min_amount,
        episode_noncontact=float(cfg.visit_min_unreached_attempts),
        episode_contacts=float(cfg.visit_min_unreached_attempts + cfg.visit_min_call_attempts),
    )
    assert check_one(context_now(visit, []), "visit", cfg, CN) == []
    said = context_now(visit, [], [{"kind": "do_not_visit", "channel": None}])
    assert check_one(said, "visit", cfg, CN) == ["do_not_visit"]


def test_a_spoken_cease_is_ingested_and_removes_the_borrower_from_the_next_plan(
    bench, planned, tmp_path, settings, capsys
):
    """Bar of issue 25: a cease said on a call is in the contact log's contact_preferences after ingest, and the
    next day's plan (the same planner, from the book with the log) contacts that borrower on no channel."""
    from huishou.book.files import with_log
    from workbench_helpers import planned_day

    client, engine, _, _, s = bench
    tables, _, _, day = planned
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("collection_actions", "contact_preferences"):
        tables[name].to_parquet(raw / f"{name}.parquet", index=False)
    login(client, "c001")
    acct = next(a for a in _mine(engine) if a["action"] == "call")
    assert _record(client, acct["id"], channel="call", outcome="cease").status_code == 303
    capsys.readouterr()
    assert _ingest(tmp_path, s, raw) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == summary["requests_added"] == 1
    book = with_log(
        {n: raw / f"{n}.parquet" for n in ("collection_actions", "contact_preferences")}, tmp_path / "contacts"
    )
    prefs = book["contact_preferences"]
    said = prefs[(prefs["borrower_id"] == acct["borrower_id"]) & (prefs["kind"] == "cease")]
    assert len(said) == 1 and len(prefs) == len(tables["contact_preferences"]) + 1
    nxt = day + pd.Timedelta(days=1)
    before_cand, before = planned_day(tables, settings, nxt)
    cand, lists = planned_day(dict(tables) | book, settings, nxt)
    theirs = cand[cand["borrower_id"] == acct["borrower_id"]]
    assert len(theirs) and (theirs["cease"] > 0).all()
    assert acct["borrower_id"] not in set(lists.loc[lists["action"] != "none", "borrower_id"])
    assert acct["borrower_id"] in set(before.loc[before["action"] != "none", "borrower_id"])


# ---------------------------------------------------------------- emergency contacts


def test_emergency_contacts_only_to_locate_an_unreachable_borrower_and_never_after_they_ask(bench):
    """CBA guideline 2026-01-30: "unrelated third parties only when the debtor is unreachable (number invalid, or
    3 consecutive failed attempts), only to obtain contact details or pass a message, no debt information, stop
    if they ask". Before: the section shows relations only and a locate call is refused (409, logged); after a
    wrong number: names, phones, the script and the form; a contact who asks to stop is never called again."""
    from huishou.workbench.store import emergency, locates

    client, engine, _, _, _ = bench
    login(client, "c001")
    with engine.connect() as conn:
        have = {b for (b,) in conn.execute(sa.select(emergency.c.borrower_id))}
    acct = next(a for a in _mine(engine) if a["action"] == "call" and a["borrower_id"] in have)
    page = client.get(f"/accounts/{acct['id']}").text
    section = page.split('id="emergency"', 1)[1].split("</div>", 1)[0]
    assert 'data-unreachable="no"' in page and "+86 100" not in section and "locate" not in section
    form = {"csrf": csrf_of(page), "uid": _uid(page), "slot": "1", "outcome": "reached_contact"}
    early = client.post(f"/accounts/{acct['id']}/locate", data=form, follow_redirects=False)
    assert early.status_code == 409 and _refused_rules(early.text) == {"emergency_contact"}
    assert _record(client, acct["id"], channel="call", outcome="wrong_number").status_code == 303
    page = client.get(f"/accounts/{acct['id']}").text
    section = page.split('id="emergency"', 1)[1].split("</div>", 1)[0]
    assert 'data-unreachable="yes"' in page and "+86 100" in section and "不得透露任何债务信息" in section
    for outcome, status in (("asked_to_stop", 303), ("reached_contact", 409)):
        page = client.get(f"/accounts/{acct['id']}").text
        form = {"csrf": csrf_of(page), "uid": _uid(page), "slot": "1", "outcome": outcome}
        assert client.post(f"/accounts/{acct['id']}/locate", data=form, follow_redirects=False).status_code == status
    with engine.connect() as conn:
        assert [r["outcome"] for r in conn.execute(sa.select(locates)).mappings()] == ["asked_to_stop"]
        events = [e for (e,) in conn.execute(sa.select(audit.c.event))]
    assert events.count("locate_attempt") == 1 and events.count("refused_contact") == 2
    assert client.post(f"/accounts/{acct['id']}/locate", data=form | {"slot": "7"}).status_code == 404


def test_three_unanswered_calls_in_a_row_make_a_borrower_unreachable_in_the_plan_context_and_at_record_time():
    from huishou.compliance import may_locate
    from huishou.core.settings import load_settings
    from huishou.strategy.context import decision_context
    from huishou.workbench.rules import context_now

    from builders import action, application, book, ctx_row, schedule

    p = load_settings("params.yaml")
    calls = [action(1, f"2025-02-0{d} 10:00", "call", "no_answer") for d in (3, 4, 5)]
    tables = book(
        [application(1)], schedule(1, "2025-01-31"), actions=[action(1, "2025-02-02 10:00", "call", "reached"), *calls]
    )
    decisions = pd.DataFrame({"decision_id": [0], "loan_id": [1], "t": [pd.Timestamp("2025-02-06 09:00")]})
    ctx = decision_context(
        tables, decisions, p.features.paid_tolerance, p.features.settle_share, p.strategy.decision_step_days
    )
    assert ctx["unanswered_in_row"].iloc[0] == 3 and may_locate(ctx.iloc[0].to_dict())
    row = ctx_row(unanswered_in_row=2.0)
    assert not may_locate(row) and may_locate(context_now(row, [{"channel": "call", "outcome": "no_answer"}]))
    reached = context_now(row, [{"channel": "call", "outcome": "no_answer"}, {"channel": "call", "outcome": "reached"}])
    assert not may_locate(reached) and not may_locate(ctx_row(wrong_number=1.0), stopped=True)


# ---------------------------------------------------------------- the account page (issue 27)


def test_the_account_context_marks_promises_kept_broken_pending_and_flags_callback_inconsistencies():
    from huishou.workbench.loading import account_context

    from builders import action, application, book, callback, preference, schedule

    paid = {1: ("2025-02-02", 1000.0)}
    tables = book(
        [application(1, borrower_id=7), application(2, borrower_id=7, disbursed="2025-01-05 10:00")],
        schedule(1, "2025-01-31", paid=paid) + schedule(2, "2025-02-04"),
        calls=[callback(1, "2025-01-02 10:00", purpose="medical", income=2000.0)],
        actions=[
            action(1, "2025-01-31 10:00", "call", "promise_to_pay", promised=1000, promised_date="2025-02-02"),
            action(2, "2025-02-10 10:00", "call", "promise_to_pay", promised=500, promised_date="2025-02-12"),
            action(2, "2025-02-26 10:00", "call", "promise_to_pay", promised=500, promised_date="2025-03-03"),
            action(2, "2025-02-27 10:00", "call", "reached", hardship=True),
        ],
        preferences=[preference(7, "opt_out", "2025-02-01 09:00", channel="sms")],
    )
    worklist = pd.DataFrame({"collector_id": ["C001"], "borrower_id": [7], "loan_id": [2]})
    ctx = account_context(worklist, tables, "2025-03-01", grace_days=3, understated=0.85)
    states = {(h["loan_id"], h["promised_date"]): h["promise_state"] for h in ctx["wb_history"]}
    assert states == {(1, "2025-02-02"): "kept", (2, "2025-02-12"): "broken", (2, "2025-03-03"): "pending"} | {
        (2, None): None
    }
    assert any(h["hardship"] for h in ctx["wb_history"])
    flags = json.loads(ctx["wb_callbacks"][0]["flags"])
    assert set(flags) == {"purpose_differs", "income_lower"}
    assert [(p["kind"], p["channel"]) for p in ctx["wb_preferences"]] == [("opt_out", "sms")]


def test_a_lead_sees_only_their_teams_accounts_and_every_view_is_logged(bench):
    from huishou.workbench.store import set_team

    client, engine, _, _, _ = bench
    login(client, "c001")
    mine = _mine(engine)[0]
    theirs = _mine(engine, "C002")[0]
    assert client.get(f"/accounts/{mine['id']}").status_code == 200
    assert client.get(f"/accounts/{theirs['id']}").status_code == 404
    from huishou.workbench.auth import add_user, hasher
    from workbench_helpers import CHEAP, PASSWORD

    add_user(engine, hasher(CHEAP), "lead2", PASSWORD, "lead", None)
    set_team(engine, "lead2", ["C002"])
    lead2 = TestClient(client.app)
    login(lead2, "lead2")
    assert lead2.get(f"/accounts/{theirs['id']}").status_code == 200
    assert lead2.get(f"/accounts/{mine['id']}").status_code == 404  # not their team's
    assert lead2.get("/sheet?collector=C001").status_code == 404
    assert "C001" not in lead2.get("/lead").text.split('id="progress"', 1)[1].split("</table>", 1)[0]
    with engine.connect() as conn:
        views = [
            (r["username"], r["target"])
            for r in conn.execute(sa.select(audit).where(audit.c.event == "view_account")).mappings()
        ]
    assert views == [("c001", str(mine["loan_id"])), ("lead2", str(theirs["loan_id"]))]


def test_the_promise_date_is_chosen_from_dates_in_the_pages_language_and_a_missing_score_says_why(bench):
    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = _mine(engine)[0]
    zh = client.get(f"/accounts/{acct['id']}").text
    options = re.findall(r'<option value="(\d{4}-\d\d-\d\d)">([^<]+)</option>', zh.split('id="promised_date"', 1)[1])
    assert len(options) == 31 and "年" in options[0][1] and 'type="date"' not in zh
    client.get("/lang/en?next=/list")
    en = client.get(f"/accounts/{acct['id']}").text
    assert re.search(r'<option value="\d{4}-\d\d-\d\d">[A-Z][a-z]{2} \d', en)
    risk = en.split('id="risk">', 1)[1].split("</dd>", 1)[0]
    assert ("data-score=" in risk) != ("data-why=" in risk) and "None" not in risk and risk.strip() != "–"


def test_a_lead_sees_and_ends_only_their_teams_requests(bench):
    from huishou.workbench.auth import add_user, hasher
    from huishou.workbench.store import set_team
    from workbench_helpers import CHEAP, PASSWORD

    client, engine, _, _, _ = bench
    login(client, "c001")
    acct = next(a for a in _mine(engine) if a["action"] == "call")
    assert _record(client, acct["id"], channel="call", outcome="dispute").status_code == 303
    add_user(engine, hasher(CHEAP), "lead2", PASSWORD, "lead", None)
    set_team(engine, "lead2", ["C002"])
    other = TestClient(client.app)
    login(other, "lead2")
    page = other.get("/lead")
    assert 'data-request="dispute"' not in page.text
    lead = TestClient(client.app)
    login(lead, "lead")
    wish_id = re.search(r'action="/lead/requests/(\d+)/end"', lead.get("/lead").text).group(1)
    assert other.post(f"/lead/requests/{wish_id}/end", data={"csrf": csrf_of(page.text)}).status_code == 404
