"""The rules lenders are held to, as profiles with their sources: one evaluation serves the planner and the
workbench's record-time check (and a row-by-row re-check, `violations`, keeps it honest)."""

from huishou.compliance.rules import (
    RULES,
    Evaluation,
    Profile,
    check_one,
    conversation_sql,
    evaluate,
    hhmm,
    is_conversation,
    lawful,
    may_locate,
    minutes,
    settlement_discount,
    violations,
    window,
)

__all__ = [
    "RULES",
    "Evaluation",
    "Profile",
    "check_one",
    "conversation_sql",
    "evaluate",
    "hhmm",
    "is_conversation",
    "lawful",
    "may_locate",
    "minutes",
    "settlement_discount",
    "violations",
    "window",
]
