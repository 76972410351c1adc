"""The built-in synthetic loan book: a seeded, causal simulator of app-based micro-loans.

Generating process (one latent risk `z` per borrower drives everything observable):

* applications: income, amount, age, SIM age, channel ... are noisy functions of z; the
  lender prices risk, so the rate carries a noisy lender score.
* callbacks (回访): risky borrowers are harder to reach, more often answered by someone
  else, and contradict their application (purpose, income, employer) more often.
* installments: each due date is missed with probability
  sigmoid(base + w*z + drift*age_months + affordability + season + hardship).
  A missed installment opens a collection episode: the logged legacy policy picks an
  action at days 1, 8, 15 and 22 (propensities recorded); each action cures with a
  heterogeneous probability h(action, borrower). Not cured by day 30 -> 30+ DPD
  (default); every later installment of that loan is then missed too, and only
  recovery actions (days 35..100) can settle the loan.
* repeat loans are granted only after a clean loan.

Because miss and cure draws are independent given the latent state, the true
probability that a loan first reaches 30+ DPD in (T, T+H] is computed exactly (the
oracle), conditioning on everything logged before T. Ground truth goes to
`data/truth/`, which only the evaluation stages may read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from huishou.core.progress import progress_bar
from huishou.core.settings import SimulateSettings
from huishou.core.vocab import ACTIONS
from huishou.simulate.borrowers import annuity_of, applications_table, callbacks_table, draw_borrowers, season_shock
from huishou.simulate.collection import (
    PRE_DUE_ACTIONS,
    PRE_DUE_DAYS,
    PRE_DUE_MIN_RATE,
    STEP_DAYS,
    action_cure_logits,
    action_rows,
    expected_step_fail,
    legacy_pre_due_probs,
    pre_due_shift,
    recoveries,
    run_episodes,
    sample_rows,
)
from huishou.simulate.conduct import preferences_and_complaints
from huishou.simulate.generation import Generation, sigmoid
from huishou.simulate.oracle import oracle_probabilities
from huishou.simulate.people import emergency_contacts


@dataclass
class Book:
    """The simulated book: observable raw tables and hidden truth tables."""

    applications: pd.DataFrame
    callbacks: pd.DataFrame
    installments: pd.DataFrame
    collection_actions: pd.DataFrame
    contact_preferences: pd.DataFrame
    truth: dict[str, pd.DataFrame]
    emergency_contacts: pd.DataFrame | None = None

    def raw_tables(self) -> dict[str, pd.DataFrame]:
        tables = {
            "applications": self.applications,
            "callbacks": self.callbacks,
            "installments": self.installments,
            "collection_actions": self.collection_actions,
            "contact_preferences": self.contact_preferences,
        }
        if self.emergency_contacts is not None:
            tables["emergency_contacts"] = self.emergency_contacts
        return tables


def book_chunks(cfg: SimulateSettings) -> list[SimulateSettings]:
    """The simulator's settings per chunk of at most simulate.chunk_borrowers borrowers: one chunk (the
    settings unchanged, the same book) when the book fits, else independent chunks with seeds drawn
    from simulate.seed, whose ids `offset_ids` makes unique. Memory is bounded by a chunk."""
    size = max(1, int(cfg.chunk_borrowers))
    if cfg.n_borrowers <= size:
        return [cfg]
    starts = range(0, cfg.n_borrowers, size)
    seeds = np.random.SeedSequence(cfg.seed).generate_state(len(starts), dtype=np.uint32)
    return [
        dataclasses.replace(cfg, n_borrowers=min(size, cfg.n_borrowers - s), seed=int(seed))
        for s, seed in zip(starts, seeds, strict=True)
    ]


def offset_ids(tables: dict[str, pd.DataFrame], borrowers: int, loans: int) -> dict[str, pd.DataFrame]:
    """A chunk's tables with borrower_id and loan_id moved past the ids of the chunks before it."""
    out = {}
    for name, frame in tables.items():
        shift = {c: frame[c] + off for c, off in (("borrower_id", borrowers), ("loan_id", loans)) if c in frame}
        out[name] = frame.assign(**shift) if shift else frame
    return out


