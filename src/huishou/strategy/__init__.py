"""Collection strategy across the lifecycle: decision context, action effects, capacity assignment, plans,
worklists and policy evaluation (the rules themselves are huishou.compliance)."""

from huishou.core.vocab import AUTO
from huishou.strategy.assign import Plan, plan
from huishou.strategy.learning import StrategyPlans, plan_strategy
from huishou.strategy.plan import BookRules, DayPlan, candidates, plan_day, values_matrix
from huishou.strategy.worklist import worklist

__all__ = [
    "AUTO",
    "BookRules",
    "DayPlan",
    "Plan",
    "StrategyPlans",
    "candidates",
    "plan",
    "plan_day",
    "plan_strategy",
    "values_matrix",
    "worklist",
]
