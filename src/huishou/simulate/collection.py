"""Collection mechanics of the simulated world: true action effects, the logged legacy policy,
outcomes, the early-collection episodes and recovery after default.

Heterogeneous effects are the point: app push works for the young and iOS users, calls for
older borrowers, visits for large amounts, repayment plans for borrowers in hardship. The
constants below are the simulated world's physics (when the legacy policy acts, how payments
follow a cure), not tunables of huishou; the tunables are in params.yaml `simulate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.core.settings import SimulateSettings
from huishou.core.vocab import ACTIONS, HUMAN, REACHED
from huishou.simulate.generation import Episodes, Generation, sigmoid

STEP_DAYS = np.array([1, 8, 15, 22])  # legacy policy decision days after a missed due date
RECOVERY_DAYS = np.array(
    [35, 45, 60, 75, 90, 110, 130, 155, 175]
)  # legacy recovery decisions, days after the defaulted due date
RECOVERY_EFFECT = 0.6  # recovery after default is harder than early cure
PROMISE_DELAY = 2  # a kept promise pays two days after the contact
SELF_CURE_DELAY = 3  # with no action, a curing borrower pays three days after the decision
VISIT_MIN_AMOUNT = 5000.0  # legacy policy: visits only for large loans, from step 2
PRE_DUE_DAYS = 3  # the legacy policy's reminders go out three days before a due date
PRE_DUE_MIN_RATE = 0.2  # ... for loans priced at this rate or above (the riskier ones)
PRE_DUE_ACTIONS = ("none", "sms", "app_push")
SETTLEMENT_DISCOUNT = 0.2  # a settlement waives this share of what is outstanding
AGENCY_FEE = 0.25  # an external agency keeps this share of what it recovers
N_COLLECTORS = 40
COLLECTOR_IDS = np.array([f"C{i:03d}" for i in range(1, N_COLLECTORS + 1)], dtype=object)

# Base cure log-odds of each action, and the failure-outcome mix per channel.
_BASE_EFFECT = {
    "none": -2.5,
    "sms": -1.75,
    "app_push": -1.85,
    "email_letter": -2.2,
    "call": -1.15,
    "visit": -0.7,
    "repayment_plan": -1.6,
    "settlement": -1.0,
    "agency": -1.1,
}
_FAIL_OUTCOMES = {  # outcome -> probability when the action did not cure
    "sms": {"no_answer": 0.45, "reached": 0.55},
    "app_push": {"no_answer": 0.5, "reached": 0.5},
    "email_letter": {"no_answer": 0.6, "reached": 0.4},
    "call": {"no_answer": 0.42, "reached": 0.25, "refused": 0.1, "wrong_number": 0.06, "promise_to_pay": 0.17},
    "visit": {"no_answer": 0.3, "reached": 0.35, "refused": 0.15, "promise_to_pay": 0.2},
    "repayment_plan": {"reached": 0.5, "refused": 0.3, "promise_to_pay": 0.2},
    "settlement": {"reached": 0.4, "refused": 0.4, "promise_to_pay": 0.2},
    "agency": {"no_answer": 0.5, "reached": 0.3, "refused": 0.2},
}
_SUCCESS_PROMISE_SHARE = 0.5  # a cure is an immediate payment or a (kept) promise to pay
_PARTIAL_SHARE = 0.3  # a reached-but-not-cured borrower pays part of the installment


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
        "settlement": 0.6 * hardship + 0.3 * older,  # a discount moves those who can pay something
        "agency": 0.5 * np.clip(np.log(amount / 3000.0), -1, 2) - 0.2 * z,  # persistent, worth it for large debts
    }
    return np.column_stack([_BASE_EFFECT[a] + common + mods[a] for a in ACTIONS])


def pre_due_shift(b: pd.DataFrame) -> np.ndarray:
    """True shift of the miss log-odds by a reminder a few days before the due date (columns PRE_DUE_ACTIONS):
    an sms helps older borrowers most, an app push the young and iOS users."""
    age = b["age"].to_numpy()
    young, older = (age < 30).astype(float), (age >= 40).astype(float)
    ios = (b["device_os"].to_numpy() == "ios").astype(float)
    return np.column_stack([0.0 * age, -0.2 - 0.3 * older + 0.1 * young, -0.1 - 0.4 * young - 0.25 * ios])


def legacy_pre_due_probs(b: pd.DataFrame, epsilon: float) -> np.ndarray:
    """The legacy policy's reminder propensities over PRE_DUE_ACTIONS (rows sum to 1)."""
    logits = np.tile(np.array([0.6, 0.4, 0.0]), (len(b), 1))
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return (1 - epsilon) * soft + epsilon / len(PRE_DUE_ACTIONS)


