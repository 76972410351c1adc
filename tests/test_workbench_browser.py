"""The workbench in a real browser: Playwright drives Debian's headless Chromium against a server the test
starts on 127.0.0.1 (and stops). A collector logs in, works the list, records every outcome type, meets a
refused unlawful contact; the team lead follows the day and reassigns; the contacts are ingested and the
next day's plan starts from them; the printable sheet is one A4 page for 25 accounts.

HUISHOU_SCREENSHOTS=<folder> keeps the pages' screenshots (README's pictures come from there).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import uvicorn

from huishou.compliance import Profile, evaluate
from huishou.strategy.plan import candidates
from huishou.workbench.store import accounts, contacts, refusals
from workbench_helpers import PASSWORD, Clock, book_rules, make_workbench, planned_day, wb_settings

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """uvicorn on 127.0.0.1 in a thread, stopped by the test."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("workbench server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium not found; `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("HUISHOU_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")


@pytest.fixture
def day_of_work(tmp_path, book, settings):
    """A workbench over the cold-start plan of the simulated book's extract date; C001 holds 25 accounts."""
    tables = book.raw_tables()
    day = settings.simulate.as_of
    cand, lists = planned_day(tables, settings, day)
    humans = lists.index[lists["collector_id"] != "AUTO"]
    calls = [i for i in humans if lists.at[i, "action"] == "call"]
    first = (calls + [i for i in humans if i not in calls])[:25]
    lists.loc[first, "collector_id"] = "C001"
    lists["rank"] = lists.groupby("collector_id").cumcount() + 1
    s = wb_settings(settings, str(tmp_path / "wb.db"))
    app, engine = make_workbench(
        s, str(tmp_path / "wb.db"), cand, lists, tables.get("collection_actions"), Clock(f"{day.date()} 10:00")
    )
    return app, engine, tables, day, s


def _rows(engine, table):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_a_collectors_day_the_team_lead_and_tomorrows_plan(browser, day_of_work, tmp_path):
    app, engine, tables, day, s = day_of_work
    with engine.connect() as conn:
        mine = [
            dict(r)
            for r in conn.execute(
                sa.select(accounts).where(accounts.c.collector_id == "C001").order_by(accounts.c.rank)
            ).mappings()
        ]
    calls = [a for a in mine if a["action"] == "call"]
    assert len(calls) >= 7
    promised = str((day + pd.Timedelta(days=5)).date())
    plan = {  # outcome -> (account, extra fields)
        "no_answer": (calls[0], {}),
        "reached": (calls[1], {}),
        "promise_to_pay": (calls[2], {"#amount": "800", "#promised_date": promised}),
        "paid": (calls[3], {"#amount": "1200.5"}),
        "refused": (calls[4], {}),
        "wrong_number": (calls[5], {}),
        "hardship": (calls[6], {}),
    }
    with Server(app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        log_in(page, base, "c001")
        page.wait_for_url(f"{base}/list")
        assert page.locator("h1").inner_text().startswith("今日工作清单")
        links = page.locator("a.account-link").all_inner_texts()
        assert [int(x) for x in links] == [a["loan_id"] for a in mine]
        shot(page, "workbench-list")
        for outcome, (acct, extra) in plan.items():
            page.goto(f"{base}/list")
            page.click(f"a.account-link:text-is('{acct['loan_id']}')")
            page.wait_for_url(f"{base}/accounts/{acct['id']}")
            assert acct["phone"] in page.locator("#details").inner_text()  # the assigned collector sees it
            page.select_option("#channel", "call")
            page.select_option("#outcome", outcome)
            for selector, value in extra.items():
                if selector == "#promised_date":  # a list of dates in the page's locale
                    page.select_option(selector, value)
                else:
                    page.fill(selector, value)
            page.fill("#note", f"e2e {outcome}")
            page.click("#save")
            page.wait_for_selector("#saved")
            assert f"e2e {outcome}" in page.locator("#history").inner_text()
            if outcome == "promise_to_pay":
                shot(page, "workbench-account")
        # an unlawful contact: a call to the borrower who just reported hardship
        hard = plan["hardship"][0]
        page.goto(f"{base}/accounts/{hard['id']}")
        page.select_option("#channel", "call")
        page.select_option("#outcome", "no_answer")
        page.click("#save")
        refused = page.locator("#refused")
        refused.wait_for()
        assert "不允许此次联系" in refused.inner_text() and "困难客户" in refused.inner_text()
        shot(page, "workbench-refused")
        page.click("#lang-switch")
        assert "This contact is not allowed" not in page.content()  # a refusal is not resent by switching
        assert "Record a contact" in page.content()
        page.goto(f"{base}/lang/zh-CN?next=/list")
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login.*"))

        # the team lead
        log_in(page, base, "lead")
        page.wait_for_url(f"{base}/lead")
        progress = page.locator("#progress").inner_text()
        assert re.search(r"C001\s+25\s+7\s+", progress)
        assert "困难客户" in page.locator("#refusals").inner_text()
        assert "10:00" in page.locator("#refusals").inner_text()  # the lender's local time
        assert page.locator("#progress-chart rect").count() >= 2 and page.locator("#outcome-chart rect").count() == 7
        assert hard["phone"] not in page.content()
        shot(page, "workbench-lead")
        moved = mine[-1]
        page.select_option("#reassign-loan", str(moved["loan_id"]))
        page.select_option("#reassign-to", "C002")
        page.click("#reassign-go")
        page.wait_for_url(f"{base}/lead")
        assert "C001 → C002" in page.content()
        page.close()

    recorded = _rows(engine, contacts)
    outcomes = sorted("hardship" if c["hardship"] else c["outcome"] for c in recorded)
    assert outcomes == sorted(plan)
    assert len(_rows(engine, refusals)) == 1
    with engine.connect() as conn:
        owner = conn.execute(sa.select(accounts.c.collector_id).where(accounts.c.id == moved["id"])).scalar()
    assert owner == "C002"

    # ingest, then tomorrow's plan starts from today's contacts
    from huishou.cli import main

    raw = tmp_path / "raw"
    raw.mkdir()
    tables["collection_actions"].to_parquet(raw / "collection_actions.parquet", index=False)
    params = tmp_path / "params.yaml"
    params.write_text(
        f"extends: {Path(__file__).resolve().parents[1] / 'params.yaml'}\n"
        f"data:\n  raw_dir: {raw}\n  compliance_dir: {tmp_path / 'compliance'}\n"
        f"workbench:\n  database: {s.workbench.database}\n"
    )
    assert main(["--params", str(params), "ingest-contacts"]) == 0
    from huishou.book.files import with_log

    log = with_log({"collection_actions": raw / "collection_actions.parquet"}, tmp_path / "contacts")[
        "collection_actions"
    ]
    assert len(log) == len(tables["collection_actions"]) + len(plan)
    nxt = day + pd.Timedelta(days=1)
    ctx = candidates(dict(tables) | {"collection_actions": log}, nxt, s.strategy, book_rules(s))
    rules = evaluate(ctx, s.strategy, Profile.from_settings(s.strategy.compliance))
    by_loan = ctx.assign(call_ok=rules.allowed["call"].to_numpy()).set_index("loan_id")
    assert by_loan.at[plan["hardship"][0]["loan_id"], "hardship_reported"] > 0
    assert not by_loan.at[plan["hardship"][0]["loan_id"], "call_ok"]
    assert by_loan.at[plan["promise_to_pay"][0]["loan_id"], "pending_promise"] > 0
    assert by_loan.at[plan["wrong_number"][0]["loan_id"], "wrong_number"] > 0
    assert not by_loan.at[plan["wrong_number"][0]["loan_id"], "call_ok"]
    audit_log = pd.read_parquet(tmp_path / "compliance" / "workbench" / f"{day.date()}.parquet")
    assert (audit_log["event"] == "refused_at_record").sum() == 1 and (audit_log["event"] == "recorded").sum() == 7


def test_the_printable_sheet_is_one_a4_page_for_25_accounts(browser, day_of_work):
    app, _, _, _, _ = day_of_work
    with Server(app) as base:
        page = browser.new_page()
        log_in(page, base, "c001")
        page.wait_for_url(f"{base}/list")
        page.goto(f"{base}/sheet")
        assert page.locator("#sheet tbody tr").count() == 25
        shot(page, "workbench-sheet")
        page.emulate_media(media="print")
        pdf = page.pdf(prefer_css_page_size=True)
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
        assert pages == 1, f"the sheet prints on {pages} pages"
        page.close()


def test_the_account_page_shows_the_history_promises_callbacks_and_opt_outs_a_collector_needs(
    browser, tmp_path, book, settings
):
    """Issue 27, in the browser: a collector opens an account and finds the borrower's whole contact history
    (a kept and a broken promise among it), what the verification call contradicted, and the opt-out in force;
    another collector's account is 404; every view is in the audit log."""
    from huishou.workbench.store import audit

    tables = {k: v.copy() for k, v in book.raw_tables().items()}
    day = settings.simulate.as_of
    cand, lists = planned_day(tables, settings, day)
    inst, apps = tables["installments"], tables["applications"]
    pick = None
    for r in lists[(lists["collector_id"] != "AUTO") & (lists["action"] == "call")].itertuples():
        loan_inst = inst[inst["loan_id"] == r.loan_id]
        paid = loan_inst[loan_inst["paid_date"].notna() & (loan_inst["paid_date"] < day - pd.Timedelta(days=40))]
        recent = loan_inst["paid_date"].between(day - pd.Timedelta(days=25), day)
        if len(paid) and not recent.any():
            pick = (r.loan_id, r.borrower_id, paid["paid_date"].iloc[-1], r.collector_id)
            break
    assert pick is not None
    loan, borrower, paid_on, owner = pick
    kept_at, broken_at = paid_on - pd.Timedelta(days=2), day - pd.Timedelta(days=20)
    extra = pd.DataFrame(
        {
            "loan_id": [loan, loan],
            "action_at": [kept_at.normalize() + pd.Timedelta(hours=11), broken_at + pd.Timedelta(hours=15)],
            "channel": ["call", "call"],
            "outcome": ["promise_to_pay", "promise_to_pay"],
            "collector_id": ["C007", "C007"],
            "promised_amount": [900.0, 700.0],
            "hardship_reported": [False, False],
            "propensity": [0.5, 0.5],
            "policy_stage": ["early", "early"],
            "promised_date": [paid_on.normalize(), broken_at + pd.Timedelta(days=3)],
        }
    ).astype(tables["collection_actions"][["loan_id", "action_at", "promised_date"]].dtypes.to_dict())
    tables["collection_actions"] = pd.concat([tables["collection_actions"], extra], ignore_index=True)
    calls = tables["callbacks"]
    calls = calls[calls["loan_id"] != loan]
    purpose = apps.loc[apps["loan_id"] == loan, "purpose"].iloc[0]
    cb = {c: None for c in calls.columns} | {
        "loan_id": loan,
        "called_at": apps.loc[apps["loan_id"] == loan, "disbursed_at"].iloc[0] + pd.Timedelta(days=1),
        "reached": True,
        "answered_by": "borrower",
        "skipped": False,
        "identity_verified": True,
        "stated_purpose": "gambling" if purpose != "gambling" else "travel",
        "call_duration_s": 90.0,
    }
    tables["callbacks"] = pd.concat([calls, pd.DataFrame([cb]).astype(calls.dtypes.to_dict())], ignore_index=True)
    prefs = tables["contact_preferences"]
    opt = pd.DataFrame(
        [{"borrower_id": borrower, "kind": "opt_out", "channel": "sms", "valid_from": day - pd.Timedelta(days=9)}]
    )
    tables["contact_preferences"] = pd.concat([prefs, opt], ignore_index=True)
    s = wb_settings(settings, str(tmp_path / "wb.db"))
    app, engine = make_workbench(
        s,
        str(tmp_path / "wb.db"),
        cand,
        lists,
        tables["collection_actions"],
        Clock(f"{day.date()} 10:00"),
        book=tables,
    )
    with engine.connect() as conn:
        account = _rows(engine, accounts)
    mine = next(a for a in account if a["loan_id"] == loan)
    other = next(a for a in account if a["collector_id"] != owner)
    with Server(app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        log_in(page, base, owner.lower())
        page.wait_for_url(f"{base}/list")
        page.goto(f"{base}/accounts/{mine['id']}")
        history = page.locator("#history")
        assert history.locator("tr[data-state='kept']").count() >= 1
        assert history.locator("tr[data-state='broken']").count() >= 1
        assert "已兑现" in history.inner_text() and "未兑现" in history.inner_text()
        flags = page.locator("#callbacks .flag[data-flag='purpose_differs']")
        assert flags.count() == 1 and "用途与申请不符" in flags.inner_text()
        assert page.locator("#preferences li[data-kind='opt_out'][data-channel='sms']").count() == 1
        risk = page.locator("#risk").inner_text().strip()
        assert risk and risk != "–"
        shot(page, "workbench-account")
        assert page.goto(f"{base}/accounts/{other['id']}").status == 404
        page.close()
    with engine.connect() as conn:
        views = conn.execute(sa.select(audit.c.username, audit.c.target).where(audit.c.event == "view_account")).all()
    assert views == [(owner.lower(), str(loan))]
