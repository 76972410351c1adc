"""The only module that talks to MLflow.

Default store: a local sqlite file (params.yaml tracking.default_uri); the environment
variable MLFLOW_TRACKING_URI overrides it. Models are logged as pyfunc models whose
`predict` returns probabilities, registered, and given the `challenger` alias;
`promote` moves `champion`.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

from huishou.core.errors import ModelNotFoundError  # noqa: E402
from huishou.core.settings import TrackingSettings  # noqa: E402

CHALLENGER, CHAMPION = "challenger", "champion"


# MLflow 3's UI opens an experiment on its GenAI overview unless the experiment says it trains models
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def _quiet() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def tracking_uri(cfg: TrackingSettings) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.default_uri


def _connect(cfg: TrackingSettings) -> None:
    """Point MLflow's tracking and registry at the configured store."""
    _quiet()
    mlflow.set_tracking_uri(tracking_uri(cfg))
    mlflow.set_registry_uri(tracking_uri(cfg))


def _setup(cfg: TrackingSettings, experiment: str | None = None) -> None:
    """Connect and make `experiment` (default: the training experiment) the active one."""
    _connect(cfg)
    name = experiment or cfg.experiment
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        mlflow.create_experiment(name, artifact_location=_artifact_root(cfg), tags={EXPERIMENT_KIND: MODEL_TRAINING})
    elif found.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
        mlflow.MlflowClient().set_experiment_tag(found.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    mlflow.set_experiment(name)


def _artifact_root(cfg: TrackingSettings) -> str | None:
    """Keep artifacts beside a local sqlite store (./mlartifacts), not in the working directory root."""
    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


# The registered pyfunc is logged as code ("models from code"), not as a pickled object: loading it
# runs this text, which reads the native model files (verified by SHA-256) and unpickles nothing.
PYFUNC_CODE = """\
import mlflow
import pandas as pd

from huishou.risk.model import RiskModel


class RiskPyfunc(mlflow.pyfunc.PythonModel):
    \"\"\"predict(DataFrame of features) -> DataFrame with column `probability`.\"\"\"

    def load_context(self, context):
        self.model = RiskModel.load(context.artifacts["risk_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"probability": self.model.predict_proba(model_input)})


mlflow.models.set_model(RiskPyfunc())
"""
RISK_MODEL_ARTIFACT = "risk_model"


def log_train_run(
    cfg: TrackingSettings,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    data_version: Mapping[str, str],
    features: list[str],
    artifacts: Mapping[str, Path],
    model_dir: Path,
    tags: Mapping[str, str] | None = None,
    run_name: str = "train",
    example: pd.DataFrame | None = None,
    card: str | None = None,
) -> dict:
    """Log one training run, register its model (the saved RiskModel folder `model_dir` behind a pyfunc
    logged as code, with a signature and `example` as input example: one row of training medians, not a
    loan) and point the `challenger` alias at it; `card` (Markdown) becomes the version's description and
    the run's model_card.md."""
    _setup(cfg)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({f"data.{k}": v for k, v in data_version.items()} | dict(tags or {}))
        mlflow.log_dict({"features": features}, "feature_list.json")
        mlflow.log_dict(dict(data_version), "data_version.json")
        for name, path in artifacts.items():
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=name)
            else:
                mlflow.log_artifact(str(path), artifact_path=name)
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp) / "risk_pyfunc.py"
            code.write_text(PYFUNC_CODE)
            signature = None
            if example is not None:
                from mlflow.models import infer_signature

                signature = infer_signature(example, pd.DataFrame({"probability": [0.5]}))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                artifacts={RISK_MODEL_ARTIFACT: str(model_dir)},
                pip_requirements=_requirements(),
                registered_model_name=cfg.registered_model,
                signature=signature,
                input_example=example,
            )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(cfg.registered_model, CHALLENGER, version)
        if card is not None:  # the model card: the version's description and a file of its run
            mlflow.log_text(card, "model_card.md")
            client.update_model_version(cfg.registered_model, version, description=card)
        return {
            "run_id": run.info.run_id,
            "model_version": version,
            "model_uri": info.model_uri,
            "tracking_uri": tracking_uri(cfg),
        }


def _requirements() -> list[str]:
    req = Path(__file__).resolve().parents[2] / "requirements.txt"
    keep = ("lightgbm", "scikit-learn", "pandas", "numpy", "skops", "mlflow")
    if not req.exists():
        return list(keep)
    lines = [ln.strip() for ln in req.read_text().splitlines()]
    return [ln for ln in lines if ln.split("==")[0].lower() in keep]


