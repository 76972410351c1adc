"""`huishou promote [--version N]`: point the registry alias `champion` at a model version.

Reads and writes the MLflow model registry only (not a DVC stage). Without --version the
current `challenger` is promoted.
"""

from __future__ import annotations

from huishou import tracking

PARAMS = ("tracking",)


def run(settings, version: str | None = None) -> dict:
    """Move `champion` and say where it points now."""
    promoted = tracking.promote(settings.tracking, version)
    return {"champion": promoted, "registered_model": settings.tracking.registered_model}
