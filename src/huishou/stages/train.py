"""`huishou train`: fit LightGBM, the logistic challenger and the points scorecard; register the champion candidate
(LightGBM; on a book with fewer labelled rows than train.small_book_rows, the best of the three by repeated
cross-validated AUC).

Reads data.features_dir/features.parquet (train and valid splits) and the validation report (the raw
tables' hashes, for the data version). Publishes models/trained/ as one unit: lightgbm/, logistic/, scorecard/
(saved models: model.json + a native estimator file), scorecard_files/ (IV table, points, SQL),
feature_list.json, train_metrics.json (validation metrics; DVC metrics), champion.json (which model and why),
plots/valid_roc.png and run.json; logs one MLflow run and registers the champion with the alias `challenger`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from huishou.core import plots, tracking
from huishou.core.engine import close_dask, dask_client, duckdb_connect, threads
from huishou.core.errors import DataValidationError
from huishou.core.io import path_md5, publish, read_json, rounded, write_csv, write_json, write_text
from huishou.core.paths import CHAMPION_FILE, DICTIONARY_FILE, MODEL_NAMES, features_path, trained_dir
from huishou.core.progress import progress_bar
from huishou.features import feature_columns
from huishou.features.store import feature_files, read_training_rows
from huishou.risk.drift import build_reference
from huishou.risk.metrics import classification_metrics, roc_points
from huishou.risk.model import RiskModel
from huishou.risk.model_card import card_markdown, model_card
from huishou.risk.selection import choose_champion, model_fitters
from huishou.risk.train import (
    fit_lightgbm,
    fit_lightgbm_dask,
    fit_logistic,
    informative_columns,
    scorecard_beside,
    top_features,
)

log = logging.getLogger("huishou.train")

PARAMS = (
    "compute",
    "data.features_dir",
    "data.validated_dir",
    "data.models_dir",
    "train",
    "scorecard",
    # logged with the run (not read otherwise): the book and the features it was trained on
    "contracts",
    "simulate",
    "features",
    "tracking.default_uri",
    "tracking.experiment",
    "tracking.registered_model",
)


def run(settings) -> dict:
    """Fit the three models on train, calibrate on valid, publish them, log to MLflow."""
    cfg = settings.train
    source = features_path(settings.data.features_dir)
    n_threads = threads(settings.compute.threads)
    with duckdb_connect(
        threads=n_threads, memory_limit=settings.features.duckdb_memory_limit, spill_to=settings.compute.spill_directory
    ) as con:  # applications never approved (origination) carry no outcome: labelled rows only
        rows = read_training_rows(source, cfg.max_rows, cfg.seed, con)
    frame = rows.frame
    if rows.sampled:
        log.info(
            "train.max_rows %d: a time-stratified sample of %.1f %% of the labelled rows (train %d of %d, valid %d "
            "of %d; the same share of every snapshot and outcome)",
            cfg.max_rows,
            100 * rows.fraction,
            rows.taken["train"],
            rows.available["train"],
            rows.taken["valid"],
            rows.available["valid"],
        )
    columns = feature_columns(frame)
    dictionary = _dictionary(source)
    monotone = {k: int(v["monotone"]) for k, v in dictionary.items() if v.get("monotone")}
    descriptions = {k: v["description"] for k, v in dictionary.items() if v.get("description")}
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    _require_labels(train, "train", source)
    _require_labels(valid, "valid", source)
    columns, dropped = informative_columns(train, columns)  # constant / all-missing: no model can use them
    if dropped:
        log.info("%d feature(s) constant or all missing on the training rows, left out: %s", len(dropped), dropped)
    choice = choose_champion(
        pd.concat([train, valid]),
        model_fitters(columns, cfg, settings.scorecard, monotone, dropped, n_threads),
        cfg.small_book_rows,
        cfg.cv_folds,
        cfg.cv_repeats,
        cfg.seed,
        progress=lambda folds: progress_bar(folds, desc="train: cross-validation", unit="fold"),
    )
    log.info("champion: %s", choice.why)
    champion = choice.champion
    with publish(trained_dir(settings.data.models_dir), what="huishou train") as out:
        bar = progress_bar(total=4, desc="train", unit="step")
        beside = cfg.engine != "dask"  # the Dask refit keeps every thread for its workers: the card fits after it
        card_cfg = settings.scorecard.whole()
        with scorecard_beside(train, valid, columns, card_cfg, cfg.seed, n_threads, beside) as (card, left):
            bar.set_postfix_str("lightgbm" + (", the scorecard beside it" if left < n_threads else ""))
            models = {"lightgbm": fit_lightgbm(train, valid, columns, cfg, monotone, dropped, left)}
            if cfg.engine == "dask":  # every labelled train row, its rounds fixed by the single-node fit above
                bar.set_postfix_str("lightgbm.dask")
                client = dask_client(settings.compute.scheduler, n_threads)
                try:
                    models["lightgbm"] = fit_lightgbm_dask(
                        feature_files(source), models["lightgbm"], valid, cfg, client=client
                    )
                finally:
                    close_dask(client)
                log.info("lightgbm.dask: %s", models["lightgbm"].meta["partitioning"])
            bar.update()
            bar.set_postfix_str("logistic")
            models["logistic"] = fit_logistic(train, valid, columns, cfg)
            bar.update()
            bar.set_postfix_str("scorecard")
            models["scorecard"], iv_table = card()
        models["lightgbm"].num_threads = n_threads  # scoring below on every thread
        bar.set_postfix_str("save, validate, log")
        watched = top_features(models["lightgbm"], cfg.reference_features)
        metrics, curves = {}, []
        for name in MODEL_NAMES:
            model = models[name]
            model.meta["reference"] = build_reference(model.predict_proba(train), train, watched, cfg.reference_bins)
            model.meta["descriptions"] = {k: v for k, v in descriptions.items() if k in model.contract.columns}
            model.save(out / name)
            p = model.predict_proba(valid)
            for key, value in classification_metrics(valid["target"], p).items():
                metrics[f"valid_{name}_{key}"] = value
            curves.append(roc_points(valid["target"], p).assign(model=name))
        metrics["lightgbm_best_iteration"] = models["lightgbm"].meta["best_iteration"]
        for key, value in models["lightgbm"].meta.get("partitioning", {}).items():  # engine dask: its partitions
            metrics[f"dask_{key}"] = value
        metrics["features_used"] = len(columns)
        for split in ("train", "valid"):  # below train.max_rows every labelled row; beyond it a sample
            metrics[f"rows_{split}_available"] = rows.available[split]
            metrics[f"rows_{split}_used"] = rows.taken[split]
        metrics["features_dropped_constant"] = sum(1 for why in dropped.values() if why == "constant")
        metrics["features_dropped_missing"] = sum(1 for why in dropped.values() if why == "all missing")
        for row in choice.table.itertuples():  # a small book's cross-validated AUCs (none on a large book)
            metrics[f"cv_{row.model}_auc_mean"] = row.auc_mean
            metrics[f"cv_{row.model}_auc_sd"] = row.auc_sd
        write_json({"features": columns, "dropped": dropped}, out / "feature_list.json")
        write_json(rounded(choice.to_dict()), out / CHAMPION_FILE)
        card_files = _write_scorecard(models["scorecard"], iv_table, out / "scorecard_files")
        write_json(rounded(metrics), out / "train_metrics.json")
        roc = plots.roc_figure(pd.concat(curves), "ROC, validation")
        roc_png = plots.save_png(roc, out / "plots" / "valid_roc.png")
        validated = Path(settings.data.validated_dir) / "report.json"
        report = read_json(validated) if validated.exists() else {}
        raw = report["md5"] if report else {}
        data_version = {"features": path_md5(source)} | {f"raw/{k}": v for k, v in raw.items()}
        experiment, commit = os.environ.get("DVC_EXP_NAME"), tracking.git_commit()
        sample = (
            f"train.max_rows {cfg.max_rows}: a time-stratified sample of {100 * rows.fraction:.1f} % of the labelled "
            "train and valid rows (the same share of every snapshot date and outcome, chosen by a hash of loan and "
            "snapshot)"
            if rows.sampled
            else None
        )
        cards = {
            name: model_card(
                name=name,
                meta=models[name].meta,
                features=list(models[name].contract.columns),
                splits=rows.windows,
                data_version=data_version,
                source=str(report.get("source", "")),
                metrics=metrics,
                params=models[name].meta.get("params") or {},
                commit=commit,
                experiment=experiment,
                dropped=dropped,
                champion=choice.why if name == champion else None,
                sample=sample,
            )
            for name in MODEL_NAMES
        }
        run_info = tracking.log_train_run(
            settings.tracking,
            params=settings.declared_values(),
            metrics=metrics,
            data_version=data_version,
            features=columns,
            artifacts={"plots": roc_png, "logistic": out / "logistic", "scorecard": out / "scorecard"} | card_files,
            model_dir=out / champion,
            tags={"git.commit": commit or "", "dvc.experiment": experiment or "", "huishou.champion": champion},
            run_name=experiment or f"train {commit[:8]}" if (experiment or commit) else "train",
            example=_medians(train[list(models[champion].contract.columns)]),
            card=card_markdown(cards[champion]),
        )
        write_json(run_info, out / "run.json")
        registry = {"registered model": settings.tracking.registered_model} | {
            k: run_info[k] for k in ("model_version", "run_id", "tracking_uri")
        }
        for name, card in cards.items():  # every trained model's card; the registered one names its version
            write_json(card | ({"registry": registry} if name == champion else {}), out / "cards" / f"{name}.json")
            write_text(card_markdown(card, registry if name == champion else None), out / "cards" / f"{name}.md")
        bar.update()
        bar.close()
    return metrics | run_info


def _medians(frame: pd.DataFrame) -> pd.DataFrame:
    """One made-up row for the model's input example: each numeric feature's median, each other one's most
    frequent value as text (an aggregate, never a loan's row)."""
    row = {}
    for col in frame.columns:
        s = frame[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric:
            row[col] = [float(s.median()) if s.notna().any() else 0.0]
        else:
            mode = s.dropna().mode()
            row[col] = [str(mode.iloc[0]) if len(mode) else ""]
    return pd.DataFrame(row)


def _dictionary(features_file: Path) -> dict:
    """The features' dictionary (kinds, descriptions, monotone directions of declared columns)."""
    path = features_file.parent / DICTIONARY_FILE
    return read_json(path)["features"] if path.exists() else {}


def _write_scorecard(model: RiskModel, iv_table: pd.DataFrame, folder: Path) -> dict:
    """IV table, points table and the card as SQL, for analysts and for MLflow."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(iv_table, folder / "iv_table.csv")
    write_csv(model.estimator.points, folder / "points.csv")
    write_text(model.estimator.to_sql() + ";\n", folder / "scorecard.sql")
    return {"scorecard_files": folder}


def _require_labels(frame: pd.DataFrame, split: str, source: Path) -> None:
    if frame.empty or frame["target"].isna().any() or frame["target"].nunique() < 2:
        raise DataValidationError(
            f"{source}: the {split} split needs labelled rows of both classes (rule: column 'target' has 0 and 1, "
            "no missing); check features.valid_from / test_from / snapshot dates in params.yaml against the "
            "extract date"
        )
