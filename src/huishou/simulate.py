"""The built-in synthetic loan book: a seeded, causal simulator of app-based micro-loans.

Generating process (one latent risk `z` per borrower drives everything observable):

* applications: income, amount, age, SIM age, channel ... are noisy functions of z; the
  lender prices risk, so the rate carries a noisy lender score.
* callbacks (回访): risky borrowers are harder to reach, more often answered by someone
  else, and contradict their application (purpose, income, employer) more often.
* installments: each due date is missed with probability
  sigmoid(base + w*z + drift*age_months + affordability + season + hardship).
  A missed installment opens a collection episode: the logged legacy policy picks an
  action at days 1, 8, 15 and 22 (propensities recorded); each action cures with a
  heterogeneous probability h(action, borrower). Not cured by day 30 -> 30+ DPD
  (default); every later installment of that loan is then missed too, and only
  recovery actions (days 35..100) can settle the loan.
* repeat loans are granted only after a clean loan.

Because miss and cure draws are independent given the latent state, the true
probability that a loan first reaches 30+ DPD in (T, T+H] is computed exactly (the
oracle), conditioning on everything logged before T. Ground truth goes to
`data/truth/`, which only `huishou.evaluate` may read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from huishou.config import SimulateSettings

ACTIONS = ("none", "sms", "app_push", "email_letter", "call", "visit", "repayment_plan")
CONTACT_ACTIONS = ACTIONS[1:]
STEP_DAYS = np.array([1, 8, 15, 22])  # legacy policy decision days after a missed due date
RECOVERY_DAYS = np.array([35, 50, 70, 100])  # after the defaulted due date
RECOVERY_EFFECT = 0.6  # recovery after default is harder than early cure
PROMISE_DELAY = 2  # a kept promise pays two days after the contact
SELF_CURE_DELAY = 3  # with no action, a curing borrower pays three days after the decision
VISIT_MIN_AMOUNT = 5000.0  # legacy policy: visits only for large loans, from step 2
PURPOSES = ("consumption", "education", "medical", "business", "travel", "rent")
EMPLOYMENT = ("salaried", "self_employed", "gig", "student")
CHANNELS = ("organic", "referral", "ad", "partner")
PLANS = ("salary", "business_income", "family_support", "other_loan", "none")
N_COLLECTORS = 40
COLLECTOR_IDS = np.array([f"C{i:03d}" for i in range(1, N_COLLECTORS + 1)], dtype=object)

# Base cure log-odds of each action, and the failure-outcome mix per channel.
_BASE_EFFECT = {
    "none": -2.5, "sms": -1.75, "app_push": -1.85, "email_letter": -2.2,
    "call": -1.15, "visit": -0.7, "repayment_plan": -1.6,
}
_FAIL_OUTCOMES = {  # outcome -> probability when the action did not cure
    "sms": {"no_answer": 0.45, "reached": 0.55},
    "app_push": {"no_answer": 0.5, "reached": 0.5},
    "email_letter": {"no_answer": 0.6, "reached": 0.4},
    "call": {"no_answer": 0.42, "reached": 0.25, "refused": 0.1, "wrong_number": 0.06, "promise_to_pay": 0.17},
    "visit": {"no_answer": 0.3, "reached": 0.35, "refused": 0.15, "promise_to_pay": 0.2},
    "repayment_plan": {"reached": 0.5, "refused": 0.3, "promise_to_pay": 0.2},
}
_SUCCESS_PROMISE_SHARE = 0.5  # a cure is an immediate payment or a (kept) promise to pay
_PARTIAL_SHARE = 0.3  # a reached-but-not-cured borrower pays part of the installment


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Book:
    """The simulated book: observable raw tables and hidden truth tables."""

    applications: pd.DataFrame
    callbacks: pd.DataFrame
    installments: pd.DataFrame
    collection_actions: pd.DataFrame
    truth: dict[str, pd.DataFrame]

    def raw_tables(self) -> dict[str, pd.DataFrame]:
        return {
            "applications": self.applications,
            "callbacks": self.callbacks,
            "installments": self.installments,
            "collection_actions": self.collection_actions,
        }


# ---------------------------------------------------------------- latent borrowers


def draw_borrowers(rng: np.random.Generator, cfg: SimulateSettings) -> pd.DataFrame:
    n = cfg.n_borrowers
    z = rng.standard_normal(n)
    hardship = rng.random(n) < _sigmoid(np.log(cfg.hardship_rate / (1 - cfg.hardship_rate)) + 0.5 * z)
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
            "device_os": np.where(rng.random(n) < _sigmoid(-0.3 - 0.45 * z), "ios", "android"),
            "employment_type": _choice_by_risk(rng, z, EMPLOYMENT, np.array([0.8, 0.0, 0.45, 0.3])),
            "employer": np.char.add("EMP", np.char.zfill(rng.integers(1, 4000, n).astype(str), 4)),
        }
    )


def _choice_by_risk(rng: np.random.Generator, z: np.ndarray, labels: tuple, weights: np.ndarray) -> np.ndarray:
    """Pick a label per row; `weights` sets how strongly z (risk) favours each label."""
    logits = np.outer(z, weights - weights.mean())
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    idx = (rng.random(len(z))[:, None] > cum).sum(axis=1)
    return np.asarray(labels)[np.minimum(idx, len(labels) - 1)]


# ---------------------------------------------------------------- collection mechanics


def action_cure_logits(b: pd.DataFrame, step: int, shift: float = 0.0) -> np.ndarray:
    """True cure log-odds of every action for each loan (rows) at a decision step.

    Heterogeneous effects: app push works for the young and iOS users, calls for older
    borrowers, visits for large amounts, repayment plans for borrowers in hardship.
    """
    z, age, amount = b["z"].to_numpy(), b["age"].to_numpy(), b["amount"].to_numpy()
    young, older = (age < 30).astype(float), (age >= 40).astype(float)
    ios = (b["device_os"].to_numpy() == "ios").astype(float)
    hardship = b["hardship"].to_numpy().astype(float)
    common = shift - 0.55 * z - 0.12 * step
    mods = {
        "none": 0.0 * z,
        "sms": -0.3 * young,
        "app_push": 0.6 * young + 0.3 * ios,
        "email_letter": 0.3 * older,
        "call": 0.45 * older - 0.3 * young,
        "visit": 0.4 * np.clip(np.log(amount / 3000.0), -1, 2),
        "repayment_plan": 2.0 * hardship - 0.4,
    }
    return np.column_stack([_BASE_EFFECT[a] + common + mods[a] for a in ACTIONS])


def legacy_policy_probs(b: pd.DataFrame, step: int, epsilon: float, recovery: bool = False) -> np.ndarray:
    """Propensities of the logged legacy policy over ACTIONS (rows sum to 1).

    Escalates from messages to calls with the step, visits only for large loans late in
    the episode, leans to repayment plans for known hardship; an epsilon share is
    explored uniformly over the lawful actions so every lawful action has a propensity > 0.
    """
    n = len(b)
    amount = b["amount"].to_numpy()
    hardship = b["hardship"].to_numpy().astype(float)
    table = {  # none, sms, app_push, email_letter, call, visit, repayment_plan
        0: [0.5, 1.2, 1.0, 0.0, -0.5, 0.0, -1.5],
        1: [0.0, 0.8, 0.6, 0.3, 0.8, 0.0, -0.5],
        2: [-0.3, 0.3, 0.2, 0.3, 1.3, 0.3, 0.0],
        3: [-0.5, 0.0, 0.0, 0.3, 1.2, 0.8, 0.0],
    }
    logits = np.tile(np.array(table[min(step, 3)], dtype=float), (n, 1))
    logits[:, ACTIONS.index("repayment_plan")] += 1.0 * hardship * (step >= 1)
    allowed = np.ones((n, len(ACTIONS)), dtype=bool)
    allowed[:, ACTIONS.index("visit")] = (amount >= VISIT_MIN_AMOUNT) & (step >= 2 or recovery)
    if recovery:
        allowed[:, ACTIONS.index("none")] = False
    logits = np.where(allowed, logits, -np.inf)
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    return (1 - epsilon) * soft + epsilon * uniform


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cum = probs.cumsum(axis=1)
    idx = (rng.random(len(probs))[:, None] > cum).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1)


def _fail_outcome_prob(action: str, outcome: str) -> float:
    return _FAIL_OUTCOMES.get(action, {}).get(outcome, 0.0)


def _draw_outcomes(rng: np.random.Generator, actions: np.ndarray, success: np.ndarray) -> np.ndarray:
    out = np.empty(len(actions), dtype=object)
    promise = rng.random(len(actions)) < _SUCCESS_PROMISE_SHARE
    out[success] = np.where(promise[success], "promise_to_pay", "paid")
    for a_idx, action in enumerate(ACTIONS):
        rows = (~success) & (actions == a_idx)
        if not rows.any():
            continue
        if action == "none":
            out[rows] = "none"
            continue
        names, p = zip(*_FAIL_OUTCOMES[action].items(), strict=True)
        out[rows] = rng.choice(np.array(names, dtype=object), size=rows.sum(), p=np.array(p) / sum(p))
    none_rows = actions == ACTIONS.index("none")
    out[none_rows] = "none"
    return out


def _payment_delay(outcomes: np.ndarray) -> np.ndarray:
    """Days from a curing decision to the payment it brings (paid: same day)."""
    return np.select([outcomes == "promise_to_pay", outcomes == "none"], [PROMISE_DELAY, SELF_CURE_DELAY], 0)


def success_posterior(action: np.ndarray, outcome: np.ndarray, h: np.ndarray) -> np.ndarray:
    """P(the decision cured | action, logged outcome), before its payment is visible."""
    q_success = np.where(outcome == "promise_to_pay", _SUCCESS_PROMISE_SHARE, 0.0)
    q_success = np.where(outcome == "none", 1.0, q_success)
    q_fail = np.array([_fail_outcome_prob(ACTIONS[a], o) if o != "none" else 1.0 for a, o in zip(action, outcome, strict=True)])
    num = h * q_success
    den = num + (1 - h) * q_fail
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# ---------------------------------------------------------------- one generation of loans


def _applications(rng, people: pd.DataFrame, disb_day: np.ndarray, gen: int, cfg: SimulateSettings) -> pd.DataFrame:
    n = len(people)
    z = people["z"].to_numpy()
    income = np.round(np.exp(people["log_income"].to_numpy() + rng.normal(0, 0.08, n)), -1)
    terms, shares = zip(*sorted(cfg.term_mix.items()), strict=True)
    term = rng.choice(np.array(terms, dtype=np.int64), size=n, p=np.array(shares) / sum(shares))
    amount = np.round(income * np.exp(rng.normal(0.1 + 0.12 * z + 0.08 * np.log(term), 0.55)), -2).clip(500, 50_000)
    lender_score = z + rng.normal(0, cfg.lender_score_noise, n)
    rate = np.round(np.clip(0.18 + 0.045 * lender_score, 0.08, 0.36), 4)
    purpose = _choice_by_risk(rng, z, PURPOSES, np.array([0.2, -0.2, 0.4, 0.3, 0.1, 0.0]))
    channel = _choice_by_risk(rng, z, CHANNELS, np.array([-0.3, -0.2, 0.4, 0.3]))
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
            "phone_age_months": np.clip(np.round(rng.gamma(2.0, 14.0, n) * np.exp(-0.35 * z)), 0, 240).astype(np.int64),
            "n_earlier_loans": np.full(n, gen, dtype=np.int64),
        }
    )


def _annuity(amount: np.ndarray, rate: np.ndarray, term: np.ndarray) -> np.ndarray:
    r = rate / 12.0
    return np.round(amount * r * (1 + r) ** term / ((1 + r) ** term - 1), 2)


def _season(day: np.ndarray) -> np.ndarray:
    """Calendar shock on the miss log-odds: worse after Spring Festival and in late summer."""
    month = pd.to_datetime(day, unit="D").month.to_numpy()
    return 0.18 * np.sin(2 * np.pi * (month - 2) / 12.0) + 0.15 * (month == 2)


@dataclass
class _Episodes:
    """Per-installment collection episode arrays (rows: installments, cols: steps)."""

    done: np.ndarray
    action: np.ndarray
    outcome: np.ndarray
    h: np.ndarray
    propensity: np.ndarray
    cured_step: np.ndarray  # -1: not cured by day 30
    pay_day: np.ndarray  # day the cure pays, -1 if not cured
    partial_day: np.ndarray
    partial_frac: np.ndarray


def _run_episodes(rng, x: pd.DataFrame, loan_idx: np.ndarray, due: np.ndarray, missed: np.ndarray,
                  cfg: SimulateSettings) -> _Episodes:
    """Play the legacy policy on every missed installment until it cures or day 30 passes."""
    n, s = len(due), len(STEP_DAYS)
    ep = _Episodes(
        done=np.zeros((n, s), bool), action=np.zeros((n, s), np.int64), outcome=np.full((n, s), "", dtype=object),
        h=np.zeros((n, s)), propensity=np.zeros((n, s)), cured_step=np.full(n, -1),
        pay_day=np.full(n, -1, np.int64), partial_day=np.full(n, -1, np.int64), partial_frac=np.zeros(n),
    )
    open_ = missed.copy()
    for j, offset in enumerate(STEP_DAYS):
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            break
        xi = x.iloc[loan_idx[idx]]
        probs = legacy_policy_probs(xi, j, cfg.policy_epsilon)
        chosen = _sample_rows(rng, probs)
        h = _sigmoid(action_cure_logits(xi, j, cfg.cure_shift)[np.arange(idx.size), chosen])
        success = rng.random(idx.size) < h
        outcomes = _draw_outcomes(rng, chosen, success)
        ep.done[idx, j] = True
        ep.action[idx, j], ep.outcome[idx, j], ep.h[idx, j] = chosen, outcomes, h
        ep.propensity[idx, j] = probs[np.arange(idx.size), chosen]
        cured = idx[success]
        ep.cured_step[cured] = j
        ep.pay_day[cured] = due[cured] + offset + _payment_delay(outcomes[success])
        partial = (~success) & np.isin(outcomes, ["reached", "promise_to_pay"]) & (chosen >= ACTIONS.index("call"))
        partial &= rng.random(idx.size) < _PARTIAL_SHARE
        p_idx = idx[partial]
        ep.partial_day[p_idx] = due[p_idx] + offset
        ep.partial_frac[p_idx] = np.clip(ep.partial_frac[p_idx] + rng.uniform(0.2, 0.6, p_idx.size), 0, 0.9)
        open_[cured] = False
    return ep


def _expected_step_fail(loans_x: pd.DataFrame, cfg: SimulateSettings) -> np.ndarray:
    """Per loan and step: P(the legacy decision does not cure), averaged over the policy."""
    cols = []
    for j in range(len(STEP_DAYS)):
        probs = legacy_policy_probs(loans_x, j, cfg.policy_epsilon)
        h = _sigmoid(action_cure_logits(loans_x, j, cfg.cure_shift))
        cols.append(1.0 - (probs * h).sum(axis=1))
    return np.column_stack(cols)


# ---------------------------------------------------------------- the whole book


def simulate_book(cfg: SimulateSettings, snapshots: list[pd.Timestamp] | None = None,
                  horizon_days: int = 60, default_dpd: int = 30, progress: bool = True) -> Book:
    """Simulate the loan book; `snapshots` + `horizon_days` define the oracle grid."""
    rng = np.random.default_rng(cfg.seed)
    start_day = int(pd.Timestamp(cfg.start_date).value // 86_400_000_000_000)
    as_of_day = int(cfg.as_of.value // 86_400_000_000_000)
    people = draw_borrowers(rng, cfg)
    gens: list[dict] = []
    eligible = np.ones(len(people), bool)
    next_day = rng.integers(start_day, as_of_day, len(people))
    first_day = next_day.copy()
    loan_offset = 0
    for gen in tqdm(range(cfg.max_loans_per_borrower), desc="simulate loans", disable=not progress):
        take = eligible & (next_day < as_of_day - 5) & (people["extra_loans"].to_numpy() >= gen)
        if not take.any():
            break
        g = _simulate_generation(rng, people[take].reset_index(drop=True), next_day[take], first_day[take],
                                 gen, loan_offset, cfg)
        gens.append(g)
        loan_offset += int(take.sum())
        clean = ~g["defaulted"]
        taken_idx = np.flatnonzero(take)
        eligible[:] = False
        eligible[taken_idx[clean]] = True
        next_day[taken_idx] = g["last_due"] + rng.integers(5, 90, taken_idx.size)
    return _assemble(gens, people, cfg, as_of_day, snapshots, horizon_days, default_dpd)


def _simulate_generation(rng, people, disb_day, first_day, gen, loan_offset, cfg) -> dict:
    apps = _applications(rng, people, disb_day, gen, cfg)
    n = len(apps)
    apps.insert(1, "loan_id", np.arange(loan_offset + 1, loan_offset + n + 1, dtype=np.int64))
    x = apps[["loan_id", "amount", "age", "device_os"]].assign(
        z=people["z"].to_numpy(), hardship=people["hardship"].to_numpy())
    term = apps["term_months"].to_numpy()
    loan_idx = np.repeat(np.arange(n), term)
    seq = np.concatenate([np.arange(1, t + 1) for t in term]) if n else np.array([], int)
    due = disb_day[loan_idx] + 30 * seq
    annuity = _annuity(apps["amount"].to_numpy(), apps["rate"].to_numpy(), term)[loan_idx]
    income = apps["declared_income"].to_numpy()[loan_idx]
    months_on_book = (due - first_day[loan_idx]) / 30.0
    miss_logit = (cfg.base_miss_logit + cfg.risk_weight * x["z"].to_numpy()[loan_idx]
                  + people["drift"].to_numpy()[loan_idx] * months_on_book
                  + 0.35 * np.log(annuity / income / 0.15) + _season(due)
                  + 0.9 * x["hardship"].to_numpy()[loan_idx])
    p_miss = _sigmoid(miss_logit)
    missed = rng.random(due.size) < p_miss
    ep = _run_episodes(rng, x, loan_idx, due, missed, cfg)
    failed = missed & (ep.cured_step < 0)
    # first defaulted installment per loan: later ones spiral (missed, no early collection)
    fail_seq = np.where(failed, seq, 10_000)
    default_seq = np.full(n, 10_000)
    np.minimum.at(default_seq, loan_idx, fail_seq)
    spiral = seq > default_seq[loan_idx]
    live = missed & ~spiral  # installments whose early-collection episode really happened
    return dict(apps=apps, x=x, loan_idx=loan_idx, seq=seq, due=due, annuity=annuity, p_miss=p_miss,
                missed=missed, live=live, spiral=spiral, ep=ep, default_seq=default_seq,
                defaulted=default_seq < 10_000, last_due=disb_day + 30 * term,
                step_fail=_expected_step_fail(x, cfg), people=people, disb_day=disb_day)


def _assemble(gens, people, cfg, as_of_day, snapshots, horizon_days, default_dpd) -> Book:
    rng = np.random.default_rng(cfg.seed + 1)
    apps, inst, actions, callbacks, inst_truth, effects, oracles = [], [], [], [], [], [], []
    for g in gens:
        paid_day, amount_paid, rec_actions = _payments(rng, g, cfg)
        apps.append(g["apps"])
        inst.append(_installment_table(g, paid_day, amount_paid, as_of_day))
        actions.append(_early_actions_table(rng, g))
        actions.append(rec_actions)
        callbacks.append(_callbacks(rng, g))
        inst_truth.append(pd.DataFrame({"loan_id": g["apps"]["loan_id"].to_numpy()[g["loan_idx"]], "seq": g["seq"],
                                        "p_miss": g["p_miss"], "missed": g["missed"] | g["spiral"]}))
        effects.append(_effects_truth(g, cfg))
        if snapshots and cfg.write_oracle:
            oracles.append(oracle_probabilities(g, paid_day, amount_paid, snapshots, horizon_days, default_dpd))
    applications = pd.concat(apps, ignore_index=True).sort_values("loan_id", ignore_index=True)
    action_table = pd.concat(actions, ignore_index=True)
    action_table = action_table[action_table["action_at"] < pd.Timestamp(as_of_day, unit="D")]
    action_table = action_table.sort_values(["loan_id", "action_at"], ignore_index=True)
    callbacks_t = pd.concat(callbacks, ignore_index=True)
    callbacks_t = callbacks_t[callbacks_t["called_at"] < pd.Timestamp(as_of_day, unit="D")].reset_index(drop=True)
    truth = {
        "borrowers": people[["borrower_id", "z", "drift", "hardship"]],
        "installments": pd.concat(inst_truth, ignore_index=True),
        "action_effects": pd.concat(effects, ignore_index=True),
    }
    if oracles:
        truth["oracle"] = pd.concat(oracles, ignore_index=True)
    return Book(applications, callbacks_t, pd.concat(inst, ignore_index=True), action_table, truth)


def _payments(rng, g: dict, cfg) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Final payment day and amount of every installment, plus logged recovery actions."""
    due, ep, annuity = g["due"], g["ep"], g["annuity"]
    missed, live, spiral = g["missed"], g["live"], g["spiral"]
    paid_day = np.where(missed | spiral, -1, due - rng.integers(0, 6, due.size))
    paid_day = np.where(live & (ep.pay_day >= 0), ep.pay_day, paid_day)
    amount_paid = np.where(paid_day >= 0, annuity, 0.0)
    partial = live & (ep.pay_day < 0) & (ep.partial_day >= 0)
    paid_day = np.where(partial, ep.partial_day, paid_day)
    amount_paid = np.where(partial, np.round(annuity * ep.partial_frac, 2), amount_paid)
    recovered_day, rec_actions = _recoveries(rng, g, cfg)
    loan_rec = recovered_day[g["loan_idx"]]
    settle = (loan_rec >= 0) & (amount_paid < annuity) & (g["seq"] >= g["default_seq"][g["loan_idx"]])
    paid_day = np.where(settle, loan_rec, paid_day)
    amount_paid = np.where(settle, annuity, amount_paid)
    return paid_day, amount_paid, rec_actions


