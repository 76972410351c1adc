"""End to end on a small book: `dvc repro`, `dvc exp run -S ...`, MLflow registry and pyfunc, promotion."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from huishou.core.vocab import STAGES

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_repro_writes_models_metrics_and_plots(project):
    root, _ = project
    metrics = json.loads((root / "models" / "evaluation" / "metrics.json").read_text())
    for model in ("lightgbm", "logistic"):
        for key in ("auc", "gini", "ks", "pr_auc", "brier", "ece", "lift_top_10pct"):
            assert key in metrics[model]
    assert 0.6 < metrics["lightgbm"]["auc"] <= 1
    assert 0.78 <= metrics["oracle"]["oracle_auc"] <= 0.92
    for plot in ("roc.csv", "calibration.csv", "lift.csv", "roc.png", "calibration.png", "lift.png"):
        assert (root / "models" / "evaluation" / "plots" / plot).stat().st_size > 0
    summary = json.loads((root / "data" / "features" / "summary.json").read_text())
    assert {"train", "valid", "test"} <= set(summary)


def test_evaluate_strategy_runs_every_policy_in_a_closed_loop(project):
    """models/strategy_truth.json: closed_loop with the horizon and seeds of params, every policy per stage with
    one entry per seed, the strongest baseline per stage, and each other world."""
    root, _ = project
    params = yaml.safe_load((root / "params.yaml").read_text())["strategy"]["closed_loop"]
    loop = json.loads((root / "models" / "strategy_truth.json").read_text())["closed_loop"]
    assert loop["horizon_days"] == params["horizon_days"] and loop["seeds"] == params["seeds"]
    for stage in ("pre_due", "early", "recovery", "collections", "all"):
        entry = loop["by_stage"][stage]
        for policy in ("none", "ladder", "el_worklist", "el_channel_rule", "random_lawful", "strategy", "oracle"):
            assert len(entry[policy]["per_seed"]) == len(params["seeds"])
            assert {"recovery", "added", "contacts", "complaints", "opt_outs", "minutes"} <= set(entry[policy])
        assert loop["strongest_baseline"][stage] in ("ladder", "el_worklist", "el_channel_rule", "random_lawful")
        assert entry["summary"]["strongest_baseline"] == loop["strongest_baseline"][stage]
    assert set(loop["other_worlds"]) == set(params["worlds"]) - {params["world"]}
    headline = json.loads((root / "models" / "strategy_headline.json").read_text())
    assert "loop_collections_uplift_vs_strongest" in headline


def _registry(root: Path, env: dict):
    """The project's registered model name and an MLflow client on its store, with the process pointed at it
    (MLFLOW_TRACKING_URI: the caller pops it when done)."""
    import mlflow

    from huishou.core.settings import load_settings

    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    # earlier tests in this process may have pointed MLflow's global URIs at their own stores
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(env["MLFLOW_TRACKING_URI"])
    name = load_settings(root / "params.yaml").tracking.registered_model
    return name, mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])


def test_evaluate_reports_performance_by_age_band_and_scores_carry_adverse_action_records(project):
    root, _ = project
    table = pd.read_csv(root / "models" / "evaluation" / "by_group.csv")
    features = pd.read_parquet(root / "data" / "features" / "features.parquet", columns=["split"])
    assert set(table["attribute"]) == {"age_band"} and table["rows"].sum() == (features["split"] == "test").sum()
    assert table["share_of_flagged"].sum() == pytest.approx(1, abs=1e-3) and table["auc"].dropna().between(0, 1).all()
    scores = pd.read_parquet(next((root / "data" / "scores").glob("*/scores.parquet")))
    adverse = scores[scores["reason_codes"] != ""]
    assert len(adverse) and adverse["reason_codes"].str.split(";").map(len).max() <= 4
    record = json.loads(adverse["explanation"].iloc[0])
    assert record["model_version"] == adverse["model_version"].iloc[0] and record["reasons"][0]["contribution"] > 0


def test_every_trained_model_has_a_model_card_also_in_mlflow(project):
    """The card: data window and sources, rows, hashes, sampling, commit, environment, metrics, intended use,
    limits, traceability; the registered version's description is the LightGBM card, also a run artifact."""
    root, env = project
    trained = root / "models" / "trained"
    features_md5 = json.loads((trained / "cards" / "lightgbm.json").read_text())["data"]["hashes_md5"]["features"]
    assert features_md5 == hashlib.md5((root / "data" / "features" / "features.parquet").read_bytes()).hexdigest()
    metrics = json.loads((trained / "train_metrics.json").read_text())
    for name in ("lightgbm", "logistic", "scorecard"):
        card = json.loads((trained / "cards" / f"{name}.json").read_text())
        assert (
            card["data"]["splits"]["train"]["rows"] > 0
            and card["data"]["splits"]["train"]["from"] < (card["data"]["splits"]["valid"]["from"])
        )
        assert card["metrics_validation"]["auc"] == pytest.approx(metrics[f"valid_{name}_auc"], abs=1e-4)
        assert card["provenance"]["packages"]["lightgbm"] != "not installed" and card["features"]["count"] > 10
        text = (trained / "cards" / f"{name}.md").read_text()
        for section in ("## Intended use", "## Data", "## Metrics", "## Limits", "## Provenance", "## Traceability"):
            assert section in text, (name, section)
    try:
        name, client = _registry(root, env)
        version = client.get_model_version_by_alias(name, "challenger")
        run_info = json.loads((trained / "run.json").read_text())
        assert str(version.version) == run_info["model_version"]
        assert version.description.startswith("# Model card: huishou lightgbm") and "JR/T 0221-2021" in (
            version.description
        )
        assert features_md5 in version.description
        artifacts = {a.path for a in client.list_artifacts(version.run_id)}
        assert "model_card.md" in artifacts
        assert f"| model_version | {version.version} |" in (trained / "cards" / "lightgbm.md").read_text()
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_registry_pyfunc_returns_probabilities_and_promotion_works(project):
    root, env = project
    try:
        import mlflow

        from huishou.cli import main

        name, client = _registry(root, env)
        challenger = client.get_model_version_by_alias(name, "challenger")
        model = mlflow.pyfunc.load_model(f"models:/{name}@challenger")
        features = pd.read_parquet(root / "data" / "features" / "features.parquet").head(200)
        text = {c: str for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype)}
        out = model.predict(features.astype(text))  # the signature: categorical features as text
        assert list(out.columns) == ["probability"]
        assert out["probability"].between(0, 1).all() and out["probability"].nunique() > 10
        run = client.get_run(challenger.run_id)
        assert "test_oracle_auc" in run.data.metrics and "valid_lightgbm_auc" in run.data.metrics
        assert any(k.startswith("data.raw/") for k in run.data.tags)
        assert main(["--params", str(root / "params.yaml"), "promote", "--challenger"]) == 0
        assert client.get_model_version_by_alias(name, "champion").version == challenger.version
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_the_nightly_job_runs_after_the_first_repro_the_challenger_becoming_champion(project, tmp_path, caplog):
    """README's nightly line after `make repro`: with no champion yet, `huishou score` makes the first trained
    model (the challenger) champion, says so, and scores; a later run keeps that champion."""
    root, env = project
    try:
        import mlflow

        from huishou.cli import main

        name, client = _registry(root, env)
        with contextlib.suppress(mlflow.exceptions.MlflowException):
            client.delete_registered_model_alias(name, "champion")  # as after a first repro
        challenger = client.get_model_version_by_alias(name, "challenger").version
        as_of = json.loads((root / "data" / "raw" / "manifest.json").read_text())["as_of"]
        args = ["--params", str(root / "params.yaml"), "score", "--snapshot", as_of, "--out", str(tmp_path)]
        with contextlib.chdir(root):
            assert main(args) == 0
            assert "is champion now" in caplog.text
            assert client.get_model_version_by_alias(name, "champion").version == challenger
            caplog.clear()
            assert main([*args[:-1], str(tmp_path / "again")]) == 0
            assert "is champion now" not in caplog.text
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_every_stage_leaves_its_whole_summary_and_a_log_without_bar_redraws(project):
    root, _ = project
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    commands = {stage["cmd"].split()[1] for stage in stages.values()}
    for command in commands:
        summary = json.loads((root / "logs" / f"{command}.json").read_text())  # whole, never cut
        assert isinstance(summary, dict) and summary, command
    assert len((root / "logs" / "evaluate-strategy.json").read_text()) > 4000  # what used to be cut at 4,000
    log = (root / "repro.log").read_text()
    assert "\r" not in log  # dvc repro into a file: one line per step, no bar redraws
    assert "train [1/4 step" in log and "] lightgbm" in log and "portfolio [7/7 report" in log
    for command in commands:
        line = next(x for x in log.splitlines() if x.startswith(f"huishou {command}: done in "))
        assert len(line) < 300 and "{" not in line, line