def complaint_probability(contacts_7d_before, unsocial, against_wish, hardship_known) -> np.ndarray:
    """True chance that a contact draws a complaint: it rises with how often the borrower was contacted in
    the 7 days before, with contact at an unsocial local hour (before 08:00 or from 21:00), with contact
    against an opt-out or a cease request, and with pressure on a borrower known to be in hardship."""
    logit = (
        -6.0
        + 0.45 * np.asarray(contacts_7d_before, float)
        + 2.0 * np.asarray(unsocial, float)
        + 2.5 * np.asarray(against_wish, float)
        + 0.8 * np.asarray(hardship_known, float)
    )
    return sigmoid(logit)


def legacy_policy_probs(b: pd.DataFrame, step: int, epsilon: float, recovery: bool = False) -> np.ndarray:
    """Propensities of the logged legacy policy over ACTIONS (rows sum to 1).

    Escalates from messages to calls with the step, visits only for large loans late in
    the episode, leans to repayment plans for known hardship; an epsilon share is
    explored uniformly over the lawful actions so every lawful action has a propensity > 0.
    """
    n = len(b)
    amount = b["amount"].to_numpy()
    hardship = b["hardship"].to_numpy().astype(float)
    table = {  # none, sms, app_push, email_letter, call, visit, repayment_plan (+ settlement, agency below)
        0: [0.5, 1.2, 1.0, 0.0, -0.5, 0.0, -1.5],
        1: [0.0, 0.8, 0.6, 0.3, 0.8, 0.0, -0.5],
        2: [-0.3, 0.3, 0.2, 0.3, 1.3, 0.3, 0.0],
        3: [-0.5, 0.0, 0.0, 0.3, 1.2, 0.8, 0.0],
    }
    recovery_only = [0.3, 0.5] if recovery else [0.0, 0.0]  # settlement, agency: recovery only
    logits = np.tile(np.array([*table[min(step, 3)], *recovery_only], dtype=float), (n, 1))
    logits[:, ACTIONS.index("repayment_plan")] += 1.0 * hardship * (step >= 1)
    allowed = np.ones((n, len(ACTIONS)), dtype=bool)
    allowed[:, ACTIONS.index("visit")] = (amount >= VISIT_MIN_AMOUNT) & (step >= 2 or recovery)
    allowed[:, ACTIONS.index("settlement")] = recovery
    allowed[:, ACTIONS.index("agency")] = recovery
    if recovery:  # no app push after default (the account is frozen); waiting stays an option
        allowed[:, ACTIONS.index("app_push")] = False
    logits = np.where(allowed, logits, -np.inf)
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    return (1 - epsilon) * soft + epsilon * uniform


def sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
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


def payment_delay(outcomes: np.ndarray) -> np.ndarray:
    """Days from a curing decision to the payment it brings (paid: same day)."""
    return np.select([outcomes == "promise_to_pay", outcomes == "none"], [PROMISE_DELAY, SELF_CURE_DELAY], 0)


def success_posterior(action: np.ndarray, outcome: np.ndarray, h: np.ndarray) -> np.ndarray:
    """P(the decision cured | action, logged outcome), before its payment is visible."""
    q_success = np.where(outcome == "promise_to_pay", _SUCCESS_PROMISE_SHARE, 0.0)
    q_success = np.where(outcome == "none", 1.0, q_success)
    q_fail = np.array(
        [_fail_outcome_prob(ACTIONS[a], o) if o != "none" else 1.0 for a, o in zip(action, outcome, strict=True)]
    )
    num = h * q_success
    den = num + (1 - h) * q_fail
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def run_episodes(
    rng, x: pd.DataFrame, loan_idx: np.ndarray, due: np.ndarray, missed: np.ndarray, cfg: SimulateSettings
) -> Episodes:
    """Play the legacy policy on every missed installment until it cures or day 30 passes."""
    n, s = len(due), len(STEP_DAYS)
    ep = Episodes(
        done=np.zeros((n, s), bool),
        action=np.zeros((n, s), np.int64),
        outcome=np.full((n, s), "", dtype=object),
        h=np.zeros((n, s)),
        propensity=np.zeros((n, s)),
        cured_step=np.full(n, -1),
        pay_day=np.full(n, -1, np.int64),
        partial_day=np.full(n, -1, np.int64),
        partial_frac=np.zeros(n),
    )
    open_ = missed.copy()
    for j, offset in enumerate(STEP_DAYS):
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            break
        xi = x.iloc[loan_idx[idx]]
        probs = legacy_policy_probs(xi, j, cfg.policy_epsilon)
        chosen = sample_rows(rng, probs)
        h = sigmoid(action_cure_logits(xi, j, cfg.cure_shift)[np.arange(idx.size), chosen])
        success = rng.random(idx.size) < h
        outcomes = _draw_outcomes(rng, chosen, success)
        ep.done[idx, j] = True
        ep.action[idx, j], ep.outcome[idx, j], ep.h[idx, j] = chosen, outcomes, h
        ep.propensity[idx, j] = probs[np.arange(idx.size), chosen]
        cured = idx[success]
        ep.cured_step[cured] = j
        ep.pay_day[cured] = due[cured] + offset + payment_delay(outcomes[success])
        partial = (~success) & np.isin(outcomes, ["reached", "promise_to_pay"]) & (chosen >= ACTIONS.index("call"))
        partial &= rng.random(idx.size) < _PARTIAL_SHARE
        p_idx = idx[partial]
        ep.partial_day[p_idx] = due[p_idx] + offset
        ep.partial_frac[p_idx] = np.clip(ep.partial_frac[p_idx] + rng.uniform(0.2, 0.6, p_idx.size), 0, 0.9)
        open_[cured] = False
    return ep


