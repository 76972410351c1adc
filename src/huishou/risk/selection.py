"""Which trained model is the champion: LightGBM on a book large enough to validate out of time, and on a
small book the model with the best repeated cross-validated AUC among LightGBM, logistic and scorecard.

Why: below a few thousand labelled rows one validation split is too noisy to rank the models (on the
1,000-row German credit set a single split put LightGBM 0.019 below a plain baseline while the logistic and
the scorecard were above it), and gradient boosting is not the best learner on every small table. Repeated
stratified K-fold (scikit-learn's RepeatedStratifiedKFold) over the labelled train + valid rows scores each
model on every row several times; within each fold the model is fitted exactly as `huishou train` fits it
(an inner stratified validation part for early stopping and calibration), and the test split is never
touched. No file or MLflow I/O happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from huishou.core.paths import MODEL_NAMES
from huishou.core.settings import ScorecardSettings, TrainSettings
from huishou.risk.model import RiskModel
from huishou.risk.train import fit_lightgbm, fit_logistic, fit_scorecard_model

DEFAULT_CHAMPION = "lightgbm"
INNER_VALID_SHARE = 0.25  # of each fold's training part: early stopping and calibration, as the valid split


@dataclass(frozen=True)
class ChampionChoice:
    """The champion, the rule that chose it, a sentence saying why, and (cross-validation) each model's AUC."""

    champion: str
    rule: str  # "cross-validation" or "default"
    why: str
    labelled_rows: int
    threshold: int
    table: pd.DataFrame  # model, auc_mean, auc_sd, difference_to_champion (mean of paired fold differences), ...

    def to_dict(self) -> dict:
        return {
            "champion": self.champion,
            "rule": self.rule,
            "why": self.why,
            "labelled_rows": self.labelled_rows,
            "small_book_rows": self.threshold,
            "cross_validation": self.table.to_dict(orient="records"),
        }


Fitter = Callable[[pd.DataFrame, pd.DataFrame], RiskModel]


def model_fitters(
    columns: list[str], cfg: TrainSettings, scorecard: ScorecardSettings, monotone=None, dropped=(), threads: int = 0
) -> dict[str, Fitter]:
    """The three models as `huishou train` fits them (LightGBM locally on `threads` threads), each a function
    of (train, valid)."""
    return {
        "lightgbm": lambda tr, va: fit_lightgbm(tr, va, columns, cfg, monotone, dropped, threads),
        "logistic": lambda tr, va: fit_logistic(tr, va, columns, cfg),
        "scorecard": lambda tr, va: fit_scorecard_model(tr, va, columns, scorecard, cfg.seed)[0],
    }


def cross_validated_auc(
    labelled: pd.DataFrame,
    fitters: dict[str, Fitter],
    folds: int,
    repeats: int,
    seed: int,
    progress: Callable[[Iterable], Iterable] = iter,
) -> pd.DataFrame:
    """Each model's AUC on each held-out fold (columns: repeat, fold, model, auc), the folds shared by the
    models so that their differences are paired."""
    y = labelled["target"].astype(int).to_numpy()
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    rows = []
    for k, (fit_idx, held_idx) in enumerate(progress(list(splitter.split(np.zeros(len(y)), y)))):
        part = labelled.iloc[fit_idx]
        inner_train, inner_valid = train_test_split(
            part, test_size=INNER_VALID_SHARE, stratify=y[fit_idx], random_state=seed + k
        )
        held = labelled.iloc[held_idx]
        for name, fit in fitters.items():
            p = fit(inner_train, inner_valid).predict_proba(held)
            rows.append({"repeat": k // folds, "fold": k % folds, "model": name, "auc": roc_auc_score(y[held_idx], p)})
    return pd.DataFrame(rows)


def summarise(per_fold: pd.DataFrame, champion: str) -> pd.DataFrame:
    """Mean and spread of each model's fold AUCs, and its paired difference to `champion` (mean and the
    standard error of the mean of the per-fold differences)."""
    wide = per_fold.pivot_table(index=["repeat", "fold"], columns="model", values="auc")
    diff = wide.sub(wide[champion], axis=0)
    names = [n for n in MODEL_NAMES if n in wide.columns]
    return pd.DataFrame(
        {
            "model": names,
            "auc_mean": [wide[n].mean() for n in names],
            "auc_sd": [wide[n].std(ddof=1) for n in names],
            "difference_to_champion": [diff[n].mean() for n in names],
            "difference_se": [diff[n].std(ddof=1) / np.sqrt(len(diff)) for n in names],
            "folds": [int(wide[n].notna().sum()) for n in names],
        }
    )


def choose_champion(
    labelled: pd.DataFrame,
    fitters: dict[str, Fitter],
    small_book_rows: int,
    folds: int,
    repeats: int,
    seed: int,
    progress: Callable[[Iterable], Iterable] = iter,
) -> ChampionChoice:
    """LightGBM when `labelled` (the train + valid rows with a label) has at least `small_book_rows` rows;
    below, the model with the highest mean AUC over `repeats` x `folds` stratified folds (ties go to the
    model listed first: LightGBM, logistic, scorecard)."""
    n = len(labelled)
    minority = int(labelled["target"].astype(int).value_counts().min()) if n else 0
    if n >= small_book_rows or minority < 2 * folds:
        why = (
            f"{n:,} labelled train + valid rows, at least train.small_book_rows ({small_book_rows:,})"
            if n >= small_book_rows
            else f"{n:,} labelled train + valid rows but {minority} in the smaller class, too few for "
            f"{folds}-fold cross-validation (needs {2 * folds})"
        )
        why += f": {DEFAULT_CHAMPION}, the default champion, validated on the valid split"
        return ChampionChoice(DEFAULT_CHAMPION, "default", why, n, small_book_rows, pd.DataFrame())
    per_fold = cross_validated_auc(labelled, fitters, folds, repeats, seed, progress)
    means = per_fold.groupby("model", sort=False)["auc"].mean()
    champion = max(means.index, key=lambda m: (round(means[m], 12), -list(fitters).index(m)))
    table = summarise(per_fold, champion)
    others = "; ".join(
        f"{r.model} {r.auc_mean:.3f} ± {r.auc_sd:.3f} ({r.difference_to_champion:+.3f} ± {r.difference_se:.3f})"
        for r in table.itertuples()
        if r.model != champion
    )
    best = table.set_index("model").loc[champion]
    why = (
        f"{n:,} labelled train + valid rows, fewer than train.small_book_rows ({small_book_rows:,}): one "
        f"validation split is too noisy to rank models, so the champion is the highest mean AUC over "
        f"{repeats} x {folds}-fold stratified cross-validation: {champion} {best.auc_mean:.3f} ± {best.auc_sd:.3f}; "
        f"{others} (paired difference to the champion ± its standard error)"
    )
    return ChampionChoice(champion, "cross-validation", why, n, small_book_rows, table)