def test_the_committed_default_remote_is_a_local_folder_beside_the_checkout():
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config["core"]["remote"] == "shared"
    assert config["'remote \"shared\"'"]["url"] == "../../huishou-dvc-store"  # relative to .dvc/: a sibling


def test_an_analyst_pulls_what_another_ran_instead_of_a_repro(project, tmp_path):
    """`dvc push` after a repro, then a fresh clone with that dvc.lock: `dvc pull` restores every output and the
    pipeline is up to date (nothing to run)."""
    root, env = project
    store = tmp_path / "store"
    _run(["dvc", "remote", "add", "-f", "--local", "-d", "shared", str(store)], root, env)
    _run(["dvc", "push"], root, env)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    in_git = [  # what the repository commits with dvc.lock: the outputs DVC does not cache (metrics, plot data)
        next(iter(out))
        for stage in stages.values()
        for key in ("outs", "metrics", "plots")
        for out in stage.get(key, [])
        if isinstance(out, dict) and next(iter(out.values())).get("cache") is False
    ]
    ignores = [str(p.relative_to(root)) for p in root.rglob(".gitignore") if p.parent != root and ".dvc" not in p.parts]
    for rel in ["dvc.lock", *in_git, *ignores]:  # DVC's .gitignore files are committed too
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, clone / rel)
    _run(["dvc", "remote", "add", "-f", "--local", "-d", "shared", str(store)], clone, env)
    _run(["dvc", "pull"], clone, env)
    status = _run(["dvc", "status"], clone, env).stdout
    assert "up to date" in status, status
    for rel in ("models/trained/lightgbm/model.json", "data/features/features.parquet", "data/worklists/index.json"):
        assert (clone / rel).read_bytes() == (root / rel).read_bytes(), rel


