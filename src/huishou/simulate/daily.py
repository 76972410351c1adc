"""The simulated world day by day, for closed-loop evaluation: what each day's actions do to the book.

The episode simulator (collection.py) draws one outcome per legacy decision step (days 1, 8, 15, 22 of an
episode; every 15-25 days after default). A policy evaluated in a closed loop acts every day, so the same
true effects are read as daily chances here:

* no action: the borrower self-cures with the daily hazard that gives the step's no-action cure chance over
  the step (7 days early, `recovery_step_days` after default);
* an action on day d: the day's cure chance is set so that the action followed by nothing for the rest of
  the step cures with the true chance of that action at that step (action_cure_logits), i.e. the same
  world the logged data came from;
* contact fatigue (assumption, docs/simulator-sources.md): the lift of a contact over doing nothing shrinks by
  the factor `fatigue` for every contact the borrower had in the 7 days before;
* heterogeneity (assumption): the part of each action's effect that depends on the borrower (age, device,
  amount, hardship) is scaled by `heterogeneity` (1: the logged world);
* a contact that does not cure ends as no answer, reached, refused, a wrong number or a broken promise, with
  the channel's mix (collection.py); a cure is a payment today or a kept promise paid two days later;
* a reached call, visit or plan talk reveals hardship the borrower is in (hardship_reported);
* complaints: complaint_probability (contacts in the 7 days before, hardship known) times the channel's factor
  `complaint_channel` (assumption); a complaint opens a 30-day hold; messages bring opt-outs and reached voice
  contacts cease requests at the simulator's rates (conduct.py);
* an installment falling due is paid on time or missed by its true miss chance, shifted by the latest
  reminder in the `pre_due_window` days before (pre_due_shift); a loan already overdue misses it.

Every draw comes from uniforms fixed per (seed, day, loan), so policies compared on a seed meet the same luck
(common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from huishou.core.vocab import ACTIONS, HUMAN, REACHED
from huishou.simulate.collection import (
    _BASE_EFFECT,
    _FAIL_OUTCOMES,
    _SUCCESS_PROMISE_SHARE,
    PRE_DUE_ACTIONS,
    PROMISE_DELAY,
    RECOVERY_EFFECT,
    action_cure_logits,
    complaint_probability,
    pre_due_shift,
)
from huishou.simulate.conduct import CEASE_RATE, COMPLAINT_HOLD_DAYS, OPT_OUT_RATE
from huishou.simulate.generation import sigmoid

EARLY_STEP_DAYS = 7  # the legacy policy's early decisions are a week apart (STEP_DAYS)
DRAWS = ("cure", "promise", "outcome", "complaint", "conduct", "due")  # one uniform per loan and day for each


@dataclass(frozen=True)
class WorldParams:
    """The knobs of one world (params.yaml strategy.closed_loop.worlds.<name>); see the module docstring."""

    fatigue: float
    heterogeneity: float
    recovery_step_days: int
    complaint_channel: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict) -> WorldParams:
        return cls(
            float(raw["fatigue"]),
            float(raw["heterogeneity"]),
            int(raw["recovery_step_days"]),
            {str(k): float(v) for k, v in raw["complaint_channel"].items()},
        )


class Luck:
    """Uniform draws fixed by (seed, day) over the loans of the loop: the same for every policy."""

    def __init__(self, seed: int, loan_ids: np.ndarray):
        self.seed = int(seed)
        self.position = pd.Index(np.asarray(loan_ids, dtype=np.int64))

    def day(self, day: pd.Timestamp, loan_ids) -> dict[str, np.ndarray]:
        ordinal = int(pd.Timestamp(day).toordinal())
        table = np.random.default_rng([self.seed, ordinal]).random((len(DRAWS), len(self.position)))
        at = self.position.get_indexer(np.asarray(loan_ids, dtype=np.int64))
        if (at < 0).any():
            raise ValueError("a loan outside the loop's book drew luck")
        return {name: table[k, at] for k, name in enumerate(DRAWS)}


def _scaled_logits(x: pd.DataFrame, step: int, shift: float, heterogeneity: float) -> np.ndarray:
    """True per-decision cure log-odds with the borrower-dependent part of each action scaled."""
    full = action_cure_logits(x, step, shift)
    if heterogeneity == 1.0:
        return full
    common = shift - 0.55 * x["z"].to_numpy() - 0.12 * step
    base = np.array([_BASE_EFFECT[a] for a in ACTIONS])
    plain = common[:, None] + base[None, :]
    return plain + heterogeneity * (full - plain)


def daily_cure(x: pd.DataFrame, world: WorldParams, shift: float) -> np.ndarray:
    """True chance, per candidate row and action, that the account cures today when the action is taken today
    (columns ACTIONS; 'none' is the daily self-cure hazard). `x` needs stage, step, contacts_7d and the
    borrower's truth (z, hardship, age, device_os, amount)."""
    out = np.zeros((len(x), len(ACTIONS)))
    for stage, days, effect in (
        ("early", EARLY_STEP_DAYS, 1.0),
        ("recovery", world.recovery_step_days, RECOVERY_EFFECT),
    ):
        rows = (x["stage"] == stage).to_numpy()
        if not rows.any():
            continue
        xs = x[rows]
        steps = xs["step"].fillna(0).clip(0, 3).astype(int).to_numpy() if stage == "early" else np.full(rows.sum(), 3)
        p_step = np.zeros((rows.sum(), len(ACTIONS)))
        for step in np.unique(steps):
            at = steps == step
            p_step[at] = sigmoid(_scaled_logits(xs[at], int(step), shift, world.heterogeneity)) * effect
        none = p_step[:, ACTIONS.index("none")]
        hazard = 1.0 - (1.0 - none) ** (1.0 / days)
        rest = (1.0 - hazard) ** (days - 1)  # nothing happens on the other days of the step
        today = np.clip(1.0 - (1.0 - p_step) / rest[:, None], hazard[:, None], 1.0)
        lift = today - hazard[:, None]
        tired = world.fatigue ** xs["contacts_7d"].fillna(0).to_numpy(dtype=float)
        block = hazard[:, None] + lift * tired[:, None]
        block[:, ACTIONS.index("none")] = hazard
        out[rows] = block
    return out


