"""The model card that travels with every trained model: what it was trained on, how, how well, for what.

One document per training run (`models/trained/model_card.json` and `.md`), also the registered MLflow
model version's description and an artifact of its run. Its sections follow "Model Cards for Model
Reporting" (Mitchell et al., 2019) and carry the lineage that JR/T 0221-2021 (人工智能算法金融应用评价规范,
the PBoC's evaluation specification for AI algorithms in finance) asks of a financial model under its
traceability (可追溯性) requirement: the data (sources, window, hashes), the processing (features, sampling),
the model (parameters, code commit, environment) and its version can each be traced from the decision back.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

PACKAGES = ("huishou", "lightgbm", "scikit-learn", "optbinning", "pandas", "numpy", "mlflow", "dvc")

INTENDED_USE = (
    "Ranks active consumer wallet loans by the chance that an instalment reaches 30+ days past due within the "
    "feature horizon, to order lawful collection work (which account first, which channel) and to watch "
    "portfolio risk. The score orders work; it does not decide credit, price or legal action on its own."
)
OUT_OF_SCOPE = (
    "Credit approval or pricing decisions without a separate validation for that use; any decision about a "
    "borrower that is not reviewed under the lender's collection rules (the strategy stage applies them); "
    "books whose products, channels or collection policy differ from the training window's without retraining."
)
LIMITS = (
    "Trained on the snapshots of one book and one collection policy: the logged actions shaped who paid, so the "
    "score inherits that policy. Point-in-time features exclude anything known after each snapshot; a feature "
    "that drifts (PSI > 0.25 in the scoring run's drift report) makes the score unreliable until retrained. "
    "Protected attributes are refused as features; the test split's performance by age band is in "
    "models/evaluation/by_group.csv (sex and other protected characteristics are not carried into the features, "
    "so they are not reported). Probabilities are calibrated on the validation split only."
)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def model_card(
    *,
    name: str,
    meta: Mapping[str, Any],
    features: Sequence[str],
    splits: Mapping[str, Mapping[str, Any]],
    data_version: Mapping[str, str],
    source: str,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    commit: str | None,
    experiment: str | None = None,
    dropped: Mapping[str, str] | None = None,
    champion: str | None = None,
    sample: str | None = None,
) -> dict[str, Any]:
    """The card of model `name` (its metrics are the `valid_<name>_*` entries of `metrics`); `splits` are the
    feature table's windows (rows, snapshots, dates, bad rate per split); `champion`, for the model chosen as
    champion, says why it was chosen; `sample` says how the training rows were drawn when not all were used."""
    prefix = f"valid_{name}_"
    own = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    return {
        "model": name,
        "kind": meta.get("kind", name),
        "role": f"champion: {champion}" if champion else "challenger (trained and evaluated, not registered)",
        "target": "an instalment reaching 30+ days past due within the horizon after the snapshot",
        "data": {
            "source": source,
            "splits": splits,
            "split_by": "snapshot date (out of time: train, then valid, then test)",
            "sampling": (
                "every loan active at each snapshot; loans not yet disbursed, closed or already defaulted at the "
                "snapshot left out (counts in data/features/summary.json); "
                + (sample or "no sampling: every labelled train and valid row used")
            ),
            "hashes_md5": dict(data_version),
        },
        "features": {"count": len(features), "names": list(features), "dropped": dict(dropped or {})},
        "training": {
            "parameters": {k: v for k, v in params.items() if not isinstance(v, dict | list)},
            "best_iteration": meta.get("best_iteration"),
            "calibration": "on the validation split",
        },
        "metrics_validation": own,
        "provenance": {
            "code_commit": commit or "not a git checkout",
            "dvc_experiment": experiment or "",
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "packages": package_versions(),
        },
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "limits": LIMITS,
        "traceability": (
            "JR/T 0221-2021 (可追溯性): decision -> score run manifest (model version, data hash) -> this card "
            "(data hashes, feature list, parameters, code commit, environment) -> the MLflow run and registered "
            "version; every scoring run records the model version and the data hash it used."
        ),
    }


def _rows(mapping: Mapping[str, Any]) -> list[str]:
    return [f"| {k} | {v} |" for k, v in mapping.items()]


def card_markdown(card: Mapping[str, Any], registry: Mapping[str, Any] | None = None) -> str:
    """The card as Markdown (the MLflow model version's description)."""
    data, prov, train = card["data"], card["provenance"], card["training"]
    lines = [f"# Model card: huishou {card['model']}", "", f"**Target**: {card['target']}.", ""]
    if card.get("role"):
        lines += [f"**Role**: {card['role']}.", ""]
    if registry:
        lines += ["## Version", "", "| | |", "|---|---|", *_rows(registry), ""]
    lines += ["## Intended use", "", card["intended_use"], "", "Out of scope: " + card["out_of_scope"], ""]
    lines += ["## Data", "", f"Source: {data['source']}. Split: {data['split_by']}.", "", data["sampling"], ""]
    lines += ["| split | rows | snapshots | from | to | bad rate |", "|---|---|---|---|---|---|"]
    for split, w in data["splits"].items():
        cells = [w.get(k, "") for k in ("rows", "snapshots", "from", "to", "bad_rate")]
        lines.append(f"| {split} | " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Hashes (MD5):", "", "| file | md5 |", "|---|---|", *_rows(data["hashes_md5"]), ""]
    names = ", ".join(card["features"]["names"])
    lines += ["## Features", "", f"{card['features']['count']} features: {names}.", ""]
    left = card["features"].get("dropped") or {}
    if left:
        why = "; ".join(f"{c} ({reason})" for c, reason in left.items())
        lines += [f"Left out before training ({len(left)}, constant or all missing on the training rows): {why}.", ""]
    lines += ["## Training", "", f"Calibration {train['calibration']}; best iteration {train['best_iteration']}.", ""]
    lines += ["| parameter | value |", "|---|---|", *_rows(train["parameters"]), ""]
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in card["metrics_validation"].items()}
    lines += ["## Metrics (validation split)", "", "| metric | value |", "|---|---|", *_rows(metrics), ""]
    lines += ["## Limits", "", card["limits"], ""]
    env = {"code commit": prov["code_commit"], "DVC experiment": prov["dvc_experiment"] or "-"}
    env |= {"python": prov["python"], "platform": prov["platform"]} | prov["packages"]
    lines += ["## Provenance and environment", "", "| | |", "|---|---|", *_rows(env), ""]
    lines += ["## Traceability", "", card["traceability"], ""]
    return "\n".join(lines)