def log_evaluation(cfg: TrackingSettings, run_id: str, metrics: Mapping[str, float], artifacts: list[Path]) -> None:
    """Add out-of-time evaluation results to the training run they belong to."""
    _setup(cfg)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")


def promote(cfg: TrackingSettings, version: str | None = None, dry_run: bool = False) -> dict:
    """Point `champion` at `version` (default: the current challenger) unless `dry_run`; returns the
    version and the comparison of the old champion with it (their runs' metrics, run names and commits)."""

    def missing(version: str | None) -> str:
        return f"has no version {version}" if version else f"has no alias '{CHALLENGER}'; train one (`dvc repro`)"

    return _move_champion(cfg, cfg.registered_model, version, dry_run, _describe, missing)


def _move_champion(
    cfg: TrackingSettings,
    name: str,
    version: str | None,
    dry_run: bool,
    describe: Callable[[Any, Any], dict],
    missing: Callable[[str | None], str],
) -> dict:
    """The registry steps `huishou promote` shares for the risk model and the strategy: find the candidate
    (`version`, or the challenger), describe it and the current champion with `describe(client, version)`,
    and move the `champion` alias unless `dry_run`. `missing(version)` words a candidate that is not there."""
    _connect(cfg)
    client = mlflow.MlflowClient()
    try:
        new = (
            client.get_model_version(name, str(version))
            if version
            else client.get_model_version_by_alias(name, CHALLENGER)
        )
    except mlflow.exceptions.MlflowException:
        raise ModelNotFoundError(f"registry {tracking_uri(cfg)}: model '{name}' {missing(version)}") from None
    try:
        old = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        old = None
    comparison = {"candidate": describe(client, new)} | ({"champion": describe(client, old)} if old else {})
    if not dry_run:
        client.set_registered_model_alias(name, CHAMPION, str(new.version))
    return {"version": str(new.version), "previous": old.version if old else None, "comparison": comparison}


def _describe(client, mv) -> dict:
    """A registered version's run: name, commit, DVC experiment and its headline metrics."""
    run = client.get_run(mv.run_id)
    keys = ("valid_lightgbm_auc", "valid_lightgbm_ks", "test_lightgbm_auc", "test_lightgbm_ks", "test_oracle_auc")
    return {
        "version": mv.version,
        "run": run.info.run_name,
        "git_commit": run.data.tags.get("git.commit"),
        "dvc_experiment": run.data.tags.get("dvc.experiment"),
        "metrics": {k: round(run.data.metrics[k], 4) for k in keys if k in run.data.metrics},
    }


def load_registered(cfg: TrackingSettings, alias: str, load: Callable[[Path], Any]):
    """The model behind a registry alias, read from its native files by `load` (RiskModel.load), with its name
    and version."""
    _connect(cfg)
    client = mlflow.MlflowClient()
    crowned = False
    try:
        mv = client.get_model_version_by_alias(cfg.registered_model, alias)
    except mlflow.exceptions.MlflowException as err:
        mv = _first_champion(client, cfg.registered_model) if alias == CHAMPION else None
        if mv is None:
            raise ModelNotFoundError(
                f"registry {tracking_uri(cfg)}: model '{cfg.registered_model}' has no alias '{alias}'; train it "
                "(`dvc repro`), promote it (`huishou promote`), or pass --model-path"
            ) from err
        crowned = True
    # the native model files only, verified by RiskModel.load: the registry's pyfunc code is not run here
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{cfg.registered_model}@{alias}", dst_path=tmp
        )
        model = load(_find_risk_model(Path(local)))
    info = {"model_name": cfg.registered_model, "model_version": str(mv.version), "alias": alias}
    return model, info | ({"champion_set": "first model: the challenger became champion"} if crowned else {})


def _first_champion(client, name: str):
    """A registry with no champion yet: its challenger (the first model trained) becomes champion, so the
    nightly job runs after the first `dvc repro`; later models take over only by `huishou promote`. None when
    there is no challenger either."""
    try:
        mv = client.get_model_version_by_alias(name, CHALLENGER)
    except mlflow.exceptions.MlflowException:
        return None
    client.set_registered_model_alias(name, CHAMPION, str(mv.version))
    logging.getLogger("huishou.score").warning(
        "model '%s' had no champion: version %s (the challenger, the first model trained) is champion now; "
        "promote later ones with `huishou promote`",
        name,
        mv.version,
    )
    return mv