def test_dvc_exp_run_with_param_override(project):
    root, env = project
    _run(["dvc", "exp", "run", "-S", "train.num_leaves=15"], root, env)
    table = pd.read_csv(io.StringIO(_run(["dvc", "exp", "show", "--csv"], root, env).stdout))
    leaves = next(c for c in table.columns if c.endswith("num_leaves"))
    experiments = table[table["Experiment"].notna()]
    assert (experiments[leaves].astype(str) == "15").any()
    assert experiments["valid_lightgbm_auc"].astype(float).between(0.5, 1).all()
    # `make exps`: the same table on one screen (the Makefile's regexes, make's $$ back to $)
    recipe = {
        line.split(":=")[0].strip(): line.split(":=", 1)[1].strip().replace("$$", "$")
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith(("EXP_DROP", "EXP_KEEP"))
    }
    narrow = [
        "dvc",
        "exp",
        "show",
        "--csv",
        "--only-changed",
        "--drop",
        recipe["EXP_DROP"],
        "--keep",
        recipe["EXP_KEEP"],
    ]
    small = pd.read_csv(io.StringIO(_run(narrow, root, env).stdout))
    assert {"Experiment", "valid_lightgbm_auc", "lightgbm.auc", "train.num_leaves"} <= set(small.columns)
    assert len(small.columns) <= 12, list(small.columns)  # was ~500
    long = _run(["dvc", "metrics", "diff", "--all"], root, env).stdout  # `make metrics`: a metric per row
    assert "lightgbm.auc" in long and max(len(line) for line in long.splitlines()) <= 160


