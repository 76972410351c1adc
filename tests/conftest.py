"""Shared fixtures: small simulated books built in memory, and hand-made tiny books."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from huishou.core.settings import Settings, load_settings
from huishou.features import assign_split, build_features
from huishou.simulate import simulate_book

ROOT = Path(__file__).resolve().parents[1]
ROOT_SETTINGS = load_settings(ROOT / "params.yaml")


def small_settings(n_borrowers: int = 2500, seed: int = 11, hardship_rate: float | None = None) -> Settings:
    """The repository's params.yaml with a smaller book."""
    base = load_settings(ROOT / "params.yaml")
    sim = dataclasses.replace(base.simulate, n_borrowers=n_borrowers, seed=seed)
    if hardship_rate is not None:
        sim = dataclasses.replace(sim, hardship_rate=hardship_rate)
    return dataclasses.replace(base, simulate=sim)


def features_for(book, settings: Settings, snapshots=None) -> pd.DataFrame:
    f = settings.features
    return build_features(book.raw_tables(), snapshots or f.snapshot_dates(), **f.build_kwargs(settings.simulate.as_of))


def pytest_collection_modifyitems(items):
    """Tests not marked e2e are unit tests: `pytest -m unit` runs the fast tier, `-m e2e` the rest."""
    for item in items:
        if "e2e" not in item.keywords:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def dvc_project():
    """Make a folder a small copy of this repository, ready for `dvc repro`: the source, dvc.yaml and params.yaml
    (changed in place by `edit`), a git repository with one commit, DVC initialised (with the offline plots page
    when `plots`), MLflow in a sqlite file inside it. Returns the environment to run commands with."""
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    def run(args, root, env):
        proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    def make(root: Path, edit=None, plots: bool = False) -> dict:
        shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
        (root / "data" / "contacts").mkdir(parents=True)  # the contact log's folder, as a clone has it
        shutil.copy(ROOT / "data" / "contacts" / ".gitignore", root / "data" / "contacts" / ".gitignore")
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        if edit is not None:
            edit(params)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\n")
        env = os.environ | {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
        }
        run(["git", "init", "-q"], root, env)
        run(["dvc", "init", "-q"], root, env)
        run(["dvc", "config", "core.analytics", "false"], root, env)
        if plots:
            shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")  # the by-model template + offline page
            run(["dvc", "config", "plots.html_template", "plots/offline.html"], root, env)
        run(["git", "add", "-A"], root, env)
        run(["git", "commit", "-qm", "init"], root, env)
        return env

    return make


@pytest.fixture(scope="session")
def project(tmp_path_factory, dvc_project):
    """A small copy of the repository (3,000 borrowers) after `dvc repro`: (its root, the environment)."""
    import subprocess

    def small(params):
        params["simulate"]["n_borrowers"] = 3000
        params["train"]["num_boost_round"] = 150
        params["strategy"]["closed_loop"] |= {"horizon_days": 6, "seeds": [1, 2], "sample_borrowers": 1000}

    root = tmp_path_factory.mktemp("project")
    env = dvc_project(root, small, plots=True)
    proc = subprocess.run(["dvc", "repro"], cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (root / "repro.log").write_text(proc.stdout + proc.stderr)  # what a cron log of the run would hold
    return root, env


@pytest.fixture(scope="session")
def settings() -> Settings:
    return small_settings()


@pytest.fixture(scope="session")
def book(settings):
    f = settings.features
    return simulate_book(settings.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd, progress=False)


@pytest.fixture(scope="session")
def features(book, settings) -> pd.DataFrame:
    frame = features_for(book, settings)
    f = settings.features
    frame["split"] = assign_split(frame, pd.Timestamp(f.valid_from), pd.Timestamp(f.test_from), f.horizon_days)
    return frame


@pytest.fixture(scope="session")
def medium_book():
    """A book large enough for calibration-level statements (12k borrowers)."""
    s = small_settings(12_000, seed=3)
    f = s.features
    return s, simulate_book(s.simulate, f.snapshot_dates(), f.horizon_days, f.default_dpd, progress=False)


def _pg_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (installed by `make test` when missing)."""
    import shutil

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session: initdb in a temp dir, loopback only, stopped at the end.
    Yields its URI (trust authentication on 127.0.0.1; the server is gone when the tests end)."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries not found; `make test` installs Debian's postgresql")
    root = Path(tempfile.mkdtemp(prefix="huishou-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:  # PostgreSQL refuses to run as root: the server runs as the postgres user
        shutil.chown(root, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "huishou",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        **run,
    )
    options = f"-k {root} -h 127.0.0.1 -p {port} -F"
    subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        **run,
    )
    try:
        yield f"postgresql://huishou@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)
