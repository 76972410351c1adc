"""The complaint risk of a contact, learnt from the book: what harassment costs.

A complaint opens a complaint hold in contact_preferences (valid from the midnight after the contact that
drew it). Every logged contact before the cutoff is labelled by whether a hold for that borrower opened the
next midnight, and a logistic regression learns P(complaint | contacts to the borrower in the 7 days before,
a hardship already reported, contact at an unsocial local hour). The plan charges every contact
strategy.complaint_cost times that probability, so a contact is only worth making when what it brings in
beats the complaint it risks; the planner's contacts are never at unsocial hours (the rules), so the hour
only keeps the estimate of the other terms unbiased.

A scikit-learn logistic regression rather than a booster: three inputs, a monotone rise in the log-odds is
the expected shape, and its coefficients go to the report as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from huishou.compliance import minutes
from huishou.core.clock import local_minutes
from huishou.features import open_book

FEATURES = ["contacts_7d", "hardship_reported", "unsocial"]


@dataclass
class ComplaintModel:
    """P(complaint | contact) from the book's complaint holds; `model` None: no complaint data (risk 0)."""

    model: LogisticRegression | None
    report: dict

    def predict(self, ctx: pd.DataFrame) -> np.ndarray:
        """Complaint chance of a contact made today, at a lawful hour, for every candidate row."""
        if self.model is None or ctx.empty:
            return np.zeros(len(ctx))
        x = pd.DataFrame(
            {
                "contacts_7d": ctx["contacts_7d"].to_numpy(dtype=float),
                "hardship_reported": (ctx["hardship_reported"] > 0).to_numpy(dtype=float),
                "unsocial": np.zeros(len(ctx)),
            }
        )
        return self.model.predict_proba(x[FEATURES])[:, 1]


def contact_examples(
    tables: Mapping[str, pd.DataFrame | Path],
    before: pd.Timestamp,
    contact_start: str,
    contact_end: str,
    lender_zone: str,
) -> pd.DataFrame:
    """Every logged contact whose complaint would be known at `before`, with FEATURES and `complained`, in one
    order whatever the source (frames or parquet files) and DuckDB's threads (the model's last bits follow it)."""
    con = open_book(tables)
    try:
        rows = con.execute(
            """
            WITH c AS (
              SELECT a.borrower_id, a.timezone, c.action_at, c.hardship_reported
              FROM collection_actions c JOIN applications a USING (loan_id)
              WHERE c.channel <> 'none' AND c.action_at < CAST($before AS TIMESTAMP) - INTERVAL 1 DAY
            )
            SELECT c.borrower_id, c.timezone, c.action_at,
              count(*) OVER (PARTITION BY c.borrower_id ORDER BY c.action_at
                             RANGE BETWEEN INTERVAL 7 DAY PRECEDING AND CURRENT ROW) - 1 AS contacts_7d,
              coalesce(max(c.hardship_reported::INTEGER) OVER (
                PARTITION BY c.borrower_id ORDER BY c.action_at
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS hardship_reported,
              EXISTS (SELECT 1 FROM contact_preferences p WHERE p.borrower_id = c.borrower_id
                      AND p.kind = 'complaint_hold'
                      AND p.valid_from = CAST(CAST(c.action_at AS DATE) + 1 AS TIMESTAMP)) AS complained
            FROM c
            ORDER BY borrower_id, action_at, contacts_7d, hardship_reported, complained
            """,
            {"before": before.to_pydatetime()},
        ).df()
    finally:
        con.close()
    local = local_minutes(rows["action_at"], rows["timezone"], lender_zone)
    rows["unsocial"] = ((local < minutes(contact_start)) | (local >= minutes(contact_end))).astype(float)
    rows["complained"] = rows["complained"].astype(int)
    return rows


def fit_complaint_model(examples: pd.DataFrame) -> ComplaintModel:
    """Logistic regression of `complained` on FEATURES (none when there are no complaints to learn from)."""
    n, k = len(examples), int(examples["complained"].sum()) if len(examples) else 0
    if k == 0 or k == n:
        return ComplaintModel(None, {"contacts": n, "complaints": k, "skipped": "no complaint records to learn from"})
    model = LogisticRegression(C=1e4, max_iter=1000).fit(examples[FEATURES].astype(float), examples["complained"])
    report = {
        "contacts": n,
        "complaints": k,
        "rate_per_1000": 1000 * k / n,
        "intercept": float(model.intercept_[0]),
        "coefficients": {f: float(c) for f, c in zip(FEATURES, model.coef_[0], strict=True)},
    }
    return ComplaintModel(model, report)