def simulate_book(
    cfg: SimulateSettings,
    snapshots: list[pd.Timestamp] | None = None,
    horizon_days: int = 60,
    default_dpd: int = 30,
    progress: bool = True,
) -> Book:
    """Simulate the loan book; `snapshots` + `horizon_days` define the oracle grid."""
    rng = np.random.default_rng(cfg.seed)
    start_day = int(pd.Timestamp(cfg.start_date).value // 86_400_000_000_000)
    as_of_day = int(cfg.as_of.value // 86_400_000_000_000)
    people = draw_borrowers(rng, cfg)
    gens: list[Generation] = []
    eligible = np.ones(len(people), bool)
    next_day = rng.integers(start_day, as_of_day, len(people))
    first_day = next_day.copy()
    loan_offset = 0
    for gen in progress_bar(range(cfg.max_loans_per_borrower), desc="simulate loans", disable=not progress):
        take = eligible & (next_day < as_of_day - 5) & (people["extra_loans"].to_numpy() >= gen)
        if not take.any():
            break
        g = _simulate_generation(
            rng, people[take].reset_index(drop=True), next_day[take], first_day[take], gen, loan_offset, cfg
        )
        gens.append(g)
        loan_offset += int(take.sum())
        clean = ~g.defaulted
        taken_idx = np.flatnonzero(take)
        eligible[:] = False
        eligible[taken_idx[clean]] = True
        next_day[taken_idx] = g.last_due + rng.integers(5, 90, taken_idx.size)
    return _assemble(gens, people, cfg, as_of_day, snapshots, horizon_days, default_dpd)


def _simulate_generation(rng, people, disb_day, first_day, gen, loan_offset, cfg) -> Generation:
    apps = applications_table(rng, people, disb_day, gen, cfg)
    n = len(apps)
    apps.insert(1, "loan_id", np.arange(loan_offset + 1, loan_offset + n + 1, dtype=np.int64))
    x = apps[["loan_id", "amount", "age", "device_os"]].assign(
        z=people["z"].to_numpy(), hardship=people["hardship"].to_numpy()
    )
    term = apps["term_months"].to_numpy()
    loan_idx = np.repeat(np.arange(n), term)
    seq = np.concatenate([np.arange(1, t + 1) for t in term]) if n else np.array([], int)
    due = disb_day[loan_idx] + 30 * seq
    annuity = annuity_of(apps["amount"].to_numpy(), apps["rate"].to_numpy(), term)[loan_idx]
    income = apps["declared_income"].to_numpy()[loan_idx]
    months_on_book = (due - first_day[loan_idx]) / 30.0
    miss_logit = (
        cfg.base_miss_logit
        + cfg.risk_weight * x["z"].to_numpy()[loan_idx]
        + people["drift"].to_numpy()[loan_idx] * months_on_book
        + 0.35 * np.log(annuity / income / 0.15)
        + season_shock(due)
        + 0.9 * x["hardship"].to_numpy()[loan_idx]
    )
    xi = x.iloc[loan_idx]
    pre_considered = apps["rate"].to_numpy()[loan_idx] >= PRE_DUE_MIN_RATE
    pre_probs = legacy_pre_due_probs(xi, cfg.policy_epsilon)
    pre_action = np.where(pre_considered, sample_rows(rng, pre_probs), -1)
    pre_shift = pre_due_shift(xi)
    shift = np.where(pre_considered, pre_shift[np.arange(due.size), np.maximum(pre_action, 0)], 0.0)
    p_miss = sigmoid(miss_logit + shift)
    missed = rng.random(due.size) < p_miss
    ep = run_episodes(rng, x, loan_idx, due, missed, cfg)
    failed = missed & (ep.cured_step < 0)
    # first defaulted installment per loan: later ones spiral (missed, no early collection)
    fail_seq = np.where(failed, seq, 10_000)
    default_seq = np.full(n, 10_000)
    np.minimum.at(default_seq, loan_idx, fail_seq)
    spiral = seq > default_seq[loan_idx]
    live = missed & ~spiral  # installments whose early-collection episode really happened
    return Generation(
        apps=apps,
        x=x,
        loan_idx=loan_idx,
        seq=seq,
        due=due,
        annuity=annuity,
        p_miss=p_miss,
        miss_logit=miss_logit,
        pre_considered=pre_considered,
        pre_action=pre_action,
        pre_probs=pre_probs,
        pre_shift=pre_shift,
        missed=missed,
        live=live,
        spiral=spiral,
        ep=ep,
        default_seq=default_seq,
        defaulted=default_seq < 10_000,
        last_due=disb_day + 30 * term,
        step_fail=expected_step_fail(x, cfg),
        people=people,
        disb_day=disb_day,
    )


def _assemble(gens, people, cfg, as_of_day, snapshots, horizon_days, default_dpd) -> Book:
    rng = np.random.default_rng(cfg.seed + 1)
    apps, inst, actions, callbacks, inst_truth, effects, pre_due, oracles = [], [], [], [], [], [], [], []
    for g in gens:
        paid_day, amount_paid, rec_actions = _payments(rng, g, cfg)
        apps.append(g.apps)
        inst.append(_installment_table(g, paid_day, amount_paid, as_of_day))
        actions.append(_pre_due_actions_table(rng, g))
        actions.append(_early_actions_table(rng, g, cfg))
        actions.append(rec_actions)
        callbacks.append(callbacks_table(rng, g))
        inst_truth.append(
            pd.DataFrame(
                {
                    "loan_id": g.apps["loan_id"].to_numpy()[g.loan_idx],
                    "seq": g.seq,
                    "due_date": pd.to_datetime(g.due, unit="D"),
                    "p_miss": g.p_miss,
                    "miss_logit": g.miss_logit,
                    "missed": g.missed | g.spiral,
                }
            )
        )
        effects.append(_effects_truth(g, cfg))
        pre_due.append(_pre_due_truth(g))
        if snapshots and cfg.write_oracle:
            oracles.append(oracle_probabilities(g, paid_day, amount_paid, snapshots, horizon_days, default_dpd))
    applications = pd.concat(apps, ignore_index=True).sort_values("loan_id", ignore_index=True)
    action_table = pd.concat(actions, ignore_index=True)
    action_table = action_table[action_table["action_at"] < pd.Timestamp(as_of_day, unit="D")]
    action_table = action_table.sort_values(["loan_id", "action_at"], ignore_index=True)
    preferences, complaints = preferences_and_complaints(rng, action_table, applications)
    preferences = preferences[preferences["valid_from"] < pd.Timestamp(as_of_day, unit="D")].reset_index(drop=True)
    callbacks_t = pd.concat(callbacks, ignore_index=True)
    callbacks_t = callbacks_t[callbacks_t["called_at"] < pd.Timestamp(as_of_day, unit="D")].reset_index(drop=True)
    truth = {
        "borrowers": people[["borrower_id", "z", "drift", "hardship", "timezone"]],
        "complaints": complaints,
        "pre_due_effects": pd.concat(pre_due, ignore_index=True),
        "installments": pd.concat(inst_truth, ignore_index=True),
        "action_effects": pd.concat(effects, ignore_index=True),
    }
    if oracles:
        truth["oracle"] = pd.concat(oracles, ignore_index=True)
    return Book(
        applications,
        callbacks_t,
        pd.concat(inst, ignore_index=True),
        action_table,
        preferences,
        truth,
        emergency_contacts(applications, cfg.seed),
    )


def _payments(rng, g: Generation, cfg) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Final payment day and amount of every installment, plus logged recovery actions."""
    due, ep, annuity = g.due, g.ep, g.annuity
    missed, live, spiral = g.missed, g.live, g.spiral
    paid_day = np.where(missed | spiral, -1, due - rng.integers(0, 6, due.size))
    paid_day = np.where(live & (ep.pay_day >= 0), ep.pay_day, paid_day)
    amount_paid = np.where(paid_day >= 0, annuity, 0.0)
    partial = live & (ep.pay_day < 0) & (ep.partial_day >= 0)
    paid_day = np.where(partial, ep.partial_day, paid_day)
    amount_paid = np.where(partial, np.round(annuity * ep.partial_frac, 2), amount_paid)
    recovered_day, rec_actions = recoveries(rng, g, cfg)
    loan_rec = recovered_day[g.loan_idx]
    settle = (loan_rec >= 0) & (amount_paid < annuity) & (g.seq >= g.default_seq[g.loan_idx])
    paid_day = np.where(settle, loan_rec, paid_day)
    amount_paid = np.where(settle, annuity, amount_paid)
    return paid_day, amount_paid, rec_actions


def _pre_due_actions_table(rng, g: Generation) -> pd.DataFrame:
    """The legacy policy's reminder decisions (none included), PRE_DUE_DAYS before each considered due date."""
    rows = np.flatnonzero(g.pre_considered)
    chosen = g.pre_action[rows]
    x = g.x.iloc[g.loan_idx[rows]]
    read = rng.random(rows.size) < 0.6
    outcomes = np.where(chosen == 0, "none", np.where(read, "reached", "no_answer")).astype(object)
    return action_rows(
        rng,
        g.apps["loan_id"].to_numpy()[g.loan_idx[rows]],
        g.due[rows] - PRE_DUE_DAYS,
        chosen,
        outcomes,
        g.pre_probs[rows, chosen],
        x,
        "pre_due",
        actions=PRE_DUE_ACTIONS,
    )


def _early_actions_table(rng, g: Generation, cfg: SimulateSettings) -> pd.DataFrame:
    ep, live = g.ep, g.live
    inst_rows, steps = np.nonzero(ep.done & live[:, None])
    loan_id = g.apps["loan_id"].to_numpy()[g.loan_idx[inst_rows]]
    day = g.due[inst_rows] + STEP_DAYS[steps]
    x = g.x.iloc[g.loan_idx[inst_rows]]
    return action_rows(
        rng,
        loan_id,
        day,
        ep.action[inst_rows, steps],
        ep.outcome[inst_rows, steps].astype(str),
        ep.propensity[inst_rows, steps],
        x,
        "early",
        cfg.legacy_late_share,
    )


def _installment_table(g: Generation, paid_day, amount_paid, as_of_day) -> pd.DataFrame:
    visible = (paid_day >= 0) & (paid_day < as_of_day)
    # a settlement after the extract is not known yet; an earlier partial payment may be
    partial_visible = (~visible) & (g.ep.partial_day >= 0) & (g.ep.partial_day < as_of_day) & g.live
    pday = np.where(visible, paid_day, np.where(partial_visible, g.ep.partial_day, -1))
    amt = np.where(visible, amount_paid, np.where(partial_visible, np.round(g.annuity * g.ep.partial_frac, 2), 0.0))
    paid_date = pd.to_datetime(np.where(pday >= 0, pday, 0), unit="D")
    return pd.DataFrame(
        {
            "loan_id": g.apps["loan_id"].to_numpy()[g.loan_idx],
            "seq": g.seq.astype(np.int64),
            "due_date": pd.to_datetime(g.due, unit="D"),
            "amount_due": g.annuity,
            "paid_date": paid_date.where(pday >= 0),
            "amount_paid": amt,
        }
    )


def _pre_due_truth(g: Generation) -> pd.DataFrame:
    """True P(miss) of every considered installment under each reminder, and the one the legacy policy sent."""
    rows = np.flatnonzero(g.pre_considered)
    p = sigmoid(g.miss_logit[rows, None] + g.pre_shift[rows])
    out = pd.DataFrame(p, columns=[f"p_miss_{a}" for a in PRE_DUE_ACTIONS])
    out.insert(0, "action", np.asarray(PRE_DUE_ACTIONS, dtype=object)[g.pre_action[rows]])
    out.insert(0, "seq", g.seq[rows])
    out.insert(0, "loan_id", g.apps["loan_id"].to_numpy()[g.loan_idx[rows]])
    return out


def _effects_truth(g: Generation, cfg: SimulateSettings) -> pd.DataFrame:
    """True cure probability of every action at the first decision of each live episode."""
    idx = np.flatnonzero(g.live)
    x = g.x.iloc[g.loan_idx[idx]]
    h = sigmoid(action_cure_logits(x, 0, cfg.cure_shift))
    out = pd.DataFrame(h, columns=[f"p_cure_{a}" for a in ACTIONS])
    out.insert(0, "seq", g.seq[idx])
    out.insert(0, "loan_id", x["loan_id"].to_numpy())
    return out