def pre_due_on_time(x: pd.DataFrame, miss_logit: np.ndarray, reminder: np.ndarray) -> np.ndarray:
    """True chance that an installment falling due is paid on time, given the latest reminder before it
    (one of PRE_DUE_ACTIONS, or 'none')."""
    shift = pre_due_shift(x)
    col = pd.Index(PRE_DUE_ACTIONS).get_indexer(reminder)
    col = np.where(col < 0, 0, col)
    return 1.0 - sigmoid(miss_logit + shift[np.arange(len(x)), col])


def complaint_chance(x: pd.DataFrame, action: np.ndarray, world: WorldParams) -> np.ndarray:
    """True chance that today's contact (action) draws a complaint: the simulator's curve (contacts in the 7
    days before, hardship already known; the plans keep lawful hours and wishes) times the channel's factor."""
    base = complaint_probability(
        x["contacts_7d"].fillna(0).to_numpy(dtype=float), 0, 0, x["hardship_reported"].fillna(0).to_numpy() > 0
    )
    factor = np.array([world.complaint_channel.get(a, 1.0) for a in action])
    return np.where(np.asarray(action) == "none", 0.0, np.clip(base * factor, 0.0, 1.0))


def outcomes(
    x: pd.DataFrame, action: np.ndarray, p_cure: np.ndarray, luck: dict[str, np.ndarray], world: WorldParams
) -> pd.DataFrame:
    """What today's actions bring, per candidate row: cured (and whether by a promise paid PROMISE_DELAY days
    later), the logged outcome, hardship revealed, a complaint, an opt-out or a cease request."""
    action = np.asarray(action, dtype=object)
    col = pd.Index(ACTIONS).get_indexer(action)
    p = p_cure[np.arange(len(x)), col]
    cured = luck["cure"] < p
    contact = action != "none"
    promise = cured & contact & (luck["promise"] < _SUCCESS_PROMISE_SHARE)
    outcome = np.where(cured, np.where(promise, "promise_to_pay", "paid"), "none").astype(object)
    for a in set(action[contact & ~cured]):
        rows = (action == a) & contact & ~cured
        names, probs = zip(*_FAIL_OUTCOMES[a].items(), strict=True)
        edges = np.cumsum(probs) / sum(probs)
        pick = np.minimum(np.searchsorted(edges, luck["outcome"][rows], side="right"), len(names) - 1)
        outcome[rows] = np.asarray(names, dtype=object)[pick]
    reached = np.isin(outcome, list(REACHED)) & contact
    human = np.isin(action, list(HUMAN))
    hardship = x["hardship"].to_numpy().astype(bool) & reached & human
    complaint = contact & (luck["complaint"] < complaint_chance(x, action, world))
    message = np.isin(action, ("sms", "app_push", "email_letter"))
    opt_out = message & ~complaint & (luck["conduct"] < OPT_OUT_RATE)
    voice = np.isin(action, ("call", "visit")) & reached
    cease = voice & ~complaint & (luck["conduct"] < CEASE_RATE)
    return pd.DataFrame(
        {
            "cured": cured,
            "pay_delay": np.where(promise, PROMISE_DELAY, 0),
            "outcome": outcome,
            "hardship_reported": hardship,
            "complaint": complaint,
            "opt_out": opt_out,
            "cease": cease,
        },
        index=x.index,
    )


HOLD_DAYS = COMPLAINT_HOLD_DAYS