def _recoveries(rng, g: dict, cfg) -> tuple[np.ndarray, pd.DataFrame]:
    n = len(g["apps"])
    recovered_day = np.full(n, -1, np.int64)
    defaulted = np.flatnonzero(g["defaulted"])
    default_due = g["disb_day"] + 30 * np.minimum(g["default_seq"], 10_000)
    rows = []
    open_ = defaulted
    for offset in RECOVERY_DAYS:
        if open_.size == 0:
            break
        x = g["x"].iloc[open_]
        probs = legacy_policy_probs(x, 3, cfg.policy_epsilon, recovery=True)
        chosen = _sample_rows(rng, probs)
        h = _sigmoid(action_cure_logits(x, 3, cfg.cure_shift)[np.arange(open_.size), chosen]) * RECOVERY_EFFECT
        success = rng.random(open_.size) < h
        outcomes = _draw_outcomes(rng, chosen, success)
        day = default_due[open_] + offset
        recovered_day[open_[success]] = day[success] + _payment_delay(outcomes[success])
        rows.append(_action_rows(rng, g["x"]["loan_id"].to_numpy()[open_], day, chosen, outcomes,
                                 probs[np.arange(open_.size), chosen], g["x"].iloc[open_], "recovery"))
        open_ = open_[~success]
    empty = _action_rows(rng, np.array([], np.int64), np.array([], np.int64), np.array([], np.int64),
                         np.array([], object), np.array([]), g["x"].iloc[[]], "recovery")
    return recovered_day, pd.concat(rows or [empty], ignore_index=True)


