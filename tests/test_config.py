"""params.yaml is the only place a value is written: every key required, unknown keys refused, values checked,
and a stage reads only the keys it declares."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from huishou.core.errors import ConfigError
from huishou.core.settings import ParamsView, load_settings, read_params, settings_from_dict

from conftest import ROOT

PARAMS = ROOT / "params.yaml"


def test_repository_params_load():
    s = load_settings(PARAMS)
    assert s.simulate.n_borrowers == 50_000
    assert s.features.snapshot_dates()[0] == pd.Timestamp("2024-04-01")
    assert s.simulate.as_of == pd.Timestamp("2026-01-01")


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="train.*num_leafs"):
        load_settings(PARAMS, {"train": {"num_leafs": 3}})


@pytest.mark.parametrize("key", ["train.max_depth", "train.monotone_constraints", "strategy.ope_holdout_days"])
def test_a_missing_key_is_an_error_naming_key_and_file(tmp_path, key):
    raw = read_params(PARAMS)
    section, name = key.split(".")
    del raw[section][name]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"{path}.*missing key.*{key}"):
        load_settings(path)


def test_a_missing_section_is_an_error():
    raw = read_params(PARAMS)
    del raw["scorecard"]
    with pytest.raises(ConfigError, match=r"missing section.*scorecard"):
        settings_from_dict(raw)


def test_bad_value_is_an_error():
    with pytest.raises(ConfigError, match="calibration"):
        load_settings(PARAMS, {"train": {"calibration": "magic"}})
    with pytest.raises(ConfigError, match="valid_from"):
        load_settings(PARAMS, {"features": {"valid_from": "2025-10-01", "test_from": "2025-09-01"}})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_a_params_file_can_extend_another(tmp_path):
    (tmp_path / "base.yaml").write_text(PARAMS.read_text())
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain:\n  num_leaves: 9\n")
    s = load_settings(tmp_path / "child.yaml")
    assert (s.train.num_leaves, s.train.learning_rate) == (9, load_settings(PARAMS).train.learning_rate)


def test_taiwan_params_extend_the_main_file():
    main, taiwan = load_settings(PARAMS), load_settings(ROOT / "params_taiwan.yaml")
    assert taiwan.strategy == main.strategy and taiwan.features.default_dpd == 90
    assert taiwan.train.max_depth == main.train.max_depth  # inherited, never a code default


def test_a_stage_reads_only_declared_keys():
    view = ParamsView(load_settings(PARAMS), ["features.horizon_days", "strategy"], owner="demo")
    assert view.features.horizon_days == 60
    assert view.strategy.capacities()["C001"] == 240  # methods read through the view too
    with pytest.raises(ConfigError, match=r"stage 'demo' read params key 'features.default_dpd'"):
        _ = view.features.default_dpd
    with pytest.raises(ConfigError, match="section 'train'"):
        _ = view.train
    with pytest.raises(ConfigError, match="features.snapshot_every_months|features.first_snapshot"):
        view.features.snapshot_dates()
    assert view.reads >= {"features.horizon_days", "strategy.collectors", "strategy.collector_minutes"}


def test_declared_values_are_flat_and_only_declared():
    view = ParamsView(load_settings(PARAMS), ["features.horizon_days", "evaluate"], owner="demo")
    assert view.declared_values() == {
        "features.horizon_days": 60,
        "evaluate.lift_top_fraction": 0.1,
        "evaluate.calibration_bins": 10,
        "evaluate.max_test_rows": 2000000,
        "evaluate.sample_seed": 0,
    }


def test_every_key_is_explained_where_it_is_written():
    """The settings types document their attributes in params.yaml, the one place each value is written."""
    lines = PARAMS.read_text().splitlines()
    keys = [
        (i, line)
        for i, line in enumerate(lines)
        if line.startswith("  ") and not line.startswith("   ") and ":" in line and not line.lstrip().startswith("#")
    ]

    def explained(i: int, line: str) -> bool:
        following = lines[i + 1] if i + 1 < len(lines) else ""
        continued = following.startswith("   ") and "#" in following  # a mapping that wraps
        return "#" in line or continued or lines[i - 1].lstrip().startswith("#")

    assert len(keys) > 100
    assert [line.split(":")[0].strip() for i, line in keys if not explained(i, line)] == []


def test_times_written_unquoted_by_dvc_stay_times(tmp_path):
    """`dvc exp run -S` rewrites params.yaml with 22:00 unquoted; YAML 1.1 would read 1320 (base 60)."""
    text = (ROOT / "params.yaml").read_text().replace('contact_end: "22:00"', "contact_end: 22:00")
    assert "contact_end: 22:00" in text
    (tmp_path / "params.yaml").write_text(text)
    settings = load_settings(tmp_path / "params.yaml")
    assert settings.strategy.compliance["profiles"]["cn_cba_2026"]["contact_end"] == "22:00"
