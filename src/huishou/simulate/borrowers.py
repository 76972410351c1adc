"""Borrowers and what they declare: latent risk, the application, the verification call (回访).

One latent risk `z` per borrower drives everything observable: income, amount, age, SIM age,
channel ... are noisy functions of z; the lender prices risk, so the rate carries a noisy
lender score; risky borrowers are harder to reach on the callback, more often answered by
someone else, and contradict their application more often.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.core.settings import SimulateSettings
from huishou.simulate.generation import Generation, sigmoid

PURPOSES = ("consumption", "education", "medical", "business", "travel", "rent")
EMPLOYMENT = ("salaried", "self_employed", "gig", "student")
ACQUISITION_CHANNELS = ("organic", "referral", "ad", "partner")  # how the borrower was acquired
PLANS = ("salary", "business_income", "family_support", "other_loan", "none")


def draw_borrowers(rng: np.random.Generator, cfg: SimulateSettings) -> pd.DataFrame:
    n = cfg.n_borrowers
    z = rng.standard_normal(n)
    hardship = rng.random(n) < sigmoid(np.log(cfg.hardship_rate / (1 - cfg.hardship_rate)) + 0.5 * z)
    return pd.DataFrame(
        {
            "borrower_id": np.arange(1, n + 1, dtype=np.int64),
            "z": z,
            "drift": rng.normal(0.0, cfg.drift_sd, n),
            "hardship": hardship,
            "extra_loans": np.minimum(rng.poisson(cfg.extra_loans_mean, n), cfg.max_loans_per_borrower - 1),
            "age": np.clip(np.round(21 + rng.gamma(2.2, 6.0, n) - 2.5 * z), 18, 65).astype(np.int64),
            "log_income": rng.normal(8.8 - 0.17 * z, 0.45),
            "city_tier": np.clip(np.round(2.4 + 0.35 * z + rng.normal(0, 0.9, n)), 1, 4).astype(np.int64),
            "device_os": np.where(rng.random(n) < sigmoid(-0.3 - 0.45 * z), "ios", "android"),
            "employment_type": _choice_by_risk(rng, z, EMPLOYMENT, np.array([0.8, 0.0, 0.45, 0.3])),
            "employer": np.char.add("EMP", np.char.zfill(rng.integers(1, 4000, n).astype(str), 4)),
            "timezone": _zones(rng, cfg.timezones, n),
            # languages from a generator of their own, so adding them moved no other draw of the book
            "language": _zones(np.random.default_rng([cfg.seed, 7]), cfg.languages, n),
        }
    )


def _zones(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    """Each borrower's draw from a mix (value -> share): simulate.timezones (IANA zones), simulate.languages."""
    zones, shares = zip(*mix.items(), strict=True)
    return rng.choice(np.asarray(zones, dtype=object), size=n, p=np.asarray(shares) / sum(shares))


def _choice_by_risk(rng: np.random.Generator, z: np.ndarray, labels: tuple, weights: np.ndarray) -> np.ndarray:
    """Pick a label per row; `weights` sets how strongly z (risk) favours each label."""
    logits = np.outer(z, weights - weights.mean())
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    idx = (rng.random(len(z))[:, None] > cum).sum(axis=1)
    return np.asarray(labels)[np.minimum(idx, len(labels) - 1)]


def applications_table(
    rng, people: pd.DataFrame, disb_day: np.ndarray, gen: int, cfg: SimulateSettings
) -> pd.DataFrame:
    n = len(people)
    z = people["z"].to_numpy()
    income = np.round(np.exp(people["log_income"].to_numpy() + rng.normal(0, 0.08, n)), -1)
    terms, shares = zip(*sorted(cfg.term_mix.items()), strict=True)
    term = rng.choice(np.array(terms, dtype=np.int64), size=n, p=np.array(shares) / sum(shares))
    amount = np.round(income * np.exp(rng.normal(0.1 + 0.12 * z + 0.08 * np.log(term), 0.55)), -2).clip(500, 50_000)
    lender_score = z + rng.normal(0, cfg.lender_score_noise, n)
    rate = np.round(np.clip(0.18 + 0.045 * lender_score, 0.08, 0.36), 4)
    purpose = _choice_by_risk(rng, z, PURPOSES, np.array([0.2, -0.2, 0.4, 0.3, 0.1, 0.0]))
    channel = _choice_by_risk(rng, z, ACQUISITION_CHANNELS, np.array([-0.3, -0.2, 0.4, 0.3]))
    applied_sec = disb_day * 86400 - rng.integers(3600, 3 * 86400, n)
    disb_sec = disb_day * 86400 + rng.integers(9 * 3600, 18 * 3600, n)
    return pd.DataFrame(
        {
            "borrower_id": people["borrower_id"].to_numpy(),
            "applied_at": pd.to_datetime(applied_sec, unit="s"),
            "disbursed_at": pd.to_datetime(disb_sec, unit="s"),
            "amount": amount,
            "term_months": term.astype(np.int64),
            "rate": rate,
            "declared_income": income,
            "employer": people["employer"].to_numpy(),
            "employment_type": people["employment_type"].to_numpy(),
            "purpose": purpose,
            "age": people["age"].to_numpy() + gen,
            "city_tier": people["city_tier"].to_numpy(),
            "channel": channel,
            "device_os": people["device_os"].to_numpy(),
            "timezone": people["timezone"].to_numpy(),
            "language": people["language"].to_numpy(),
            "phone_age_months": np.clip(np.round(rng.gamma(2.0, 14.0, n) * np.exp(-0.35 * z)), 0, 240).astype(np.int64),
            "n_earlier_loans": np.full(n, gen, dtype=np.int64),
        }
    )


