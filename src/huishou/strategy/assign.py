"""Choose one action per loan and a collector for every human action, within daily minute budgets.

Two solvers over the same inputs (values: expected recovery net of cost, -inf where a rule forbids):
* `greedy`: every loan starts from its best automated action (`none` at worst); human actions are
  then taken in order of extra value per collector minute while some collector has the minutes.
* `exact`: a mixed-integer programme (scipy.optimize.milp / HiGHS) maximising total value with one
  action per loan and the team's minutes, then packed onto collectors first-fit-decreasing
  (an item that fits nobody falls back to its automated action). Its objective is an upper bound,
  so `plan` reports how far each answer is from it.

Both honour three more constraints when given: `groups` (a borrower per row: at most one contact per
borrower a day, whatever the number of their loans), `limits` (the most rows an action may take, e.g. the
agencies' daily capacity) and the team's skills and languages (team.py: a human action goes to a collector
with the skill who speaks the row's `languages` entry; the programme then routes each (action, language)
class's minutes to the collectors who can serve it).

Beyond `exact_max_rows` a day is decomposed (`decompose`): only the borrowers who could take one of the
day's few human or limited slots go to the solver; every other borrower gets its best automated action.
The cut is exact: no optimal plan needs a borrower outside it (see `decompose`), and it is made borrower
bucket by borrower bucket when the day comes in parts (`plan_parts`). Where the kept borrowers are still
more than `exact_max_rows` (HiGHS would not finish in its time limit) only greedy runs, measured against
the bound from prices on capacity (`price_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp, minimize
from scipy.sparse import coo_matrix

from huishou.strategy.team import ANY, Rooms, Team

NONE = "none"


@dataclass
class Plan:
    action: pd.Series  # per loan row
    collector: pd.Series  # collector id, or None for automated actions
    value: float
    method: str
    stats: dict


def _scarce(columns, minutes: dict[str, int], limits: dict[str, int] | None = None) -> list[int]:
    """Positions of the scarce actions among `columns`: those needing collector minutes or a limited place.
    Every other action is automated and unlimited."""
    return [j for j, a in enumerate(columns) if minutes.get(a, 0) > 0 or a in (limits or {})]


def _fallback(values: pd.DataFrame, minutes: dict[str, int], limits: dict[str, int] | None = None) -> pd.Series:
    """The best action needing no collector and no limited capacity, per row."""
    scarce = set(_scarce(values.columns, minutes, limits))
    return values.iloc[:, [j for j in range(values.shape[1]) if j not in scarce]].idxmax(axis=1)


def _best_automated(v: np.ndarray, scarce: list[int]) -> np.ndarray:
    """Each row's best value among the automated, unlimited actions (-inf where there are none)."""
    auto = [j for j in range(v.shape[1]) if j not in set(scarce)]
    return v[:, auto].max(axis=1) if auto else np.full(len(v), -np.inf)


def _gap(low: float, high: float) -> float:
    """How far `low` falls short of `high`, as a share of it (0 where `high` is 0)."""
    return (high - low) / abs(high) if high else 0.0


def _total(values: pd.DataFrame, action: pd.Series) -> float:
    if len(action) == 0:
        return 0.0
    picked = values.to_numpy()[np.arange(len(values)), values.columns.get_indexer(action)]
    return float(np.sum(picked))


def _one_contact_per_group(values: pd.DataFrame, action: pd.Series, groups: pd.Series | None) -> pd.Series:
    """Where a borrower got several contacts, keep the one worth most over `none`; the others wait."""
    if groups is None or NONE not in values.columns:
        return action
    v = values.to_numpy()
    contact = np.flatnonzero((action != NONE).to_numpy())
    gain = v[contact, values.columns.get_indexer(action.iloc[contact])] - v[contact, values.columns.get_loc(NONE)]
    g = pd.factorize(np.asarray(groups))[0][contact]
    order = np.lexsort((contact, -gain, g))  # by borrower, the most gain first (NaN last), then row order
    first = np.r_[True, g[order][1:] != g[order][:-1]][: len(order)]
    wait = np.ones(len(contact), dtype=bool)
    wait[order[first]] = False
    out = action.copy()
    out.iloc[contact[wait]] = NONE
    return out