def _action_rows(rng, loan_id, day, chosen, outcomes, propensity, x, stage) -> pd.DataFrame:
    n = len(loan_id)
    channel = np.asarray(ACTIONS, dtype=object)[chosen] if n else np.array([], dtype=object)
    human = np.isin(channel, ["call", "visit", "repayment_plan"])
    collector = np.where(human, COLLECTOR_IDS[rng.integers(0, N_COLLECTORS, n)], None)
    reached = np.isin(outcomes, ["reached", "promise_to_pay", "paid", "refused"])
    hardship = x["hardship"].to_numpy().astype(bool) if n else np.array([], bool)
    sec = day * 86400 + rng.integers(9 * 3600, 20 * 3600, n)  # the legacy policy respects quiet hours
    return pd.DataFrame(
        {
            "loan_id": loan_id.astype(np.int64),
            "action_at": pd.to_datetime(sec, unit="s"),
            "channel": pd.array(channel, dtype="str"),
            "outcome": pd.array(outcomes.astype(str) if n else outcomes, dtype="str"),
            "collector_id": pd.array(collector, dtype="str"),
            "promised_amount": np.where(outcomes == "promise_to_pay", np.round(x["amount"].to_numpy() / 6, 2), np.nan),
            "hardship_reported": reached & human & hardship,
            "propensity": np.round(propensity, 6),
            "policy_stage": np.full(n, stage, dtype=object),
        }
    )


