"""Collection strategy: decision context, action effects, lawful-collection rules, capacity assignment,
worklists and policy evaluation."""

from huishou.strategy.assign import Plan, plan
from huishou.strategy.plan import StrategyPlans, delinquent_loans, plan_day, plan_strategy, values_matrix
from huishou.strategy.worklist import worklist
from huishou.vocab import AUTO

__all__ = [
    "AUTO",
    "Plan",
    "StrategyPlans",
    "delinquent_loans",
    "plan",
    "plan_day",
    "plan_strategy",
    "values_matrix",
    "worklist",
]
