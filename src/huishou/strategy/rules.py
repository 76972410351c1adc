"""Lawful-collection rules. They decide which actions are allowed; the optimiser only chooses among them.

Rules (thresholds in params.yaml: strategy):
  hardship      a borrower who reported hardship, on any of their loans, gets a repayment plan (or nothing),
                never escalation
  contact_cap   at most `max_contacts_7d` contacts in any 7 days, the planned one included
  noncontact    no call before `min_noncontact_before_call` sms / app push / letter attempts in the episode
  visit         a home visit only when outstanding >= visit_min_amount, DPD >= visit_min_dpd and the borrower
                stayed unreached after >= visit_min_unreached_attempts non-contact attempts
  wrong_number  no call or visit once a contact in the episode reached a wrong number, on any of the
                borrower's loans (the next one would reach the same third party)
  plan          repayment plans from plan_min_dpd, or at any DPD in hardship
  borrower_only every contact is addressed to the borrower alone (no relatives, employers or references)
  quiet_hours   every contact is scheduled between quiet_end and quiet_start
`none` (no contact today) is always allowed. Each allowed (loan, action) carries the path of rules
it passed, in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from huishou.config import StrategySettings
from huishou.vocab import ACTIONS, CONTACTS


def allowed_actions(ctx: pd.DataFrame, cfg: StrategySettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Boolean frame (rows = ctx rows, columns = ACTIONS) and the rule path of every allowed pair."""
    n = len(ctx)
    allowed = pd.DataFrame(True, index=ctx.index, columns=list(ACTIONS))
    paths = pd.DataFrame("", index=ctx.index, columns=list(ACTIONS))
    window = f"window {cfg.quiet_end}-{cfg.quiet_start}"
    hardship = ctx["hardship_reported"].to_numpy() > 0
    capped = ctx["contacts_7d"].to_numpy() + 1 > cfg.max_contacts_7d
    noncontact_done = ctx["episode_noncontact"].to_numpy()
    unreached = noncontact_done >= cfg.visit_min_unreached_attempts
    unreached &= ctx["episode_reached"].to_numpy() == 0
    visit_ok = (
        (ctx["outstanding"].to_numpy() >= cfg.visit_min_amount)
        & (ctx["dpd"].to_numpy() >= cfg.visit_min_dpd)
        & unreached
    )
    wrong = ctx["wrong_number"].to_numpy() > 0
    plan_ok = hardship | (ctx["dpd"].to_numpy() >= cfg.plan_min_dpd)
    for action in CONTACTS:
        ok = ~capped
        if action != "repayment_plan":
            ok &= ~hardship
        if action == "call":
            ok &= (noncontact_done >= cfg.min_noncontact_before_call) & ~wrong
        if action == "visit":
            ok &= visit_ok & ~wrong
        if action == "repayment_plan":
            ok &= plan_ok
        allowed[action] = ok
        paths[action] = _paths(ctx, action, cfg, window)
    paths["none"] = np.full(n, "no contact today")
    paths = paths.where(allowed, "")
    return allowed, paths


def _paths(ctx: pd.DataFrame, action: str, cfg: StrategySettings, window: str) -> pd.Series:
    """Human-readable rule path for one action (only meaningful where it is allowed)."""
    cap = "cap " + (ctx["contacts_7d"].astype(int) + 1).astype(str) + f"/{cfg.max_contacts_7d} in 7d"
    steps = [cap]
    if action == "repayment_plan":
        steps.append(
            np.where(ctx["hardship_reported"] > 0, "hardship -> plan", "plan from DPD " + str(cfg.plan_min_dpd))
        )
    else:
        steps.append(pd.Series("no hardship", index=ctx.index))
    if action == "call":
        steps.append(ctx["episode_noncontact"].astype(int).astype(str) + " non-contact attempt(s) first")
        steps.append(pd.Series("number not wrong", index=ctx.index))
    if action == "visit":
        steps.append(
            "outstanding "
            + ctx["outstanding"].round(0).astype(int).astype(str)
            + f">={cfg.visit_min_amount:.0f}, DPD "
            + ctx["dpd"].astype(int).astype(str)
            + f">={cfg.visit_min_dpd}, unreached after "
            + ctx["episode_noncontact"].astype(int).astype(str)
        )
    steps += [pd.Series("borrower only", index=ctx.index), pd.Series(window, index=ctx.index)]
    out = pd.Series(np.asarray(steps[0], dtype=object), index=ctx.index).astype(str)
    for step in steps[1:]:
        out = out + " > " + pd.Series(np.asarray(step, dtype=object), index=ctx.index).astype(str)
    return out


def violations(ctx: pd.DataFrame, chosen: pd.Series, cfg: StrategySettings) -> list[str]:
    """Independent re-check of every rule on a finished plan (used by tests and before publishing)."""
    bad = []
    for i, action in chosen.items():
        row = ctx.loc[i]
        if action == "none":
            continue
        if row["contacts_7d"] + 1 > cfg.max_contacts_7d:
            bad.append(f"{row['loan_id']}: contact cap")
        if row["hardship_reported"] > 0 and action != "repayment_plan":
            bad.append(f"{row['loan_id']}: escalation in hardship")
        if action == "call" and (row["episode_noncontact"] < cfg.min_noncontact_before_call or row["wrong_number"] > 0):
            bad.append(f"{row['loan_id']}: call too early or to a wrong number")
        if action == "visit" and not (
            row["outstanding"] >= cfg.visit_min_amount
            and row["dpd"] >= cfg.visit_min_dpd
            and row["episode_noncontact"] >= cfg.visit_min_unreached_attempts
            and row["episode_reached"] == 0
            and row["wrong_number"] == 0
        ):
            bad.append(f"{row['loan_id']}: unlawful visit")
        if action == "repayment_plan" and not (row["hardship_reported"] > 0 or row["dpd"] >= cfg.plan_min_dpd):
            bad.append(f"{row['loan_id']}: plan too early")
    return bad
