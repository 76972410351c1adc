"""`huishou promote [--version N | --challenger] [--dry-run] [--strategy]`: point the registry alias
`champion` at a model version (or, with --strategy, a strategy build), after showing the current champion
next to it.

Reads data.models_dir/trained/run.json (the version trained in this workspace: after `dvc exp apply` the
applied experiment's) and the MLflow registry; writes the registry alias `champion` (not a DVC stage).
"""

from __future__ import annotations

import sys

from huishou.core import tracking
from huishou.core.errors import ModelNotFoundError
from huishou.core.io import read_json
from huishou.core.paths import trained_dir

PARAMS = ("tracking", "data.models_dir")


def run(
    settings, version: str | None = None, challenger: bool = False, dry_run: bool = False, strategy: bool = False
) -> dict:
    """Compare, then move `champion` (unless dry_run)."""
    if strategy:  # strategy builds: the version given, else the last built (the strategy's challenger)
        result = tracking.promote_strategy(settings.tracking, version, dry_run=dry_run)
        _print_comparison(result, "the strategy registry", dry_run)
        return {"strategy_champion": result["version"] if not dry_run else result["previous"]} | result
    source = "--version"
    if version is None and not challenger:
        run_file = trained_dir(settings.data.models_dir) / "run.json"
        if not run_file.exists():
            raise ModelNotFoundError(
                f"{run_file}: not found; train in this workspace (`dvc repro`, `dvc exp apply`) or pass --version "
                "or --challenger"
            )
        version, source = str(read_json(run_file)["model_version"]), f"{run_file} (this workspace)"
    result = tracking.promote(settings.tracking, version, dry_run=dry_run)
    _print_comparison(result, source, dry_run)
    return {"champion": result["version"] if not dry_run else result["previous"], "from": source} | result


def _print_comparison(result: dict, source: str, dry_run: bool) -> None:
    cmp = result["comparison"]
    old, new = cmp.get("champion", {}), cmp["candidate"]
    om, nm = old.get("metrics", {}), new.get("metrics", {})
    rows = [("", "champion now", "candidate")]
    rows += [
        (k, str(old.get(k, "–")), str(new.get(k, "–"))) for k in ("version", "run", "dvc_experiment", "git_commit")
    ]
    rows += [(k, str(om.get(k, "–")), str(nm.get(k, "–"))) for k in sorted(set(om) | set(nm))]
    width = max(len(r[0]) for r in rows)
    lines = [f"  {a:<{width}}  {b:<14}  {c}" for a, b, c in rows]
    verb = "would move" if dry_run else "moved"
    print(f"champion {verb} to version {result['version']} (from {source}):", *lines, sep="\n", file=sys.stderr)
