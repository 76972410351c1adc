"""Settings of the platform and the rooms above the strategy: tracking, portfolio reports, the workbench."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComputeSettings:
    """The one thread count every engine uses (0: the CPUs this process may use; huishou.core.engine.threads),
    the folder DuckDB spills into beyond its memory limits ("": the system temp folder) and the Dask scheduler
    every stage run on Dask connects to (None: a local cluster of `threads` single-threaded workers)."""

    threads: int
    spill_directory: str = ""
    scheduler: str | None = None  # a Dask scheduler address for every stage run on Dask; None: a local cluster


@dataclass(frozen=True)
class TrackingSettings:
    """MLflow store, experiments and the registered model's name."""

    experiment: str
    registered_model: str
    default_uri: str
    scoring_experiment: str
    strategy_experiment: str
    portfolio_experiment: str
    strategy_model: str


@dataclass(frozen=True)
class PortfolioSettings:
    """The portfolio reports (`huishou portfolio`)."""

    recovery_days: int
    max_mob: int
    kpi_months: int
    duckdb_memory_limit: str
    until: str | None
    cost_ceiling: dict  # max_rate, in_force (YYYY-MM-DD), method (nominal | effective)
    rows_per_partition: int = 1_000_000  # beyond this many loans the reports are counted bucket by bucket
    engine: str = "local"  # local: bucket after bucket in this process; dask: one task per bucket


@dataclass(frozen=True)
class WorkbenchSettings:
    """The collector workbench (`huishou serve`, `huishou ingest-contacts`)."""

    database: str
    database_env: str | None
    host: str
    port: int
    workers: int
    language: str
    currency: str
    clock: str
    demo_start: str
    session_idle_minutes: int
    session_max_hours: int
    secure_cookies: bool
    contact_details: str
    max_promise_days: int
    offers: dict[str, int]  # plan_max_months, extension_max_days: what a collector may offer
    history_page_size: int
    password_hash: dict[str, int]
    login: dict[str, int]
