"""`huishou strategy`: action effects, lawful plans and per-collector worklists.

Reads data.raw_dir (the book and its logged collection decisions; refused unless unchanged since
validation), the effect models `huishou fit-effects` published in models/effects/ (refused when
older than strategy.effect_max_age_days or learnt from outcomes after this plan's cutoff; fitted
here, with a warning, when there are none), the pipeline's scores of the published date
(score.scores_dir, when present) and the champion model in models/trained/ (named in champion.json; risk scores and reason
codes); features are built for the published candidates' borrowers only. Publishes data.worklists_dir as
one unit: candidates/<D>.parquet for every worklist date, published/worklist.parquet and
published/<collector>.csv for the published date, index.json and strategy_metrics.json (plan values, MIP
gap, off-policy estimates; DVC metrics). MLflow gets the same aggregates, never a worklist row.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from huishou.book.source import BookSource
from huishou.compliance import Profile
from huishou.core import tracking
from huishou.core.engine import threads
from huishou.core.errors import ModelIntegrityError
from huishou.core.io import publish, rounded, write_csv, write_json, write_parquet
from huishou.core.paths import candidates_path, champion_name, effects_dir, model_path, published_dir, scores_path
from huishou.core.settings import FEATURE_BUILD_PARAMS, SOURCE_PARAMS, with_threads
from huishou.features import build_features, whole_borrowers
from huishou.risk.explain import reason_codes
from huishou.risk.model import RiskModel
from huishou.strategy import AUTO, BookRules, plan_strategy, worklist
from huishou.strategy.effects import LearnedEffects
from huishou.strategy.learning import learning_cutoff, logged_at
from huishou.strategy.readout import DECISION_COLUMNS

log = logging.getLogger("huishou.strategy")

PARAMS = (
    "compute",
    *SOURCE_PARAMS,
    "data.models_dir",
    "data.worklists_dir",
    "data.compliance_dir",
    "data.experiments_dir",
    "score.scores_dir",
    "strategy",
    *FEATURE_BUILD_PARAMS,
    "tracking.default_uri",
    "tracking.strategy_experiment",
    "tracking.strategy_model",
)


def run(settings) -> dict:
    """Plan every worklist date, publish the last one's worklists, record the evaluation."""
    cfg, f = with_threads(settings.strategy, threads(settings.compute.threads)), settings.features
    if f.mode == "origination":
        return _skip(settings, "features.mode is origination: there are applications to decide, no loans to collect")
    report, tables = BookSource.from_settings(settings.data).validated_inputs(settings.data.validated_dir)
    as_of = pd.Timestamp(report["as_of"])  # parquet files read in place by DuckDB (a database source: frames)
    model = RiskModel.load(model_path(settings.data.models_dir, champion_name(settings.data.models_dir)))
    model.num_threads = cfg.effect_model["num_threads"]  # compute.threads
    profile = Profile.from_settings(cfg.compliance)
    book = BookRules.from_settings(f, settings.data.timezone)
    learned, provenance = _fitted_effects(settings, as_of)
    logged_by, reused = logged_at(tables, learning_cutoff(as_of, cfg), cfg, book, learned, report["md5"])
    provenance["logged_decisions"] = "those fit-effects read (same book, cutoff and rules)" if reused else "read here"
    staging = tempfile.TemporaryDirectory(prefix="huishou-audit-")  # each date's audit until the worklists are out
    audits = Path(staging.name)  # (removed below, or by its finaliser if the run fails)
    with publish(Path(settings.data.worklists_dir), what="huishou strategy") as out:

        def write_day(day: pd.Timestamp, cand: pd.DataFrame, audit: pd.DataFrame) -> None:
            write_parquet(cand, candidates_path(out, day))
            audit.to_parquet(audits / f"{day.date()}.parquet", index=False)

        plans = plan_strategy(  # every earlier date's plan written and dropped as soon as it is made
            tables,
            as_of,
            cfg,
            profile,
            book,
            progress=True,
            learned=learned,
            planned=lambda d, result: write_day(d, result.candidates, result.audit),
            logged_by=logged_by,
        )
        day = plans.published
        write_day(day, plans.candidates[day], plans.audit[day])
        cand = plans.candidates[day]
        feats = build_features(
            whole_borrowers(tables, cand["loan_id"]),
            [day],
            **f.build_kwargs(as_of)
            | {"threads": cfg.effect_model["num_threads"], "spill_to": settings.compute.spill_directory},
        )
        feats = feats[feats["loan_id"].isin(cand["loan_id"])].set_index("loan_id", drop=False)  # active, not defaulted
        risk = _pipeline_scores(settings.score.scores_dir, day)
        if risk is None:  # no scoring run for that date: score the candidates with the same model
            risk = pd.Series(model.predict_proba(feats), index=feats.index)
        reasons = (
            reason_codes(model, feats) if len(feats) else pd.DataFrame(columns=["reason_1", "reason_2", "reason_3"])
        )
        lists = worklist(cand, reasons, risk).assign(worklist_date=str(day.date()))
        write_parquet(lists, published_dir(out) / "worklist.parquet")
        for collector, rows in lists.groupby("collector_id"):
            write_csv(rows, published_dir(out) / f"{collector}.csv")
        index = {"published": str(day.date()), "dates": [str(d.date()) for d in plans.days]}
        write_json(index, out / "index.json")
        audit = plans.audit[day]
        metrics = {
            "profile": profile.name,
            "effects": provenance,
            "off_policy": plans.off_policy,
            "plans": plans.stats,
            "published": index["published"],
            "worklist_rows": len(lists),
            "by_stage": lists.groupby("stage").size().to_dict(),
            "human_actions": int(lists["collector_id"].ne(AUTO).sum()),
            "collectors_with_work": int(lists.loc[lists["collector_id"] != AUTO, "collector_id"].nunique()),
            "promises": plans.promises,
            "compliance": {
                "published_actions": int((audit["event"] == "published").sum()),
                "blocked_by_rule": audit.loc[audit["event"] == "blocked", "rule"].value_counts().to_dict(),
            },
        }
        write_json(metrics, out / "strategy_metrics.json")
        write_json(rounded(_headline(metrics)), out / "headline.json")
    _write_audit(settings.data.compliance_dir, audits, as_of, profile.record_retention_days)
    staging.cleanup()
    _archive_decisions(settings.data.experiments_dir, cfg.experiment, cand.assign(date=str(day.date())), day)
    with tempfile.TemporaryDirectory() as tmp:  # the build's files: its settings and effect models (native text)
        files = {"settings": write_json(settings.declared_values(), Path(tmp) / "strategy_settings.json")}
        for stage, effect in plans.effects.items():
            if effect is not None:
                files[stage] = Path(tmp) / f"effect_model_{stage}.txt"
                effect.booster.save_model(str(files[stage]))
        name = os.environ.get("DVC_EXP_NAME") or f"strategy {day.date()}"
        registered = tracking.register_strategy(
            settings.tracking,
            name,
            metrics | _headline(metrics),
            files,
            {"dvc.experiment": os.environ.get("DVC_EXP_NAME", "")},
        )
    return metrics | registered