def greedy(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    languages: pd.Series | None = None,
) -> Plan:
    limits = limits or {}
    team = Team.of(capacities)
    n, cols = len(values), list(values.columns)
    lang = team.row_languages(languages, n)
    start = automated(values, minutes, groups, limits)
    v = values.to_numpy(dtype=float)
    act = values.columns.get_indexer(start)
    current = v[np.arange(n), act]
    collector = np.full(n, None, dtype=object)
    rooms, used = Rooms(team.minutes), dict.fromkeys(limits, 0)
    options = np.array(_scarce(cols, minutes, limits), dtype=int)
    opt_minutes = np.array([float(minutes.get(cols[j], 0)) for j in options])
    gain = v[:, options] - current[:, None]
    rr, oo = np.nonzero(np.isfinite(v[:, options]) & (gain > 0))  # row-major: the order ties keep
    density = gain[rr, oo] / np.maximum(opt_minutes[oo], 1.0)
    order = np.lexsort((np.arange(len(rr)), -density))
    none_j = cols.index(NONE) if NONE in cols else None
    grouped = groups is not None and none_j is not None
    gcode = pd.factorize(groups.to_numpy())[0] if grouped else None
    holder = {int(gcode[r]): int(r) for r in np.flatnonzero(act != none_j)} if grouped else {}
    taken = np.zeros(n, dtype=bool)
    for r, o in zip(rr[order].tolist(), oo[order].tolist(), strict=True):
        j, mins = int(options[o]), opt_minutes[o]
        a = cols[j]
        if taken[r] or (a in limits and used[a] >= limits[a]):
            continue
        other = holder.get(gcode[r]) if grouped else None
        if other is not None and other != r:
            if taken[other]:
                continue
            loss = current[other] - v[other, none_j]
            if v[r, j] - current[r] - loss <= 0:
                continue
        who = rooms.roomiest(mins, team.eligible(a, lang[r]) if team.restricted else None) if mins > 0 else None
        if mins > 0 and who is None:
            continue
        if other is not None and other != r:
            act[other], current[other] = none_j, v[other, none_j]
        if mins > 0:
            rooms.use(who, mins)
            collector[r] = who
        if a in limits:
            used[a] += 1
        act[r], current[r] = j, v[r, j]
        taken[r] = True
        if grouped:
            holder[gcode[r]] = r
    action = pd.Series(np.asarray(cols, dtype=object)[act], index=values.index, dtype=object)
    collector = pd.Series(collector, index=values.index, dtype=object)
    return Plan(action, collector, _total(values, action), "greedy", {"minutes_left": sum(rooms.left.values())})


