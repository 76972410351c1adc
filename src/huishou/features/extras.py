"""The lender's own columns as features: extra application columns (ax_) and the attributes table (at_).

Declared in params.yaml (`features.application_columns`, `features.attributes`), each with a kind
(numeric or categorical), a plain-words description for reason codes and an optional monotone
direction. Attributes rows carry the date each value became known (`as_of`, e.g. a bureau pull):
a snapshot T sees the latest row dated strictly before T (an ASOF join), never a later one.
Names are checked against `^[a-z][a-z0-9_]*$` when params are loaded, so quoting them is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# What a numeric attribute's history becomes besides its latest value: the change since the previous
# record, and the mean / max / min over every record known before T.
NUMERIC_HISTORY = {
    "_delta": "changed since the previous value",
    "_mean": "on average",
    "_max": "at its highest",
    "_min": "at its lowest",
}


class Extra(NamedTuple):
    """One declared column: where it lives, its name, kind, description and monotone direction."""

    table: str  # applications | attributes
    name: str
    kind: str  # numeric | categorical
    description: str
    monotone: int


def extras_of(items: Sequence[Sequence]) -> list[Extra]:
    return [Extra(*item) for item in items]


def feature_names(extra: Extra) -> list[str]:
    """The feature columns one declared column becomes."""
    if extra.table == "applications":
        return [f"ax_{extra.name}"]
    if extra.kind == "numeric":
        return [f"at_{extra.name}{suffix}" for suffix in ("", *NUMERIC_HISTORY)]
    return [f"at_{extra.name}"]


def categorical_names(extras: Sequence[Extra]) -> list[str]:
    return [feature_names(e)[0] for e in extras if e.kind == "categorical"]


def _quoted(alias: str, name: str) -> str:
    return f'{alias}."{name}"'


def _value(column: str, kind: str) -> str:
    return f"CAST({column} AS DOUBLE)" if kind == "numeric" else f"CAST({column} AS VARCHAR)"


def application_extras_sql(extras: Sequence[Extra]) -> str | None:
    """ax_<name> per declared application column (fixed at application)."""
    cols = [f"{_value(_quoted('a', e.name), e.kind)} AS ax_{e.name}" for e in extras if e.table == "applications"]
    if not cols:
        return None
    return f"SELECT s.sid, {', '.join(cols)} FROM spine s JOIN applications a ON a.loan_id = s.loan_id"


def attributes_sql(extras: Sequence[Extra]) -> str | None:
    """at_<name>: the latest value known strictly before T, its change since the previous row (numeric),
    how many rows were known and how old the latest is."""
    declared = [e for e in extras if e.table == "attributes"]
    if not declared:
        return None
    hist = ", ".join(
        f'"{e.name}" AS v_{e.name}, lag("{e.name}") OVER w AS p_{e.name}'
        + (
            f', avg(CAST("{e.name}" AS DOUBLE)) OVER w AS mean_{e.name}, max(CAST("{e.name}" AS DOUBLE)) OVER w AS '
            f'max_{e.name}, min(CAST("{e.name}" AS DOUBLE)) OVER w AS min_{e.name}'
            if e.kind == "numeric"
            else ""
        )
        for e in declared
    )
    cols = ["h.n AS at_n_known", "date_diff('day', h.as_of, s.snapshot_date) AS at_days_since"]
    for e in declared:
        cols.append(f"{_value('h.v_' + e.name, e.kind)} AS at_{e.name}")
        if e.kind == "numeric":
            cols.append(f"CAST(h.v_{e.name} AS DOUBLE) - CAST(h.p_{e.name} AS DOUBLE) AS at_{e.name}_delta")
            cols += [f"h.{agg}_{e.name} AS at_{e.name}_{agg}" for agg in ("mean", "max", "min")]
    return f"""
    WITH hist AS (
      SELECT borrower_id, as_of, row_number() OVER w AS n, {hist}
      FROM attributes WINDOW w AS (PARTITION BY borrower_id ORDER BY as_of ROWS UNBOUNDED PRECEDING)
    )
    SELECT s.sid, {", ".join(cols)}
    FROM spine s ASOF LEFT JOIN hist h ON h.borrower_id = s.borrower_id AND s.snapshot_date > h.as_of
    """


def dictionary(extras: Sequence[Extra]) -> dict[str, dict]:
    """Feature name -> kind, description and monotone direction, for every declared column's features."""
    out = {}
    for e in extras:
        for name in feature_names(e):
            text = e.description or e.name.replace("_", " ")
            suffix = name.removeprefix(f"at_{e.name}") if e.table == "attributes" else ""
            words = f"{text} ({NUMERIC_HISTORY[suffix]})" if suffix else text
            direction = e.monotone if suffix in ("", "_mean", "_max", "_min") else 0
            out[name] = {"kind": e.kind, "description": words, "monotone": direction, "table": e.table}
    if any(e.table == "attributes" for e in extras):
        out["at_n_known"] = {
            "kind": "numeric",
            "description": "few attribute records known",
            "monotone": 0,
            "table": "attributes",
        }
        out["at_days_since"] = {
            "kind": "numeric",
            "description": "attribute records out of date",
            "monotone": 0,
            "table": "attributes",
        }
    return out
