"""Hand-made tiny books: every row spelled out so expected features can be computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.book.contracts import empty_table
from huishou.compliance import Profile
from huishou.core.settings import load_settings
from huishou.core.vocab import CONTACTS
from huishou.strategy.context import CONTEXT_FEATURES, RULE_COLUMNS

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
    promised_date=None,
) -> dict:
    extra = {"promised_date": D(promised_date)} if promised_date else {}
    return extra | dict(
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


def preference(
    borrower_id: int,
    kind: str,
    since: str,
    until: str | None = None,
    channel: str | None = None,
    window: tuple[str, str] | None = None,
) -> dict:
    return dict(
        borrower_id=borrower_id,
        kind=kind,
        channel=channel,
        valid_from=D(since),
        valid_until=D(until) if until else pd.NaT,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
    )


def book(
    apps: list[dict],
    inst: list[dict],
    calls: list[dict] | None = None,
    actions: list[dict] | None = None,
    preferences: list[dict] | None = None,
) -> dict[str, pd.DataFrame]:
    tables = {"applications": _typed(apps, "applications"), "installments": _typed(inst, "installments")}
    if calls is not None:
        tables["callbacks"] = _typed(calls, "callbacks")
    if actions is not None:
        if any("promised_date" in a for a in actions):
            actions = [{"promised_date": pd.NaT} | a for a in actions]
        tables["collection_actions"] = _typed(actions, "collection_actions")
    if preferences is not None:
        tables["contact_preferences"] = _typed(preferences, "contact_preferences")
    return tables


# ---------------------------------------------------------------- decision contexts for the rules

COMPLIANCE = load_settings("params.yaml").strategy.compliance


def profile(name: str = "cn_cba_2026", **overrides) -> Profile:
    return Profile.from_settings(COMPLIANCE | {"profile": name, "overrides": overrides})


CN, US = profile("cn_cba_2026"), profile("us_reg_f")
MA, NY = profile("us_ma"), profile("us_ny_dfs")


def ctx_row(**kw) -> dict:
    base = {c: 0.0 for c in [*CONTEXT_FEATURES, *RULE_COLUMNS]} | dict(
        loan_id=1,
        borrower_id=1,
        stage="early",
        dpd=10.0,
        step=1.0,
        overdue_amount=1000.0,
        outstanding=6000.0,
        amount=6000.0,
        age=30.0,
        rate=0.2,
        declared_income=5000.0,
        city_tier=2.0,
        phone_age_months=20.0,
        episode_contacts=1.0,
        episode_noncontact=1.0,
        days_since_conversation=np.nan,
        consent_start=np.nan,
        consent_end=np.nan,
    )
    return base | kw


def random_ctx(rng: np.random.Generator, n: int) -> pd.DataFrame:
    stage = rng.choice(["pre_due", "early", "recovery"], n)
    dpd = np.select(
        [stage == "pre_due", stage == "early"],
        [-rng.integers(1, 4, n), rng.integers(1, 30, n)],
        rng.integers(30, 181, n),
    ).astype(float)
    consent = rng.random(n) < 0.1
    rows = [
        ctx_row(
            loan_id=i + 1,
            borrower_id=i + 1,
            stage=stage[i],
            dpd=dpd[i],
            outstanding=float(rng.uniform(100, 30000)),
            episode_noncontact=float(rng.integers(0, 5)),
            episode_reached=float(rng.integers(0, 2)),
            contacts_7d=float(rng.integers(0, 5)),
            calls_7d=float(rng.integers(0, 9)),
            sms_7d=float(rng.integers(0, 3)),
            visits_30d=float(rng.integers(0, 2)),
            dispute=float(rng.random() < 0.03),
            attorney=float(rng.random() < 0.03),
            consent_sms=float(rng.random() < 0.5),
            consent_app_push=float(rng.random() < 0.5),
            unanswered_calls_today=float(rng.integers(0, 8)),
            days_since_conversation=float(rng.integers(0, 15)),
            hardship_reported=float(rng.random() < 0.1),
            wrong_number=float(rng.random() < 0.05),
            pending_promise=float(rng.random() < 0.1),
            promise_reminder_day=float(rng.random() < 0.3),
            pre_due_reminders=float(rng.integers(0, 3)),
            cease=float(rng.random() < 0.03),
            complaint_hold=float(rng.random() < 0.03),
            do_not_visit=float(rng.random() < 0.05),
            tz_offset_min=float(rng.choice([0, -60, -180, -780, 60])),
            consent_start=float(rng.integers(6, 20) * 60) if consent[i] else np.nan,
            consent_end=float(rng.integers(12, 24) * 60) if consent[i] else np.nan,
            **{f"opt_out_{c}": float(rng.random() < 0.05) for c in CONTACTS},
        )
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=list(ctx_row()))
