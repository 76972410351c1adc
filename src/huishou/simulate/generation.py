"""The state one generation of simulated loans carries from step to step (types only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Episodes:
    """Per-installment collection episode arrays (rows: installments, cols: decision steps)."""

    done: np.ndarray
    action: np.ndarray
    outcome: np.ndarray
    h: np.ndarray  # true cure probability of the logged action
    propensity: np.ndarray
    cured_step: np.ndarray  # -1: not cured by day 30
    pay_day: np.ndarray  # day the cure pays, -1 if not cured
    partial_day: np.ndarray
    partial_frac: np.ndarray


@dataclass
class Generation:
    """One generation of loans (a borrower's first, second ... loan), per loan and per installment.

    Days are integer days since 1970-01-01. Per-installment arrays are indexed like `loan_idx`
    (the installment's loan row in `apps`).
    """

    apps: pd.DataFrame  # the applications table rows of this generation
    x: pd.DataFrame  # per loan: loan_id, amount, age, device_os and the latent z, hardship
    people: pd.DataFrame  # the borrowers of this generation
    disb_day: np.ndarray  # per loan: disbursal day
    last_due: np.ndarray  # per loan: day of the last due date
    step_fail: np.ndarray  # per loan and decision step: P(the legacy decision does not cure)
    default_seq: np.ndarray  # per loan: seq of the first defaulted installment (10_000: none)
    defaulted: np.ndarray  # per loan: ever defaulted
    loan_idx: np.ndarray  # per installment: its loan row
    seq: np.ndarray
    due: np.ndarray
    annuity: np.ndarray
    p_miss: np.ndarray  # true probability that the due date is missed (after the logged reminder, if any)
    miss_logit: np.ndarray  # the miss log-odds before any reminder
    pre_considered: np.ndarray  # the legacy policy decided about a reminder PRE_DUE_DAYS before the due date
    pre_action: np.ndarray  # its choice, an index into PRE_DUE_ACTIONS (-1: not considered)
    pre_probs: np.ndarray  # its propensities (rows: installments, columns: PRE_DUE_ACTIONS)
    pre_shift: np.ndarray  # the true shift of the miss log-odds by each reminder
    missed: np.ndarray
    live: np.ndarray  # missed, and its early-collection episode really happened
    spiral: np.ndarray  # due after the loan defaulted: missed without an episode
    ep: Episodes