def _early_actions_table(rng, g: dict) -> pd.DataFrame:
    ep, live = g["ep"], g["live"]
    inst_rows, steps = np.nonzero(ep.done & live[:, None])
    loan_id = g["apps"]["loan_id"].to_numpy()[g["loan_idx"][inst_rows]]
    day = g["due"][inst_rows] + STEP_DAYS[steps]
    x = g["x"].iloc[g["loan_idx"][inst_rows]]
    return _action_rows(rng, loan_id, day, ep.action[inst_rows, steps], ep.outcome[inst_rows, steps].astype(str),
                        ep.propensity[inst_rows, steps], x, "early")


def _installment_table(g: dict, paid_day, amount_paid, as_of_day) -> pd.DataFrame:
    visible = (paid_day >= 0) & (paid_day < as_of_day)
    # a settlement after the extract is not known yet; an earlier partial payment may be
    partial_visible = (~visible) & (g["ep"].partial_day >= 0) & (g["ep"].partial_day < as_of_day) & g["live"]
    pday = np.where(visible, paid_day, np.where(partial_visible, g["ep"].partial_day, -1))
    amt = np.where(visible, amount_paid,
                   np.where(partial_visible, np.round(g["annuity"] * g["ep"].partial_frac, 2), 0.0))
    paid_date = pd.to_datetime(np.where(pday >= 0, pday, 0), unit="D")
    return pd.DataFrame(
        {
            "loan_id": g["apps"]["loan_id"].to_numpy()[g["loan_idx"]],
            "seq": g["seq"].astype(np.int64),
            "due_date": pd.to_datetime(g["due"], unit="D"),
            "amount_due": g["annuity"],
            "paid_date": paid_date.where(pday >= 0),
            "amount_paid": amt,
        }
    )


