"""Choose one action per loan and a collector for every human action, within daily minute budgets.

Two solvers over the same inputs (values: expected recovery net of cost, -inf where a rule forbids):
* `greedy`: every loan starts from its best automated action (`none` at worst); human actions are
  then taken in order of extra value per collector minute while some collector has the minutes.
* `exact`: a mixed-integer programme (scipy.optimize.milp / HiGHS) maximising total value with one
  action per loan and the team's minutes, then packed onto collectors first-fit-decreasing
  (an item that fits nobody falls back to its automated action). Its objective is an upper bound,
  so `plan` reports how far each answer is from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix


@dataclass
class Plan:
    action: pd.Series  # per loan row
    collector: pd.Series  # collector id, or None for automated actions
    value: float
    method: str
    stats: dict


def _fallback(values: pd.DataFrame, minutes: dict[str, int]) -> tuple[pd.Series, pd.Series]:
    automated = [a for a in values.columns if minutes.get(a, 0) == 0]
    auto = values[automated]
    return auto.idxmax(axis=1), auto.max(axis=1)


def _human_options(values: pd.DataFrame, minutes: dict[str, int], base: pd.Series) -> pd.DataFrame:
    human = [a for a in values.columns if minutes.get(a, 0) > 0]
    long = values[human].stack().rename("value").reset_index()
    long.columns = ["row", "action", "value"]
    long = long[np.isfinite(long["value"])]
    long["gain"] = long["value"] - base.loc[long["row"]].to_numpy()
    long["minutes"] = long["action"].map(minutes).astype(float)
    long = long[long["gain"] > 0]
    long["density"] = long["gain"] / long["minutes"]
    return long


def greedy(values: pd.DataFrame, minutes: dict[str, int], capacities: dict[str, int]) -> Plan:
    base_action, base_value = _fallback(values, minutes)
    action, collector = base_action.copy(), pd.Series(None, index=values.index, dtype=object)
    remaining = dict(capacities)
    options = _human_options(values, minutes, base_value)
    options = options.assign(order=np.arange(len(options))).sort_values(["density", "order"], ascending=[False, True])
    taken = set()
    for row, act, mins in options[["row", "action", "minutes"]].itertuples(index=False):
        if row in taken:
            continue
        who = roomiest(remaining, mins)
        if who is None:
            continue
        remaining[who] -= mins
        action[row], collector[row] = act, who
        taken.add(row)
    return Plan(action, collector, _total(values, action), "greedy", {"minutes_left": sum(remaining.values())})


def roomiest(remaining: dict[str, float], need: float) -> str | None:
    """The collector with the most minutes left that can take `need` (ties: lowest id)."""
    fits = [(-left, who) for who, left in remaining.items() if left >= need and need > 0]
    return min(fits)[1] if fits else None


def _total(values: pd.DataFrame, action: pd.Series) -> float:
    if len(action) == 0:
        return 0.0
    picked = values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action)]
    return float(np.sum(picked))


def exact(values: pd.DataFrame, minutes: dict[str, int], capacities: dict[str, int], time_limit: float) -> Plan | None:
    """MILP on the team's minutes, then first-fit-decreasing onto collectors; None if HiGHS gives no solution."""
    if values.empty:
        return Plan(pd.Series(dtype=object), pd.Series(dtype=object), 0.0, "exact", {"mip_bound": 0.0})
    largest = max(capacities.values(), default=0)
    v = values.to_numpy(dtype=float)
    mins = np.array([minutes.get(a, 0) for a in values.columns], dtype=float)
    ok = np.isfinite(v) & (mins[None, :] <= largest)
    rows, cols = np.nonzero(ok)
    c = -v[rows, cols]
    one_each = coo_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(values), len(rows)))
    team = LinearConstraint(mins[cols][None, :], 0, float(sum(capacities.values())))
    res = milp(
        c,
        constraints=[LinearConstraint(one_each.tocsr(), 1, 1), team],
        integrality=np.ones(len(rows)),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None
    pick = res.x > 0.5
    action = pd.Series(values.columns[cols[pick]], index=values.index[rows[pick]]).reindex(values.index)
    action, collector = _pack(values, action, minutes, capacities)
    return Plan(
        action,
        collector,
        _total(values, action),
        "exact",
        {"mip_bound": float(-res.fun), "mip_status": res.message, "mip_gap": float(res.mip_gap or 0.0)},
    )


def _pack(values, action, minutes, capacities):
    """First-fit-decreasing of the chosen human actions onto collectors."""
    base_action, _ = _fallback(values, minutes)
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


def plan(values: pd.DataFrame, minutes: dict[str, int], capacities: dict[str, int], time_limit: float) -> Plan:
    """The better of greedy and exact, with both values and the MIP bound in `stats`."""
    fast = greedy(values, minutes, capacities)
    best = exact(values, minutes, capacities, time_limit)
    stats = {"greedy_value": fast.value}
    if best is not None:
        stats |= {
            "exact_value": best.value,
            **best.stats,
            "greedy_gap_to_exact": (best.value - fast.value) / abs(best.value) if best.value else 0.0,
        }
    chosen = best if best is not None and best.value >= fast.value else fast
    chosen.stats = stats | {"method": chosen.method}
    return chosen
