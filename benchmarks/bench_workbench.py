"""Benchmark: 200 collectors recording contacts at once on the workbench (loopback only, bounded).

    python benchmarks/bench_workbench.py            # -> benchmarks/results/workbench.json
    python benchmarks/bench_workbench.py --collectors 50 --contacts 5 --think 2 6

A real `huishou serve` process (uvicorn with uvloop and httptools, SQLite file) serves a worklist of 3
accounts per collector made from a planned day of a small simulated book. Each collector logs in, opens an
account, then records `--contacts` contacts with a think time drawn from U(--think) s. The default,
U(0.2, 1.4) s (mean 0.8 s), offers 200 collectors x 1.25 = 250 recordings a second: a live collector
records one every minute or two, so this is a floor of ~100 collectors' hours compressed, the issue's bar
(at least 200 recordings a second with p95 under 200 ms on this 2-core machine, the clients sharing it).
Every recording goes through the session, CSRF, ownership, the borrower's requests in force and the
full rules check. The same clients then hit /healthz with the same pattern: the reference (the server
and client floor) measured in the same run.

Checks: every accepted recording (303) is in the database exactly once (by its form id), every refused
one (409) is in wb_refusals, nothing else was answered; at least 200 recordings a second while every
collector is at work (the middle 80 % of completions; first-to-last is reported too, and is bounded by
the slowest collectors' think times) with p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PASSWORD = "load test password"
CHEAP = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}
THINK_S = (0.2, 1.4)  # seconds between two recordings of one collector (a live collector: one a minute or two)
BAR_PER_S, BAR_P95_MS = 200.0, 200.0  # issue 25's bar


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(folder: Path, collectors: int, per_collector: int = 3) -> tuple[Path, list[dict]]:
    """A worklists folder, a params file and a workbench database with one login per collector."""
    import dataclasses as dc

    from huishou.compliance import Profile
    from huishou.core.settings import load_settings
    from huishou.simulate import simulate_book
    from huishou.strategy import BookRules, worklist
    from huishou.strategy.plan import plan_day
    from huishou.workbench.auth import add_user, hasher
    from huishou.workbench.store import create_schema, engine_for

    base = load_settings(ROOT / "params.yaml")
    s = dc.replace(base, simulate=dc.replace(base.simulate, n_borrowers=2500, seed=11))
    f, cfg = s.features, s.strategy
    book = simulate_book(s.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd, progress=False)
    day = s.simulate.as_of
    rules = BookRules(f.default_dpd, f.paid_tolerance, f.settle_share, f.promise_grace_days, s.data.timezone)
    plan = plan_day(
        book.raw_tables(), day, {}, cfg, Profile.from_settings(cfg.compliance), rules, np.random.default_rng(0)
    )
    cand = plan.candidates
    reasons = pd.DataFrame({"reason_1": "dpd", "reason_2": "overdue_amount", "reason_3": ""}, index=cand["loan_id"])
    lists = worklist(cand, reasons, pd.Series(0.2, index=cand["loan_id"])).assign(worklist_date=str(day.date()))
    humans = lists[lists["collector_id"] != "AUTO"].reset_index(drop=True)
    n = collectors * per_collector
    picks = humans.iloc[np.arange(n) % len(humans)].reset_index(drop=True)
    ids = 10_000_000 + np.arange(n)
    by_loan = cand.set_index("loan_id")
    new_cand = by_loan.loc[picks["loan_id"]].reset_index()
    new_cand["loan_id"], new_cand["borrower_id"] = ids, ids
    picks["loan_id"], picks["borrower_id"] = ids, ids
    picks["collector_id"] = [f"L{i // per_collector + 1:03d}" for i in range(n)]
    picks["rank"] = picks.groupby("collector_id").cumcount() + 1
    wl = folder / "worklists"
    (wl / "published").mkdir(parents=True)
    (wl / "candidates").mkdir()
    picks.to_parquet(wl / "published" / "worklist.parquet", index=False)
    new_cand.to_parquet(wl / "candidates" / f"{day.date()}.parquet", index=False)
    (wl / "index.json").write_text(json.dumps({"published": str(day.date()), "dates": [str(day.date())]}))
    db = folder / "wb.db"
    params = folder / "params.yaml"
    params.write_text(
        f"extends: {ROOT / 'params.yaml'}\n"
        f"data:\n  worklists_dir: {wl}\n  raw_dir: {folder / 'raw'}\n"
        "strategy:\n  max_contacts_7d: 100000\n"
        "  compliance:\n    overrides: {contact_start: '00:00', contact_end: '24:00'}\n"
        f"workbench:\n  database: {db}\n  password_hash: {json.dumps(CHEAP)}\n"
    )
    engine = engine_for(str(db))
    create_schema(engine)
    ph = hasher(CHEAP)
    for c in sorted(picks["collector_id"].unique()):
        add_user(engine, ph, c.lower(), PASSWORD, "collector", c)
    engine.dispose()
    return params, picks.to_dict("records")


class Served:
    """`huishou serve` in its own process on 127.0.0.1; stopped on exit."""

    def __init__(self, params: Path, log: Path):
        self.port = _free_port()
        self.params, self.log = params, log

    def __enter__(self) -> str:
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.out = open(self.log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huishou", "--params", str(self.params), "serve", "--port", str(self.port)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        import httpx

        base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"huishou serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return base
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("huishou serve did not start in 60 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.out.close()


async def _collector(
    client, username: str, account_ids: list[int], contacts: int, rng: random.Random, out: dict, think: tuple
):
    import re

    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, f"{username} could not log in: {r.status_code}"
    page = await client.get(f"/accounts/{account_ids[0]}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    if await out["barrier"].wait() == 0:  # every collector logged in: the clock starts
        out["start"] = time.perf_counter()
    for i in range(contacts):
        await asyncio.sleep(rng.uniform(*think))
        uid = str(uuid.uuid4())
        account = account_ids[i % len(account_ids)]
        data = {"csrf": csrf, "uid": uid, "channel": "sms", "outcome": "no_answer", "note": f"load {i}"}
        t0 = time.perf_counter()
        r = await client.post(f"/accounts/{account}/contacts", data=data)
        done = time.perf_counter()
        out["record"].append(done - t0)
        out["answers"].append((uid, r.status_code))
        out["done_at"].append(done)
    for _ in range(contacts):  # the reference: the same pattern on the cheapest route
        await asyncio.sleep(rng.uniform(*think))
        t0 = time.perf_counter()
        r = await client.get("/healthz")
        out["health"].append(time.perf_counter() - t0)


async def load(
    base: str, accounts: list[dict], id_of: dict[int, int], contacts: int, think: tuple = THINK_S, seed: int = 0
) -> dict:
    """Run the collectors against `base`; latencies (s) and the answers (form id, status)."""
    import httpx

    by_collector: dict[str, list[int]] = {}
    for a in accounts:
        by_collector.setdefault(a["collector_id"], []).append(id_of[a["loan_id"]])
    out = {"record": [], "health": [], "answers": [], "done_at": [], "barrier": asyncio.Barrier(len(by_collector))}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=30) for _ in by_collector]
    try:
        runs = [
            _collector(c, cid.lower(), ids, contacts, random.Random(f"{seed}-{cid}"), out, think)
            for c, (cid, ids) in zip(clients, sorted(by_collector.items()), strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*runs), timeout=600)
        out["wall_s"] = time.perf_counter() - out["start"]
    finally:
        for c in clients:
            await c.aclose()
    out.pop("barrier")
    return out


def check(db: Path, answers: list[tuple[str, int]]) -> dict:
    """Every 303 stored once, every 409 a refusal, no other status."""
    import sqlalchemy as sa

    from huishou.workbench.store import contacts, engine_for, refusals

    engine = engine_for(str(db))
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.select(contacts.c.uid))]
        refused = conn.execute(sa.select(sa.func.count()).select_from(refusals)).scalar()
    engine.dispose()
    accepted = [u for u, code in answers if code == 303]
    return {
        "requests": len(answers),
        "accepted": len(accepted),
        "refused": sum(1 for _, code in answers if code == 409),
        "other_status": sorted({code for _, code in answers if code not in (303, 409)}),
        "stored": len(stored),
        "lost": len(set(accepted) - set(stored)),
        "duplicated": len(stored) - len(set(stored)),
        "unexpected": len(set(stored) - set(accepted)),
        "refusals_stored": refused,
    }


def _steady_rate(done_at: list[float]) -> float:
    """Recordings a second while every collector is at work: the middle 80 % of completions (the first and
    last tenth are the start, when the collectors' first think times run out, and the tail of the last
    collectors' think times, which measure the think-time draw, not the server)."""
    t = np.sort(np.array(done_at))
    lo, hi = int(len(t) * 0.1), int(len(t) * 0.9)
    return round((hi - lo) / (t[hi] - t[lo]), 1)


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 2)