def _find_risk_model(root: Path) -> Path:
    """The saved RiskModel folder inside a downloaded pyfunc model: MLflow keeps the `risk_model` artifact under
    artifacts/<the saved folder's own name> (e.g. artifacts/lightgbm), so the folder is found by its model.json."""
    found = [p.parent for p in root.rglob("model.json") if p.parent.parent.name == "artifacts"]
    if len(found) != 1:
        raise ModelNotFoundError(f"{root}: the registered model holds no '{RISK_MODEL_ARTIFACT}' folder")
    return found[0]


def log_scoring(cfg: TrackingSettings, summary: Mapping[str, Any], drift: Mapping[str, Any]) -> str:
    """One run per scoring job in the scoring experiment: PSI of the score and top features."""
    _setup(cfg, cfg.scoring_experiment)
    with mlflow.start_run(run_name=f"score {summary['snapshot']}") as run:
        mlflow.set_tags({k: str(v) for k, v in summary.items()})
        metrics = {"psi_score": drift["score"]["psi"], "rows": float(summary["rows"])}
        metrics |= {k: float(summary[k]) for k in ("reasons_computed", "reasons_reused") if k in summary}
        metrics |= {f"psi_{name}": entry["psi"] for name, entry in drift["features"].items()}
        mlflow.log_metrics(metrics)
        mlflow.log_dict(dict(drift), "drift.json")
        return run.info.run_id


def git_commit() -> str | None:
    """The workspace's git commit (a DVC experiment's baseline), when there is one: runs are tagged with it."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


STRATEGY_KEYS = ("worklist_rows", "human_actions", "blocked")  # compared by `huishou promote --strategy`


def register_strategy(
    cfg: TrackingSettings, run_name: str, metrics: Mapping[str, Any], files: Mapping[str, Path], tags: Mapping[str, str]
) -> dict:
    """Log a strategy build (aggregates and its files: params, effect models as LightGBM text) and register it
    as a version of the strategy model, alias `challenger`."""
    _setup(cfg, cfg.strategy_experiment)
    with mlflow.start_run(run_name=run_name) as run:
        flat = _metric_dict(metrics)
        mlflow.log_metrics(flat)
        mlflow.set_tags({"git.commit": git_commit() or ""} | dict(tags))
        for path in files.values():
            mlflow.log_artifact(str(path), artifact_path="strategy")
        source = mlflow.get_artifact_uri("strategy")
        client = mlflow.MlflowClient()
        try:
            client.get_registered_model(cfg.strategy_model)
        except mlflow.exceptions.MlflowException:
            client.create_registered_model(cfg.strategy_model, description="huishou collection strategy builds")
        mv = client.create_model_version(cfg.strategy_model, source=source, run_id=run.info.run_id)
        client.set_registered_model_alias(cfg.strategy_model, CHALLENGER, str(mv.version))
        return {"run_id": run.info.run_id, "strategy_version": str(mv.version)}


def promote_strategy(cfg: TrackingSettings, version: str | None = None, dry_run: bool = False) -> dict:
    """Point the strategy's `champion` at `version` (default: its challenger), after comparing their builds'
    off-policy values."""

    def describe(client, mv) -> dict:
        run = client.get_run(mv.run_id)
        keep = {k: round(v, 4) for k, v in run.data.metrics.items() if k.endswith(("_dr_strategy", "_dr_ladder"))}
        keep |= {k: run.data.metrics[k] for k in STRATEGY_KEYS if k in run.data.metrics}
        return {"version": mv.version, "run": run.info.run_name, "git_commit": run.data.tags.get("git.commit")} | {
            "metrics": keep
        }

    def missing(version: str | None) -> str:
        return f"has no version {version or CHALLENGER}; run `huishou strategy`"

    return _move_champion(cfg, cfg.strategy_model, version, dry_run, describe, missing)


def _metric_dict(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Nested metrics flattened to dotted names MLflow accepts (other characters become _), NaN left out."""
    return {re.sub(r"[^\w\-.:/]", "_", k)[:250]: v for k, v in _flatten("", metrics).items() if v == v}


def _flatten(prefix: str, obj: Any) -> dict[str, float]:
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            out |= _flatten(f"{prefix}.{k}" if prefix else str(k), v)
        return out
    return {prefix: float(obj)} if isinstance(obj, int | float) and not isinstance(obj, bool) else {}


def log_run(
    cfg: TrackingSettings, experiment: str, run_name: str, metrics: Mapping[str, Any], artifacts: list[Path] = ()
) -> str:
    """A run of nested metrics (flattened to dotted names) and artifacts, e.g. a strategy build or its evaluation."""
    _setup(cfg, experiment)
    with mlflow.start_run(run_name=run_name) as run:
        flat = _metric_dict(metrics)
        mlflow.log_metrics(flat)
        mlflow.log_dict(dict(metrics), "metrics.json")
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id
