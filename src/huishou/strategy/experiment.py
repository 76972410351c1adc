"""Randomised champion / challenger on the published worklists: arms, their assignment, the probability of
every published decision, and the readout with confidence intervals and a sample-size calculator.

Arms (strategy.experiment.arms, shares summing to 1):
* champion: the strategy as params.yaml sets it;
* challenger: the same strategy with strategy.experiment.challenger's overrides (say a higher complaint cost);
* ladder: the business-as-usual DPD ladder;
* random_lawful: a lawful action drawn uniformly (exploration: keeps every action's effect learnable).

A borrower's arm is a salted hash of (experiment name, borrower id): stable for the experiment's life across
days and runs, independent of everything the plan knows, and re-drawn by naming a new experiment. Each arm
plans its borrowers with its share of the collectors' minutes and of the agencies' capacity.

The logged propensity of a published action is its probability under the design: the sum over arms of the
arm's share times the chance that arm takes the action for this loan (1 or 0 for the deterministic arms,
judged by their choice without capacity; 1/k for the random arm over its k lawful options).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

ARMS = ("champion", "challenger", "ladder", "random_lawful")


@dataclass(frozen=True)
class Design:
    """strategy.experiment: the experiment's name (the salt), arm shares and the challenger's overrides."""

    name: str
    shares: dict[str, float]
    challenger: dict = field(default_factory=dict)

    @classmethod
    def from_settings(cls, experiment: dict) -> Design:
        shares = {a: float(s) for a, s in (experiment.get("arms") or {"champion": 1.0}).items() if float(s) > 0}
        return cls(str(experiment.get("name", "")), shares, dict(experiment.get("challenger") or {}))

    @property
    def active(self) -> bool:
        return set(self.shares) != {"champion"}


class Overridden:
    """Strategy settings with some values replaced (the challenger's), everything else read through."""

    def __init__(self, base, overrides: dict):
        self._base, self._overrides = base, dict(overrides)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._overrides[name] if name in self._overrides else getattr(self._base, name)


def assign_arms(borrower_ids, name: str, shares: dict[str, float]) -> np.ndarray:
    """The arm of each borrower: SHA-256 of "name:borrower_id" as a uniform number, cut by the shares."""
    ids = pd.Series(borrower_ids).astype("int64").to_numpy()
    unique, inverse = np.unique(ids, return_inverse=True)
    u = np.array([int.from_bytes(hashlib.sha256(f"{name}:{b}".encode()).digest()[:8], "big") / 2**64 for b in unique])
    arms = list(shares)
    cuts = np.cumsum([shares[a] for a in arms])
    cuts[-1] = 1.0 + 1e-12
    return np.asarray(arms, dtype=object)[np.searchsorted(cuts, u, side="right")][inverse]


def propensities(
    taken: pd.Series,
    arm: np.ndarray,
    unconstrained: dict[str, pd.Series],
    allowed: pd.DataFrame,
    shares: dict[str, float],
) -> np.ndarray:
    """P(the published action | the loan) under the design (see the module's doc)."""
    p = np.zeros(len(taken))
    lawful = allowed.to_numpy().sum(axis=1)
    for a, share in shares.items():
        if a == "random_lawful":
            p += share * allowed.to_numpy()[np.arange(len(taken)), allowed.columns.get_indexer(taken)] / lawful
        else:
            would = (unconstrained[a] == taken).to_numpy()
            own = arm == a  # the arm that planned it took it, whatever its choice without capacity
            p += share * (would | own)
    return np.clip(p, 1e-6, 1.0)


def random_lawful(allowed: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """A lawful action drawn uniformly per row."""
    options = allowed.to_numpy()
    draws = rng.random(len(allowed))
    cols = np.asarray(allowed.columns, dtype=object)
    out = []
    for row, d in zip(options, draws, strict=True):
        lawful = cols[row]
        out.append(lawful[int(d * len(lawful))] if len(lawful) else "none")
    return pd.Series(out, index=allowed.index, dtype=object)


# ---------------------------------------------------------------- readout


def readout(
    units: pd.DataFrame, control: str = "ladder", alpha: float = 0.05, metrics: tuple[str, ...] | None = None
) -> dict:
    """Per arm: accounts and the mean of each metric per borrower; per arm against `control`: the difference
    with its (1 - alpha) confidence interval (Welch, at borrower level: a borrower's loans move together).

    units: one row per decision with columns borrower_id, arm and the metrics (recovery, cured, contacts,
    cost, complaints ...).
    """
    metrics = metrics or tuple(c for c in units.columns if c not in ("borrower_id", "arm", "loan_id", "stage"))
    per_borrower = units.groupby(["arm", "borrower_id"])[list(metrics)].sum().reset_index()
    z = stats.norm.ppf(1 - alpha / 2)
    out: dict = {"control": control, "alpha": alpha, "arms": {}, "vs_control": {}}
    groups = {a: g for a, g in per_borrower.groupby("arm")}
    for arm, g in groups.items():
        out["arms"][arm] = {"borrowers": len(g), "decisions": int((units["arm"] == arm).sum())} | {
            m: float(g[m].mean()) for m in metrics
        }
    if control not in groups:
        return out
    base = groups[control]
    for arm, g in groups.items():
        if arm == control:
            continue
        entry = {}
        for m in metrics:
            diff = float(g[m].mean() - base[m].mean())
            se = float(np.sqrt(g[m].var(ddof=1) / len(g) + base[m].var(ddof=1) / len(base)))
            entry[m] = {"difference": diff, "low": diff - z * se, "high": diff + z * se, "se": se}
        out["vs_control"][arm] = entry
    return out


def sample_size(sd: float, delta: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> dict:
    """Borrowers needed to detect a difference `delta` in a per-borrower mean with standard deviation `sd`
    (two-sided test at `alpha` with `power`); `ratio` = treatment borrowers per control borrower.

    n_control = (z_{1-alpha/2} + z_power)^2 * sd^2 * (1 + 1/ratio) / delta^2 (normal approximation).
    """
    if delta <= 0 or sd <= 0:
        raise ValueError("delta and sd must be positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    control = int(np.ceil(z**2 * sd**2 * (1 + 1 / ratio) / delta**2))
    treated = int(np.ceil(control * ratio))
    return {"control": control, "treatment": treated, "total": control + treated}


def detectable_difference(sd: float, n_control: int, n_treated: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference the experiment's arms detect with `power` (the inverse of sample_size)."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * sd * np.sqrt(1 / n_control + 1 / n_treated))
