"""Reason codes: the features that pushed a loan's risk up most, in plain words.

LightGBM's TreeSHAP (`pred_contrib`) splits each loan's log-odds into per-feature
contributions; the largest positive ones become reasons a collector can read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.risk.model import RiskModel

REASONS = {
    "rp_dpd_now": "currently overdue",
    "rp_dpd_max": "was late on this loan before",
    "rp_dpd_mean": "often late on this loan",
    "rp_dpd_last": "last installment late",
    "rp_dpd_mean_90d": "recent installments paid late",
    "rp_n_late_90d": "missed recent due dates",
    "rp_paid_ratio_last": "last installment not fully paid",
    "rp_n_late_1": "missed due dates on this loan",
    "rp_n_late_7": "a week or more late before",
    "rp_paid_ratio": "paid less than was due",
    "rp_n_partial": "made partial payments",
    "rp_days_since_payment": "no payment for a long time",
    "rp_days_paid_vs_due_mean": "usually pays at the last moment",
    "rp_days_to_next_due": "next installment due soon",
    "rp_outstanding": "large amount outstanding",
    "app_rate": "high-risk pricing at approval",
    "app_annuity_to_income": "installment large relative to income",
    "app_amount_to_income": "loan large relative to income",
    "app_income": "low declared income",
    "app_age": "young borrower profile",
    "app_phone_age_months": "new phone number",
    "app_channel": "acquisition channel with higher risk",
    "app_employment_type": "employment type with higher risk",
    "cb_n_inconsistencies": "verification call contradicted the application",
    "cb_purpose_mismatch": "stated a different loan purpose on the call",
    "cb_income_ratio": "stated a lower income on the call",
    "cb_employer_mismatch": "named a different employer on the call",
    "cb_third_party": "verification call answered by someone else",
    "cb_skipped": "declined the verification questions",
    "cb_reached": "could not be reached for verification",
    "cb_identity_failed": "identity not confirmed on the call",
    "cb_weak_repayment_plan": "no clear repayment source stated",
    "cl_n_contacts": "many collection contacts already",
    "cl_promises_broken": "broke a promise to pay",
    "cl_reach_rate": "hard to reach",
    "pl_dpd_max": "late on an earlier loan",
    "pl_late_rate": "often late on earlier loans",
}


def reason_text(feature: str, descriptions: dict[str, str] | None = None) -> str:
    """Plain words for a feature: huishou's own, the lender's description of a declared column, or the name."""
    if feature in REASONS:
        return REASONS[feature]
    if descriptions and descriptions.get(feature):
        return descriptions[feature]
    family = {
        "app": "application",
        "rp": "repayment history",
        "pl": "earlier loans",
        "cb": "verification call",
        "cl": "collection history",
        "ax": "application",
        "at": "attributes",
    }.get(feature.split("_", 1)[0], "other")
    return f"{family}: {feature.split('_', 1)[-1].replace('_', ' ')}"


def reason_codes(model: RiskModel, features: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Columns reason_1..reason_top: the largest positive risk contributions per loan ('' if fewer)."""
    contrib = model.contributions(features).drop(columns="bias")
    values = contrib.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    names = np.asarray(contrib.columns)[order]
    positive = np.take_along_axis(values, order, axis=1) > 0
    words = model.meta.get("descriptions", {})
    out = {
        f"reason_{k + 1}": np.where(positive[:, k], [reason_text(n, words) for n in names[:, k]], "")
        for k in range(top)
    }
    return pd.DataFrame(out, index=features.index)
