"""The team lead's view of a day, read from the workbench's database."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from huishou.workbench.store import accounts, as_utc, audit, contacts, fetch_all, refusals, users


def team_day(engine: sa.Engine, day: str, zone: ZoneInfo, team: set[str] | None = None) -> dict:
    """The team lead's day over the collectors of `team` (None: everyone): progress per collector, promises due
    and broken, refusals (counted in the database), reassignments, outcomes, recovered amounts; times in the
    lender's `zone`."""
    with engine.connect() as conn:
        accts = fetch_all(conn, sa.select(accounts).where(accounts.c.worklist_date == day))
        done = fetch_all(conn, sa.select(contacts).where(contacts.c.worklist_date == day).order_by(contacts.c.id))
        refused = fetch_all(  # the latest ones, for the list; the counts come from the query below
            conn,
            sa.select(refusals, users.c.username)
            .join(users, users.c.id == refusals.c.user_id)
            .where(refusals.c.worklist_date == day)
            .order_by(refusals.c.id.desc())
            .limit(100),
        )
        refusals_by = {
            who: n
            for who, n in conn.execute(
                sa.select(accounts.c.collector_id, sa.func.count())
                .select_from(refusals.join(accounts, accounts.c.id == refusals.c.account_id))
                .where(refusals.c.worklist_date == day)
                .group_by(accounts.c.collector_id)
            )
        }
        moves = fetch_all(
            conn, sa.select(audit).where(audit.c.event == "reassign").order_by(audit.c.id.desc()).limit(50)
        )
        collectors = [
            r["collector_id"]
            for r in fetch_all(
                conn,
                sa.select(users.c.collector_id).where(users.c.role == "collector").order_by(users.c.collector_id),
            )
        ]
    if team is not None:
        accts = [a for a in accts if a["collector_id"] in team]
        mine = {a["id"] for a in accts}
        done = [c for c in done if c["account_id"] in mine]
        refused = [r for r in refused if r["account_id"] in mine]
        refusals_by = {k: v for k, v in refusals_by.items() if k in team}
        collectors = [c for c in collectors if c in team]
        moves = [m for m in moves if json.loads(m["detail"] or "{}").get("to") in team]
    by_account: dict[int, list[dict]] = {}
    for c in done:
        by_account.setdefault(c["account_id"], []).append(c)
    people = sorted({a["collector_id"] for a in accts} | set(collectors))
    progress = []
    for who in people:
        mine = [a for a in accts if a["collector_id"] == who]
        mine_c = [c for a in mine for c in by_account.get(a["id"], [])]
        progress.append(
            {
                "collector": who,
                "assigned": len(mine),
                "worked": sum(1 for a in mine if a["id"] in by_account),
                "contacts": len(mine_c),
                "reached": sum(1 for c in mine_c if c["outcome"] in ("reached", "promise_to_pay", "paid", "refused")),
                "promises": sum(1 for c in mine_c if c["outcome"] == "promise_to_pay"),
                "paid": sum(c["amount"] or 0 for c in mine_c if c["outcome"] == "paid"),
                "refusals": refusals_by.get(who, 0),
            }
        )
    due = [a for a in accts if a["promise_due"] == day]
    due += [
        {"loan_id": c["loan_id"], "collector_id": c["collector_id"], "amount": c["amount"]}
        for c in done
        if c["outcome"] == "promise_to_pay" and c["promised_date"] == day
    ]
    broken = [a for a in accts if (a["broken_promises"] or 0) > 0]
    outcomes = {}
    for c in done:
        key = "hardship" if c["hardship"] else c["outcome"]
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "progress": progress,
        "due": due,
        "broken": broken,
        "broken_by": {c: sum(1 for b in broken if b["collector_id"] == c) for c in {b["collector_id"] for b in broken}},
        "refused": [
            r | {"rules": [x[0] for x in json.loads(r["rules"])], "local": as_utc(r["at"]).astimezone(zone)}
            for r in refused
        ],
        "refusals_total": sum(refusals_by.values()),
        "moves": [
            m | {"detail": json.loads(m["detail"] or "{}"), "local": as_utc(m["at"]).astimezone(zone)} for m in moves
        ],
        "recovered": sum(c["amount"] or 0 for c in done if c["outcome"] == "paid"),
        "outcomes": outcomes,
        "collectors": people,
        "accounts": sorted(accts, key=lambda a: (a["collector_id"], a["rank"])),
        "max_assigned": max([p["assigned"] for p in progress] + [1]),
    }
