"""Scorecard challenger, as risk analysts build it: WoE binning, IV screening, logistic points.

Binning is optbinning's OptimalBinning (through BinningProcess and Scorecard): monotonic
(`auto_asc_desc`) bins with a separate missing bin and a special-codes bin, chosen by a
constraint-programming solver; we use it instead of hand-written binning because its bins are
optimal under the monotonicity and minimum-size constraints and it is the library analysts know.
Features are kept when IV >= `min_iv`, then the weaker of any pair whose WoE correlation exceeds
`max_corr` is dropped. Points use the PDO/odds scaling (base score at base odds, `pdo` points
to double the odds); higher points mean lower risk.

The fitted card is a plain points table (`ScorecardModel`) that scores without optbinning,
saves to and reloads from JSON exactly, and exports to SQL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from huishou.core.errors import ConfigError
from huishou.core.settings import ScorecardSettings

# optbinning imports cvxpy, whose import logs (and re-levels its logger for) every solver it skips
logging.getLogger("__cvxpy__").addFilter(lambda record: record.levelno >= logging.CRITICAL)

BINNING_METHOD = "optbinning.OptimalBinning (CP solver, monotonic_trend=auto_asc_desc, missing and special bins)"


@dataclass
class ScorecardModel:
    """Points per bin: numeric bins are [lower, upper), categorical bins a list of categories; 'missing' and
    'special' bins match by value. A category not seen in training scores as missing (as optbinning does)."""

    points: pd.DataFrame  # variable, bin_id, kind (interval|categories|missing|special), lower, upper,
    # categories, woe, points
    base_score: float
    base_odds: float
    pdo: float
    special_codes: list[float] = field(default_factory=list)

    @property
    def variables(self) -> list[str]:
        return list(dict.fromkeys(self.points["variable"]))

    def variable_points(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Points of every variable for every row (columns = variables)."""
        out = {}
        for var, bins in self.points.groupby("variable", sort=False):
            if (bins["kind"] == "categories").any():
                out[var] = self._category_points(frame[var], bins)
                continue
            x = frame[var].to_numpy(dtype=float)
            pts = np.full(len(x), np.nan)
            intervals = bins[bins["kind"] == "interval"].sort_values("bin_id")
            edges = intervals["lower"].to_numpy()[1:]
            idx = np.searchsorted(edges, x, side="right")
            pts[:] = intervals["points"].to_numpy()[np.clip(idx, 0, len(intervals) - 1)]
            missing = bins.loc[bins["kind"] == "missing", "points"].iloc[0]
            special = bins.loc[bins["kind"] == "special", "points"].iloc[0]
            pts = np.where(np.isin(x, self.special_codes), special, pts)
            pts = np.where(np.isnan(x), missing, pts)
            out[var] = pts
        return pd.DataFrame(out, index=frame.index)

    @staticmethod
    def _category_points(values: pd.Series, bins: pd.DataFrame) -> np.ndarray:
        missing = float(bins.loc[bins["kind"] == "missing", "points"].iloc[0])
        lookup = {
            c: float(p)
            for cats, p in zip(bins["categories"], bins["points"], strict=True)
            if isinstance(cats, list)
            for c in cats
        }
        text = values.astype("object").where(values.notna(), None)
        return np.array([lookup.get(str(v), missing) if v is not None else missing for v in text], dtype=float)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.variable_points(frame).sum(axis=1).to_numpy()

    @property
    def factor(self) -> float:
        return self.pdo / np.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * np.log(self.base_odds)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """P(bad) implied by the points: score = offset + factor * ln(good:bad odds)."""
        return 1.0 / (1.0 + np.exp((self.score(frame) - self.offset) / self.factor))

    def to_json(self, path: str | Path) -> None:
        doc = {
            "base_score": self.base_score,
            "base_odds": self.base_odds,
            "pdo": self.pdo,
            "special_codes": self.special_codes,
            "points": self.points.to_dict(orient="records"),
        }
        Path(path).write_text(json.dumps(doc, indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> ScorecardModel:
        doc = json.loads(Path(path).read_text())
        return cls(pd.DataFrame(doc["points"]), doc["base_score"], doc["base_odds"], doc["pdo"], doc["special_codes"])

    def to_sql(self, table: str = "features", keys: tuple[str, ...] = ("loan_id", "snapshot_date")) -> str:
        """A SELECT computing the score from a table holding the variables (same bins, same points)."""
        terms = []
        for var, bins in self.points.groupby("variable", sort=False):
            missing = bins.loc[bins["kind"] == "missing", "points"].iloc[0]
            special = bins.loc[bins["kind"] == "special", "points"].iloc[0]
            if (bins["kind"] == "categories").any():
                cases = [f"WHEN {var} IS NULL THEN {float(missing)!r}"]
                for cats, pts in zip(bins["categories"], bins["points"], strict=True):
                    if isinstance(cats, list):
                        quoted = ", ".join("'" + str(c).replace("'", "''") + "'" for c in cats)
                        cases.append(f"WHEN CAST({var} AS VARCHAR) IN ({quoted}) THEN {float(pts)!r}")
                cases.append(f"ELSE {float(missing)!r}")
                terms.append("CASE " + " ".join(cases) + " END")
                continue
            cases = [f"WHEN {var} IS NULL OR isnan({var}) THEN {float(missing)!r}"]
            if self.special_codes:
                cases.append(
                    f"WHEN {var} IN ({', '.join(repr(float(c)) for c in self.special_codes)}) THEN {float(special)!r}"
                )
            intervals = bins[bins["kind"] == "interval"].sort_values("bin_id")
            for upper, pts in zip(intervals["upper"].to_numpy()[:-1], intervals["points"].to_numpy()[:-1], strict=True):
                cases.append(f"WHEN {var} < {float(upper)!r} THEN {float(pts)!r}")
            cases.append(f"ELSE {float(intervals['points'].iloc[-1])!r}")
            terms.append("CASE " + " ".join(cases) + " END")
        key_cols = ", ".join(keys)
        return f"SELECT {key_cols},\n  " + "\n  + ".join(terms) + f"\n  AS score\nFROM {table}"


def _points_table(card, variables: list[str]) -> pd.DataFrame:
    """optbinning's detailed table -> our points table (intervals from the bin splits)."""
    table = card.table(style="detailed")
    rows = []
    for var in variables:
        binned = card.binning_process_.get_binned_variable(var)
        categorical = binned.dtype == "categorical"
        if not categorical:
            edges = np.concatenate([[-np.inf], np.asarray(binned.splits, dtype=float), [np.inf]])
        sub = table[table["Variable"] == var].reset_index(drop=True)
        for i, r in sub.iterrows():
            label = r["Bin"] if isinstance(r["Bin"], str) else None
            kind = {"Missing": "missing", "Special": "special"}.get(label, "categories" if categorical else "interval")
            lower, upper = (edges[i], edges[i + 1]) if kind == "interval" else (np.nan, np.nan)
            cats = [str(c) for c in r["Bin"]] if kind == "categories" else None
            rows.append(
                {
                    "variable": var,
                    "bin_id": int(r["Bin id"]),
                    "kind": kind,
                    "lower": float(lower),
                    "upper": float(upper),
                    "categories": cats,
                    "woe": float(r["WoE"]),
                    "points": float(r["Points"]),
                    "count": int(r["Count"]),
                    "event_rate": float(r["Event rate"]),
                }
            )
    return pd.DataFrame(rows)


def _quiet_solvers() -> None:
    """optbinning imports cvxpy, which probes every solver it knows at import and warns that the installed
    highspy lacks a symbol its HiGHS interface wants; optbinning bins with its CP solver, not HiGHS, so the
    warning is noise on every stage's output."""
    logging.getLogger("__cvxpy__").disabled = True  # cvxpy sets its logger's level when imported


def _binning_process(
    variables: list[str], cfg: ScorecardSettings, min_iv: float | None = None, categorical: tuple[str, ...] = ()
):
    _quiet_solvers()
    from optbinning import BinningProcess

    return BinningProcess(
        variables,
        categorical_variables=[v for v in variables if v in categorical] or None,
        max_n_bins=cfg.max_n_bins,
        min_bin_size=cfg.min_bin_size,
        special_codes=list(cfg.special_codes) or None,
        binning_fit_params={
            v: ({"monotonic_trend": "auto_asc_desc"} if v not in categorical else {})
            | (  # the pre-binning must allow the small bin too
                {
                    "min_bin_size": float(cfg.min_bin_size_by_feature[v]),
                    "min_prebin_size": float(cfg.min_bin_size_by_feature[v]),
                }
                if v in cfg.min_bin_size_by_feature
                else {}
            )
            for v in variables
        },
        selection_criteria={"iv": {"min": min_iv}} if min_iv is not None else None,
    )


def select_features(
    x: pd.DataFrame, y: np.ndarray, cfg: ScorecardSettings, categorical: tuple[str, ...] = ()
) -> tuple[list[str], pd.DataFrame]:
    """IV screening then a WoE-correlation filter; returns the kept variables and the IV table."""
    bp = _binning_process(list(x.columns), cfg, cfg.min_iv, categorical).fit(x, y)
    summary = bp.summary().set_index("name")
    iv = summary["iv"].astype(float).sort_values(ascending=False)
    screened = [v for v in iv.index if iv[v] >= cfg.min_iv]
    woe = (
        pd.DataFrame(bp.transform(x[screened] if screened else x.iloc[:, :0], metric="woe"), columns=screened)
        if screened
        else pd.DataFrame()
    )
    kept, dropped_for = [], {}
    for var in screened:
        clash = next((k for k in kept if abs(np.corrcoef(woe[var], woe[k])[0, 1]) > cfg.max_corr), None)
        if clash is None:
            kept.append(var)
        else:
            dropped_for[var] = clash
    table = pd.DataFrame(
        {
            "variable": iv.index,
            "iv": iv.to_numpy(),
            "n_bins": summary.loc[iv.index, "n_bins"].to_numpy(),
            "binning_method": BINNING_METHOD,
            "decision": [
                ("kept" if v in kept else f"dropped: |corr| > {cfg.max_corr} with {dropped_for[v]}")
                if iv[v] >= cfg.min_iv
                else f"dropped: IV < {cfg.min_iv}"
                for v in iv.index
            ],
        }
    )
    return kept, table


def fit_scorecard(
    train: pd.DataFrame, columns: list[str], cfg: ScorecardSettings
) -> tuple[ScorecardModel, pd.DataFrame]:
    """Bin, screen and fit the card on the training rows: numeric features in monotonic intervals,
    categorical ones (the lender's declared categories included) in groups of categories."""
    _quiet_solvers()
    from optbinning import Scorecard
    from sklearn.linear_model import LogisticRegression

    categorical = tuple(c for c in columns if isinstance(train[c].dtype, pd.CategoricalDtype))
    x = pd.DataFrame(
        {
            c: (
                train[c].astype("object").where(train[c].notna(), np.nan)
                if c in categorical
                else train[c].astype(float)
            )
            for c in columns
        },
        index=train.index,
    )
    y = train["target"].astype(int).to_numpy()
    empty = [c for c in columns if x[c].nunique() < 2]  # all missing or constant: nothing to bin
    kept, iv_table = select_features(x.drop(columns=empty), y, cfg, categorical)
    iv_table = pd.concat(
        [
            iv_table,
            pd.DataFrame(
                {
                    "variable": empty,
                    "iv": 0.0,
                    "n_bins": 0,
                    "binning_method": BINNING_METHOD,
                    "decision": "dropped: no variation (missing or constant)",
                }
            ),
        ],
        ignore_index=True,
    )
    if not kept:
        raise ConfigError(f"no feature reaches scorecard.min_iv = {cfg.min_iv}; lower it in params.yaml")
    card = Scorecard(
        binning_process=_binning_process(kept, cfg, categorical=categorical),
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={"pdo": cfg.pdo, "odds": cfg.base_odds, "scorecard_points": cfg.base_score},
        rounding=True,  # integer points per bin, as a printed card has
    )
    card.fit(x[kept], y)
    model = ScorecardModel(
        _points_table(card, kept),
        float(cfg.base_score),
        float(cfg.base_odds),
        float(cfg.pdo),
        [float(c) for c in cfg.special_codes],
    )
    return model, iv_table


def points_shortfall(model: ScorecardModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Reason-code basis: points each variable is below its best bin (larger = pushes risk up more)."""
    best = model.points.groupby("variable")["points"].max()
    pts = model.variable_points(frame)
    return best[pts.columns] - pts