def _fitted_effects(settings, as_of: pd.Timestamp) -> tuple[LearnedEffects | None, dict]:
    """The effect models of `huishou fit-effects`, checked for age against this plan's learning cutoff."""
    cfg = settings.strategy
    folder = effects_dir(settings.data.models_dir)
    cutoff = learning_cutoff(as_of, cfg)
    if not (folder / LearnedEffects.DOC).is_file():
        log.warning(
            "no fitted effect models in %s: learning them now (run huishou fit-effects on its own schedule)", folder
        )
        return None, {"source": "fitted in this run", "cutoff": str(cutoff.date())}
    learned = LearnedEffects.load(folder, threads(settings.compute.threads))
    age = (cutoff - learned.cutoff).days
    if age < 0:
        raise ModelIntegrityError(
            f"{folder}: effect models learnt from outcomes known up to {learned.cutoff.date()}, after this plan's "
            f"cutoff {cutoff.date()} (rule: no outcome after the plan's cutoff); refit with huishou fit-effects"
        )
    if age > cfg.effect_max_age_days:
        raise ModelIntegrityError(
            f"{folder}: effect models learnt up to {learned.cutoff.date()}, {age} days before this plan's cutoff "
            f"{cutoff.date()} (rule: strategy.effect_max_age_days {cfg.effect_max_age_days}); refit with "
            "huishou fit-effects"
        )
    return learned, {
        "source": str(folder),
        "cutoff": str(learned.cutoff.date()),
        "age_days": age,
        "decisions": learned.decisions,
    }


def _archive_decisions(folder: str, experiment: dict, cand: pd.DataFrame, day: pd.Timestamp) -> None:
    """The published date's decisions with their arms, kept for the readout once outcomes arrive
    (data.experiments_dir/<experiment>/<date>.parquet; a re-run of the same date replaces its file)."""
    target = Path(folder) / str(experiment.get("name") or "no-experiment") / f"{day.date()}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = cand.reindex(columns=DECISION_COLUMNS)
    with publish(target, kind="file", what="huishou strategy") as tmp:
        frame.to_parquet(tmp, index=False)


def _headline(metrics: dict) -> dict:
    """What `dvc exp show` should show of a plan: its size and the off-policy value per stage."""
    out = {
        "worklist_rows": metrics["worklist_rows"],
        "human_actions": metrics["human_actions"],
        "blocked": sum(metrics["compliance"]["blocked_by_rule"].values()),
    }
    for stage, ope in metrics["off_policy"].items():
        for policy in ("strategy", "ladder"):
            if isinstance(ope.get(policy), dict) and "dr" in ope[policy]:
                out[f"{stage}_dr_{policy}"] = ope[policy]["dr"]
    return out


def _write_audit(folder: str, staged: Path, as_of: pd.Timestamp, retention_days: int) -> None:
    """One parquet per worklist date in the audit log (the files staged in `staged`, each published whole); files
    older than the retention are removed."""
    root = Path(folder)
    for path in sorted(staged.glob("*.parquet")):
        with publish(root / path.name, kind="file", what="huishou strategy") as tmp:
            shutil.copyfile(path, tmp)
    cutoff = (as_of - pd.Timedelta(days=retention_days)).date()
    for old in root.glob("*.parquet"):
        try:
            expired = pd.Timestamp(old.stem).date() < cutoff
        except ValueError:
            continue
        if expired:
            old.unlink()


def _skip(settings, why: str) -> dict:
    """Publish an empty worklists folder that says why (so a pipeline that lists the stage still runs)."""
    log.warning("huishou strategy: skipped: %s", why)
    with publish(Path(settings.data.worklists_dir), what="huishou strategy") as out:
        (out / "candidates").mkdir()
        (out / "published").mkdir()
        write_json({"skipped": why, "dates": []}, out / "index.json")
        write_json({"skipped": why}, out / "strategy_metrics.json")
        write_json({"skipped": 1}, out / "headline.json")
    return {"skipped": why}


def _pipeline_scores(scores_dir: str, day: pd.Timestamp) -> pd.Series | None:
    """Risk scores of the pipeline's `huishou score` run for `day`, by loan_id, if that file exists."""
    path = scores_path(scores_dir, day)
    if not path.exists():
        return None
    return pd.read_parquet(path, columns=["loan_id", "probability"]).set_index("loan_id")["probability"]
