"""Exact TreeSHAP for many rows at once, from tables built once per model.

LightGBM's `pred_contrib` runs TreeSHAP (Lundberg et al. 2020, Algorithm 2: path-dependent, the tree's
cover as the background) one row and one tree at a time. Its result has a closed form per leaf: a leaf
`l` reached by a path that splits on the distinct features U (d of them) adds, to each feature i in U,

    phi_i += v_l * (o_i - z_i) * sum_s  s! (d-1-s)! / d!  *  [t^s] prod_{j in U, j != i} (z_j + o_j t)

where z_j is the share of the training rows that follow the path's splits on j (LightGBM's leaf and node
counts) and o_j is 1 when the row itself satisfies all of them, else 0. So a leaf's contributions depend
on the row only through d bits: `TreeShap` tabulates them for all 2^d bit patterns of every leaf once,
then, for all rows together, looks up each leaf's pattern (one table lookup per feature on the path, on
interval codes of the model's own thresholds) and adds the table's row. No walk per row remains: on the
default book's model (178 trees of depth 5) this is 7-9x LightGBM's own TreeSHAP on 2 cores
(`benchmarks/bench_reasons.py`), with the same values to the last bits (summation order).

A row's side of a split follows LightGBM's `NumericalDecision` and `CategoricalDecision`: missing values
(NaN), exact zeros (|x| <= 1e-35f) and, for categorical features, negative and unseen categories each get
a code of their own, whose side is decided per split by its missing_type and default_left. Tests compare
with `pred_contrib` for every missing_type, categorical splits and values exactly on a threshold.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from huishou.core.engine import threads

_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (1e-35f): |x| at or below it is zero
_BLOCK = 1024  # rows the kernel takes through every leaf at a time (their codes and sums stay in cache)
MAX_PATH_FEATURES = 12  # tables hold 2^d rows per leaf: deeper paths are left to LightGBM's own TreeSHAP


@dataclass(frozen=True)
class _Codes:
    """How a feature's values become codes: numeric, the interval between the model's thresholds on it
    (then NaN, then zero); categorical, the category (then any category above those split on, negative,
    NaN)."""

    cuts: np.ndarray | None  # numeric: the sorted thresholds; None: categorical
    n_categories: int  # categorical: categories 0..n-1 have their own code

    def codes(self, v: np.ndarray) -> np.ndarray:
        if self.cuts is not None:
            code = np.searchsorted(self.cuts, v, side="left")
            code[np.isnan(v)] = len(self.cuts) + 1
            code[np.abs(v) <= _ZERO] = len(self.cuts) + 2
            return code
        k = self.n_categories
        whole = np.trunc(np.nan_to_num(v, nan=-1.0))
        code = np.where(whole < 0, k + 1, np.minimum(whole, k)).astype(np.intp)  # k: beyond every split
        code[np.isnan(v)] = k + 2
        return code

    def representatives(self) -> np.ndarray:
        """One value per code that LightGBM treats as it treats every value of the code."""
        if self.cuts is not None:
            # interval (cuts[c-1], cuts[c]]: cuts[c], unless that is zero (it has its own code): then the
            # interval's values below the zero band; above the last cut: the next number up, past the band
            reps = self.cuts.copy()
            band = np.abs(reps) <= _ZERO
            reps[band] = np.nextafter(-_ZERO, -np.inf)
            above = np.nextafter(self.cuts[-1], np.inf) if len(self.cuts) else 1.0
            above = np.nextafter(_ZERO, np.inf) if abs(above) <= _ZERO else above
            return np.concatenate([reps, [above, np.nan, 0.0]])
        return np.concatenate([np.arange(self.n_categories + 1, dtype=float), [-1.0, np.nan]])


def _goes_left(node: dict, values: np.ndarray) -> np.ndarray:
    """LightGBM's decision at `node` for each of `values`: True where it goes left (tree.h
    NumericalDecision, CategoricalDecision)."""
    missing = node.get("missing_type", "None")
    nan = np.isnan(values)
    if node["decision_type"] == "==":
        whole = np.trunc(np.where(nan, -1.0, values))
        chosen = np.array([float(c) for c in str(node["threshold"]).split("||")])
        return ~nan & (whole >= 0) & np.isin(whole, chosen)
    v = np.where(nan & (missing != "NaN"), 0.0, values)  # NaN is zero unless missing_type is NaN
    with np.errstate(invalid="ignore"):
        left = v <= float(node["threshold"])
    if missing == "Zero":
        return np.where(np.abs(v) <= _ZERO, bool(node["default_left"]), left)
    if missing == "NaN":
        return np.where(nan, bool(node["default_left"]), left)
    return left


def _shap_tables(z: np.ndarray) -> np.ndarray:
    """(L, d, 2^d) for L leaves of d path features with zero fractions `z` (L, d): for every bit pattern o
    of the d features, the Shapley value of each feature in the game prod_j (j in S ? o_j : z_j), the
    leaf's share of the row's prediction (leaf value 1)."""
    n_leaves, d = z.shape
    patterns = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(float)  # (2^d, d): o per pattern
    weights = np.array([math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)])
    out = np.empty((n_leaves, d, 2**d))
    for i in range(d):
        poly = np.zeros((n_leaves, 2**d, d))  # coefficients of t^0..t^(d-1), per leaf and pattern
        poly[:, :, 0] = 1.0
        for j in range(d):
            if j != i:  # multiply by (z_j + o_j t)
                zj = z[:, j, None, None]
                poly[:, :, 1:] = poly[:, :, 1:] * zj + poly[:, :, :-1] * patterns[None, :, j : j + 1]
                poly[:, :, 0] *= zj[:, :, 0]
        out[:, i] = (patterns[None, :, i] - z[:, i, None]) * (poly @ weights)
    return out


def _leaves(tree: dict) -> list[tuple[float, list[tuple[dict, bool, float]]]]:
    """Every leaf's value with its path: (node, went left, child's count over the node's) from the root."""
    found, stack = [], [(tree, [])]
    while stack:
        n, path = stack.pop()
        if "split_feature" not in n:
            found.append((float(n["leaf_value"]), path))
            continue
        count = float(n["internal_count"])
        for child, left in ((n["left_child"], True), (n["right_child"], False)):
            c = float(child.get("internal_count", child.get("leaf_count", 0)))
            stack.append((child, [*path, (n, left, c / count)]))
    return found