def annuity_of(amount: np.ndarray, rate: np.ndarray, term: np.ndarray) -> np.ndarray:
    r = rate / 12.0
    return np.round(amount * r * (1 + r) ** term / ((1 + r) ** term - 1), 2)


def season_shock(day: np.ndarray) -> np.ndarray:
    """Calendar shock on the miss log-odds: worse after Spring Festival and in late summer."""
    month = pd.to_datetime(day, unit="D").month.to_numpy()
    return 0.18 * np.sin(2 * np.pi * (month - 2) / 12.0) + 0.15 * (month == 2)


def callbacks_table(rng, g: Generation) -> pd.DataFrame:
    apps, x = g.apps, g.x
    n = len(apps)
    z = x["z"].to_numpy()
    called = rng.random(n) > 0.05  # ops capacity: 5 % of loans never get a callback (uninformative)
    new_sim = (apps["phone_age_months"].to_numpy() < 6).astype(float)
    p_reach = sigmoid(1.1 - 0.55 * z - 0.7 * new_sim)
    rows = []
    reached_already = ~called
    disb_sec = apps["disbursed_at"].to_numpy().astype("datetime64[s]").astype(np.int64)
    for attempt in range(3):
        idx = np.flatnonzero(~reached_already)
        reached = rng.random(idx.size) < p_reach[idx]
        sec = disb_sec[idx] + attempt * 86400 + rng.integers(1800, 4 * 3600, idx.size)
        rows.append(_callback_rows(rng, apps.iloc[idx], z[idx], reached, sec))
        reached_already[idx[reached]] = True
    return pd.concat(rows, ignore_index=True)


def _callback_rows(rng, apps: pd.DataFrame, z: np.ndarray, reached: np.ndarray, sec: np.ndarray) -> pd.DataFrame:
    n = len(apps)
    other = reached & (rng.random(n) < sigmoid(-2.6 + 0.65 * z))
    skipped = reached & ~other & (rng.random(n) < sigmoid(-2.8 + 0.6 * z))
    answered = reached & ~other & ~skipped
    identity = np.where(answered, rng.random(n) > sigmoid(-3.6 + 0.7 * z), False)
    purpose_mismatch = rng.random(n) < sigmoid(-2.3 + 0.75 * z)
    declared_purpose = apps["purpose"].to_numpy()
    other_purpose = np.asarray(PURPOSES, dtype=object)[rng.integers(0, len(PURPOSES), n)]
    stated_purpose = np.where(purpose_mismatch & (other_purpose != declared_purpose), other_purpose, declared_purpose)
    stated_income = np.round(
        apps["declared_income"].to_numpy() * np.exp(rng.normal(-0.1 * np.maximum(z, 0) - 0.02, 0.12, n)), -1
    )
    employer_mismatch = rng.random(n) < sigmoid(-2.7 + 0.7 * z)
    stated_employer = np.where(employer_mismatch, "EMP9999", apps["employer"].to_numpy())
    plan = _choice_by_risk(rng, z, PLANS, np.array([-0.5, -0.2, 0.2, 0.6, 0.5]))
    dur = np.where(answered, rng.gamma(4.0, 45.0, n), np.where(reached, rng.gamma(1.5, 15.0, n), 0.0))
    answered_by = np.where(~reached, "none", np.where(other, "other", "borrower"))
    return pd.DataFrame(
        {
            "loan_id": apps["loan_id"].to_numpy(),
            "called_at": pd.to_datetime(sec, unit="s"),
            "reached": reached,
            "answered_by": pd.array(answered_by, dtype="str"),
            "skipped": skipped,
            "identity_verified": pd.array(np.where(answered, identity, None), dtype="boolean"),
            "stated_purpose": pd.array(np.where(answered, stated_purpose, None), dtype="str"),
            "stated_income": np.where(answered, stated_income, np.nan),
            "stated_employer": pd.array(np.where(answered, stated_employer, None), dtype="str"),
            "repayment_plan_stated": pd.array(np.where(answered, plan, None), dtype="str"),
            "call_duration_s": np.round(dur, 1),
        }
    )