@pytest.mark.parametrize("name", ["01_explore_loan_book", "02_review_model_run"])
def test_notebooks_execute_with_nbconvert_and_draw_their_charts(project, name, tmp_path):
    """What `make lab` opens, executed the way CI or an analyst would (`jupyter nbconvert --execute`): no error,
    at least four charts drawn (as images, not only their objects' repr)."""
    import nbformat

    root, env = project
    out = tmp_path / f"{name}.ipynb"
    args = [str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--output", str(out)]
    _run(
        [*args, "--ExecutePreprocessor.timeout=600", str(ROOT / "notebooks" / f"{name}.ipynb")],
        root,
        env | {"HUISHOU_ROOT": str(root)},
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4, f"{name}: {len(images)} charts"
    assert not [o for o in outputs if "Line2D" in str(o.get("data", {}).get("text/plain", ""))]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Warning" in o.get("text", "")]


def test_model_report_renders_every_section_in_a_browser(project):
    """The model report opened in headless Chromium: every section, every chart drawn, provenance, the
    oracle row, integer counts, per-bin WoE."""
    from playwright.sync_api import sync_playwright

    root, _ = project
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=flags)
        page = browser.new_page()
        page.goto((root / "models" / "evaluation" / "report.html").as_uri())
        headings = page.locator("h2").all_inner_texts()
        for section in (
            "Provenance",
            "Out-of-time metrics",
            "ROC",
            "KS curve (LightGBM)",
            "KS / gains table (LightGBM)",
            "Calibration",
            "Lift and gains",
            "SHAP summary",
            "Score stability (PSI by month vs training)",
            "Feature stability (PSI, training vs test)",
            "Information value (scorecard binning)",
            "Scorecard bins (WoE and points)",
        ):
            assert section in headings, section
        images = page.locator("img").all()
        assert len(images) >= 5 and all(i.evaluate("i => i.complete && i.naturalWidth > 100") for i in images)
        text = page.locator("body").inner_text()
        assert "oracle (true probabilities)" in text and "MLflow run" in text and "test snapshots" in text
        gains = page.locator("h2:text-is('KS / gains table (LightGBM)') + table")
        counts = gains.locator("tbody tr").first.locator("td").all_inner_texts()[1:3]  # n, bads
        assert counts and all(c.isdigit() for c in counts), counts  # counts print as integers
        assert page.locator("h3").count() >= 3  # per-variable bins
        browser.close()


def test_mlflow_holds_aggregates_not_loan_or_borrower_rows(project):
    """Strategy and scoring runs log counts and aggregates; no artifact carries a loan or borrower id."""
    import mlflow

    root, env = project
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    checked = 0
    for name in ("huishou-strategy", "huishou-scoring", "huishou-overdue-risk"):
        experiment = client.get_experiment_by_name(name)
        for run in client.search_runs([experiment.experiment_id]):
            for key in [*run.data.params, *run.data.metrics, *run.data.tags]:
                assert "loan_id" not in key and "borrower_id" not in key
            stack = [""]
            while stack:
                for item in client.list_artifacts(run.info.run_id, stack.pop()):
                    if item.is_dir:
                        stack.append(item.path)
                        continue
                    checked += 1
                    assert not item.path.endswith(".parquet"), item.path
                    if item.path.endswith((".json", ".csv", ".html")):  # (scorecard.sql names columns, holds no rows)
                        local = mlflow.artifacts.download_artifacts(
                            run_id=run.info.run_id, artifact_path=item.path, tracking_uri=env["MLFLOW_TRACKING_URI"]
                        )
                        text = Path(local).read_text()
                        assert "loan_id" not in text and "borrower_id" not in text, item.path
    assert checked >= 5


def test_a_book_without_a_collection_log_runs_dvc_repro_to_the_end(tmp_path, dvc_project):
    """No collection log: the strategy plans by the cold-start policy (lawful, propensities logged), says so,
    and every stage of `dvc repro` runs."""

    def no_log(params):
        params["simulate"] |= {"n_borrowers": 1500, "write_collection_log": False}
        params["train"]["num_boost_round"] = 60
        params["strategy"]["closed_loop"] |= {"horizon_days": 3, "seeds": [1], "other_worlds_seeds": []}

    root = tmp_path / "no_log"
    root.mkdir()
    env = dvc_project(root, no_log)
    _run(["dvc", "repro"], root, env)
    assert not (root / "data" / "raw" / "collection_actions.parquet").exists()
    metrics = json.loads((root / "data" / "worklists" / "strategy_metrics.json").read_text())
    assert all("cold-start policy" in metrics["off_policy"][stage]["skipped"] for stage in STAGES)
    lists = pd.read_parquet(root / "data" / "worklists" / "published" / "worklist.parquet")
    assert len(lists) > 0 and (lists["policy"] == "cold start").all() and set(lists["stage"]) == set(STAGES)
    assert lists["propensity"].between(0, 1, inclusive="right").all() and (lists["propensity"] < 1).any()
    truth = json.loads((root / "models" / "strategy_truth.json").read_text())
    assert truth["by_stage"]["all"]["strategy"]["recovery"] > 0
    assert truth["closed_loop"]["other_worlds"] == {}  # other_worlds_seeds []: the headline world alone
    audit = pd.read_parquet(root / "data" / "compliance")
    assert set(audit["event"]) == {"published", "blocked"} and (audit["profile"] == "cn_cba_2026").all()


def _workbench_day(root: Path, day: str, loans: pd.DataFrame) -> str:
    """A workbench database in `root` with a day of recorded contacts on `loans` (loan_id, borrower_id): an
    unanswered call, then a call in which the first borrower asks to cease contact. Returns its path."""

    from huishou.workbench.store import accounts, contacts, create_schema, engine_for, requests, users

    path = str(root / "data" / "workbench" / "wb.db")
    (root / "data" / "workbench").mkdir(parents=True, exist_ok=True)
    engine = engine_for(path)
    create_schema(engine)
    with engine.begin() as conn:
        now = pd.Timestamp(f"{day} 02:00", tz="UTC").to_pydatetime()
        user = conn.execute(
            users.insert().values(
                username="c001", password_hash="x", role="collector", collector_id="C001", created_at=now
            )
        ).inserted_primary_key[0]
        for i, r in enumerate(loans.itertuples()):
            account = conn.execute(
                accounts.insert().values(
                    worklist_date=day,
                    loan_id=int(r.loan_id),
                    borrower_id=int(r.borrower_id),
                    collector_id="C001",
                    planned_collector_id="C001",
                    rank=i + 1,
                    stage="recovery",
                    action="call",
                    propensity=0.5,
                    timezone="Asia/Shanghai",
                    context="{}",
                )
            ).inserted_primary_key[0]
            for k, (minute, outcome) in enumerate([(0, "no_answer"), (5, "reached")]):
                uid = f"00000000-0000-4000-8000-{i:06d}{k:06d}"
                conn.execute(
                    contacts.insert().values(
                        uid=uid,
                        account_id=account,
                        worklist_date=day,
                        loan_id=int(r.loan_id),
                        borrower_id=int(r.borrower_id),
                        user_id=user,
                        collector_id="C001",
                        recorded_at=now,
                        action_at=f"{day}T10:{minute + i * 10:02d}:00.000000",
                        channel="call",
                        outcome=outcome,
                        hardship=False,
                        planned=True,
                        propensity=0.5,
                        policy_stage="recovery",
                    )
                )
                if i == 0 and outcome == "reached":
                    conn.execute(
                        requests.insert().values(
                            borrower_id=int(r.borrower_id),
                            loan_id=int(r.loan_id),
                            kind="cease",
                            contact_uid=uid,
                            user_id=user,
                            valid_from=f"{day}T10:05:00.000000",
                        )
                    )
    return path


def test_ingested_contacts_survive_dvc_repro_and_a_spoken_cease_leaves_the_next_plan(tmp_path, dvc_project):
    """Issue 25: the contact log the workbench feeds is no stage's output. A day of contacts is ingested, then
    `dvc repro --force` runs every stage again (the simulator rewrites data/raw): every ingested row is still
    in data/contacts and, once the extract date has passed the day (data.as_of: the next day), in the book
    the stages read; the borrower who asked to cease is a candidate of the next plan and is contacted on no
    channel."""

    def tiny(params):
        params["simulate"]["n_borrowers"] = 1200
        params["train"]["num_boost_round"] = 60
        params["strategy"]["closed_loop"] |= {"horizon_days": 3, "seeds": [1], "other_worlds_seeds": [1]}

    root = tmp_path / "loop"
    root.mkdir()
    env = dvc_project(root, tiny)
    _run(["dvc", "repro", "simulate"], root, env)
    day = json.loads((root / "data" / "raw" / "manifest.json").read_text())["as_of"]
    apps = pd.read_parquet(root / "data" / "raw" / "applications.parquet")
    inst = pd.read_parquet(root / "data" / "raw" / "installments.parquet")
    first_open = inst[inst["paid_date"].isna()].groupby("loan_id")["due_date"].min()
    dpd = (pd.Timestamp(day) - first_open).dt.days
    in_recovery = dpd[(dpd >= 45) & (dpd <= 120)].index  # planned in the recovery stage tomorrow
    loans = apps[apps["loan_id"].isin(in_recovery)].drop_duplicates("borrower_id").head(3)
    assert len(loans) == 3
    wb = _workbench_day(root, day, loans[["loan_id", "borrower_id"]])
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["workbench"]["database"] = wb
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run([str(BIN / "huishou"), "ingest-contacts"], root, env)
    log = pd.read_parquet(root / "data" / "contacts" / "collection_actions.parquet")
    prefs = pd.read_parquet(root / "data" / "contacts" / "contact_preferences.parquet")
    assert len(log) == 6 and len(prefs) == 1

    params["data"]["as_of"] = str((pd.Timestamp(day) + pd.Timedelta(days=1)).date())  # the next extract
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "repro", "--force"], root, env)
    pd.testing.assert_frame_equal(pd.read_parquet(root / "data" / "contacts" / "collection_actions.parquet"), log)
    from huishou.book.source import BookSource
    from huishou.core.settings import load_settings

    settings = load_settings(root / "params.yaml")
    data = dataclasses.replace(
        settings.data,
        raw_dir=str(root / "data" / "raw"),
        contact_log_dir=str(root / "data" / "contacts"),
    )
    _, tables = BookSource.from_settings(data).validated_frames(root / "data" / "validated")
    key = ["loan_id", "action_at", "channel"]
    found = log[key].merge(tables["collection_actions"][key], on=key)
    assert len(found) == len(log)  # every ingested row is in the book the stages read
    assert (tables["contact_preferences"]["kind"] == "cease").sum() >= 1
    ceased = int(loans["borrower_id"].iloc[0])
    plan_day = params["data"]["as_of"]
    cand = pd.read_parquet(root / "data" / "worklists" / "candidates" / f"{plan_day}.parquet")
    theirs = cand[cand["borrower_id"] == ceased]
    assert len(theirs) and (theirs["cease"] > 0).all()
    lists = pd.read_parquet(root / "data" / "worklists" / "published" / "worklist.parquet")
    assert ceased not in set(lists.loc[lists["action"] != "none", "borrower_id"])
    others = set(loans["borrower_id"].iloc[1:])
    assert (cand[cand["borrower_id"].isin(others)]["cease"] == 0).all()


