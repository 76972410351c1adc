"""Closed-loop evaluation: every policy runs on the same simulated book for a horizon, day by day, and each
day's actions change the next day's book (payments, contact history and caps, promises kept and broken,
hardship revealed in conversations, complaints and their holds, opt-outs and cease requests).

The policies meet the same rules (huishou.compliance, evaluated on each day's book), the same capacity and
the same luck (simulate/daily.py: common random numbers per seed, day and loan):

* none: no action at all (what recovery the book brings by itself);
* ladder: the DPD ladder (highest DPD first);
* el_worklist: what most lenders run: accounts ranked by expected loss (risk score x amount at stake) and
  worked best first within capacity; a reminder sms before a due date, an sms as an episode's first
  contact, then calls; a plan for reported hardship; agency placement from ladder_agency_from_dpd;
* el_channel_rule: the same worklist, its messages sent on the channel that worked best in the logged data
  for the borrower's segment (stage, age band, device: inverse-propensity-weighted paid rates);
* random_lawful: a random lawful action per loan within capacity;
* strategy: huishou's plan (effect models learnt from the log, complaint model, the assignment);
* oracle: the same planner on the world's true chances of the day (myopic: it knows today's effects, not the
  value of waiting), the yardstick the strategy is measured against.

Pure over tables and the world's truth handed in by the evaluate-strategy stage.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from huishou.book.contracts import complete_columns
from huishou.book.files import read_rows, read_table
from huishou.compliance import Profile, evaluate, lawful
from huishou.core.progress import progress_bar
from huishou.core.settings import StrategySettings
from huishou.core.vocab import ACTIONS, AUTO, STAGES
from huishou.features import copy_book
from huishou.simulate.daily import (
    DRAWS,
    HOLD_DAYS,
    Luck,
    WorldParams,
    complaint_chance,
    daily_cure,
    outcomes,
    pre_due_on_time,
)
from huishou.strategy.assign import plan
from huishou.strategy.complaints import ComplaintModel
from huishou.strategy.effects import EffectModel
from huishou.strategy.plan import BookRules, candidates, predicted_paid, recovered_share, stake, values_matrix
from huishou.strategy.policy_eval import ladder_plan, plan_in_order
from huishou.strategy.team import Team, languages_of
from huishou.strategy.truth_eval import with_truth

POLICIES = ("none", "ladder", "el_worklist", "el_channel_rule", "random_lawful", "strategy", "oracle")
BASELINES = ("ladder", "el_worklist", "el_channel_rule", "random_lawful")
MESSAGES = ("sms", "app_push", "email_letter")
CONTACT_HOUR = pd.Timedelta(hours=12)  # the loop's contacts are logged at noon, lender time (lawful everywhere)


@dataclass
class Truth:
    """What the world knows and the lender does not: each borrower's latent state and each installment's true
    miss log-odds (from the simulator's truth)."""

    borrowers: pd.DataFrame  # borrower_id, z, hardship
    miss_logit: pd.Series  # by (loan_id, due_date)
    cure_shift: float


@dataclass
class Planners:
    """What the learned policies use: the effect and complaint models (strategy), each loan's risk score
    (expected-loss worklists) and the logged-data channel rule (segment -> best message)."""

    effects: Mapping[str, EffectModel | None]
    complaints: ComplaintModel | None
    risk: pd.Series  # by loan_id
    channel_rule: dict[tuple[str, str, int], str]


@dataclass
class Loop:
    """What every run of the loop shares: the (sampled) book, the first day and the horizon, the strategy
    settings and rule profile, the book's rules, the learned policies' models, the world's truth and the
    sample's share of the book (capacity is scaled to it)."""

    tables: Mapping[str, pd.DataFrame]
    start: pd.Timestamp
    horizon: int
    cfg: StrategySettings
    profile: Profile
    book_rules: BookRules
    planners: Planners
    truth: Truth
    share: float
    threads: int | None = None  # DuckDB threads of each process's book (None: the CPUs it may use)


def segment_keys(ctx: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(stage, age band, iOS) per row: the segments the channel rule is learnt and applied by."""
    band = np.select([ctx["age"] < 30, ctx["age"] < 40], ["<30", "30-39"], "40+")
    return list(zip(ctx["stage"], band, ctx["ios"].fillna(0).astype(int), strict=True))


def learn_channel_rule(logged: pd.DataFrame, min_decisions: int = 30) -> dict[tuple[str, str, int], str]:
    """Per segment, the message channel with the highest inverse-propensity-weighted paid rate in the logged
    decisions (columns stage, age, ios, action, propensity, paid); sms where a segment has too few."""
    rows = logged[logged["action"].isin(MESSAGES)].copy()
    if rows.empty:
        return {}
    rows["key"] = segment_keys(rows)
    rows["w"] = 1.0 / rows["propensity"].clip(lower=1e-3)
    rows["wy"] = rows["w"] * rows["paid"].astype(float)
    grouped = rows.groupby(["key", "action"]).agg(n=("w", "size"), w=("w", "sum"), wy=("wy", "sum"))
    grouped = grouped[grouped["n"] >= min_decisions]
    rate = (grouped["wy"] / grouped["w"]).reset_index()
    best = rate.sort_values(0, ascending=False).drop_duplicates("key")
    return {k: a for k, a in zip(best["key"], best["action"], strict=True)}


def _scaled(cfg: StrategySettings, share: float) -> tuple[Team, dict[str, int]]:
    """The team (collector minutes) and agency places scaled to the loop's share of the book."""
    caps = Team.from_settings(cfg).scaled(share, rounding=lambda m: int(round(m)))
    limits = {"agency": int(round(sum(int(a["capacity"]) for a in cfg.agencies) * share))}
    return caps, limits


def _worklist_wishes(ctx: pd.DataFrame, allowed: pd.DataFrame, cfg: StrategySettings, message: pd.Series) -> pd.Series:
    """The usual sequence: a reminder before a due date, a message as an episode's first contact, then a call;
    a plan for reported hardship; agency placement for old debt; a forbidden wish falls back to the message."""
    stage, dpd = ctx["stage"].to_numpy(), ctx["dpd"].to_numpy()
    first = ctx["episode_contacts"].fillna(0).to_numpy() == 0
    hardship = ctx["hardship_reported"].fillna(0).to_numpy() > 0
    wish = np.select(
        [
            stage == "pre_due",
            hardship & allowed["repayment_plan"].to_numpy(),
            (stage == "recovery") & (dpd >= cfg.ladder_agency_from_dpd) & allowed["agency"].to_numpy(),
            (stage == "early") & first,
        ],
        [message.to_numpy(), "repayment_plan", "agency", message.to_numpy()],
        "call",
    )
    wish = pd.Series(wish, index=ctx.index, dtype=object)
    ok = lawful(allowed, wish)
    return wish.where(ok, message)


def _expected_loss_plan(ctx, allowed, cfg, caps, limits, planners: Planners, rule: bool) -> pd.Series:
    if rule:
        keys = segment_keys(ctx)
        message = pd.Series([planners.channel_rule.get(k, "sms") for k in keys], index=ctx.index, dtype=object)
    else:
        message = pd.Series("sms", index=ctx.index, dtype=object)
    ok = lawful(allowed, message)
    message = message.where(ok, "sms")
    risk = ctx["loan_id"].map(planners.risk).fillna(planners.risk.median() if len(planners.risk) else 0.5)
    loss = risk * stake(ctx).fillna(0)
    order = loss.sort_values(ascending=False, kind="stable").index
    wish = _worklist_wishes(ctx, allowed, cfg, message)
    wish = wish.where(lawful(allowed, wish), "none")
    return plan_in_order(ctx, allowed, wish, order, cfg, caps, limits, "expected loss", fallback=message).action


def _true_values(x, allowed, cfg, world: WorldParams, truth: Truth) -> tuple[pd.DataFrame, np.ndarray]:
    """The world's true value of every action today (the oracle's objective) and the true cure chances."""
    p = daily_cure(x, world, truth.cure_shift)
    pre = (x["stage"] == "pre_due").to_numpy()
    if pre.any():
        keys = pd.MultiIndex.from_arrays([x.loc[pre, "loan_id"], pd.to_datetime(x.loc[pre, "open_due"])])
        logit = truth.miss_logit.reindex(keys).to_numpy()
        base = pre_due_on_time(x[pre], logit, np.full(pre.sum(), "none"))
        for a in ("sms", "app_push"):
            p[pre, ACTIONS.index(a)] = pre_due_on_time(x[pre], logit, np.full(pre.sum(), a)) - base
    values = pd.DataFrame(p, index=x.index, columns=list(ACTIONS))
    values = values_matrix(values, x, allowed, cfg)
    complaints = np.column_stack([complaint_chance(x, np.full(len(x), a), world) for a in ACTIONS])
    values = values - cfg.complaint_cost * complaints
    return values.where(allowed, -np.inf), p


VALUED = ("strategy", "oracle")  # the policies that plan on a value per (row, action): `policy_values`


def policy_values(
    policy: str,
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    x: pd.DataFrame,
    cfg: StrategySettings,
    planners: Planners,
    world: WorldParams,
    truth: Truth,
) -> pd.DataFrame:
    """What `policy` (one of VALUED) plans on: the strategy's estimated value of each action per row (effect
    and complaint models), the oracle's true one (the world's chances). Row by row: the rows of several runs
    (the oracle's: of one world) can be valued at once."""
    if policy == "strategy":
        p_paid, _ = predicted_paid(ctx, planners.effects)
        p_complaint = planners.complaints.predict(ctx) if planners.complaints is not None else None
        return values_matrix(p_paid.fillna(0.0), ctx, allowed, cfg, p_complaint)
    if policy == "oracle":
        return _true_values(x, allowed, cfg, world, truth)[0]
    raise ValueError(f"no values for policy {policy!r}")


def choose(
    policy: str,
    ctx: pd.DataFrame,
    allowed: pd.DataFrame,
    x: pd.DataFrame,
    cfg: StrategySettings,
    caps: Team,
    limits: dict,
    planners: Planners,
    world: WorldParams,
    truth: Truth,
    rng: np.random.Generator,
    values: pd.DataFrame | None = None,
) -> pd.Series:
    """Today's action per candidate row under `policy`; `values`: the strategy's or the oracle's
    `policy_values` of these rows, where already known."""
    if policy == "none" or ctx.empty:
        return pd.Series("none", index=ctx.index, dtype=object)
    if policy == "ladder":
        return ladder_plan(ctx, allowed, cfg, caps, limits).action
    if policy in ("el_worklist", "el_channel_rule"):
        return _expected_loss_plan(ctx, allowed, cfg, caps, limits, planners, rule=policy == "el_channel_rule")
    groups = ctx["borrower_id"]
    if policy == "random_lawful":
        values = pd.DataFrame(rng.random((len(ctx), len(ACTIONS))), index=ctx.index, columns=list(ACTIONS))
        values = values.where(allowed, -np.inf)
    elif policy in VALUED:
        if values is None:
            values = policy_values(policy, ctx, allowed, x, cfg, planners, world, truth)
    else:
        raise ValueError(f"unknown policy {policy!r}")
    return plan(
        values, cfg.minutes, caps, cfg.mip_time_limit_s, groups=groups, limits=limits, languages=languages_of(ctx)
    ).action


ID_COLUMNS = ("loan_id", "borrower_id")


class Book:
    """The copies of the book that several runs (policy, seed) change day by day, stacked in one set of tables:
    run r's loan and borrower ids are shifted by r * span (span: a power of ten above every id), so one DuckDB
    query finds every run's candidates of a day (over 16 copies of the 3,000-borrower sample: 0.18 s, against
    0.12 s for one) while no row, key or draw of one run meets another's.

    The frames are the book; DuckDB queries a copy of them (`con`, `copy_book`) that `flush` brings up to date
    at the end of each day: the day's contacts and wishes appended, its payments (`settle`) written to their
    rows. Close it with `close`."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], runs: int = 1, threads: int | None = None):
        top = max((int(t[c].max()) for t in tables.values() for c in ID_COLUMNS if c in t and len(t)), default=0)
        self.span = 10 ** len(str(top))
        if runs * self.span >= 2**62:
            raise ValueError(f"{runs} runs of ids up to {top} do not fit in int64 when stacked")
        self.runs = runs
        self.tables = {k: _stacked(v, runs, self.span) for k, v in tables.items()}
        self.tables["installments"] = self.tables["installments"].reset_index(drop=True)
        self.by_loan = self.tables["installments"].groupby("loan_id").indices
        self.con = copy_book(self.tables, threads=threads)
        self.paid: list[tuple[np.ndarray, np.ndarray]] = []  # installment rows paid today and their dates
        self.actions: list[pd.DataFrame] = []
        self.prefs: list[pd.DataFrame] = []
        self.pending: dict[int, pd.Timestamp] = {}  # loan -> the day its promised payment lands
        self.reminded: dict[int, tuple[pd.Timestamp, str]] = {}  # loan -> its latest pre-due reminder

    def flush(self) -> None:
        for name, rows in (("collection_actions", self.actions), ("contact_preferences", self.prefs)):
            if rows:
                base = self.tables[name]
                dtypes = base.dtypes.to_dict()
                new = pd.concat(rows, ignore_index=True)
                new = new.reindex(columns=base.columns.append(new.columns.difference(base.columns))).astype(dtypes)
                both = pd.concat([base, new], ignore_index=True)
                self.tables[name] = both if both.dtypes.to_dict() == dtypes else both.astype(dtypes)
                rows.clear()
                self.con.register("book_rows", complete_columns(new, name))
                self.con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM book_rows')  # a table name, not data
                self.con.unregister("book_rows")
        if self.paid:
            rows, dates = (np.concatenate(part) for part in zip(*self.paid, strict=True))
            paid = pd.DataFrame({"row": rows, "paid_date": dates}).drop_duplicates("row", keep="last")
            self.con.register("book_paid", paid)
            self.con.execute(
                "UPDATE installments SET paid_date = p.paid_date, amount_paid = installments.amount_due "
                "FROM book_paid p WHERE installments.rowid = p.row"
            )
            self.con.unregister("book_paid")
            self.paid.clear()

    def settle(self, rows: np.ndarray, dates: np.ndarray) -> None:
        """Installment `rows` (positions) paid in full on `dates` (datetime64[us])."""
        inst = self.tables["installments"]
        inst.loc[rows, "paid_date"] = dates
        inst.loc[rows, "amount_paid"] = inst["amount_due"].to_numpy()[rows]
        self.paid.append((np.asarray(rows, dtype=np.int64), np.asarray(dates, dtype="datetime64[us]")))

    def close(self) -> None:
        self.con.close()

    def pay(self, loans: np.ndarray, days: list[pd.Timestamp], overdue_only: np.ndarray) -> None:
        """Each of `loans` (distinct) pays on its day of `days` what it has unpaid: every installment, or those
        due before that day where `overdue_only`."""
        if len(loans) == 0:
            return
        inst = self.tables["installments"]
        paid_date, paid = inst["paid_date"].to_numpy(), inst["amount_paid"].to_numpy()
        due_date, due = inst["due_date"].to_numpy(), inst["amount_due"].to_numpy()
        takes, dates = [], []
        for loan, day, only in zip(loans, days, overdue_only, strict=True):
            rows = self.by_loan[loan]
            unpaid = pd.isna(paid_date[rows]) | (paid[rows] < due[rows])
            if only:
                unpaid &= due_date[rows] < np.datetime64(day)
            takes.append(rows[unpaid])
            dates.append(np.full(unpaid.sum(), np.datetime64(day, "us")))
        self.settle(np.concatenate(takes), np.concatenate(dates))

    def run_of(self, ids) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64) // self.span

    def own(self, run: int) -> dict[str, pd.DataFrame]:
        """Run `run`'s tables as the run sees them: its rows, in their order, with its own ids."""
        out = {}
        for name, table in self.tables.items():
            key = next((c for c in ID_COLUMNS if c in table), None)
            mine = table if key is None or self.runs == 1 else table[self.run_of(table[key]) == run]
            out[name] = _shifted(mine.reset_index(drop=True), -run * self.span)
        return out


def _shifted(table: pd.DataFrame, by: int | np.ndarray) -> pd.DataFrame:
    """`table` with its loan and borrower ids moved by `by` (one shift, or one per row)."""
    if np.ndim(by) == 0 and by == 0:
        return table
    return table.assign(**{c: table[c] + by for c in ID_COLUMNS if c in table})


def _stacked(table: pd.DataFrame, runs: int, span: int) -> pd.DataFrame:
    if runs == 1 or not any(c in table for c in ID_COLUMNS):
        return table.copy()
    return pd.concat([_shifted(table, r * span) for r in range(runs)], ignore_index=True).astype(table.dtypes.to_dict())


def _log_rows(sel, action, result, collector, loans, stage, amount, day) -> pd.DataFrame:
    """The contact log of rows `sel` of the stacked day (each run's contacts together, in its order): stacked
    loan ids (`loans`), the action as channel, the drawn outcome, the collector, the stage and any promise
    (of the amount at stake, `amount`)."""
    promise = result["outcome"][sel] == "promise_to_pay"
    return pd.DataFrame(
        {
            "loan_id": loans[sel],
            "action_at": np.full(len(sel), day + CONTACT_HOUR, dtype="datetime64[us]"),
            "channel": action[sel],
            "outcome": result["outcome"][sel],
            "collector_id": collector[sel],
            "promised_amount": np.where(promise, amount[sel], np.nan),
            "hardship_reported": result["hardship_reported"][sel],
            "propensity": np.ones(len(sel)),
            "policy_stage": stage[sel],
            "promised_date": pd.Series(
                np.where(promise, day + pd.Timedelta(days=2), pd.NaT), dtype="datetime64[us]"
            ).to_numpy(),
        }
    )


_WISHES = (("complaint_hold", "complaint"), ("opt_out", "opt_out"), ("cease", "cease"))


def _pref_rows(order, run_of, action, result, people, day) -> pd.DataFrame:
    """Tomorrow's contact preferences from today's complaints, opt-outs and cease requests (stacked borrower
    ids, `people`): per run, its complaint holds, then its opt-outs, then its cease requests."""
    parts = [(k, order[result[flag][order]]) for k, (_, flag) in enumerate(_WISHES)]
    kinds = np.concatenate([np.full(len(sel), k) for k, sel in parts])
    if len(kinds) == 0:
        return pd.DataFrame()
    rows = np.concatenate([sel for _, sel in parts])
    rank = np.lexsort((kinds, run_of[rows]))  # stable: a run's rows of one kind keep the day's order
    rows, kinds = rows[rank], kinds[rank]
    start = day + pd.Timedelta(days=1)
    hold = kinds == 0
    return pd.DataFrame(
        {
            "borrower_id": people[rows],
            "kind": np.array([kind for kind, _ in _WISHES], dtype=object)[kinds],
            "channel": np.where(kinds == 1, action[rows], None),
            "valid_from": np.full(len(rows), np.datetime64(start, "us")),
            "valid_until": np.where(
                hold, np.datetime64(start + pd.Timedelta(days=HOLD_DAYS), "us"), np.datetime64("NaT")
            ),
        }
    )


def _write_back(book: Book, order, stage, result, loans, day: pd.Timestamp) -> None:
    """Today's cures paid into the book (`loans`: stacked ids): an early cure pays what is overdue, a recovery
    the whole loan; a kept promise lands its payment later (the loan waits, pending, until then)."""
    cured = order[(result["cured"] & (stage != "pre_due"))[order]]
    when = [day + pd.Timedelta(days=int(delay)) for delay in result["pay_delay"][cured]]
    book.pay(loans[cured], when, stage[cured] == "early")
    for loan, paid in zip(loans[cured].tolist(), when, strict=True):
        if paid > day:
            book.pending[loan] = paid


def _tally(run: _Run, rows, loan_ids, stage, col, result, figures) -> None:
    """Add a run's figures of today (its `rows` of the stacked day; `loan_ids` in the runs' own ids) per stage:
    the expected gain of today's actions (their true chance times the amount, not the drawn outcome: the same
    expectation with far less noise; the book itself moves by the draws) less their cost, contacts,
    complaints, opt-outs and cease requests, minutes, action counts, and the hardship loans seen and offered
    care."""
    out, seen = run.out, run.seen
    stage, col = stage[rows], col[rows]
    expected = figures["expected"][rows]
    for s in ("early", "recovery"):
        out[s]["recovery"] += float(expected[stage == s].sum())
    cost, minutes = figures["cost"][rows], figures["minutes"][rows]
    contact = col != ACTIONS.index("none")
    complaint = result["complaint"][rows]
    stopped = result["opt_out"][rows] | result["cease"][rows]
    for s in STAGES:
        mine = stage == s
        out[s]["recovery"] -= float(cost[mine].sum())
        out[s]["contacts"] += float(contact[mine].sum())
        out[s]["complaints"] += float(complaint[mine].sum())
        out[s]["opt_outs"] += float(stopped[mine].sum())
        out[s]["minutes"] += float(minutes[mine].sum())
        counts = np.bincount(col[mine & contact], minlength=len(ACTIONS))
        for k in np.flatnonzero(counts):  # in ACTIONS order
            out[s][f"n_{ACTIONS[k]}"] = out[s].get(f"n_{ACTIONS[k]}", 0.0) + float(counts[k])
    known = figures["hardship"][rows] & (stage != "pre_due")
    loans = loan_ids[rows]
    for i in np.flatnonzero(known):
        loan = int(loans[i])
        if loan not in seen["hardship"]:
            seen["hardship"].add(loan)
            out[stage[i]]["hardship_loans"] += 1
        if ACTIONS[col[i]] in ("repayment_plan", "settlement") and loan not in seen["cared"]:
            seen["cared"].add(loan)
            out[stage[i]]["care_offered"] += 1


@dataclass
class _Run:
    """One (policy, seed) of a stacked book: its world, luck (the seed's), random numbers and running figures."""

    policy: str
    world: WorldParams
    luck: Luck
    rng: np.random.Generator
    out: dict[str, dict[str, float]]
    seen: dict[str, set[int]]


def run_policy(
    loop: Loop,
    policy: str,
    seed: int,
    world: WorldParams,
    on_day: Callable[[], None] | None = None,
    keep: list | None = None,
) -> dict[str, dict[str, float]]:
    """One policy over `loop.horizon` days from `loop.start` on its own copy of the book; per stage: recovery
    (the expected amount each day's actions and the book bring in, net of the actions' cost, as the strategy
    counts it; the book moves by the drawn outcomes), contacts, complaints, opt-outs and cease
    requests, collector minutes, hardship loans and those offered a plan. `keep`, a list, gets the final book's
    tables appended (for inspection)."""
    tick = None if on_day is None else (lambda _n: on_day())
    return run_policies(loop, [(seed, policy, "")], {"": world}, on_day=tick, keep=keep)[0]


def run_policies(
    loop: Loop,
    jobs: list[tuple[int, str, str]],
    worlds: Mapping[str, WorldParams],
    on_day: Callable[[int], None] | None = None,
    keep: list | None = None,
) -> list[dict[str, dict[str, float]]]:
    """`run_policy` for each (seed, policy, world: a key of `worlds`) of `jobs`, each on its own copy of the
    book, the copies stacked (`Book`) so that each day's candidates of every run come from one query; the
    figures are those of the runs one at a time. `on_day` gets the number of runs after each day; `keep` gets
    each run's final tables."""
    cfg, truth = loop.cfg, loop.truth
    book = Book(loop.tables, len(jobs), loop.threads)
    loans = loop.tables["installments"]["loan_id"].unique()
    caps, limits = _scaled(cfg, loop.share)
    keys = ("recovery", "contacts", "complaints", "opt_outs", "minutes", "hardship_loans", "care_offered")
    runs = [
        _Run(
            policy,
            worlds[world],
            Luck(seed, loans),
            np.random.default_rng([seed, POLICIES.index(policy)]),
            {s: dict.fromkeys(keys, 0.0) for s in STAGES},
            {"hardship": set(), "cared": set()},
        )
        for seed, policy, world in jobs
    ]
    try:
        for offset in range(loop.horizon):
            day = loop.start + pd.Timedelta(days=offset)
            every, run_of = _todays_candidates(book, day, cfg, loop.book_rules)
            if len(every):  # the rules and the borrowers' truth of every run's rows at once
                allowed = evaluate(every, cfg, loop.profile, explain=False).allowed
                x = with_truth(every, truth.borrowers)
                _day(runs, every, allowed, x, run_of, book, day, cfg, caps, limits, loop.planners, truth)
            _falls_due(book, day, cfg, truth, runs)
            book.flush()
            if on_day is not None:
                on_day(len(runs))
    finally:
        book.close()
    if keep is not None:
        keep.extend(book.own(r) for r in range(len(runs)))
    return [run.out for run in runs]


def _todays_candidates(
    book: Book, day: pd.Timestamp, cfg: StrategySettings, book_rules: BookRules
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every run's candidates of `day` from one query over the stacked book, in each run's own ids and numbered
    as its own book numbers them, less the loans waiting for a promised payment; and each row's run."""
    every = candidates(book.tables, day, cfg, book_rules, con=book.con.cursor())
    run_of = book.run_of(every["loan_id"])
    every["decision_id"] = pd.Series(run_of).groupby(run_of).cumcount().to_numpy()
    waiting = [k for k, d in book.pending.items() if d >= day]
    fresh = ~every["loan_id"].isin(waiting).to_numpy()
    every, run_of = every[fresh].reset_index(drop=True), run_of[fresh]
    return _shifted(every, -run_of * book.span), run_of


def _day(
    runs: list[_Run],
    every: pd.DataFrame,
    allowed: pd.DataFrame,
    x: pd.DataFrame,
    run_of: np.ndarray,
    book: Book,
    day: pd.Timestamp,
    cfg: StrategySettings,
    caps: Team,
    limits: dict,
    planners: Planners,
    truth: Truth,
) -> None:
    """Every run's day on the stacked candidates (`every`, in each run's own ids; `allowed` by the rules, `x`
    with the borrowers' truth; `run_of` each row's run): the true cure chances in each world, each run's policy
    choosing on its own rows; then, for every run at once, the drawn outcomes (each run's luck, each world's
    physics) written back into the book, the contacts and wishes logged and the figures added up."""
    worlds = [  # each world with the stacked rows of its runs
        (world, np.flatnonzero(np.isin(run_of, [r for r, run in enumerate(runs) if run.world is world])))
        for world in {id(run.world): run.world for run in runs}.values()
    ]
    p = np.zeros((len(every), len(ACTIONS)))
    for world, rows in worlds:
        p[rows] = daily_cure(x.take(rows), world, truth.cure_shift)
    order = np.argsort(run_of, kind="stable")  # each run's rows together, in their order
    edges = np.searchsorted(run_of[order], np.arange(len(runs) + 1))
    action = np.full(len(every), "none", dtype=object)
    luck = {name: np.empty(len(every)) for name in DRAWS}
    loan_ids = every["loan_id"].to_numpy(dtype=np.int64)
    valued = _valued(runs, order, edges, every, allowed, x, cfg, planners, truth)
    for r, run in enumerate(runs):
        rows = order[edges[r] : edges[r + 1]]
        if len(rows) == 0:
            continue
        if run.policy != "none":  # doing nothing needs no look at the rows
            ctx, ok, xr = (t.take(rows).reset_index(drop=True) for t in (every, allowed, x))
            values = valued.get(r)
            chosen = choose(run.policy, ctx, ok, xr, cfg, caps, limits, planners, run.world, truth, run.rng, values)
            action[rows] = chosen.to_numpy(dtype=object)
        for name, draws in run.luck.day(day, loan_ids[rows]).items():
            luck[name][rows] = draws
    action = np.where(lawful(allowed, action), action, "none").astype(object)
    result: dict[str, np.ndarray] = {}
    for world, rows in worlds:
        drawn = outcomes(x.take(rows), action[rows], p[rows], {k: v[rows] for k, v in luck.items()}, world)
        for name in drawn:
            column = drawn[name].to_numpy()
            result.setdefault(name, np.empty(len(every), dtype=column.dtype))[rows] = column
    shift = run_of.astype(np.int64) * book.span
    loans = loan_ids + shift
    stage = every["stage"].to_numpy(dtype=object)
    col = pd.Index(ACTIONS).get_indexer(action)
    at = np.arange(len(every))
    amount = stake(every).to_numpy(dtype=float)
    gain = np.nan_to_num(amount, nan=0.0) * recovered_share(every, cfg).to_numpy()[at, col]
    figures = {
        "expected": np.where(stage != "pre_due", p[at, col] * gain, 0.0),
        "cost": np.array([cfg.costs.get(a, 0.0) for a in ACTIONS], dtype=float)[col],
        "minutes": np.array([cfg.minutes.get(a, 0) for a in ACTIONS], dtype=float)[col],
        "hardship": every["hardship_reported"].fillna(0).to_numpy() > 0,
    }
    _write_back(book, order, stage, result, loans, day)
    for r, run in enumerate(runs):
        if edges[r + 1] > edges[r]:
            _tally(run, order[edges[r] : edges[r + 1]], loan_ids, stage, col, result, figures)
    message = np.isin(action, MESSAGES)
    for i in order[(message & (stage == "pre_due"))[order]]:
        book.reminded[int(loans[i])] = (day, action[i])
    collector = np.where(action == "none", None, np.where(message, AUTO, "C001")).astype(object)
    contacts = order[(action != "none")[order]]
    book.actions.append(_log_rows(contacts, action, result, collector, loans, stage, amount, day))
    people = every["borrower_id"].to_numpy(dtype=np.int64) + shift
    prefs = _pref_rows(order, run_of, action, result, people, day)
    if len(prefs):
        book.prefs.append(prefs)


def _valued(runs, order, edges, every, allowed, x, cfg, planners, truth) -> dict[int, pd.DataFrame]:
    """`policy_values` of each VALUED run's rows (numbered from 0, as `choose` sees them), worked out once for
    all the runs of one policy (and world) together: a few large model calls instead of one per run."""
    together: dict[tuple, list[int]] = {}
    for r, run in enumerate(runs):
        if run.policy in VALUED and edges[r + 1] > edges[r]:
            together.setdefault((run.policy, id(run.world)), []).append(r)
    out = {}
    for members in together.values():
        run = runs[members[0]]
        rows = np.concatenate([order[edges[r] : edges[r + 1]] for r in members])
        ctx, ok, xr = (t.take(rows).reset_index(drop=True) for t in (every, allowed, x))
        values = policy_values(run.policy, ctx, ok, xr, cfg, planners, run.world, truth)
        start = 0
        for r in members:
            n = int(edges[r + 1] - edges[r])
            out[r] = values.iloc[start : start + n].reset_index(drop=True)
            start += n
    return out


def _falls_due(book: Book, day: pd.Timestamp, cfg: StrategySettings, truth: Truth, runs: list[_Run]) -> None:
    """Installments due today: paid on time (by the true miss chance after the latest reminder) unless the
    loan is already overdue; an on-time payment counts to the pre-due stage."""
    inst = book.tables["installments"]
    due = inst.index[(inst["due_date"] == day).to_numpy() & inst["paid_date"].isna().to_numpy()]
    if len(due) == 0:
        return
    rows = inst.loc[due]
    overdue = inst[(inst["due_date"] < day) & (inst["paid_date"].isna() | (inst["paid_date"] > day))]["loan_id"]
    open_loans = set(overdue.unique()) - {k for k, d in book.pending.items() if d <= day}
    fresh = ~rows["loan_id"].isin(open_loans).to_numpy()
    rows = rows[fresh]
    if rows.empty:
        return
    window = pd.Timedelta(days=cfg.pre_due_days_ahead)
    latest = [book.reminded.get(int(loan)) for loan in rows["loan_id"]]
    reminder = np.array([r[1] if r and day - r[0] <= window else "none" for r in latest], dtype=object)
    people = truth.borrowers.set_index("borrower_id")
    loans = book.tables["applications"].set_index("loan_id")
    run_of = book.run_of(rows["loan_id"])
    shift = run_of * book.span
    own = rows["loan_id"].to_numpy() - shift  # the loans' ids in their run's own book
    who = rows["loan_id"].map(loans["borrower_id"]).to_numpy() - shift
    x = pd.DataFrame(
        {
            "age": rows["loan_id"].map(loans["age"]).to_numpy(dtype=float),
            "device_os": rows["loan_id"].map(loans["device_os"]).to_numpy(dtype=object),
            "z": pd.Series(who).map(people["z"]).to_numpy(dtype=float),
        }
    )
    logit = truth.miss_logit.reindex(pd.MultiIndex.from_arrays([own, rows["due_date"]])).to_numpy()
    chance = pre_due_on_time(x, np.nan_to_num(logit, nan=0.0), reminder)
    on_time = np.zeros(len(rows), dtype=bool)
    for r, run in enumerate(runs):
        mine = run_of == r
        if mine.any():
            on_time[mine] = run.luck.day(day, own[mine])["due"] < chance[mine]
            expected = chance[mine] * rows["amount_due"].to_numpy()[mine]
            run.out["pre_due"]["recovery"] += float(expected.sum())  # expected, as above
    book.settle(rows.index[on_time].to_numpy(), np.full(int(on_time.sum()), np.datetime64(day, "us")))


def true_miss_logit(installments_truth: pd.DataFrame) -> pd.Series:
    """The truth's miss log-odds by (loan_id, due_date)."""
    t = installments_truth.astype({"due_date": "datetime64[us]"})
    return t.set_index(["loan_id", "due_date"])["miss_logit"]


def sample_book(tables: Mapping[str, pd.DataFrame | Path], borrowers: int, seed: int) -> tuple[dict, float]:
    """The book cut to a random `borrowers` of its borrowers (all their loans and rows), and their share.

    `tables` holds frames or parquet files: of a file only the sample's rows are read (the applications'
    borrower ids whole), so the loop's memory follows the sample, not the book; the cut is the same frames
    either way."""
    apps = tables["applications"]
    if isinstance(apps, pd.DataFrame):
        ids = apps["borrower_id"]
    else:
        ids = pd.read_parquet(apps, columns=["borrower_id"])["borrower_id"]
    people = np.sort(pd.unique(ids))
    share_of = len(people)
    if borrowers < len(people):
        people = np.sort(np.random.default_rng(seed).choice(people, borrowers, replace=False))
    mine = _cut(apps, "borrower_id", people)
    loans = mine["loan_id"].to_numpy()
    out = {}
    for name, table in tables.items():
        columns = table.columns if isinstance(table, pd.DataFrame) else pq.read_schema(table).names
        key, wanted = ("loan_id", loans) if "loan_id" in columns else ("borrower_id", people)
        if name == "applications":
            out[name] = mine
        elif key in columns:
            out[name] = _cut(table, key, wanted)
        else:
            out[name] = table if isinstance(table, pd.DataFrame) else read_table(table)
    return out, len(people) / share_of


def _cut(table: pd.DataFrame | Path, key: str, wanted) -> pd.DataFrame:
    """The rows of a frame or a parquet file whose `key` is in `wanted`, in their order, renumbered."""
    if isinstance(table, pd.DataFrame):
        return table[table[key].isin(wanted)].reset_index(drop=True)
    return read_rows(table, key, wanted)


def _add(run: dict, stages: tuple[str, ...]) -> dict[str, float]:
    """One run's figures added over `stages`."""
    out: dict[str, float] = {}
    for stage in stages:
        for key, value in run[stage].items():
            out[key] = out.get(key, 0.0) + value
    return out


def summarise(per_seed: dict[str, list[dict]]) -> dict:
    """By stage (and early + recovery, and all): each policy's mean over seeds, the spread, added over doing
    nothing (same seed), and the strongest baseline with the strategy's uplift over it."""
    stages = (*STAGES, "collections", "all")
    by_stage: dict = {}
    strongest: dict[str, str | None] = {}
    for stage in stages:
        parts = {"collections": ("early", "recovery"), "all": STAGES}.get(stage, (stage,))
        entry = {}
        for policy, runs in per_seed.items():
            rows = [_add(run, parts) for run in runs]
            nothing = [_add(run, parts) for run in per_seed["none"]]
            for r, base in zip(rows, nothing, strict=True):
                r["added"] = r["recovery"] - base["recovery"]
            names = sorted({k for r in rows for k in r})
            mean = {k: float(np.mean([r.get(k, 0.0) for r in rows])) for k in names}
            spread = {
                f"{k}_sd": float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
                for k in ("recovery", "added")
            }
            entry[policy] = mean | spread | {"per_seed": rows}
        present = [b for b in BASELINES if b in entry]
        strongest[stage] = max(present, key=lambda b: entry[b]["recovery"]) if present else None
        by_stage[stage] = entry
        if strongest[stage] and "strategy" in entry:
            s, b = entry["strategy"], entry[strongest[stage]]
            entry["summary"] = {
                "strongest_baseline": strongest[stage],
                "uplift_vs_strongest": s["recovery"] / b["recovery"] - 1 if b["recovery"] > 0 else None,
                "added_uplift_vs_strongest": s["added"] / b["added"] - 1 if b["added"] > 0 else None,
                "contacts_vs_strongest": s.get("contacts", 0) / b["contacts"] - 1 if b.get("contacts") else None,
                "complaints_vs_strongest": s.get("complaints", 0) / b["complaints"] - 1
                if b.get("complaints")
                else None,
                "share_of_oracle": s["recovery"] / entry["oracle"]["recovery"]
                if "oracle" in entry and entry["oracle"]["recovery"] > 0
                else None,
                "uplift_per_seed": [
                    sr["recovery"] / br["recovery"] - 1 if br["recovery"] > 0 else None
                    for sr, br in zip(s["per_seed"], b["per_seed"], strict=True)
                ],
            }
    return {"by_stage": by_stage, "strongest_baseline": strongest}


def closed_loop(
    loop: Loop,
    seeds: list[int],
    world: WorldParams,
    policies: tuple[str, ...] = POLICIES,
    progress: bool = False,
    label: str = "closed loop",
    workers: int = 1,
) -> dict:
    """Every policy on every seed (common random numbers) in one world, summarised per stage (`closed_loops`)."""
    return closed_loops(loop, {"": (world, seeds, policies)}, progress, label, workers)[""]


def closed_loops(
    loop: Loop,
    worlds: Mapping[str, tuple[WorldParams, list[int], tuple[str, ...]]],
    progress: bool = False,
    label: str = "closed loop",
    workers: int = 1,
) -> dict[str, dict]:
    """Per world (name -> its physics, seeds and policies) every policy on every seed (common random numbers),
    summarised per stage. The (world, seed, policy) runs are independent: they are dealt to `workers`
    processes, each running its share on one stacked book (`run_policies`)."""
    jobs = [
        (seed, policy, name) for name, (_, seeds, policies) in worlds.items() for seed in seeds for policy in policies
    ]
    physics = {name: entry[0] for name, entry in worlds.items()}
    bar = progress_bar(total=len(jobs) * loop.horizon, desc=label, unit="day", disable=not progress)
    groups = [jobs[k :: max(1, workers)] for k in range(min(max(1, workers), len(jobs)))]
    bar.set_postfix_str(f"{len(jobs)} runs in {len(worlds)} world(s), {len(groups)} process(es)")
    results: dict[tuple[int, str, str], dict] = {}
    if len(groups) <= 1:
        results |= dict(zip(jobs, run_policies(loop, jobs, physics, on_day=bar.update), strict=True))
    else:
        context = multiprocessing.get_context("spawn")  # no forked DuckDB or LightGBM threads
        with context.Manager() as manager, ProcessPoolExecutor(len(groups), mp_context=context) as pool:
            days = manager.Queue()
            running = {pool.submit(run_policies, loop, group, physics, _Tick(days)): group for group in groups}
            while running:
                finished = [f for f in running if f.done()]
                for future in finished:
                    results |= dict(zip(running.pop(future), future.result(), strict=True))
                with contextlib.suppress(queue.Empty):
                    bar.update(days.get(timeout=0.2))
    if bar.total and bar.n < bar.total:  # ticks still queued when the last process finished
        bar.update(bar.total - bar.n)
    bar.close()
    out = {}
    for name, (_, seeds, policies) in worlds.items():
        per_seed = {p: [results[s, p, name] for s in seeds] for p in policies}
        out[name] = {"horizon_days": loop.horizon, "seeds": list(seeds), "start": str(loop.start.date())} | summarise(
            per_seed
        )
    return out


class _Tick:
    """Days done, sent from a worker process to the progress bar."""

    def __init__(self, days):
        self.days = days

    def __call__(self, runs: int) -> None:
        self.days.put(runs)


__all__ = [
    "BASELINES",
    "POLICIES",
    "Loop",
    "Planners",
    "Truth",
    "closed_loop",
    "closed_loops",
    "learn_channel_rule",
    "run_policies",
    "run_policy",
    "sample_book",
    "summarise",
    "true_miss_logit",
]
