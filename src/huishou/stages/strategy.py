"""`huishou strategy`: action effects, lawful plans and per-collector worklists.

Reads data.raw_dir (the book and its logged collection decisions; refused unless unchanged since
validation), the nightly scores of the published date (score.scores_dir, when present) and
models/lightgbm.joblib (risk scores and reason codes). Writes data.worklists_dir:
candidates_<D>.parquet for every worklist date, worklist_<D>.parquet and <D>/<collector>.csv for
the published date, index.json; models/strategy_metrics.json (plan values, MIP gap, off-policy
estimates; DVC metrics); logs the metrics to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huishou import tracking
from huishou.artifacts import model_path, scores_path
from huishou.book.files import assert_validated, read_raw
from huishou.config import FEATURE_BUILD_PARAMS
from huishou.errors import DataValidationError
from huishou.explain import reason_codes
from huishou.features import build_features
from huishou.io import write_csv, write_json, write_parquet
from huishou.model import RiskModel
from huishou.strategy import AUTO, plan_strategy, worklist

PARAMS = (
    "data.raw_dir",
    "data.validated_dir",
    "data.models_dir",
    "data.worklists_dir",
    "score.scores_dir",
    "strategy",
    *FEATURE_BUILD_PARAMS,
    "tracking.default_uri",
    "tracking.strategy_experiment",
)


def run(settings) -> dict:
    """Plan every worklist date, publish the last one's worklists, record the evaluation."""
    cfg, f = settings.strategy, settings.features
    report = assert_validated(settings.data.raw_dir, settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])
    tables = read_raw(settings.data.raw_dir)
    if "collection_actions" not in tables:
        raise DataValidationError(
            f"{settings.data.raw_dir}: the strategy needs collection_actions.parquet (the logged legacy decisions)"
        )
    plans = plan_strategy(tables, as_of, cfg, f.default_dpd, f.paid_tolerance, f.settle_share)
    out_dir = Path(settings.data.worklists_dir)
    for day, cand in plans.candidates.items():
        write_parquet(cand, out_dir / f"candidates_{day.date()}.parquet")
    publish = plans.published
    cand = plans.candidates[publish]
    model = RiskModel.load(model_path(settings.data.models_dir, "lightgbm"))
    feats = build_features(tables, [publish], **f.build_kwargs(as_of))
    feats = feats[feats["loan_id"].isin(cand["loan_id"])].set_index("loan_id", drop=False)
    risk = _nightly_scores(settings.score.scores_dir, publish)
    if risk is None:  # no scoring run for that date: score the candidates with the same model
        risk = pd.Series(model.predict_proba(feats), index=feats.index)
    lists = worklist(cand, reason_codes(model, feats), risk, cfg)
    write_parquet(lists, out_dir / f"worklist_{publish.date()}.parquet")
    for collector, rows in lists.groupby("collector_id"):
        write_csv(rows, out_dir / f"{publish.date()}" / f"{collector}.csv")
    index = {"published": str(publish.date()), "dates": [str(d.date()) for d in plans.days]}
    write_json(index, out_dir / "index.json")
    metrics = {
        "off_policy": plans.off_policy,
        "plans": plans.stats,
        "published": index["published"],
        "worklist_rows": len(lists),
        "human_actions": int(lists["collector_id"].ne(AUTO).sum()),
    }
    write_json(metrics, Path(settings.data.models_dir) / "strategy_metrics.json")
    tracking.log_run(
        settings.tracking,
        settings.tracking.strategy_experiment,
        f"strategy {publish.date()}",
        metrics,
        [out_dir / f"worklist_{publish.date()}.parquet"],
    )
    return metrics


def _nightly_scores(scores_dir: str, day: pd.Timestamp) -> pd.Series | None:
    """Risk scores of the nightly `huishou score` run for `day`, by loan_id, if that file exists."""
    path = scores_path(scores_dir, day)
    if not path.exists():
        return None
    return pd.read_parquet(path, columns=["loan_id", "probability"]).set_index("loan_id")["probability"]
