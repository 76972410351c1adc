"""Portfolio monitoring for the risk team: roll and flow rates, vintages, entry, cure and recovery rates,
operations KPIs (DuckDB SQL over the validated book)."""

from huishou.portfolio.cost import above_ceiling, annualised_cost, ceiling_report
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
    "above_ceiling",
    "annualised_cost",
    "bucket_history",
    "ceiling_report",
    "cure_curve",
    "entry_rates",
    "month_ends",
    "operations",
    "recovery_rate",
    "roll_rates",
    "vintages",
]