def test_dvc_plots_show_renders_offline_one_line_per_model(project, tmp_path):
    """`dvc plots show` with the project's page template, opened in headless Chromium with no network: every
    CSV plot is drawn with one line per model, every image plot loads, no script comes from outside."""
    from playwright.sync_api import sync_playwright

    root, env = project
    _run([str(BIN / "huishou"), "plots-template", "--out", str(root / ".dvc" / "plots" / "offline.html")], root, env)
    out = tmp_path / "plots"
    _run(["dvc", "plots", "show", "-o", str(out)], root, env)
    page_html = (out / "index.html").read_text()
    assert "cdn." not in page_html and "<script src=" not in page_html
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=flags)
        page = browser.new_page()
        errors, remote = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: remote.append(r.url) if r.url.startswith("http") else None)
        page.goto((out / "index.html").as_uri())
        page.wait_for_function("window.__views && window.__views.length >= 3", timeout=30_000)
        csv_plots = {d.get_attribute("id"): d for d in page.locator("div[id$='_csv']").all()}
        assert {"models_evaluation_plots_roc_csv", "models_evaluation_plots_calibration_csv"} <= set(csv_plots)
        for name, div in csv_plots.items():
            assert div.locator("g.mark-line path").count() == 3, name  # lightgbm, logistic, scorecard
        images = page.locator("img").all()
        assert len(images) >= 6
        assert all(img.evaluate("i => i.complete && i.naturalWidth > 0") for img in images)
        browser.close()
    assert errors == [] and remote == []