def _callbacks(rng, g: dict) -> pd.DataFrame:
    apps, x = g["apps"], g["x"]
    n = len(apps)
    z = x["z"].to_numpy()
    called = rng.random(n) > 0.05  # ops capacity: 5 % of loans never get a callback (uninformative)
    new_sim = (apps["phone_age_months"].to_numpy() < 6).astype(float)
    p_reach = _sigmoid(1.1 - 0.55 * z - 0.7 * new_sim)
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
    other = reached & (rng.random(n) < _sigmoid(-2.6 + 0.65 * z))
    skipped = reached & ~other & (rng.random(n) < _sigmoid(-2.8 + 0.6 * z))
    answered = reached & ~other & ~skipped
    identity = np.where(answered, rng.random(n) > _sigmoid(-3.6 + 0.7 * z), False)
    purpose_mismatch = rng.random(n) < _sigmoid(-2.3 + 0.75 * z)
    declared_purpose = apps["purpose"].to_numpy()
    other_purpose = np.asarray(PURPOSES, dtype=object)[rng.integers(0, len(PURPOSES), n)]
    stated_purpose = np.where(purpose_mismatch & (other_purpose != declared_purpose), other_purpose, declared_purpose)
    stated_income = np.round(apps["declared_income"].to_numpy()
                             * np.exp(rng.normal(-0.1 * np.maximum(z, 0) - 0.02, 0.12, n)), -1)
    employer_mismatch = rng.random(n) < _sigmoid(-2.7 + 0.7 * z)
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


