"""The README's workbench pictures, taken from the pipeline's own published worklist (run `make repro`
first): a throw-away workbench database, `huishou serve` on 127.0.0.1, Playwright driving Debian's
headless Chromium through a collector's day and the team lead's view.

    .venv/bin/python docs/screenshots.py      # -> docs/img/workbench-*.png
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_workbench import CHEAP, PASSWORD, Served  # noqa: E402

OUT = ROOT / "docs" / "img"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def main() -> None:
    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright

    from huishou.workbench.auth import add_user, hasher
    from huishou.workbench.store import accounts, engine_for, set_team

    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / "params.yaml"
        params.write_text(
            f"extends: {ROOT / 'params.yaml'}\n"
            f"workbench:\n  database: {Path(tmp) / 'wb.db'}\n  password_hash: {json.dumps(CHEAP)}\n"
        )
        huishou = [sys.executable, "-m", "huishou", "--params", str(params)]
        subprocess.run([*huishou, "serve", "--load-only"], check=True, capture_output=True, cwd=ROOT)
        engine = engine_for(str(Path(tmp) / "wb.db"))
        ph = hasher(CHEAP)
        add_user(engine, ph, "c001", PASSWORD, "collector", "C001")
        add_user(engine, ph, "c002", PASSWORD, "collector", "C002")
        add_user(engine, ph, "lead", PASSWORD, "lead", None)
        with engine.connect() as conn:
            set_team(engine, "lead", [r[0] for r in conn.execute(sa.select(accounts.c.collector_id).distinct())])
            mine = conn.execute(
                sa.select(accounts.c.id, accounts.c.action).where(accounts.c.collector_id == "C001").order_by("rank")
            ).all()
        with Served(params, Path(tmp) / "serve.log") as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})

            def login(user: str) -> None:
                page.goto(f"{base}/login")
                page.fill("#username", user)
                page.fill("#password", PASSWORD)
                page.click("#login")

            login("c001")
            page.screenshot(path=OUT / "workbench-list.png", full_page=True)
            calls = [i for i, a in mine if a == "call"]
            page.goto(f"{base}/accounts/{calls[0]}")
            page.select_option("#outcome", "promise_to_pay")
            page.fill("#amount", "1500")
            page.select_option("#promised_date", index=4)  # four days on, shown in the page's locale
            page.fill("#note", "借款人称周一发工资后还款")
            page.click("#save")
            page.screenshot(path=OUT / "workbench-account.png", full_page=True)
            page.goto(f"{base}/accounts/{calls[1]}")
            page.select_option("#outcome", "hardship")
            page.fill("#note", "住院,家属代接")
            page.click("#save")
            page.select_option("#channel", "call")
            page.select_option("#outcome", "no_answer")
            page.click("#save")
            page.screenshot(path=OUT / "workbench-refused.png", full_page=True)
            page.goto(f"{base}/sheet")
            page.screenshot(path=OUT / "workbench-sheet.png", full_page=True)
            page.click("#logout")
            login("lead")
            page.goto(f"{base}/lang/en?next=/lead")
            page.screenshot(path=OUT / "workbench-lead-en.png", full_page=True)
            browser.close()


if __name__ == "__main__":
    main()
