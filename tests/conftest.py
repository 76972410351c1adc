"""Shared fixtures: small simulated books built in memory, and hand-made tiny books."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from huishou.config import Settings, load_settings
from huishou.features import assign_split, build_features
from huishou.simulate import simulate_book

ROOT = Path(__file__).resolve().parents[1]
ROOT_SETTINGS = load_settings(ROOT / "params.yaml")


def small_settings(n_borrowers: int = 2500, seed: int = 11, hardship_rate: float | None = None) -> Settings:
    """The repository's params.yaml with a smaller book."""
    base = load_settings(ROOT / "params.yaml")
    sim = dataclasses.replace(base.simulate, n_borrowers=n_borrowers, seed=seed)
    if hardship_rate is not None:
        sim = dataclasses.replace(sim, hardship_rate=hardship_rate)
    return dataclasses.replace(base, simulate=sim)


def features_for(book, settings: Settings, snapshots=None) -> pd.DataFrame:
    f = settings.features
    return build_features(book.raw_tables(), snapshots or f.snapshot_dates(), **f.build_kwargs(settings.simulate.as_of))


def pytest_collection_modifyitems(items):
    """Tests not marked e2e are unit tests: `pytest -m unit` runs the fast tier, `-m e2e` the rest."""
    for item in items:
        if "e2e" not in item.keywords:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return small_settings()


@pytest.fixture(scope="session")
def book(settings):
    f = settings.features
    return simulate_book(settings.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd, progress=False)


@pytest.fixture(scope="session")
def features(book, settings) -> pd.DataFrame:
    frame = features_for(book, settings)
    f = settings.features
    frame["split"] = assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)
    return frame


@pytest.fixture(scope="session")
def medium_book():
    """A book large enough for calibration-level statements (12k borrowers)."""
    s = small_settings(12_000, seed=3)
    f = s.features
    return s, simulate_book(s.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd, progress=False)
