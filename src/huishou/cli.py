"""huishou: overdue-risk scores and lawful, prioritised collection worklists for digital-wallet loans.

The first day (README order): `make repro` runs every stage below on the built-in simulated book
(or `huishou adapt` maps a lender's own tables first); then the nightly job is `huishou score`
(the first trained model becomes the champion when the registry has none), `huishou strategy`
plans the next day's lawful contacts, and `huishou serve` opens the collectors' workbench.

Each command prints one short line; its whole machine summary goes to logs/<command>.json and,
with --json, to stdout. Progress goes to stderr: a bar on a terminal, one line per step in a log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from huishou import __version__
from huishou.core.errors import UserError


def _score_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", help="snapshot date T, YYYY-MM-DD (default: the extract date of data/raw)")
    p.add_argument("--model-path", help="a saved model folder instead of the registry (e.g. models/trained/lightgbm)")
    p.add_argument("--alias", default="champion", help="registry alias to load (default: champion)")
    p.add_argument("--engine", choices=["local", "dask"], help="override params.yaml score.engine")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: compute.scheduler)")
    p.add_argument("--out", help="folder for <T>/ (scores, manifest, drift) (default: score.nightly_dir)")
    p.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 3 when a PSI crosses score.psi_flag (the scores are still written)",
    )


def _adapt_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a shipped mapping (taiwan) or an installed adapter plugin")
    p.add_argument("--mapping", help="a mapping file (YAML): the lender's tables -> the raw contracts")
    p.add_argument("--input", help="the source file (replaces the mapping's one file input; a plugin's input)")


def _promote_options(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", help="model version to promote (default: the one trained in this workspace)")
    which.add_argument("--challenger", action="store_true", help="promote the registry's 'challenger' (last trained)")
    p.add_argument("--dry-run", action="store_true", help="show the comparison, move nothing")
    p.add_argument(
        "--strategy", action="store_true", help="promote a strategy build (huishou-strategy) instead of a risk model"
    )


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (default: workbench.host, loopback)")
    p.add_argument("--port", type=int, help="port (default: workbench.port)")
    p.add_argument(
        "--demo-users",
        action="store_true",
        help="create a login per collector on the list and 'lead', random passwords printed once",
    )
    p.add_argument("--load-only", action="store_true", help="load the worklist (and users), do not serve")


def _user_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", help="the login name (letters, digits, . _ -)")
    p.add_argument(
        "--role",
        choices=["collector", "lead"],
        required=True,
        help="collector: works their own list; lead: sees the team, reassigns, unlocks",
    )
    p.add_argument("--collector-id", help="the worklists' collector id (collectors), e.g. C001")
    p.add_argument("--team", help="a lead's team: the collector ids whose accounts they see, e.g. C001,C002")


def _ingest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", help="only the contacts of this workbench day, YYYY-MM-DD (default: all not ingested)")


def _template_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=".dvc/plots/offline.html", help="where to write it (default: %(default)s)")


@dataclass(frozen=True)
class Command:
    """A subcommand: the stage module it runs, what it is for, what it reads and writes, its options."""

    stage: str
    summary: str
    reads: str
    writes: str
    options: Callable[[argparse.ArgumentParser], None] | None = None
    headline: tuple[str, ...] = ()  # the result's keys (dot paths) for the one human line
    exits: str = ""  # exit codes besides 0 done, 1 internal error, 2 bad input or settings, 130 interrupted


COMMANDS = {
    "simulate": Command(
        "simulate",
        "simulate the built-in loan book and its hidden ground truth",
        "params.yaml (simulate, the snapshot grid of features)",
        "data/raw/*.parquet + manifest.json; data/truth/ (read by the evaluation stages only)",
    ),
    "validate": Command(
        "validate",
        "check the raw tables against their contracts and each other",
        "data/raw/",
        "data/validated/report.json (hashes of the files that passed); nothing when a rule is broken",
    ),
    "features": Command(
        "features",
        "point-in-time features and target for every snapshot, with the split",
        "data/raw/ (as validated), data/validated/report.json",
        "data/features/features.parquet (a folder of bucket parts beyond features.rows_per_partition loans), "
        "data/features/summary.json",
        headline=("n_features", "train.rows", "valid.rows", "test.rows"),
    ),
    "train": Command(
        "train",
        "fit LightGBM, the logistic challenger and the scorecard; register the run's champion as 'challenger'",
        "data/features/features.parquet (train, valid); data/raw/ (hashes)",
        "models/trained/ (saved models, scorecard files, train_metrics.json, run.json, champion.json), an MLflow run",
        headline=("valid_lightgbm_auc", "valid_logistic_auc", "valid_scorecard_auc", "model_version"),
    ),
    "evaluate": Command(
        "evaluate",
        "out-of-time metrics, plots, oracle comparison and the model report",
        "data/features/features.parquet (test), models/trained/, data/truth/oracle.parquet (simulated book)",
        "models/evaluation/ (metrics.json, plots/, report.html); adds to the MLflow run",
        headline=("lightgbm.auc", "lightgbm.ks", "scorecard.auc", "oracle.oracle_auc"),
    ),
    "score": Command(
        "score",
        "score every active loan at a snapshot (the nightly job)",
        "data/raw/ (as validated), the model (registry alias or --model-path), the latest earlier run in <out> "
        "(its reason codes, for loans whose inputs did not change)",
        "<out>/<T>/scores.parquet (a folder of parts with --engine dask or beyond score.rows_per_partition loans), "
        "manifest.json and drift.json (out: --out, "
        "default data/nightly); an MLflow scoring run",
        _score_options,
        exits="3 a PSI crossed score.psi_flag with --fail-on-drift (scores written), 4 nothing to score",
    ),
    "fit-effects": Command(
        "effects",
        "learn the action-effect models from the collection log (on their own schedule, e.g. weekly)",
        "data/raw/ (as validated, with collection_actions)",
        "models/effects/ (one LightGBM text file per stage, effects.json: cutoff, decisions, off-policy estimates; "
        "logged.parquet: the logged decisions learnt from)",
        headline=("cutoff", "fitted"),
    ),
    "strategy": Command(
        "strategy",
        "lawful plans and per-collector worklists from the fitted action effects",
        "data/raw/ (as validated, with collection_actions), models/effects/ (fitted here when absent), "
        "data/scores/, models/trained/lightgbm",
        "data/worklists/ (candidates/, published/worklist.parquet, published/<collector>.csv, index.json, "
        "strategy_metrics.json); an MLflow run (aggregates only)",
        headline=("published", "worklist_rows", "human_actions", "collectors_with_work"),
    ),
    "evaluate-strategy": Command(
        "evaluate_strategy",
        "strategy vs DPD ladder vs oracle on the simulated truth",
        "data/worklists/ (candidates, index.json), data/truth/borrowers.parquet",
        "models/strategy_truth.json; an MLflow run",
        headline=("closed_loop.loop_collections_uplift_vs_strongest", "closed_loop.loop_early_share_of_oracle"),
    ),
    "readout": Command(
        "readout",
        "read the champion/challenger experiment out on the lender's own outcomes",
        "data/experiments/<experiment>/*.parquet (published decisions with arms), data/raw/ (as validated)",
        "models/experiment_readout.json (per arm, against the control, with confidence intervals)",
    ),
    "portfolio": Command(
        "portfolio",
        "portfolio reports: roll and flow rates, vintages, entry, cure, recovery, operations KPIs",
        "data/raw/ (as validated), data/validated/report.json",
        "models/portfolio/ (portfolio.json, *.csv, plots/*.png, portfolio.html); an MLflow run (aggregates)",
        headline=("as_of_month", "open_loans", "share_30_plus", "recovery_rate"),
    ),
    "plots-template": Command(
        "plots_template",
        "write the offline page template of `dvc plots show` (Vega inline, no CDN)",
        "nothing (the Vega bundle of vl-convert-python)",
        ".dvc/plots/offline.html (.dvc/config points plots.html_template at it)",
        _template_options,
    ),
    "adapt": Command(
        "adapt",
        "map a lender's own tables (or a public data set) onto the raw tables",
        "the mapping's inputs (files or a database) or --input",
        "data/raw/*.parquet + manifest.json (with the adapt report: rows, values clipped, rows dropped)",
        _adapt_options,
    ),
    "promote": Command(
        "promote",
        "show champion vs candidate, then point the registry alias 'champion' at the candidate",
        "models/trained/run.json (the version trained in this workspace), the MLflow registry",
        "the registry alias 'champion'",
        _promote_options,
    ),
    "serve": Command(
        "serve",
        "the collector workbench: load the published worklists and serve them (make serve)",
        "data/worklists/ (index.json, published/worklist.parquet, candidates/), data/raw/collection_actions.parquet, "
        "workbench.contact_details",
        "the workbench database (workbench.database or database_env): accounts, users; then serves "
        "http://127.0.0.1:8765/",
        _serve_options,
    ),
    "workbench-user": Command(
        "workbench_user",
        "add a workbench login (password from HUISHOU_PASSWORD or a prompt)",
        "the workbench database",
        "the user (Argon2id hash) in the workbench database",
        _user_options,
    ),
    "ingest-contacts": Command(
        "ingest_contacts",
        "append the workbench's recorded contacts to collection_actions (idempotent)",
        "the workbench database (contacts and refusals not yet ingested)",
        "data/raw/collection_actions.parquet (or the PostgreSQL table), data/compliance/workbench/<date>.parquet",
        _ingest_options,
        headline=("contacts", "added", "already_in_log", "refusals"),
    ),
}

PARAMS_HELP = "path to params.yaml (default: ./params.yaml); accepted before or after the command"
JSON_HELP = "print the whole machine summary as one JSON document on stdout (instead of the one line)"
EXIT_CODES = (
    "exit codes: 0 done; 1 internal error (a bug: the traceback is printed, please report it); "
    "2 bad input or settings (the message names the file, column, rule and keys); "
    "75 another run holds this output's lock (try again later); 130 interrupted"
)
EPILOG = f"""commands in pipeline order; `huishou COMMAND --help` says what each reads and writes.

