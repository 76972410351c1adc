"""Point-in-time features: one module per family, joined in `build`."""

from huishou.features.build import (
    as_categories,
    assign_hash_split,
    assign_split,
    build_features,
    copy_book,
    feature_columns,
    feature_dictionary,
    is_feature,
    open_book,
    population_counts,
    whole_borrowers,
)
from huishou.features.store import SplitTally, load_features

__all__ = [
    "SplitTally",
    "as_categories",
    "assign_hash_split",
    "assign_split",
    "build_features",
    "copy_book",
    "feature_columns",
    "feature_dictionary",
    "is_feature",
    "load_features",
    "open_book",
    "population_counts",
    "whole_borrowers",
]
