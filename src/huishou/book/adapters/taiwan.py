"""The UCI "default of credit card clients" data (Taiwan, 2005) mapped to the raw contracts.

Mapping (one client = one borrower = one credit line treated as a loan):
* applications: LIMIT_BAL -> amount, AGE -> age, opened 2005-03-01. SEX and MARRIAGE are
  deliberately not used (protected characteristics); EDUCATION has no counterpart in the contract.
  Unknown facts (rate, income, employer, channel, device) stay missing.
* installments: one per monthly statement, April (PAY_6 / BILL_AMT6) to September (PAY_0 /
  BILL_AMT1), due on the 15th; amount_due = the bill (negative bills -> 0); amount_paid = the
  payment made the next month (PAY_AMT of the following month; September's is not in the data),
  at least the minimum payment when the status says the bill was met. Status -2/-1/0 (no use, paid
  in full, minimum paid) -> paid on the due date; status k >= 1 (k months late) -> paid
  30k - 15 days after the due date (mid-month of the k-th month late); a date after the extract
  (2006-02-01) means not paid yet.
* the outcome: "default payment next month" becomes the October statement (due 2005-10-15,
  amount = September's bill): unpaid when the client defaulted, paid on time otherwise.
A revolving card needs only its minimum payment, so the Taiwan params use
`features.settle_share = MIN_PAYMENT_SHARE`, `default_dpd = 90` and a single snapshot at
2005-10-01 with a horizon that covers the October statement's 90-DPD day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = pd.Timestamp("2006-02-01")
OPENED = pd.Timestamp("2005-03-01")
MIN_PAYMENT_SHARE = 0.1
MONTHS = [("6", 4), ("5", 5), ("4", 6), ("3", 7), ("2", 8), ("0", 9)]  # PAY_x suffix, calendar month (2005)
BILL_OF = {"6": "6", "5": "5", "4": "4", "3": "3", "2": "2", "0": "1"}  # PAY_0 pairs with BILL_AMT1
PAID_NEXT = {"6": "5", "5": "4", "4": "3", "3": "2", "2": "1", "0": None}  # payment made the month after
REQUIRED = [
    "ID",
    "LIMIT_BAL",
    "AGE",
    "default.payment.next.month",
    *[f"PAY_{m}" for m, _ in MONTHS],
    *[f"BILL_AMT{i}" for i in range(1, 7)],
    *[f"PAY_AMT{i}" for i in range(1, 7)],
]


def read(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} of the UCI credit-card default data")
    return frame


def applications(src: pd.DataFrame) -> pd.DataFrame:
    n = len(src)
    none_str = pd.array([None] * n, dtype="str")
    return pd.DataFrame(
        {
            "borrower_id": src["ID"].astype(np.int64),
            "loan_id": src["ID"].astype(np.int64),
            "applied_at": pd.Series(OPENED - pd.Timedelta(days=1), index=src.index).astype("datetime64[us]"),
            "disbursed_at": pd.Series(OPENED, index=src.index).astype("datetime64[us]"),
            "amount": src["LIMIT_BAL"].astype(float),
            "term_months": np.full(n, 7, dtype=np.int64),
            "rate": np.full(n, np.nan),
            "declared_income": np.full(n, np.nan),
            "employer": none_str,
            "employment_type": none_str,
            "purpose": none_str,
            "age": src["AGE"].astype(np.int64),
            "city_tier": pd.array([None] * n, dtype="Int64"),
            "channel": none_str,
            "device_os": none_str,
            "phone_age_months": pd.array([None] * n, dtype="Int64"),
            "n_earlier_loans": np.zeros(n, dtype=np.int64),
        }
    )


def _month(src: pd.DataFrame, seq: int, pay: str, month: int) -> pd.DataFrame:
    status = src[f"PAY_{pay}"].to_numpy()
    bill = src[f"BILL_AMT{BILL_OF[pay]}"].clip(lower=0).to_numpy(dtype=float)
    nxt = PAID_NEXT[pay]
    paid = src[f"PAY_AMT{nxt}"].to_numpy(dtype=float) if nxt else bill
    paid = np.minimum(np.maximum(paid, MIN_PAYMENT_SHARE * bill), bill)
    due = pd.Timestamp(2005, month, 15)
    late_days = np.where(status >= 1, 30 * status - 15, 0)
    return pd.DataFrame(
        {
            "loan_id": src["ID"].to_numpy(np.int64),
            "seq": seq,
            "due_date": due,
            "amount_due": bill,
            "paid_date": due + pd.to_timedelta(late_days, unit="D"),
            "amount_paid": np.round(paid, 2),
        }
    )


def installments(src: pd.DataFrame) -> pd.DataFrame:
    months = [_month(src, seq, pay, month) for seq, (pay, month) in enumerate(MONTHS, start=1)]
    defaulted = src["default.payment.next.month"].to_numpy() == 1
    due = pd.Timestamp("2005-10-15")
    october = pd.DataFrame(
        {
            "loan_id": src["ID"].to_numpy(np.int64),
            "seq": len(MONTHS) + 1,
            "due_date": due,
            "amount_due": src["BILL_AMT1"].clip(lower=0).to_numpy(float),
            "paid_date": pd.Series(np.where(defaulted, pd.NaT, due)).astype("datetime64[us]"),
            "amount_paid": np.where(defaulted, 0.0, src["BILL_AMT1"].clip(lower=0).to_numpy(float)),
        }
    )
    out = pd.concat([*months, october], ignore_index=True)
    out["seq"] = out["seq"].astype(np.int64)
    out["due_date"] = out["due_date"].astype("datetime64[us]")
    out["paid_date"] = out["paid_date"].astype("datetime64[us]")
    # a zero bill has nothing to pay; a payment after the extract date is not known yet
    out.loc[(out["amount_due"] <= 0) & (out["seq"] <= len(MONTHS)), "amount_paid"] = 0.0
    unknown = out["paid_date"] >= AS_OF
    out.loc[unknown, "paid_date"] = pd.NaT
    out.loc[unknown, "amount_paid"] = 0.0
    return out.sort_values(["loan_id", "seq"], ignore_index=True)


def adapt(src: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """applications and installments for every client (no callbacks, no collection actions)."""
    return {"applications": applications(src), "installments": installments(src)}