def _programme(values, minutes, capacities, groups, limits, languages=None):
    """The plan as an integer programme over (row, lawful action) pairs: objective, constraints, pairs and
    integrality. With one pool of collectors the minutes are one team constraint; with skills or languages,
    continuous variables route each (action, language) class's minutes to the collectors who can serve it,
    each collector within their own minutes (a splittable relaxation that `_pack` then makes whole)."""
    limits = limits or {}
    team = Team.of(capacities)
    v = values.to_numpy(dtype=float)
    mins = np.array([minutes.get(a, 0) for a in values.columns], dtype=float)
    if team.restricted:
        lang_codes, langs = pd.factorize(team.row_languages(languages, len(values)))
        who = {
            (li, j): team.eligible(a, lang)
            for li, lang in enumerate(langs)
            for j, a in enumerate(values.columns)
            if mins[j] > 0
        }
        largest = np.full((len(langs), len(values.columns)), np.inf)
        for (li, j), cs in who.items():
            largest[li, j] = max((team.minutes[c] for c in cs), default=0)
        ok = np.isfinite(v) & (mins[None, :] <= largest[lang_codes])
    else:
        ok = np.isfinite(v) & (mins[None, :] <= max(team.minutes.values(), default=0))
    rows, cols = np.nonzero(ok)
    k = len(rows)
    flows: list[tuple[int, str]] = []  # (class id, collector) per routing variable
    if team.restricted:
        human = mins[cols] > 0
        cls_codes, classes = pd.factorize(pd.MultiIndex.from_arrays([lang_codes[rows[human]], cols[human]]))
        flows = [(q, c) for q, (li, j) in enumerate(classes) for c in who[(li, j)]]
    n_var = k + len(flows)
    c = np.concatenate([-v[rows, cols], np.zeros(len(flows))])
    one_each = coo_matrix((np.ones(k), (rows, np.arange(k))), shape=(len(values), n_var))
    constraints = [LinearConstraint(one_each.tocsr(), 1, 1)]
    if not team.restricted:
        constraints.append(
            LinearConstraint(
                np.concatenate([mins[cols], np.zeros(len(flows))])[None, :], 0, float(sum(team.minutes.values()))
            )
        )
    elif flows:
        human_at = np.flatnonzero(human)
        fq = np.array([q for q, _ in flows])
        need = coo_matrix(  # a class's minutes taken - the minutes routed to its collectors <= 0
            (
                np.concatenate([mins[cols[human_at]], -np.ones(len(flows))]),
                (np.concatenate([cls_codes, fq]), np.concatenate([human_at, k + np.arange(len(flows))])),
            ),
            shape=(len(classes), n_var),
        )
        constraints.append(LinearConstraint(need.tocsr(), -np.inf, 0))
        ids = list(team.minutes)
        fc = np.array([ids.index(w) for _, w in flows])
        own = coo_matrix((np.ones(len(flows)), (fc, k + np.arange(len(flows)))), shape=(len(ids), n_var))
        constraints.append(LinearConstraint(own.tocsr(), 0, np.array([float(team.minutes[w]) for w in ids])))
    if groups is not None:
        codes, uniques = pd.factorize(groups.to_numpy())
        contact = values.columns[cols] != NONE
        shared = np.bincount(codes, minlength=len(uniques)) > 1
        sel = contact & shared[codes[rows]]
        if sel.any():
            member = coo_matrix(
                (np.ones(sel.sum()), (codes[rows[sel]], np.flatnonzero(sel))), shape=(len(uniques), n_var)
            )
            constraints.append(LinearConstraint(member.tocsr(), 0, 1))
    for act, cap in limits.items():
        if act in values.columns:
            row = np.concatenate([(values.columns[cols] == act).astype(float), np.zeros(len(flows))])
            constraints.append(LinearConstraint(row[None, :], 0, float(cap)))
    integrality = np.concatenate([np.ones(k), np.zeros(len(flows))])
    upper = np.concatenate([np.ones(k), np.full(len(flows), np.inf)])
    return c, constraints, rows, cols, integrality, upper


def exact(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    time_limit: float,
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    languages: pd.Series | None = None,
) -> Plan | None:
    """MILP on the team's minutes, then first-fit-decreasing onto collectors; None if HiGHS gives no solution."""
    if values.empty:
        return Plan(pd.Series(dtype=object), pd.Series(dtype=object), 0.0, "exact", {"mip_bound": 0.0})
    c, constraints, rows, cols, integrality, upper = _programme(values, minutes, capacities, groups, limits, languages)
    res = milp(
        c,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0, upper),
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None
    pick = res.x[: len(rows)] > 0.5
    action = pd.Series(values.columns[cols[pick]], index=values.index[rows[pick]]).reindex(values.index)
    action, collector = _pack(values, action, minutes, capacities, limits, languages)
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
    capacities: Team | dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    languages: pd.Series | None = None,
) -> float:
    """The linear relaxation's optimum: no plan is worth more (a bound HiGHS finds in seconds where the
    integer programme would not finish)."""
    if values.empty:
        return 0.0
    c, constraints, _, _, integrality, upper = _programme(values, minutes, capacities, groups, limits, languages)
    res = milp(c, constraints=constraints, integrality=np.zeros_like(integrality), bounds=Bounds(0, upper))
    return float(-res.fun) if res.x is not None else float("nan")


