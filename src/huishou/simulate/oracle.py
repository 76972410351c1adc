"""The exact oracle: true P(a loan first reaches `default_dpd` in (T, T+H]) given the latent state.

Installments are independent given the latent state, so the loan survives the window if every
installment whose default day (due + default_dpd) falls in it is cured: future due dates
contribute p_miss * prod_j E_policy[fail_j]; an episode in progress at T contributes the posterior
of its pending decision times the remaining steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.simulate.collection import PRE_DUE_DAYS, STEP_DAYS, payment_delay, success_posterior
from huishou.simulate.generation import Generation, sigmoid


def oracle_probabilities(
    g: Generation,
    paid_day: np.ndarray,
    amount_paid: np.ndarray,
    snapshots: list[pd.Timestamp],
    horizon_days: int,
    default_dpd: int,
) -> pd.DataFrame:
    """True P(loan first reaches `default_dpd` in (T, T+H]) given the latent state and the log before T.

    Installments are independent given the latent state, so the loan survives the window
    if every installment whose default day (due + default_dpd) falls in it is cured:
    future due dates contribute p_miss * prod_j E_policy[fail_j]; an episode in progress
    at T contributes the posterior of its pending decision times the remaining steps.
    """
    due, ep, loan_idx = g.due, g.ep, g.loan_idx
    step_fail = g.step_fail[loan_idx]
    post = np.zeros_like(ep.h)
    for j in range(len(STEP_DAYS)):
        rows = ep.done[:, j]
        post[rows, j] = success_posterior(ep.action[rows, j], ep.outcome[rows, j], ep.h[rows, j])
    delay = np.where(ep.done, payment_delay(ep.outcome.astype(str)), 0)
    settled_day = np.where(amount_paid >= g.annuity - 0.01, paid_day, -1)
    loan_ids = g.apps["loan_id"].to_numpy()
    out = []
    for snap in snapshots:
        t = int(snap.value // 86_400_000_000_000)
        fail = _installment_fail_prob(t, due, _p_miss_at(g, t), step_fail, ep, post, delay, settled_day)
        in_window = (due + default_dpd > t) & (due + default_dpd <= t + horizon_days)
        log_survive = np.zeros(len(loan_ids))
        np.add.at(log_survive, loan_idx[in_window], np.log1p(-np.clip(fail[in_window], 0, 1 - 1e-12)))
        active = g.disb_day < t
        out.append(
            pd.DataFrame(
                {"loan_id": loan_ids[active], "snapshot_date": snap, "p_true": 1 - np.exp(log_survive[active])}
            )
        )
    return pd.concat(out, ignore_index=True)


def _p_miss_at(g: Generation, t: int) -> np.ndarray:
    """P(miss) as known at T: after the logged reminder where its decision came before T, else averaged over
    the legacy reminder policy (installments it does not consider have no reminder)."""
    expected = (g.pre_probs * sigmoid(g.miss_logit[:, None] + g.pre_shift)).sum(axis=1)
    decided = g.due - PRE_DUE_DAYS < t
    return np.where(g.pre_considered & ~decided, expected, g.p_miss)


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
