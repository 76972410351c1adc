"""huishou (回收): overdue-risk scoring and lawful collection strategy for digital-wallet loans.

The rooms, in pipeline order: core (platform), book, simulate, features, risk, compliance, strategy,
portfolio, workbench, stages (one per command); analysts import from huishou.api.
"""

from huishou.core import moved as _moved  # noqa: F401  (old import paths keep working, with a warning)

__version__ = "0.1.0"
