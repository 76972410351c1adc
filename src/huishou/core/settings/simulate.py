"""Settings of the simulated loan book."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class SimulateSettings:
    """Knobs of the built-in simulated loan book (see huishou.simulate)."""

    seed: int
    n_borrowers: int
    start_date: str
    months: int
    extra_loans_mean: float
    max_loans_per_borrower: int
    term_mix: dict[int, float]
    base_miss_logit: float
    risk_weight: float
    drift_sd: float
    hardship_rate: float
    policy_epsilon: float
    cure_shift: float
    lender_score_noise: float
    write_oracle: bool
    write_collection_log: bool
    chunk_borrowers: int
    timezones: dict[str, float]
    languages: dict[str, float]
    legacy_late_share: float

    @property
    def as_of(self) -> pd.Timestamp:
        """Extract date: events on or after it are not in the book yet."""
        return pd.Timestamp(self.start_date) + pd.DateOffset(months=self.months)