def _effects_truth(g: dict, cfg: SimulateSettings) -> pd.DataFrame:
    """True cure probability of every action at the first decision of each live episode."""
    idx = np.flatnonzero(g["live"])
    x = g["x"].iloc[g["loan_idx"][idx]]
    h = _sigmoid(action_cure_logits(x, 0, cfg.cure_shift))
    out = pd.DataFrame(h, columns=[f"p_cure_{a}" for a in ACTIONS])
    out.insert(0, "seq", g["seq"][idx])
    out.insert(0, "loan_id", x["loan_id"].to_numpy())
    return out


# ---------------------------------------------------------------- exact oracle


def oracle_probabilities(g: dict, paid_day: np.ndarray, amount_paid: np.ndarray, snapshots: list[pd.Timestamp],
                         horizon_days: int, default_dpd: int) -> pd.DataFrame:
    """True P(loan first reaches `default_dpd` in (T, T+H]) given the latent state and the log before T.

    Installments are independent given the latent state, so the loan survives the window
    if every installment whose default day (due + default_dpd) falls in it is cured:
    future due dates contribute p_miss * prod_j E_policy[fail_j]; an episode in progress
    at T contributes the posterior of its pending decision times the remaining steps.
    """
    due, ep, loan_idx = g["due"], g["ep"], g["loan_idx"]
    step_fail = g["step_fail"][loan_idx]
    post = np.zeros_like(ep.h)
    for j in range(len(STEP_DAYS)):
        rows = ep.done[:, j]
        post[rows, j] = success_posterior(ep.action[rows, j], ep.outcome[rows, j], ep.h[rows, j])
    delay = np.where(ep.done, _payment_delay(ep.outcome.astype(str)), 0)
    settled_day = np.where(amount_paid >= g["annuity"] - 0.01, paid_day, -1)
    loan_ids = g["apps"]["loan_id"].to_numpy()
    out = []
    for snap in snapshots:
        t = int(snap.value // 86_400_000_000_000)
        fail = _installment_fail_prob(t, due, g["p_miss"], step_fail, ep, post, delay, settled_day)
        in_window = (due + default_dpd > t) & (due + default_dpd <= t + horizon_days)
        log_survive = np.zeros(len(loan_ids))
        np.add.at(log_survive, loan_idx[in_window], np.log1p(-np.clip(fail[in_window], 0, 1 - 1e-12)))
        active = g["disb_day"] < t
        out.append(pd.DataFrame({"loan_id": loan_ids[active], "snapshot_date": snap,
                                 "p_true": 1 - np.exp(log_survive[active])}))
    return pd.concat(out, ignore_index=True)


def _installment_fail_prob(t, due, p_miss, step_fail, ep, post, delay, settled_day) -> np.ndarray:
    future = due >= t
    fail = np.where(future, p_miss * step_fail.prod(axis=1), 0.0)
    past_open = (~future) & ~((settled_day >= 0) & (settled_day < t))
    factor = np.ones(len(due))
    for j, offset in enumerate(STEP_DAYS):
        step_day = due + offset
        not_yet = step_day >= t
        pending = (~not_yet) & ep.done[:, j] & (step_day + delay[:, j] >= t)
        factor *= np.where(not_yet, step_fail[:, j], np.where(pending, 1 - post[:, j], 1.0))
    return np.where(past_open, factor, fail)


# ---------------------------------------------------------------- stage entry point


def run(settings) -> dict:
    """`huishou simulate`: write the raw tables, their manifest and the hidden truth."""
    from pathlib import Path

    from huishou.io import write_json, write_parquet
    from huishou.truth import write_truth

    f = settings.features
    book = simulate_book(settings.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd)
    raw_dir = Path(settings.data.raw_dir)
    for name, frame in book.raw_tables().items():
        write_parquet(frame, raw_dir / f"{name}.parquet")
    manifest = {"source": "simulated", "as_of": str(settings.simulate.as_of.date()),
                "tables": {k: len(v) for k, v in book.raw_tables().items()}}
    write_json(manifest, raw_dir / "manifest.json")
    write_truth(book.truth, settings.data.truth_dir)
    return manifest
