"""Made-up names, phone numbers and addresses for the simulated book's borrowers (the workbench shows them).

Deterministic per borrower id; phone numbers use the +86 100 prefix, which no mobile network issues, so a
demo can never ring a real person.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")
CITIES = [
    "上海市浦东新区",
    "北京市朝阳区",
    "广州市天河区",
    "成都市武侯区",
    "武汉市洪山区",
    "乌鲁木齐市天山区",
    "西安市雁塔区",
]
STREETS = ["人民路", "解放路", "中山路", "建设路", "和平街", "新华路"]


EMERGENCY_SHARE = (0.1, 0.5, 0.4)  # assumption: borrowers who entered 0, 1 or 2 emergency contacts
RELATIONS = ("parent", "spouse", "sibling", "friend", "colleague")


def contact_details(borrower_ids, seed: int) -> pd.DataFrame:
    """borrower_id, name, phone, address for each id, and the names and phones of their emergency contacts
    (emergency_1_name, emergency_1_phone, emergency_2_...); the same id always gets the same details."""
    ids = np.asarray(pd.unique(pd.Series(borrower_ids, dtype="int64")))
    rows = []
    for b in ids:
        rng = np.random.default_rng([seed, int(b)])
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, size=int(rng.integers(1, 3))))
        phone = f"+86 100-{int(rng.integers(0, 10_000)):04d}-{int(b) % 10_000:04d}"
        address = f"{rng.choice(CITIES)}{rng.choice(STREETS)}{int(rng.integers(1, 400))}号"
        extra = []
        for slot in (1, 2):
            other = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, size=int(rng.integers(1, 3))))
            extra += [other, f"+86 100-{int(rng.integers(0, 10_000)):04d}-{(int(b) * 2 + slot) % 10_000:04d}"]
        rows.append((int(b), name, phone, address, *extra))
    columns = ["borrower_id", "name", "phone", "address"]
    columns += [f"emergency_{s}_{k}" for s in (1, 2) for k in ("name", "phone")]
    return pd.DataFrame(rows, columns=columns)


def emergency_contacts(applications: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The emergency_contacts table: 0-2 per borrower (EMERGENCY_SHARE), entered by the borrower with their
    first application (the app asks for them; it never reads the phone's contact book)."""
    first = applications.groupby("borrower_id")["applied_at"].min()
    rng = np.random.default_rng([seed, 911])
    count = rng.choice(3, size=len(first), p=EMERGENCY_SHARE)
    borrower = np.repeat(first.index.to_numpy(), count)
    slot = np.concatenate([np.arange(1, k + 1) for k in count]) if count.sum() else np.array([], dtype=int)
    return pd.DataFrame(
        {
            "borrower_id": borrower.astype("int64"),
            "slot": slot.astype("int64"),
            "relation": rng.choice(RELATIONS, size=len(borrower)),
            "entered_by": "borrower",
            "entered_at": np.repeat(first.to_numpy(), count).astype("datetime64[us]"),
        }
    )