def price_bound(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    languages: pd.Series | None = None,
    max_evaluations: int = 600,
) -> dict:
    """An upper bound on any plan's value from prices on capacity (Lagrangian relaxation): with a price per
    minute of each pool of alike collectors (same skills and languages) and per limited place, every
    borrower takes its best action at those prices on its own (a human action pays the cheapest pool that
    may take it), and the capacity is added back at its price. Every set of prices gives a bound; Powell's
    method looks for the lowest. One pass over the rows per evaluation, so it scales where the LP does not;
    returns the bound and the prices found."""
    limits = limits or {}
    team = Team.of(capacities)
    v = values.to_numpy(dtype=float)
    cols = list(values.columns)
    if len(v) == 0:
        return {"bound": 0.0, "prices": {}, "evaluations": 0}
    mins = np.array([minutes.get(a, 0) for a in cols], dtype=float)
    keys = team.pools()
    caps = np.array([float(sum(team.minutes[c] for c in pool)) for pool in keys])
    lang_codes, langs = pd.factorize(team.row_languages(languages, len(v)))
    human = [j for j in range(len(cols)) if mins[j] > 0]
    eligible = {  # (language, human action) -> the pools that may take it (alike collectors: ask the first)
        (li, j): [k for k, pool in enumerate(keys) if team.can(pool[0], cols[j], lang)]
        for li, lang in enumerate(langs)
        for j in human
    }
    limited = [cols.index(a) for a in limits if a in cols]
    places = np.array([float(limits[cols[j]]) for j in limited])
    scarce = _scarce(cols, minutes, limits)
    at = {j: k for k, j in enumerate(scarce)}
    grouped = groups is not None and NONE in cols
    codes = pd.factorize(np.asarray(groups))[0] if grouped else np.arange(len(v))
    order = np.lexsort((codes, lang_codes))  # by language, then borrower: blocks and groups are slices
    v, lang_codes, codes = v[order], lang_codes[order], codes[order]
    auto_best = _best_automated(v, scarce)
    vs = np.ascontiguousarray(v[:, scarce])
    edges = np.flatnonzero(np.r_[True, lang_codes[1:] != lang_codes[:-1], True])
    blocks = [(int(lang_codes[lo]), lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (lang_codes[1:] != lang_codes[:-1])])
    none = v[:, cols.index(NONE)] if grouped else None
    none_total = float(none.sum()) if grouped else 0.0
    top = np.nanmax(np.where(np.isfinite(v), v, np.nan)) if np.isfinite(v).any() else 0.0
    upper = max(float(top), 1.0)
    row_best = np.empty(len(v))  # each row's best at the prices (a buffer every evaluation reuses)

    def dual(x: np.ndarray) -> float:
        lam, mu = x[: len(keys)], x[len(keys) :]
        cost = np.zeros((len(langs), len(scarce)))
        for (li, j), ks in eligible.items():
            cost[li, at[j]] = mins[j] * lam[ks].min() if ks else np.inf
        for k, j in enumerate(limited):
            cost[:, at[j]] += mu[k]
        for li, lo, hi in blocks:
            np.max(vs[lo:hi] - cost[li], axis=1, out=row_best[lo:hi])
        np.maximum(row_best, auto_best, out=row_best)
        if grouped:
            lift = row_best - none  # >= 0: `none` costs nothing
            lift[~np.isfinite(lift)] = 0.0
            total = none_total + float(np.maximum.reduceat(lift, starts).sum())
        else:
            total = float(row_best[np.isfinite(row_best)].sum())
        return total + float(lam @ caps) + float(mu @ places)

    bounds = [(0.0, upper / max(mins[human].min(), 1.0) if human else 0.0)] * len(keys) + [(0.0, upper)] * len(limited)
    start = np.zeros(len(bounds))
    if len(bounds):
        res = minimize(dual, start, method="Powell", bounds=bounds, options={"maxfev": max_evaluations, "xtol": 1e-4})
        bound, x, evaluations = float(min(res.fun, dual(start))), res.x, int(res.nfev)
    else:
        bound, x, evaluations = dual(start), start, 1
    prices = {f"pool {k}": float(x[k]) for k in range(len(keys))} | {
        f"{cols[j]} place": float(x[len(keys) + k]) for k, j in enumerate(limited)
    }
    return {"bound": bound, "prices": prices, "evaluations": evaluations}


