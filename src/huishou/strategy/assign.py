"""Choose one action per loan and a collector for every human action, within daily minute budgets.

Two solvers over the same inputs (values: expected recovery net of cost, -inf where a rule forbids):
* `greedy`: every loan starts from its best automated action (`none` at worst); human actions are
  then taken in order of extra value per collector minute while some collector has the minutes.
* `exact`: a mixed-integer programme (scipy.optimize.milp / HiGHS) maximising total value with one
  action per loan and the team's minutes, then packed onto collectors first-fit-decreasing
  (an item that fits nobody falls back to its automated action). Its objective is an upper bound,
  so `plan` reports how far each answer is from it. Beyond `exact_max_rows` (HiGHS would not finish
  in its time limit) only greedy runs, measured against the LP relaxation's bound.

Both honour two more constraints when given: `groups` (a borrower per row: at most one contact per
borrower a day, whatever the number of their loans) and `limits` (the most rows an action may take,
e.g. the agencies' daily capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

NONE = "none"


@dataclass
class Plan:
    action: pd.Series  # per loan row
    collector: pd.Series  # collector id, or None for automated actions
    value: float
    method: str
    stats: dict


def _fallback(values: pd.DataFrame, minutes: dict[str, int], limits: dict[str, int] | None = None):
    """The best action needing no collector and no limited capacity, per row."""
    automated = [a for a in values.columns if minutes.get(a, 0) == 0 and a not in (limits or {})]
    auto = values[automated]
    return auto.idxmax(axis=1), auto.max(axis=1)


def roomiest(remaining: dict[str, float], need: float) -> str | None:
    """The collector with the most minutes left that can take `need` (ties: lowest id)."""
    fits = [(-left, who) for who, left in remaining.items() if left >= need and need > 0]
    return min(fits)[1] if fits else None


def _total(values: pd.DataFrame, action: pd.Series) -> float:
    if len(action) == 0:
        return 0.0
    picked = values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action)]
    return float(np.sum(picked))


def _one_contact_per_group(values: pd.DataFrame, action: pd.Series, groups: pd.Series | None) -> pd.Series:
    """Where a borrower got several contacts, keep the one worth most over `none`; the others wait."""
    if groups is None or NONE not in values.columns:
        return action
    contact = action != NONE
    gain = pd.Series(values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action)], index=values.index)
    gain = gain - values[NONE]
    ranked = pd.DataFrame({"g": groups, "gain": gain, "pos": np.arange(len(action))})[contact]
    keep = ranked.sort_values(["g", "gain", "pos"], ascending=[True, False, True]).drop_duplicates("g").index
    out = action.copy()
    out[contact & ~out.index.isin(keep)] = NONE
    return out


def greedy(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
) -> Plan:
    limits = limits or {}
    base_action, _ = _fallback(values, minutes, limits)
    action = _one_contact_per_group(values, base_action.copy(), groups)
    collector = pd.Series(None, index=values.index, dtype=object)
    remaining, used = dict(capacities), dict.fromkeys(limits, 0)
    current = pd.Series(
        values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action)], index=values.index
    )
    options = [a for a in values.columns if minutes.get(a, 0) > 0 or a in limits]
    long = values[options].stack().rename("value").reset_index()
    long.columns = ["row", "action", "value"]
    long = long[np.isfinite(long["value"])]
    long["gain"] = long["value"] - current.loc[long["row"]].to_numpy()
    long["minutes"] = long["action"].map(lambda a: minutes.get(a, 0)).astype(float)
    long = long[long["gain"] > 0]
    long["density"] = long["gain"] / long["minutes"].clip(lower=1.0)
    long = long.assign(order=np.arange(len(long))).sort_values(["density", "order"], ascending=[False, True])
    taken: set = set()
    holder = {} if groups is None else {g: r for r, g in groups[action != NONE].items()}
    for row, act, mins in long[["row", "action", "minutes"]].itertuples(index=False):
        if row in taken or (act in limits and used[act] >= limits[act]):
            continue
        other = holder.get(groups[row]) if groups is not None else None
        if other is not None and other != row:
            if other in taken:
                continue
            loss = current[other] - values.at[other, NONE]
            if values.at[row, act] - current[row] - loss <= 0:
                continue
        who = roomiest(remaining, mins) if mins > 0 else None
        if mins > 0 and who is None:
            continue
        if other is not None and other != row:
            action[other] = NONE
            current[other] = values.at[other, NONE]
        if mins > 0:
            remaining[who] -= mins
            collector[row] = who
        if act in limits:
            used[act] += 1
        action[row], current[row] = act, values.at[row, act]
        taken.add(row)
        if groups is not None:
            holder[groups[row]] = row
    return Plan(action, collector, _total(values, action), "greedy", {"minutes_left": sum(remaining.values())})


def _programme(values, minutes, capacities, groups, limits):
    """The plan as an integer programme over (row, lawful action) pairs: objective, constraints, pairs."""
    limits = limits or {}
    largest = max(capacities.values(), default=0)
    v = values.to_numpy(dtype=float)
    mins = np.array([minutes.get(a, 0) for a in values.columns], dtype=float)
    ok = np.isfinite(v) & (mins[None, :] <= largest)
    rows, cols = np.nonzero(ok)
    c = -v[rows, cols]
    k = len(rows)
    one_each = coo_matrix((np.ones(k), (rows, np.arange(k))), shape=(len(values), k))
    constraints = [
        LinearConstraint(one_each.tocsr(), 1, 1),
        LinearConstraint(mins[cols][None, :], 0, float(sum(capacities.values()))),
    ]
    if groups is not None:
        codes, uniques = pd.factorize(groups.to_numpy())
        contact = values.columns[cols] != NONE
        shared = np.bincount(codes, minlength=len(uniques)) > 1
        sel = contact & shared[codes[rows]]
        if sel.any():
            member = coo_matrix((np.ones(sel.sum()), (codes[rows[sel]], np.flatnonzero(sel))), shape=(len(uniques), k))
            constraints.append(LinearConstraint(member.tocsr(), 0, 1))
    for act, cap in limits.items():
        if act in values.columns:
            constraints.append(LinearConstraint((values.columns[cols] == act).astype(float)[None, :], 0, float(cap)))
    return c, constraints, rows, cols


def exact(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: dict[str, int],
    time_limit: float,
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
) -> Plan | None:
    """MILP on the team's minutes, then first-fit-decreasing onto collectors; None if HiGHS gives no solution."""
    if values.empty:
        return Plan(pd.Series(dtype=object), pd.Series(dtype=object), 0.0, "exact", {"mip_bound": 0.0})
    c, constraints, rows, cols = _programme(values, minutes, capacities, groups, limits)
    res = milp(
        c,
        constraints=constraints,
        integrality=np.ones(len(c)),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None
    pick = res.x > 0.5
    action = pd.Series(values.columns[cols[pick]], index=values.index[rows[pick]]).reindex(values.index)
    action, collector = _pack(values, action, minutes, capacities, limits)
    return Plan(
        action,
        collector,
        _total(values, action),
        "exact",
        {"mip_bound": float(-res.fun), "mip_status": res.message, "mip_gap": float(res.mip_gap or 0.0)},
    )


def lp_bound(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
) -> float:
    """The linear relaxation's optimum: no plan is worth more (a bound HiGHS finds in seconds where the
    integer programme would not finish)."""
    if values.empty:
        return 0.0
    c, constraints, _, _ = _programme(values, minutes, capacities, groups, limits)
    res = milp(c, constraints=constraints, integrality=np.zeros(len(c)), bounds=Bounds(0, 1))
    return float(-res.fun) if res.x is not None else float("nan")


def _pack(values, action, minutes, capacities, limits=None):
    """First-fit-decreasing of the chosen human actions onto collectors (a row that fits nobody falls back
    to its best automated, unlimited action: still at most one contact for its borrower)."""
    base_action, _ = _fallback(values, minutes, limits)
    remaining = dict(capacities)
    collector = pd.Series(None, index=values.index, dtype=object)
    human = action[action.map(lambda a: minutes.get(a, 0) > 0)]
    order = pd.DataFrame({"minutes": human.map(minutes), "pos": np.arange(len(human))}, index=human.index)
    for row in order.sort_values(["minutes", "pos"], ascending=[False, True]).index:
        who = roomiest(remaining, minutes[action[row]])
        if who is None:
            action[row] = base_action[row]
            continue
        remaining[who] -= minutes[action[row]]
        collector[row] = who
    return action, collector


def plan(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: dict[str, int],
    time_limit: float,
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    exact_max_rows: int | None = None,
) -> Plan:
    """The better of greedy and exact, with both values and the MIP bound in `stats`. Beyond `exact_max_rows`
    rows (where HiGHS would not finish within `time_limit`) only greedy runs, and the LP bound says how far
    from the best possible it can be."""
    fast = greedy(values, minutes, capacities, groups, limits)
    stats = {"greedy_value": fast.value}
    if exact_max_rows is not None and len(values) > exact_max_rows:
        bound = lp_bound(values, minutes, capacities, groups, limits)
        fast.stats = stats | {
            "method": "greedy",
            "exact": f"skipped: {len(values)} rows > strategy.exact_max_rows {exact_max_rows}",
            "lp_bound": bound,
            "greedy_gap_to_bound": (bound - fast.value) / abs(bound) if bound else 0.0,
        }
        return fast
    best = exact(values, minutes, capacities, time_limit, groups, limits)
    if best is not None:
        stats |= {
            "exact_value": best.value,
            **best.stats,
            "greedy_gap_to_exact": (best.value - fast.value) / abs(best.value) if best.value else 0.0,
        }
    chosen = best if best is not None and best.value >= fast.value else fast
    chosen.stats = stats | {"method": chosen.method}
    return chosen
