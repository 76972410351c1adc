from __future__ import annotations

import pandas as pd
import pytest

from huishou.config import ConfigError, load_settings, settings_from_dict


def test_repository_params_load():
    s = load_settings("params.yaml")
    assert s.simulate.n_borrowers == 50_000
    assert s.features.snapshot_dates()[0] == pd.Timestamp("2024-04-01")
    assert s.simulate.as_of == pd.Timestamp("2026-01-01")


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="train.*num_leafs"):
        settings_from_dict({"train": {"num_leafs": 3}})


def test_bad_value_is_an_error():
    with pytest.raises(ConfigError, match="calibration"):
        settings_from_dict({"train": {"calibration": "magic"}})
    with pytest.raises(ConfigError, match="valid_from"):
        settings_from_dict({"features": {"valid_from": "2025-10-01", "test_from": "2025-09-01"}})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_a_params_file_can_extend_another(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  num_leaves: 7\n  learning_rate: 0.2\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain:\n  num_leaves: 9\n")
    s = load_settings(tmp_path / "child.yaml")
    assert (s.train.num_leaves, s.train.learning_rate) == (9, 0.2)


def test_taiwan_params_extend_the_main_file():
    main, taiwan = load_settings("params.yaml"), load_settings("params_taiwan.yaml")
    assert taiwan.strategy == main.strategy and taiwan.features.default_dpd == 90
