"""`huishou <stage>`: argument parsing only; each command calls one stage function."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from importlib import import_module

from huishou.config import ConfigError, load_settings
from huishou.schemas import DataValidationError
from huishou.train import FeatureMismatchError, ModelNotFoundError

STAGES = {
    "simulate": ("huishou.simulate", "simulate the built-in loan book into data/raw (plus its hidden ground truth)"),
    "validate": ("huishou.validate", "check data/raw against the table contracts"),
    "features": ("huishou.features", "point-in-time features and target for every snapshot"),
    "train": ("huishou.train", "train LightGBM + logistic challenger, log to MLflow, set 'challenger'"),
    "evaluate": ("huishou.evaluate", "out-of-time metrics, plots, oracle comparison"),
    "strategy": ("huishou.strategy", "action effects, lawful plans and per-collector worklists"),
    "evaluate-strategy": ("huishou.strategy.truth_eval", "strategy vs DPD ladder vs oracle on the simulated truth"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huishou", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml (default: ./params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in STAGES.items():
        sub.add_parser(name, help=help_text)
    adapt = sub.add_parser("adapt", help="map an external data set to the raw tables in data.raw_dir")
    adapt.add_argument("name", help="adapter name (taiwan)")
    adapt.add_argument("--input", required=True, help="path of the source file")
    score = sub.add_parser("score", help="score every active loan at a snapshot; writes data/scores/")
    score.add_argument("--snapshot", help="snapshot date T (default: the extract date of data/raw)")
    score.add_argument("--model-path", help="a RiskModel file instead of the registry (e.g. models/lightgbm.joblib)")
    score.add_argument("--alias", default="champion", help="registry alias to load (default: champion)")
    score.add_argument("--engine", choices=["local", "dask"], help="override params.yaml score.engine")
    score.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    promote = sub.add_parser("promote", help="point the registry alias 'champion' at a model version")
    promote.add_argument("--version", help="model version (default: the current 'challenger')")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.params)
        if args.command == "promote":
            from huishou.tracking import promote

            version = promote(settings.tracking, args.version)
            print(f"champion -> {settings.tracking.registered_model} version {version}")
            return 0
        if args.command == "adapt":
            from huishou.adapters import run as adapt

            result = adapt(settings, args.name, args.input)
        elif args.command == "score":
            from huishou.score import run as score

            if args.scheduler:
                settings = dataclasses.replace(settings, score=dataclasses.replace(settings.score,
                                                                                    scheduler=args.scheduler))
            result = score(settings, args.snapshot, args.model_path, args.engine, args.alias)
        else:
            result = import_module(STAGES[args.command][0]).run(settings)
    except (ConfigError, DataValidationError, FeatureMismatchError, ModelNotFoundError) as err:
        print(f"huishou {args.command}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