def expected_step_fail(loans_x: pd.DataFrame, cfg: SimulateSettings) -> np.ndarray:
    """Per loan and step: P(the legacy decision does not cure), averaged over the policy."""
    cols = []
    for j in range(len(STEP_DAYS)):
        probs = legacy_policy_probs(loans_x, j, cfg.policy_epsilon)
        h = sigmoid(action_cure_logits(loans_x, j, cfg.cure_shift))
        cols.append(1.0 - (probs * h).sum(axis=1))
    return np.column_stack(cols)


def recoveries(rng, g: Generation, cfg) -> tuple[np.ndarray, pd.DataFrame]:
    n = len(g.apps)
    recovered_day = np.full(n, -1, np.int64)
    defaulted = np.flatnonzero(g.defaulted)
    default_due = g.disb_day + 30 * np.minimum(g.default_seq, 10_000)
    rows = []
    open_ = defaulted
    for offset in RECOVERY_DAYS:
        if open_.size == 0:
            break
        x = g.x.iloc[open_]
        probs = legacy_policy_probs(x, 3, cfg.policy_epsilon, recovery=True)
        chosen = sample_rows(rng, probs)
        h = sigmoid(action_cure_logits(x, 3, cfg.cure_shift)[np.arange(open_.size), chosen]) * RECOVERY_EFFECT
        success = rng.random(open_.size) < h
        outcomes = _draw_outcomes(rng, chosen, success)
        day = default_due[open_] + offset
        recovered_day[open_[success]] = day[success] + payment_delay(outcomes[success])
        rows.append(
            action_rows(
                rng,
                g.x["loan_id"].to_numpy()[open_],
                day,
                chosen,
                outcomes,
                probs[np.arange(open_.size), chosen],
                g.x.iloc[open_],
                "recovery",
                cfg.legacy_late_share,
            )
        )
        open_ = open_[~success]
    empty = action_rows(
        rng,
        np.array([], np.int64),
        np.array([], np.int64),
        np.array([], np.int64),
        np.array([], object),
        np.array([]),
        g.x.iloc[[]],
        "recovery",
    )
    return recovered_day, pd.concat(rows or [empty], ignore_index=True)


def action_rows(rng, loan_id, day, chosen, outcomes, propensity, x, stage, late_share=0.0, actions=ACTIONS):
    """Logged legacy decisions. Contacts go out 09:00-20:00 lender time, a `late_share` of calls 21:00-22:30;
    the legacy policy ignores the borrower's own time zone."""
    n = len(loan_id)
    channel = np.asarray(actions, dtype=object)[chosen] if n else np.array([], dtype=object)
    human = np.isin(channel, list(HUMAN))
    collector = np.where(human, COLLECTOR_IDS[rng.integers(0, N_COLLECTORS, n)], None)
    reached = np.isin(outcomes, list(REACHED))
    hardship = x["hardship"].to_numpy().astype(bool) if n else np.array([], bool)
    sec = day * 86400 + rng.integers(9 * 3600, 20 * 3600, n)
    late = (channel == "call") & (rng.random(n) < late_share)
    sec = np.where(late, day * 86400 + rng.integers(21 * 3600, 22 * 3600 + 1800, n), sec)
    promised = np.where(outcomes == "promise_to_pay", day + PROMISE_DELAY, -1)
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
            "promised_date": pd.to_datetime(np.where(promised >= 0, promised, 0), unit="D").where(promised >= 0),
        }
    )