def test_exp_run_apply_then_promote_promotes_that_experiments_model(project):
    """Two experiments train two models (the registry's `challenger` moves to the second); applying the first and
    running `huishou promote` makes *its* model the champion; its MLflow run is named after the experiment and
    tagged with the experiment and the git commit."""
    import mlflow

    from huishou.cli import main

    root, env = project
    # leaf counts no other test trains with (DVC's run cache would restore that run instead of training)
    _run(["dvc", "exp", "run", "-n", "leaves13", "-S", "train.num_leaves=13"], root, env)
    _run(["dvc", "exp", "run", "-n", "leaves9", "-S", "train.num_leaves=9"], root, env)
    _run(["dvc", "exp", "apply", "leaves13"], root, env)
    applied = json.loads((root / "models" / "trained" / "run.json").read_text())
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    try:
        client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
        name = yaml.safe_load((root / "params.yaml").read_text())["tracking"]["registered_model"]
        challenger = client.get_model_version_by_alias(name, "challenger")
        assert str(challenger.version) != str(applied["model_version"])  # the last trained: the other experiment
        run = client.get_run(applied["run_id"])
        assert run.info.run_name == "leaves13" and run.data.tags["dvc.experiment"] == "leaves13"
        assert run.data.tags["git.commit"] == _run(["git", "rev-parse", "HEAD"], root, env).stdout.strip()
        assert run.data.params["train.num_leaves"] == "13"
        with contextlib.chdir(root):
            assert main(["--params", str(root / "params.yaml"), "promote"]) == 0
        assert str(client.get_model_version_by_alias(name, "champion").version) == str(applied["model_version"])
        model = mlflow.models.get_model_info(f"models:/{name}/{applied['model_version']}")
        assert model.signature is not None and "probability" in str(model.signature.outputs)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        _run(["git", "checkout", "--", "."], root, env)
        _run(["dvc", "checkout", "-f"], root, env)


def test_strategy_archives_decisions_and_readout_runs(project):
    """`huishou strategy` archives the published date's decisions with their arms; `huishou readout` reads
    them against the book (here the window has not ended at the extract date: all are waiting)."""
    from huishou.cli import main

    root, env = project
    archived = list((root / "data" / "experiments").glob("*/*.parquet"))
    assert archived and {"arm", "propensity", "open_due"} <= set(pd.read_parquet(archived[0]).columns)
    with contextlib.chdir(root):
        assert main(["--params", str(root / "params.yaml"), "readout"]) == 0
    result = json.loads((root / "models" / "experiment_readout.json").read_text())
    assert result["decisions_waiting"] + result["decisions_read_out"] == len(pd.read_parquet(archived[0]))
