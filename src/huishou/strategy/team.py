"""The collection team of one day: each collector's minutes, the human actions they may take (skills) and the
languages they collect in.

A human action for a borrower needs a collector with the skill, the borrower's language and the minutes
(assign.py, policy_eval.py). A collector the roster does not restrict takes every action in every language, so
a team given as a plain {collector: minutes} mapping behaves as one pool.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

ANY = None  # skills / languages of a collector the roster does not restrict


@dataclass(frozen=True)
class Team:
    minutes: Mapping[str, int]  # daily minutes per collector id
    skills: Mapping[str, frozenset[str]] = field(default_factory=dict)  # absent: every human action
    languages: Mapping[str, frozenset[str]] = field(default_factory=dict)  # absent: every language
    default_language: str = "zh"  # a borrower's language where the book gives none

    @classmethod
    def from_settings(cls, cfg) -> Team:
        """strategy.collectors / collector_minutes / collector_overrides / collector_skills /
        collector_languages / default_language."""
        return cls(
            cfg.capacities(),
            {c: frozenset(s) for c, s in (cfg.collector_skills or {}).items()},
            {c: frozenset(ls) for c, ls in (cfg.collector_languages or {}).items()},
            cfg.default_language,
        )

    @classmethod
    def of(cls, team: Team | Mapping[str, int] | None) -> Team:
        """A Team as is; a {collector: minutes} mapping as one unrestricted pool; None as nobody."""
        return team if isinstance(team, Team) else cls(dict(team or {}))

    @property
    def restricted(self) -> bool:
        """Whether some collector cannot take some human action or language (else one pool)."""
        return bool(self.skills or self.languages)

    def with_minutes(self, minutes: Mapping[str, int]) -> Team:
        """The same collectors with other minutes (what is left of the day, an arm's share)."""
        return Team(dict(minutes), self.skills, self.languages, self.default_language)

    def scaled(self, share: float, rounding=int) -> Team:
        """Every collector's minutes times `share` (rounded down, or by `rounding`)."""
        return self.with_minutes({c: rounding(m * share) for c, m in self.minutes.items()})

    def language(self, language) -> str:
        """A row's language: the default where it is missing (None, NaN, empty)."""
        return language if isinstance(language, str) and language else self.default_language

    def speaks(self, who: str, language: str | None) -> bool:
        langs = self.languages.get(who, ANY)
        return langs is ANY or self.language(language) in langs

    def skilled(self, who: str, action: str) -> bool:
        skills = self.skills.get(who, ANY)
        return skills is ANY or action in skills

    def can(self, who: str, action: str, language: str | None) -> bool:
        return self.skilled(who, action) and self.speaks(who, language)

    def eligible(self, action: str, language: str | None) -> tuple[str, ...]:
        """The collectors who may take `action` with a borrower speaking `language` (None: the default)."""
        return self._eligible(action, self.language(language))

    def _eligible(self, action: str, language: str) -> tuple[str, ...]:
        cache = self._cache
        key = (action, language)
        if key not in cache:
            cache[key] = tuple(c for c in self.minutes if self.can(c, action, language))
        return cache[key]

    @cached_property
    def _cache(self) -> dict:
        return {}

    def row_languages(self, languages: pd.Series | np.ndarray | None, n: int) -> np.ndarray:
        """Each row's language (missing: the default language); all the default where none are given."""
        if languages is None:
            return np.full(n, self.default_language, dtype=object)
        out = np.array(languages, dtype=object)  # a copy
        out[pd.isna(out) | (out == "")] = self.default_language
        return out

    def pools(self) -> list[tuple[str, ...]]:
        """The collectors grouped by identical skills and languages (alike for every routing question)."""
        by_kind: dict[tuple, list[str]] = {}
        for who in self.minutes:
            by_kind.setdefault((self.skills.get(who, ANY), self.languages.get(who, ANY)), []).append(who)
        return [tuple(pool) for pool in by_kind.values()]

    def slots(self, minutes: Mapping[str, int], language: str | None = ANY) -> int:
        """The most human actions the team can take in a day (of borrowers speaking `language`; ANY: any):
        each collector's minutes over their quickest human action."""
        total = 0
        for who, left in self.minutes.items():
            if language is not ANY and not self.speaks(who, language):
                continue
            quickest = [m for a, m in minutes.items() if m > 0 and self.skilled(who, a)]
            if quickest and left > 0:
                total += int(left // min(quickest))
        return total


def languages_of(frame: pd.DataFrame) -> pd.Series | None:
    """A frame's borrower languages (its `language` column), or None where it has none (the default for all)."""
    return frame["language"] if "language" in frame.columns else None


class Rooms:
    """The collectors' minutes left during a plan. `roomiest` is the collector with the most minutes left that
    can take `need` (ties: lowest id), among `among` (None: anyone), found in logarithmic time: a heap of
    (-minutes left, id) per set of eligible collectors, its stale tops refreshed when read (minutes only go
    down, so a stale entry overstates and the true roomiest surfaces). A test holds it to a plain scan."""

    def __init__(self, minutes: Mapping[str, float]):
        self.left = dict(minutes)
        self._heaps: dict[int, tuple[tuple[str, ...] | None, list]] = {}  # by the id of `among` (Team caches it)

    def roomiest(self, need: float, among: tuple[str, ...] | None = None) -> str | None:
        if need <= 0:
            return None
        held = self._heaps.get(id(among))
        if held is None or held[0] is not among:  # hashing a long tuple per call would cost more than the heap
            heap = [(-self.left[c], c) for c in (self.left if among is None else among)]
            heapq.heapify(heap)
            self._heaps[id(among)] = (among, heap)
        else:
            heap = held[1]
        while heap:
            stated, who = heap[0]
            if -stated != self.left[who]:
                heapq.heapreplace(heap, (-self.left[who], who))
                continue
            return who if self.left[who] >= need else None
        return None

    def use(self, who: str, need: float) -> None:
        self.left[who] -= need
