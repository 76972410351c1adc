"""Portfolio monitoring for the risk team: roll and flow rates, vintages, entry, cure and recovery rates,
operations KPIs (DuckDB SQL over the validated book)."""

from huishou.portfolio.rates import (
    BUCKETS,
    FLOWS,
    bucket_history,
    cure_curve,
    entry_rates,
    month_ends,
    operations,
    recovery_rate,
    roll_rates,
    vintages,
)

__all__ = [
    "BUCKETS",
    "FLOWS",
    "bucket_history",
    "cure_curve",
    "entry_rates",
    "month_ends",
    "operations",
    "recovery_rate",
    "roll_rates",
    "vintages",
]
