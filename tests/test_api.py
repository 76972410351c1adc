"""The analysts' API: a script that imports huishou.api alone reads the pipeline's outputs and scores a frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import huishou.api as api

pytestmark = pytest.mark.e2e


def test_a_script_using_only_the_api_reads_features_models_and_scores(project):
    root, _ = project
    settings = api.load_settings(root / "params.yaml")
    features = api.load_features(api.features_path(root / settings.data.features_dir))
    assert {"loan_id", "snapshot_date", "target", "split"} <= set(features.columns)
    assert all(isinstance(features[c].dtype, pd.CategoricalDtype) for c in ("channel", "purpose") if c in features)
    test = features[features["split"] == "test"].head(500)
    for name in api.MODEL_NAMES:
        model = api.load_model(root / settings.data.models_dir, name)
        scored = api.score(model, test, reasons=3 if name == "lightgbm" else 0)
        assert scored.index.equals(test.index) and scored["probability"].between(0, 1).all()
    lightgbm = api.load_model(root / settings.data.models_dir)
    assert api.champion_name(root / settings.data.models_dir) == "lightgbm"  # a large book: out-of-time default
    assert api.load_champion(root / settings.data.models_dir).kind == "lightgbm"
    scored = api.score(lightgbm, test, reasons=3)
    assert list(scored.columns) == ["probability", "reason_1", "reason_2", "reason_3"]
    assert (scored["reason_1"] != "").any()
    np.testing.assert_allclose(scored["probability"], lightgbm.predict_proba(test))
    lift = api.lift_table(test["target"].astype(int).to_numpy(), scored["probability"].to_numpy())
    assert len(lift) > 0
    snapshot = sorted((root / settings.score.scores_dir).iterdir())[-1].name
    scores = api.load_scores(root / settings.score.scores_dir, snapshot)
    assert len(scores) > 0 and scores["probability"].between(0, 1).all()
