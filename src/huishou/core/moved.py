"""Old import paths of modules that moved, kept as aliases that warn: an analyst's script written against an
earlier layout keeps working (with a DeprecationWarning naming the new place) instead of breaking.

`import huishou` installs the finder; each alias is the new module itself (same object), never a copy.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {  # old path -> new path (2026-12: the package grouped into rooms)
    "huishou.artifacts": "huishou.api",  # paths and load_features, for analysts
    "huishou.config": "huishou.core.settings",
    "huishou.drift": "huishou.risk.drift",
    "huishou.engine": "huishou.core.engine",
    "huishou.errors": "huishou.core.errors",
    "huishou.explain": "huishou.risk.explain",
    "huishou.io": "huishou.core.io",
    "huishou.metrics": "huishou.risk.metrics",
    "huishou.model": "huishou.risk.model",
    "huishou.plots": "huishou.core.plots",
    "huishou.report": "huishou.risk.report",
    "huishou.scorecard": "huishou.risk.scorecard",
    "huishou.scoring": "huishou.risk.scoring",
    "huishou.tracking": "huishou.core.tracking",
    "huishou.train": "huishou.risk.train",
    "huishou.vocab": "huishou.core.vocab",
}


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads the module at its new path under it."""

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        warnings.warn(
            f"{spec.name} has moved to {MOVED[spec.name]} (the stable path for analysts is huishou.api)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:  # the new module has run already
        return None


def install() -> None:
    """Put the finder on sys.meta_path once."""
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())


install()
