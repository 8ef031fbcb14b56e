"""The ``quality`` rows of a live source: counters over one quality interval.

A row is emitted every ``quality_interval_s`` and at each link change (a row at the
``source_down`` event's time with ``link_up`` 0, one at the ``source_up`` event's time with
``link_up`` 1; row times strictly increase, so no row overwrites another in the store). Its
fields are counters over the interval -- ``link_up`` (1/0), ``readings``, ``bad``,
``uncertain``, ``gateway_time`` (readings stamped by the gateway: the protocol has no
timestamps, or the device clock was off by more than ``max_clock_skew_s``), ``late``,
``dropped`` (main thread too slow), ``unknown`` (readings of unconfigured signals) -- plus,
for each signal with a non-good reading in the interval, its worst quality code
(1 uncertain, 2 bad) under its own name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["COUNTERS", "QualityCounters"]

#: The counters every quality row carries (0 when nothing happened).
COUNTERS: Final = ("readings", "bad", "uncertain", "gateway_time", "late", "unknown")


class QualityCounters:
    """Counters of the current quality interval and totals since start.

    Args:
        clock: gateway wall clock, UTC epoch ms (starts the next interval).

    Attributes:
        start: gateway time the current interval started, ms (``None`` before the first
            poll).
        counts: counter name -> count in the current interval.
        worst: signal name -> worst quality code of the interval (signals with a non-good
            reading only).
        totals: counter name -> count since start (the ``rows`` counter included).
    """

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self.start: int | None = None
        self._last_t: int | None = None
        self.counts: dict[str, float] = {}
        self.worst: dict[str, int] = {}
        self._dropped_seen = 0
        self.totals: dict[str, int] = dict.fromkeys((*COUNTERS, "rows"), 0)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (interval and total)."""
        self.counts[name] = self.counts.get(name, 0.0) + n
        self.totals[name] += n

    def row(self, t_ms: int, *, link_up: bool, dropped: int) -> tuple[int, dict[str, float]]:
        """The interval's row at ``t_ms`` (moved 1 ms after the previous row if not later)
        and a new interval.

        Args:
            t_ms: the row's time, UTC epoch ms.
            link_up: the link state the row reports.
            dropped: the sink's dropped-readings total (the row carries the increase).
        """
        t = int(t_ms)
        if self._last_t is not None and t <= self._last_t:
            t = self._last_t + 1  # one row per time: a row never overwrites another
        self._last_t = t
        row: dict[str, float] = {
            "link_up": 1.0 if link_up else 0.0,
            **dict.fromkeys(COUNTERS, 0.0),
            **self.counts,
            "dropped": float(dropped - self._dropped_seen),
        }
        row.update({n: float(c) for n, c in self.worst.items()})
        self._dropped_seen = dropped
        self.counts = {}
        self.worst = {}
        self.start = self._clock()
        return t, row
