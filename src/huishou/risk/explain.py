"""Reason codes: the features that pushed a loan's risk up most, in plain words and as stable codes.

LightGBM's TreeSHAP (`pred_contrib`) splits each loan's log-odds into per-feature
contributions; the largest positive ones become reasons a collector can read. For an adverse decision
(a loan scored into the explained bands) `explain` adds at most four codes from REASON_CODES, the
statement of specific principal reasons US Regulation B (12 CFR 1002.9(b)(2)) asks for, and an
explanation record a borrower could contest: each reason's feature, the input value and its contribution.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd

from huishou.core.io import plain
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


# Stable reason codes: a code never changes meaning and is never reused; new features get new codes at the end
# of their family (docs/reason-codes.csv is the published table; a test keeps the two equal). Features without a
# code of their own (a lender's declared columns) take their family's 99 code.
REASON_CODES = {
    "rp_dpd_now": "RP01",
    "rp_dpd_max": "RP02",
    "rp_dpd_mean": "RP03",
    "rp_dpd_last": "RP04",
    "rp_dpd_mean_90d": "RP05",
    "rp_n_late_90d": "RP06",
    "rp_paid_ratio_last": "RP07",
    "rp_n_late_1": "RP08",
    "rp_n_late_7": "RP09",
    "rp_paid_ratio": "RP10",
    "rp_n_partial": "RP11",
    "rp_days_since_payment": "RP12",
    "rp_days_paid_vs_due_mean": "RP13",
    "rp_days_to_next_due": "RP14",
    "rp_outstanding": "RP15",
    "app_rate": "AP01",
    "app_annuity_to_income": "AP02",
    "app_amount_to_income": "AP03",
    "app_income": "AP04",
    "app_age": "AP05",
    "app_phone_age_months": "AP06",
    "app_channel": "AP07",
    "app_employment_type": "AP08",
    "cb_n_inconsistencies": "CB01",
    "cb_purpose_mismatch": "CB02",
    "cb_income_ratio": "CB03",
    "cb_employer_mismatch": "CB04",
    "cb_third_party": "CB05",
    "cb_skipped": "CB06",
    "cb_reached": "CB07",
    "cb_identity_failed": "CB08",
    "cb_weak_repayment_plan": "CB09",
    "cl_n_contacts": "CL01",
    "cl_promises_broken": "CL02",
    "cl_reach_rate": "CL03",
    "pl_dpd_max": "PL01",
    "pl_late_rate": "PL02",
}
FAMILY_CODES = {"app": "AP99", "ax": "AP99", "rp": "RP99", "pl": "PL99", "cb": "CB99", "cl": "CL99"}
MAX_ADVERSE_REASONS = 4  # Regulation B: more than four principal reasons would not be meaningful


def reason_code(feature: str) -> str:
    """The stable code of a feature's reason (its family's 99 code when it has none of its own; XX99 else)."""
    return REASON_CODES.get(feature) or FAMILY_CODES.get(feature.split("_", 1)[0], "XX99")


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


def _ranked(model: RiskModel, features: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per loan, the `k` features with the largest risk contributions, strongest first, and those
    contributions (TreeSHAP log-odds for LightGBM, points shortfall for the scorecard)."""
    contrib = model.contributions(features).drop(columns="bias")
    values = contrib.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.asarray(contrib.columns)[order], np.take_along_axis(values, order, axis=1)


def _words(names: np.ndarray, pushed: np.ndarray, words: dict[str, str], top: int) -> dict[str, np.ndarray]:
    """Columns reason_1..reason_top: the ranked features' words where their contribution is positive."""
    return {
        f"reason_{k + 1}": np.where(pushed[:, k] > 0, [reason_text(n, words) for n in names[:, k]], "")
        for k in range(top)
    }


def reason_codes(model: RiskModel, features: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Columns reason_1..reason_top: the largest positive risk contributions per loan ('' if fewer)."""
    names, pushed = _ranked(model, features, top)
    return pd.DataFrame(_words(names, pushed, model.meta.get("descriptions", {}), top), index=features.index)


EXPLAIN_COLUMNS = ["reason_1", "reason_2", "reason_3", "reason_codes", "explanation"]
FLOATS = (float, np.float64)


def _json_value(value) -> object:
    """An input value for the JSON record: plain Python, None for missing, text for anything else."""
    value = plain(value)
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


def explain(model: RiskModel, features: pd.DataFrame, model_version: str = "") -> pd.DataFrame:
    """Per loan (index kept), EXPLAIN_COLUMNS: the three reasons in words for the collector; `reason_codes`,
    at most four codes of the largest positive contributions ('RP01;CB02', distinct codes, strongest first);
    `explanation`, a JSON record of the decision a borrower could contest: the model version and, per reason,
    its code, words, feature, input value and contribution (log-odds; scorecard: points short of the best
    bin)."""
    names, pushed = _ranked(model, features, MAX_ADVERSE_REASONS * 2)  # room for codes shared by features
    words = model.meta.get("descriptions", {})
    inputs = {c: features[c].to_numpy(dtype=object) for c in dict.fromkeys(names.ravel().tolist())}
    # the record is json.dumps of {"model_version", "reasons": [{code, reason, feature, value, contribution}]},
    # written from fragments: a feature's fixed part once per feature, finite floats as their repr
    dumps = functools.partial(json.dumps, ensure_ascii=False)
    fixed = {
        name: (
            reason_code(name),
            f'{{"code": {dumps(reason_code(name))}, "reason": {dumps(reason_text(name, words))}, '
            f'"feature": {dumps(name)}, "value": ',
        )
        for name in inputs
    }
    head = f'{{"model_version": {dumps(model_version)}, "reasons": ['
    codes, records = [], []
    for i, (row_names, row_pushed) in enumerate(zip(names.tolist(), pushed.tolist(), strict=True)):
        seen, parts = [], []
        for name, value in zip(row_names, row_pushed, strict=True):
            if value <= 0:
                break
            code, text = fixed[name]
            if code in seen:  # one code once: the strongest feature behind it speaks for it
                continue
            seen.append(code)
            raw = inputs[name][i]
            encoded = repr(float(raw)) if type(raw) in FLOATS and math.isfinite(raw) else dumps(_json_value(raw))
            share = round(value, 6)  # json writes a finite float as its repr
            parts.append(f'{text}{encoded}, "contribution": {repr(share) if math.isfinite(share) else dumps(share)}}}')
            if len(seen) == MAX_ADVERSE_REASONS:
                break
        codes.append(";".join(seen))
        records.append(f"{head}{', '.join(parts)}]}}")
    out = _words(names, pushed, words, 3)
    return pd.DataFrame(out | {"reason_codes": codes, "explanation": records}, index=features.index)
