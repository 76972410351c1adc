"""Progress on long work: a tqdm bar on a terminal, one plain line per step in a log.

`progress_bar(...)` takes tqdm's arguments and returns an object with tqdm's surface (`update`,
`set_postfix_str`, `close`, iteration, `with`). On a terminal it is tqdm itself. When stderr is not a
terminal (cron, `dvc repro` into a file, CI), a bar's carriage-return redraws flood the log, so it
prints one line per step instead: `features [1/3] build 8 snapshots` when the running step gets a name
(`set_postfix_str` before the step's work, as the stages call it), `evaluate strategy [12/60] 2026-01-12`
for an iterated sequence. HUISHOU_PROGRESS=bar|lines|off overrides the choice (TQDM_DISABLE=1 means off).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm  # not tqdm.auto: its notebook bar wants ipywidgets and warns without them


def _mode() -> str:
    chosen = os.environ.get("HUISHOU_PROGRESS", "").strip().lower()
    if chosen in {"bar", "lines", "off"}:
        return chosen
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes"}:
        return "off"
    stream = sys.stderr
    return "bar" if hasattr(stream, "isatty") and stream.isatty() else "lines"


class LineProgress:
    """tqdm's surface, printing one line per named step to stderr (no redraws); unnamed ticks (days of a
    simulation, chunks) at most one line every TICK_SECONDS."""

    TICK_SECONDS = 10.0

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        disable: bool = False,
        **_: Any,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.n = 0
        self._named_since_update = False
        self._started = self._last = time.perf_counter()

    def _print(self, what: str, running: bool = False) -> None:
        """`desc [3/8 day, 41 s] what`: the step running now (running) or the steps done so far."""
        if self.disable:
            return
        at = min(self.n + 1, self.total or self.n + 1) if running else self.n
        of = f"/{self.total}" if self.total is not None else ""
        elapsed = time.perf_counter() - self._started
        line = f"{self.desc} [{at}{of} {self.unit}, {elapsed:.0f} s] {what}".rstrip()
        print(line, file=sys.stderr, flush=True)
        self._last = time.perf_counter()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Name the step that runs now (one line)."""
        self._print(s, running=True)
        self._named_since_update = True

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def update(self, n: int = 1) -> None:
        self.n += n
        finished = self.total is not None and self.n >= self.total
        quiet = time.perf_counter() - self._last < self.TICK_SECONDS
        if not self._named_since_update and not finished and not quiet:  # unnamed ticks: a line every TICK_SECONDS
            self._print("")  # (the last one is close()'s "done")
        self._named_since_update = False

    def close(self) -> None:
        if not self.disable and self.total is not None and self.n >= self.total:
            self._print("done")
        self.disable = True

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            if isinstance(item, str):  # a named step (a date, a model): its line before its work
                self.set_postfix_str(item)
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> Any:
    """A progress display for `iterable` (or `total=` steps): tqdm on a terminal, lines otherwise."""
    mode = _mode()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "bar" or mode == "off":
        return tqdm(iterable, **kwargs)
    return LineProgress(iterable, **kwargs)