{EXIT_CODES}."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="huishou",
        description=__doc__.split("\n\n", 1)[0] + "\n\n" + __doc__.split("\n\n", 1)[1].strip(),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--params", default="params.yaml", help=PARAMS_HELP)
    top.add_argument("--json", action="store_true", help=JSON_HELP)
    top.add_argument("--version", action="version", version=f"huishou {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        exits = EXIT_CODES + (f"; {cmd.exits}" if cmd.exits else "")
        p = sub.add_parser(
            name,
            help=cmd.summary,
            description=f"{cmd.summary}.\n\nreads:  {cmd.reads}\nwrites: {cmd.writes}; logs/{name}.json\n\n{exits}.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--params", default=argparse.SUPPRESS, help=PARAMS_HELP)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
        if cmd.options:
            cmd.options(p)
    return top


def _pick(result: dict, path: str) -> object:
    value: object = result
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def one_line(name: str, result: object, seconds: float, summary: Path | None) -> str:
    """`huishou train: done in 41.2 s; valid_lightgbm_auc 0.864, ...; summary in logs/train.json`: the
    command's headline keys, else its first few plain values."""
    cmd = COMMANDS[name]
    shown: list[str] = []
    if isinstance(result, dict):
        keys = cmd.headline or tuple(k for k, v in result.items() if isinstance(v, int | float | str))
        for key in keys:
            value = _pick(result, key)
            if value is None or isinstance(value, dict):
                continue
            if isinstance(value, float):
                value = f"{value:.4g}"
            elif isinstance(value, list):
                value = ",".join(map(str, value))
            text = f"{key} {value}"  # the dotted path: `train.rows`, `valid.rows` stay apart
            if len(text) <= 60:
                shown.append(text)
            if len(shown) == 4:
                break
    parts = [f"huishou {name}: done in {seconds:.1f} s"]
    if shown:
        parts.append(", ".join(shown))
    if summary is not None:
        parts.append(f"summary in {summary}")
    return "; ".join(parts)


def _write_summary(name: str, document: str) -> Path | None:
    """logs/<command>.json, replaced whole; None when the folder cannot be written (read-only checkout)."""
    from huishou.core.io import write_text  # here, not at the top: `huishou --help` stays light

    target = Path(os.environ.get("HUISHOU_LOGS", "logs")) / f"{name}.json"  # HUISHOU_LOGS moves the folder
    try:
        return write_text(document + "\n", target)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in {"command", "params", "json"}}
    cmd = COMMANDS[args.command]
    # imported here, not at the top, so that `huishou --help` does not load pandas
    from huishou.core.settings import ParamsView, load_settings

    started = time.perf_counter()
    try:
        settings = load_settings(args.params)
        stage = import_module(f"huishou.stages.{cmd.stage}")
        result = stage.run(ParamsView(settings, stage.PARAMS, cmd.stage), **options)
    except UserError as err:
        print(f"huishou {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"huishou {args.command}: interrupted", file=sys.stderr)
        return 130
    document = json.dumps(result, default=str, ensure_ascii=False)
    summary = _write_summary(args.command, document)
    if args.json:
        print(document)
    else:
        print(one_line(args.command, result, time.perf_counter() - started, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
