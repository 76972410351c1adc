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


def contact_details(borrower_ids, seed: int) -> pd.DataFrame:
    """borrower_id, name, phone, address for each id (the same id always gets the same details)."""
    ids = np.asarray(pd.unique(pd.Series(borrower_ids, dtype="int64")))
    rows = []
    for b in ids:
        rng = np.random.default_rng([seed, int(b)])
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, size=int(rng.integers(1, 3))))
        phone = f"+86 100-{int(rng.integers(0, 10_000)):04d}-{int(b) % 10_000:04d}"
        address = f"{rng.choice(CITIES)}{rng.choice(STREETS)}{int(rng.integers(1, 400))}号"
        rows.append((int(b), name, phone, address))
    return pd.DataFrame(rows, columns=["borrower_id", "name", "phone", "address"])
