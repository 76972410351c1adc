"""Action-effect model: P(paid within the response window | action, context) for every action.

An inverse-propensity-weighted S-learner: one LightGBM classifier over all logged decisions with
the action as a categorical feature, each decision weighted by 1 / logged propensity (clipped),
so the legacy policy's preferences (calls late in an episode, plans for hardship ...) do not
bias the comparison between actions. Pooling lets every action share the borrower-level
structure (risk, reachability) while splits on the action learn heterogeneous effects (the
closed loop in README, strategy section, measures the plans they make). Predictions differenced
against `none` are uplifts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from huishou.core.errors import DataValidationError, ModelIntegrityError, ModelNotFoundError
from huishou.core.io import file_sha256, read_json, write_json, write_parquet
from huishou.core.vocab import ACTIONS
from huishou.strategy.context import CONTEXT_FEATURES


def _design(context: pd.DataFrame, action) -> pd.DataFrame:
    x = context[CONTEXT_FEATURES].astype(float).copy()
    x["action"] = pd.Categorical(np.broadcast_to(np.asarray(action, dtype=object), len(x)), categories=list(ACTIONS))
    return x


def _designs(context: pd.DataFrame, actions: tuple[str, ...]) -> Iterator[tuple[str, np.ndarray]]:
    """`_design(context, a)` for each action as the float matrix LightGBM makes of it (the action column holds
    the category's code, its place in ACTIONS): the context is converted once and only that column changes.
    Each matrix is valid until the next one is yielded."""
    x = np.empty((len(context), len(CONTEXT_FEATURES) + 1))
    x[:, :-1] = context[CONTEXT_FEATURES].to_numpy(dtype=float)
    for a in actions:
        x[:, -1] = ACTIONS.index(a)
        yield a, x


@dataclass
class EffectModel:
    """P(paid | action, context) of one stage's actions (the others come out missing)."""

    booster: lgb.Booster
    actions: tuple[str, ...] = ACTIONS
    num_threads: int = 0  # LightGBM threads of its predictions (compute.threads; 0: one per core)

    def predict(self, context: pd.DataFrame, rounds: int | None = None) -> pd.DataFrame:
        """P(paid | action) per row, one column per action in ACTIONS (NaN for actions of other stages);
        `rounds`: use only the first boosting rounds (default: all)."""
        return _by_action(
            {
                a: self.booster.predict(x, num_iteration=rounds, num_threads=self.num_threads)
                for a, x in _designs(context, self.actions)
            },
            context.index,
        )

    def predict_staged(self, context: pd.DataFrame, grid: list[int]) -> Iterator[pd.DataFrame]:
        """`predict(context, rounds)` for every `rounds` in the ascending `grid`, in that order, each tree
        evaluated once: the raw scores of rounds grid[k-1]..grid[k] are added to the previous ones (a binary
        booster's raw score is the sum of its trees) and mapped through the logistic function."""
        designs = {a: x.copy() for a, x in _designs(context, self.actions)}
        raw = dict.fromkeys(self.actions, 0.0)
        done = 0
        for rounds in grid:
            for a in self.actions:
                raw[a] = raw[a] + self.booster.predict(
                    designs[a],
                    start_iteration=done,
                    num_iteration=rounds - done,
                    raw_score=True,
                    num_threads=self.num_threads,
                )
            done = rounds
            yield _by_action({a: 1.0 / (1.0 + np.exp(-raw[a])) for a in self.actions}, context.index)


def _by_action(values: dict, index: pd.Index) -> pd.DataFrame:
    """One column per action in ACTIONS: the stage's actions' values, NaN for actions of other stages."""
    return pd.DataFrame({a: values[a] if a in values else np.nan for a in ACTIONS}, index=index)


def fit_effect_model(
    decisions: pd.DataFrame, params: dict, actions: tuple[str, ...] = ACTIONS, rounds: int | None = None
) -> EffectModel:
    """Needs columns CONTEXT_FEATURES, action, propensity (of the logged action) and paid (0/1);
    `params` is strategy.effect_model (LightGBM settings, the seed and the IPW weight cap); `actions` are the
    stage's actions; `rounds` boosting rounds (default: the largest of params rounds_grid)."""
    lgb_params, data = _training(decisions, params)
    rounds = max(int(r) for r in params["rounds_grid"]) if rounds is None else int(rounds)
    return EffectModel(lgb.train(lgb_params, data, rounds), tuple(actions), lgb_params["num_threads"])


def growing_effect_model(decisions: pd.DataFrame, params: dict, actions: tuple[str, ...] = ACTIONS) -> EffectModel:
    """`fit_effect_model` with no trees yet, its booster holding its training data: `grow(model, rounds)` adds
    the trees up to `rounds`, the same trees `fit_effect_model(..., rounds)` fits (lgb.train makes the same
    update calls), so the round selection can stop growing once more rounds stop paying."""
    lgb_params, data = _training(decisions, params)
    return EffectModel(lgb.Booster(lgb_params, data), tuple(actions), lgb_params["num_threads"])


def grow(model: EffectModel, rounds: int) -> None:
    """Boost a `growing_effect_model` on to `rounds` trees."""
    while model.booster.current_iteration() < rounds:
        model.booster.update()


def _training(decisions: pd.DataFrame, params: dict) -> tuple[dict, lgb.Dataset]:
    if decisions.empty or decisions["paid"].nunique() < 2:
        raise DataValidationError(
            "collection_actions: the effect model needs logged decisions with both paid and unpaid outcomes"
        )
    weight = np.minimum(1.0 / decisions["propensity"].clip(lower=1e-6), params["max_weight"])
    lgb_params = {
        "objective": "binary",
        "learning_rate": params["learning_rate"],
        "num_leaves": int(params["num_leaves"]),
        "min_child_samples": int(params["min_child_samples"]),
        "seed": int(params["seed"]),
        "deterministic": True,
        "verbose": -1,
        "force_row_wise": True,  # ~15 % faster than column-wise histograms here (22 columns, 2 threads); either way
        # fixed, not left to LightGBM's timing test: the same predictions on the repro book, bit for bit
        "num_threads": int(params.get("num_threads", 0)),  # compute.threads (settings.with_threads); 0: LightGBM's
    }
    data = lgb.Dataset(_design(decisions, decisions["action"].to_numpy()), decisions["paid"], weight=weight)
    return lgb_params, data


@dataclass
class LearnedEffects:
    """What the plans learn from the collection log: per stage the effect model (None: too few decisions,
    the cold-start policy plans), the off-policy report, and the log it was learnt from (its cutoff, the
    number of decisions per stage) and, where kept, those decisions themselves with what they were read
    under (`logged_key`: the book's hashes, the cutoff, the rules), so that the plans of the same book reuse
    them instead of reading them again (`logged_by_stage`)."""

    cutoff: pd.Timestamp
    effects: dict[str, EffectModel | None]
    off_policy: dict
    decisions: dict[str, int] = field(default_factory=dict)
    logged: dict[str, pd.DataFrame] | None = None
    logged_key: dict | None = None
    logged_file: dict | None = None  # where `load` found them: path, sha256, stages (read only when asked for)

    FORMAT = "huishou-effects/1"
    DOC = "effects.json"
    LOGGED = "logged.parquet"

    def save(self, folder: str | Path) -> Path:
        """effects.json (cutoff, decisions, off-policy report, each model's file and SHA-256) and one LightGBM
        text file per fitted stage: native formats only, nothing that runs code when loaded."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stages = {}
        for stage, model in self.effects.items():
            entry: dict = {"decisions": int(self.decisions.get(stage, 0)), "file": None}
            if model is not None:
                name = f"{stage}.txt"
                model.booster.save_model(str(folder / name))
                entry |= {"file": name, "sha256": file_sha256(folder / name), "actions": list(model.actions)}
            stages[stage] = entry
        doc = {
            "format": self.FORMAT,
            "cutoff": self.cutoff.isoformat(),
            "stages": stages,
            "off_policy": self.off_policy,
        }
        if self.logged is not None and self.logged_key is not None:  # every stage's rows, in stage order
            write_parquet(pd.concat(self.logged.values(), ignore_index=True), folder / self.LOGGED)
            doc["logged"] = {
                "file": self.LOGGED,
                "sha256": file_sha256(folder / self.LOGGED),
                "stages": list(self.logged),
                "key": _jsonable(self.logged_key),
            }
        write_json(doc, folder / self.DOC)
        return folder

    def logged_by_stage(self, key: Mapping) -> dict[str, pd.DataFrame] | None:
        """The logged decisions per stage, as `learning.logged_by_stage` reads them, where `key` (the book's
        hashes, the cutoff and the rules now) is the one they were read under; else None (read them again).
        A file changed since it was saved is refused."""
        if self.logged_key is None or _jsonable(key) != _jsonable(self.logged_key):
            return None
        if self.logged is None and self.logged_file is not None:
            path = self.logged_file["path"]
            if not path.is_file() or file_sha256(path) != self.logged_file["sha256"]:
                raise ModelIntegrityError(
                    f"{path}: missing or changed since it was saved (SHA-256 differs from {self.DOC}); refusing it"
                )
            frame = pd.read_parquet(path)
            self.logged = {
                stage: frame[frame["stage"] == stage].reset_index(drop=True) for stage in self.logged_file["stages"]
            }
        return self.logged

    @classmethod
    def load(cls, folder: str | Path, num_threads: int = 0) -> LearnedEffects:
        """Read what `save` wrote; refuse a folder that is not one, or a model file changed since."""
        folder = Path(folder)
        path = folder / cls.DOC
        if not path.is_file():
            raise ModelNotFoundError(f"{folder}: no fitted effect models ({cls.DOC} missing); run huishou fit-effects")
        try:
            doc = read_json(path)
            ok = doc.get("format") == cls.FORMAT and isinstance(doc.get("stages"), dict)
        except ValueError:
            ok = False
        if not ok:
            raise ModelIntegrityError(f"{path}: not a {cls.FORMAT} description")
        effects: dict[str, EffectModel | None] = {}
        for stage, entry in doc["stages"].items():
            if entry.get("file") is None:
                effects[stage] = None
                continue
            file = folder / str(entry["file"])
            if file.parent != folder or not file.is_file() or file_sha256(file) != entry.get("sha256"):
                raise ModelIntegrityError(
                    f"{file}: missing or changed since it was saved (SHA-256 differs from {path}); refusing to load it"
                )
            booster = lgb.Booster(model_file=str(file))
            effects[stage] = EffectModel(booster, tuple(entry["actions"]), int(num_threads))
        decisions = {stage: int(entry["decisions"]) for stage, entry in doc["stages"].items()}
        learned = cls(pd.Timestamp(doc["cutoff"]), effects, doc["off_policy"], decisions)
        kept = doc.get("logged")
        if isinstance(kept, dict) and (folder / str(kept.get("file"))).parent == folder:
            learned.logged_key = kept.get("key")
            learned.logged_file = {
                "path": folder / str(kept["file"]),
                "sha256": kept.get("sha256"),
                "stages": list(kept.get("stages") or []),
            }
        return learned


def _jsonable(key: Mapping) -> dict:
    """`key` as it reads back from JSON (tuples as lists, numpy numbers as Python's)."""
    return json.loads(json.dumps(key, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