def _pack(values, action, minutes, capacities, limits=None, languages=None):
    """First-fit-decreasing of the chosen human actions onto collectors who can take them (skill, language;
    a row that fits nobody falls back to its best automated, unlimited action: still at most one contact
    for its borrower)."""
    team = Team.of(capacities)
    lang = team.row_languages(languages, len(values))
    base_action = _fallback(values, minutes, limits).to_numpy(dtype=object)
    rooms = Rooms(team.minutes)
    acts = action.to_numpy(dtype=object).copy()
    who_of = np.full(len(acts), None, dtype=object)
    need = np.array([minutes.get(a, 0) for a in acts], dtype=float)
    human = np.flatnonzero(need > 0)
    for row in human[np.lexsort((human, -need[human]))].tolist():  # most minutes first, then in row order
        act = acts[row]
        who = rooms.roomiest(minutes[act], team.eligible(act, lang[row]) if team.restricted else None)
        if who is None:
            acts[row] = base_action[row]
            continue
        rooms.use(who, minutes[act])
        who_of[row] = who
    action = pd.Series(acts, index=action.index, dtype=object)
    collector = pd.Series(who_of, index=values.index, dtype=object)
    return action, collector


def decompose(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    languages: pd.Series | None = None,
) -> np.ndarray:
    """Which rows an optimal plan may give a human or limited action (whole borrowers): the rest can take
    their best automated action, at most one contact per borrower, without losing value.

    Why it is exact: a borrower's gain from a scarce action a on one of its loans is that loan's value of a
    less the loan's `none` and less the best the borrower makes with automated actions (its one contact);
    the classes are (a, language) for a human action and a for a limited one. At most S borrowers of
    language l can hold a scarce action on one day (S: each collector speaking l, their minutes over their
    quickest action, plus the limited places). If an optimal plan gave a to a borrower outside the S best
    of its class, one of those S holds no scarce action in it (at most S - 1 others do) and is at its
    automated best; moving a to it keeps every constraint (same class: same collectors, minutes and place)
    and loses nothing. So keeping the S best borrowers of every class keeps an optimal plan. A borrower's
    rows never span two buckets, so the cut can be made bucket by bucket (`plan_parts`)."""
    limits = limits or {}
    team = Team.of(capacities)
    n = len(values)
    cols = list(values.columns)
    mins = np.array([minutes.get(a, 0) for a in cols], dtype=float)
    scarce = _scarce(cols, minutes, limits)
    if n == 0 or not scarce:
        return np.zeros(n, dtype=bool)
    v = values.to_numpy(dtype=float)
    best_auto = _best_automated(v, scarce)
    if groups is None:
        codes, base = np.arange(n), best_auto
    elif NONE in cols and np.isfinite(v[:, cols.index(NONE)]).all():
        codes = pd.factorize(np.asarray(groups))[0]
        none = v[:, cols.index(NONE)]
        lift = pd.Series(np.maximum(best_auto - none, 0.0)).groupby(codes).max().to_numpy()
        base = none + lift[codes]
    else:  # no `none` to fall back to: nothing is cut
        return np.ones(n, dtype=bool)
    lang = team.row_languages(languages, n)
    placed = sum(int(x) for x in limits.values())
    keep = np.zeros(codes.max() + 1, dtype=bool)
    for j in scarce:
        gain = v[:, j] - base
        good = np.isfinite(gain) & (gain > 0)
        if not good.any():
            continue
        if mins[j] > 0:
            classes = [(good & (lang == one), team.slots(minutes, one) + placed) for one in pd.unique(lang[good])]
        else:
            classes = [(good, team.slots(minutes, ANY) + placed)]
        for rows, slots in classes:
            best = pd.Series(gain[rows]).groupby(codes[rows]).max()
            if len(best) > slots:
                best = best.iloc[np.argpartition(-best.to_numpy(), slots - 1)[:slots]] if slots > 0 else best.iloc[:0]
            keep[best.index.to_numpy()] = True
    return keep[codes]


def plan(
    values: pd.DataFrame,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    time_limit: float,
    groups: pd.Series | None = None,
    limits: dict[str, int] | None = None,
    exact_max_rows: int | None = None,
    languages: pd.Series | None = None,
) -> Plan:
    """The better of greedy and exact, with both values and the MIP bound in `stats`. The day is decomposed
    first (`decompose`: the same optimum; only the borrowers who could take a scarce slot reach the solver,
    ~a quarter of the rows on the repro's days, where HiGHS then takes ~3x less time); where the borrowers
    kept are more than `exact_max_rows` (HiGHS would not finish within `time_limit`) only greedy runs, and
    the bound from prices on capacity (`price_bound`, one pass over the rows per evaluation) says how far
    from the best possible it can be."""
    whole = plan_parts([(values, groups, languages)], minutes, capacities, time_limit, limits, exact_max_rows)
    return Plan(
        whole.action.reindex(values.index),
        whole.collector.reindex(values.index),
        whole.value,
        whole.method,
        whole.stats,
    )