class TreeShap:
    """Exact TreeSHAP contributions of a single-output LightGBM booster from per-leaf tables.
    `contributions(x)` returns what `booster.predict(x, pred_contrib=True)` returns for a float matrix `x`
    (categorical columns as their codes, missing as NaN): one column per feature, then the bias."""

    def __init__(self, booster: lgb.Booster):
        model = booster.dump_model()
        if model.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("TreeShap explains single-output models only")
        self.n_features = booster.num_feature()
        trees = [info["tree_structure"] for info in model["tree_info"]]
        cuts: dict[int, set[float]] = {}
        categories: dict[int, int] = {}
        stack = list(trees)
        while stack:
            n = stack.pop()
            if "split_feature" not in n:
                if n.get("leaf_coeff"):  # a linear tree's leaf: its value depends on the row
                    raise ValueError("TreeSHAP contributions are not implemented for linear trees (nor in LightGBM)")
                continue
            f = int(n["split_feature"])
            if n["decision_type"] == "==":
                top = max(int(c) for c in str(n["threshold"]).split("||"))
                categories[f] = max(categories.get(f, 0), top + 1)
            else:
                cuts.setdefault(f, set()).add(float(n["threshold"]))
            stack += [n["left_child"], n["right_child"]]
        if set(cuts) & set(categories):  # pragma: no cover - LightGBM fixes a feature's kind
            raise ValueError("a feature split both as numeric and categorical")
        self.coding = {f: _Codes(np.array(sorted(c)), 0) for f, c in cuts.items()}
        self.coding |= {f: _Codes(None, k) for f, k in categories.items()}
        reps = {f: c.representatives() for f, c in self.coding.items()}
        self.bias = 0.0
        self.too_deep = False
        decisions: dict[int, np.ndarray] = {}  # per split node (by identity): its side for each code
        paths: list[tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]] = []
        for tree in trees:
            found = _leaves(tree)
            if len(found) == 1:  # a single leaf: no split, its value is the bias
                self.bias += found[0][0]
                continue
            for value, path in found:
                share_of_rows = 1.0
                by_feature: dict[int, tuple[float, np.ndarray]] = {}
                for node, left, share in path:
                    f = int(node["split_feature"])
                    if id(node) not in decisions:
                        decisions[id(node)] = _goes_left(node, reps[f])
                    z, ok = by_feature.get(f, (1.0, np.ones(len(reps[f]), dtype=bool)))
                    by_feature[f] = (z * share, ok & (decisions[id(node)] == left))
                    share_of_rows *= share
                self.bias += value * share_of_rows  # the tree's expected value: leaves weighted by count
                if len(by_feature) > MAX_PATH_FEATURES:
                    self.too_deep = True
                    continue
                features = np.array(sorted(by_feature), dtype=np.intp)
                z = np.array([by_feature[f][0] for f in features])
                follows = [by_feature[f][1] for f in features]
                paths.append((value, features, z, follows))
        # flat arrays for the kernel: leaf l's pairs (path features) are leaf_start[l]:leaf_start[l + 1]; pair
        # p's code column, feature, and follows-the-path flags by code (lut[lut_start[p] + code]); leaf l's
        # table holds feature k's contribution for bit pattern o at table_start[l] + (k << d) + o
        self.coded = sorted(self.coding)
        column = {f: i for i, f in enumerate(self.coded)}
        pair_column, pair_feature, luts, leaf_start, table_parts = [], [], [], [0], []
        for d in sorted({len(p[1]) for p in paths}):
            group = [p for p in paths if len(p[1]) == d]
            tables = _shap_tables(np.array([p[2] for p in group])) * np.array([p[0] for p in group])[:, None, None]
            for (_, features, _, follows), table in zip(group, tables, strict=True):
                pair_column += [column[f] for f in features]
                pair_feature += list(features)
                luts += list(follows)
                leaf_start.append(leaf_start[-1] + d)
                table_parts.append(table.ravel())
        self.pair_column = np.array(pair_column, dtype=np.int32)
        self.pair_feature = np.array(pair_feature, dtype=np.int32)
        self.lut_start = np.cumsum([0, *[len(t) for t in luts[:-1]]]).astype(np.int64)
        self.lut = np.concatenate(luts).astype(np.uint8) if luts else np.zeros(0, dtype=np.uint8)
        self.leaf_start = np.array(leaf_start, dtype=np.int64)
        self.table_start = np.cumsum([0, *[len(t) for t in table_parts[:-1]]]).astype(np.int64)
        self.tables = np.concatenate(table_parts) if table_parts else np.zeros(0)
        self.booster = booster

    def contributions(self, x: np.ndarray, num_threads: int = 0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {x.shape}")
        if self.too_deep:
            return self.booster.predict(x, pred_contrib=True, num_threads=num_threads)
        n = len(x)
        codes = np.empty((len(self.coded), n), dtype=np.int32)  # one row per coded feature: the kernel reads
        for row, f in enumerate(self.coded):  # a feature's codes for consecutive loans
            codes[row] = self.coding[f].codes(np.ascontiguousarray(x[:, f]))
        out = np.zeros((self.n_features + 1, n))
        out[-1] = self.bias
        kernel = _kernel()
        workers = max(1, min(threads(num_threads), -(-n // 4096)))  # a range of at least ~4k rows each
        bounds = np.linspace(0, n, workers + 1).astype(np.int64)
        args = (codes, self.pair_column, self.pair_feature, self.lut_start, self.lut)
        args += (self.leaf_start, self.table_start, self.tables, out)
        if workers == 1:
            kernel(*args, 0, n)
        else:  # the kernel releases the GIL: row ranges side by side, each writing its own columns of out
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda i: kernel(*args, bounds[i], bounds[i + 1]), range(workers)))
        return out.T.copy()


_KERNEL = None


def _kernel():
    """The compiled row loop (numba, cached on disk beside this file after the first compile)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(nogil=True, cache=True)
        def rows(codes, pair_column, pair_feature, lut_start, lut, leaf_start, table_start, tables, out, lo, hi):
            # blocks of rows, so that a block's codes and contributions stay in cache while every leaf passes
            pattern = np.empty(_BLOCK, dtype=np.int64)
            for block in range(lo, hi, _BLOCK):
                end = min(hi, block + _BLOCK)
                for leaf in range(len(leaf_start) - 1):
                    a, b = leaf_start[leaf], leaf_start[leaf + 1]
                    base, d = table_start[leaf], b - a
                    pattern[: end - block] = 0
                    for p in range(a, b):
                        column, bits, shift = codes[pair_column[p]], lut[lut_start[p] :], p - a
                        for r in range(block, end):
                            pattern[r - block] |= np.int64(bits[column[r]]) << shift
                    for p in range(a, b):
                        row, table = out[pair_feature[p]], tables[base + ((p - a) << d) :]
                        for r in range(block, end):
                            row[r] += table[pattern[r - block]]

        _KERNEL = rows
    return _KERNEL


def lightgbm_matrix(frame: pd.DataFrame) -> np.ndarray:
    """A frame aligned to the model (numeric columns, categoricals on the training levels) as the float
    matrix LightGBM builds from it: categories as their codes, missing as NaN."""
    columns = []
    for column in frame.columns:
        s = frame[column]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(s.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))
