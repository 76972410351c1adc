"""Hand-made tiny books: every row spelled out so expected features can be computed by hand."""

from __future__ import annotations

import pandas as pd

from huishou.book.contracts import empty_table

D = pd.Timestamp


def application(loan_id: int, borrower_id: int | None = None, disbursed: str = "2025-01-01 10:00", **kw) -> dict:
    row = dict(
        borrower_id=borrower_id or loan_id,
        loan_id=loan_id,
        applied_at=D(disbursed) - pd.Timedelta(hours=5),
        disbursed_at=D(disbursed),
        amount=6000.0,
        term_months=6,
        rate=0.2,
        declared_income=5000.0,
        employer="EMP0001",
        employment_type="salaried",
        purpose="consumption",
        age=30,
        city_tier=2,
        channel="organic",
        device_os="android",
        phone_age_months=24,
        n_earlier_loans=0,
    )
    return row | kw


def schedule(loan_id: int, first_due: str, n: int = 6, amount: float = 1000.0, paid: dict | None = None) -> list[dict]:
    """Monthly (30-day) installments; `paid` maps seq -> (paid_date, amount_paid)."""
    paid = paid or {}
    rows = []
    for seq in range(1, n + 1):
        due = D(first_due) + pd.Timedelta(days=30 * (seq - 1))
        pdate, amt = paid.get(seq, (None, 0.0))
        rows.append(
            dict(
                loan_id=loan_id,
                seq=seq,
                due_date=due,
                amount_due=amount,
                paid_date=D(pdate) if pdate else pd.NaT,
                amount_paid=float(amt),
            )
        )
    return rows


def callback(
    loan_id: int,
    called_at: str,
    reached=True,
    answered_by="borrower",
    skipped=False,
    identity=True,
    purpose="consumption",
    income=5000.0,
    employer="EMP0001",
    plan="salary",
    duration=120.0,
) -> dict:
    answered = reached and answered_by == "borrower" and not skipped
    return dict(
        loan_id=loan_id,
        called_at=D(called_at),
        reached=reached,
        answered_by=answered_by if reached else "none",
        skipped=skipped,
        identity_verified=identity if answered else None,
        stated_purpose=purpose if answered else None,
        stated_income=income if answered else float("nan"),
        stated_employer=employer if answered else None,
        repayment_plan_stated=plan if answered else None,
        call_duration_s=duration if reached else 0.0,
    )


def action(
    loan_id: int,
    at: str,
    channel="call",
    outcome="reached",
    collector="C001",
    promised=None,
    hardship=False,
    propensity=0.5,
    stage="early",
) -> dict:
    return dict(
        loan_id=loan_id,
        action_at=D(at),
        channel=channel,
        outcome=outcome,
        collector_id=collector,
        promised_amount=promised,
        hardship_reported=hardship,
        propensity=propensity,
        policy_stage=stage,
    )


def _typed(rows: list[dict], table: str) -> pd.DataFrame:
    """Rows typed like the contract's columns; optional columns the rows do not set stay absent."""
    empty = empty_table(table)
    if not rows:
        return empty
    frame = pd.DataFrame(rows)
    empty = empty[[c for c in empty.columns if c in frame.columns]]
    for col in empty.columns:
        dtype = empty[col].dtype
        if str(dtype) == "bool" and frame[col].isna().any():
            frame[col] = frame[col].astype("boolean")
        elif str(dtype) in ("str", "object"):
            frame[col] = frame[col].astype("str").where(frame[col].notna())
        else:
            frame[col] = frame[col].astype(dtype)
    return frame[[*empty.columns, *[c for c in frame.columns if c not in empty.columns]]]  # the lender's own last


def book(
    apps: list[dict], inst: list[dict], calls: list[dict] | None = None, actions: list[dict] | None = None
) -> dict[str, pd.DataFrame]:
    tables = {"applications": _typed(apps, "applications"), "installments": _typed(inst, "installments")}
    if calls is not None:
        tables["callbacks"] = _typed(calls, "callbacks")
    if actions is not None:
        tables["collection_actions"] = _typed(actions, "collection_actions")
    return tables
