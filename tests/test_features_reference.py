"""The DuckDB build agrees with an independent pandas-groupby implementation on a simulated book."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from huishou.features import reference_pandas as ref

from conftest import features_for

COLUMNS = [
    "rp_n_due",
    "rp_dpd_max",
    "rp_dpd_mean",
    "rp_n_late_1",
    "rp_n_late_7",
    "rp_paid_ratio",
    "rp_dpd_mean_90d",
    "rp_dpd_now",
    "rp_days_since_payment",
    "rp_outstanding",
]


@pytest.mark.parametrize("snapshot", ["2024-10-01", "2025-06-01"])
def test_population_and_repayment_match_pandas(book, settings, snapshot):
    t = pd.Timestamp(snapshot)
    f = settings.features
    duck = features_for(book, settings, [t]).set_index("loan_id").sort_index()
    spine = ref.spine(book.applications, book.installments, t, f.default_dpd, f.paid_tolerance)
    assert sorted(spine["loan_id"]) == duck.index.tolist()
    pan = ref.repayment(spine, book.installments, t, f.paid_tolerance).set_index("loan_id").sort_index()
    for col in COLUMNS:
        np.testing.assert_allclose(duck[col].to_numpy(float), pan[col].to_numpy(float), rtol=1e-9, err_msg=col)