def _rows(series: pd.Series | None, kept: np.ndarray) -> pd.Series | None:
    return None if series is None else series[kept]


def _solve(values, minutes, capacities, time_limit, groups, limits, exact_max_rows, languages) -> Plan:
    fast = greedy(values, minutes, capacities, groups, limits, languages)
    stats = {"greedy_value": fast.value}
    if exact_max_rows is not None and len(values) > exact_max_rows:
        priced = price_bound(values, minutes, capacities, groups, limits, languages)
        bound = priced["bound"]
        fast.stats = stats | {
            "method": "greedy",
            "exact": f"skipped: {len(values)} rows > strategy.exact_max_rows {exact_max_rows}",
            "price_bound": bound,
            "capacity_prices": priced["prices"],
            "greedy_gap_to_bound": _gap(fast.value, bound),
        }
        return fast
    best = exact(values, minutes, capacities, time_limit, groups, limits, languages)
    if best is not None:
        stats |= {
            "exact_value": best.value,
            **best.stats,
            "greedy_gap_to_exact": _gap(fast.value, best.value),
        }
    chosen = best if best is not None and best.value >= fast.value else fast
    chosen.stats = stats | {"method": chosen.method}
    return chosen


def automated(values: pd.DataFrame, minutes: dict[str, int], groups=None, limits=None) -> pd.Series:
    """Every row's best automated, unlimited action, at most one contact per borrower (the plan of the rows
    `decompose` leaves out)."""
    return _one_contact_per_group(values, _fallback(values, minutes, limits), groups)


def plan_parts(
    parts,
    minutes: dict[str, int],
    capacities: Team | dict[str, int],
    time_limit: float,
    limits: dict[str, int] | None = None,
    exact_max_rows: int | None = None,
) -> Plan:
    """One day's plan from parts that never split a borrower (borrower buckets): each part is
    (values, groups, languages) and is cut by `decompose` on its own, its other rows planned automated at
    once, so only the kept rows of every part are ever held together. The same optimum as `plan` over the
    whole day (the best S of a class over all parts are among the best S of each part)."""
    kept_parts, rest_parts, rest_value, n = [], [], 0.0, 0
    for values, groups, languages in parts:
        kept = decompose(values, minutes, capacities, groups, limits, languages)
        kept_parts.append((values[kept], _rows(groups, kept), _rows(languages, kept)))
        rest = automated(values[~kept], minutes, _rows(groups, ~kept), limits)
        rest_parts.append(rest)
        rest_value += _total(values[~kept], rest.reindex(values.index[~kept]))
        n += len(values)
    if not kept_parts:
        raise ValueError("plan_parts: no parts (a day with no candidates is one empty part)")
    values = pd.concat([p[0] for p in kept_parts])
    groups = None if kept_parts[0][1] is None else pd.concat([p[1] for p in kept_parts])
    languages = None if kept_parts[0][2] is None else pd.concat([p[2] for p in kept_parts])
    solved = _solve(values, minutes, capacities, time_limit, groups, limits, exact_max_rows, languages)
    action = pd.concat([solved.action, *rest_parts])
    collector = solved.collector.reindex(action.index)
    stats = {  # values of the whole day: the kept rows' plus the automated rest's
        k: v + rest_value if k in ("exact_value", "greedy_value", "mip_bound", "price_bound") else v
        for k, v in solved.stats.items()
    }
    for gap, (low, high) in {
        "greedy_gap_to_exact": ("greedy_value", "exact_value"),
        "greedy_gap_to_bound": ("greedy_value", "price_bound"),
    }.items():
        if gap in stats:
            stats[gap] = _gap(stats[low], stats[high])
    stats["decomposed"] = {"rows": n, "kept_rows": len(values), "automated_value": rest_value}
    return Plan(action, collector, solved.value + rest_value, solved.method, stats)