def run(collectors: int, contacts: int, think: tuple = THINK_S) -> dict:
    import sqlalchemy as sa

    from huishou.workbench.store import accounts, engine_for

    with tempfile.TemporaryDirectory(prefix="huishou-load-") as tmp:
        folder = Path(tmp)
        params, acc = prepare(folder, collectors)
        with Served(params, folder / "serve.log") as base:
            engine = engine_for(str(folder / "wb.db"))
            with engine.connect() as conn:
                id_of = {int(r[0]): int(r[1]) for r in conn.execute(sa.select(accounts.c.loan_id, accounts.c.id))}
            engine.dispose()
            out = asyncio.run(load(base, acc, id_of, contacts, think))
        result = check(folder / "wb.db", out["answers"])
    result |= {
        "collectors": collectors,
        "contacts_per_collector": contacts,
        "wall_s": round(out["wall_s"], 2),
        "think_s": list(think),
        "record_wall_s": round(max(out["done_at"]) - out["start"], 2),
        "record_per_s": _steady_rate(out["done_at"]),
        "record_per_s_first_to_last": round(len(out["done_at"]) / (max(out["done_at"]) - out["start"]), 1),
        "offered_per_s": round(collectors / (sum(think) / 2), 1),
        "record_ms": {"p50": _pct(out["record"], 50), "p95": _pct(out["record"], 95), "p99": _pct(out["record"], 99)},
        "healthz_ms": {"p50": _pct(out["health"], 50), "p95": _pct(out["health"], 95), "p99": _pct(out["health"], 99)},
    }
    result["p95_ratio_to_healthz"] = round(result["record_ms"]["p95"] / max(result["healthz_ms"]["p95"], 1e-3), 2)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collectors", type=int, default=200)
    ap.add_argument("--contacts", type=int, default=10)
    ap.add_argument("--think", type=float, nargs=2, default=THINK_S, help="think time range, seconds")
    args = ap.parse_args()
    result = run(args.collectors, args.contacts, tuple(args.think)) | {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workbench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = result["lost"] == result["duplicated"] == result["unexpected"] == 0 and not result["other_status"]
    result["bar"] = {"per_s": BAR_PER_S, "p95_ms": BAR_P95_MS}
    result["bar_met"] = bool(result["record_per_s"] >= BAR_PER_S and result["record_ms"]["p95"] < BAR_P95_MS)
    (RESULTS / "workbench.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok and result["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
