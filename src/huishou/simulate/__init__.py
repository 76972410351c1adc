"""The built-in simulated loan book: borrowers, collection mechanics, book assembly and the exact oracle."""

from huishou.simulate.book import Book, book_chunks, offset_ids, simulate_book
from huishou.simulate.collection import STEP_DAYS, action_cure_logits, legacy_policy_probs

__all__ = [
    "STEP_DAYS",
    "Book",
    "action_cure_logits",
    "book_chunks",
    "legacy_policy_probs",
    "offset_ids",
    "simulate_book",
]
