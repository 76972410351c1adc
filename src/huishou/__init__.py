"""huishou (回收): overdue-risk scoring and lawful collection strategy for digital-wallet loans."""

__version__ = "0.1.0"
