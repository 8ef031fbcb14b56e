"""Shot rows from a counter or cycle signal
(:class:`~renkei.edge.sources.live.signals.ShotsConfig`).

Many machines expose no per-cycle event, only a shot counter (EUROMAP 77
``MachineCycleCounter``, a PLC word counting strokes) or a cycle-end bit. Each completed
cycle becomes one ``shot`` row, like a row of the Kassel cycle log: the cycle's counter,
its cycle time and the process values of that cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from renkei.edge.sources.live.signals import ShotsConfig

__all__ = ["MAX_COUNTER_JUMP", "ShotAssembler"]

#: A counter increase larger than this is treated as a counter reset/replacement, not as
#: that many cycles (a PLC re-initialising its counter to a random value).
MAX_COUNTER_JUMP: Final = 10_000


class ShotAssembler:
    """Feed mapped rows in time order; get one shot row per completed cycle.

    Args:
        config: the machine's ``shots`` section.

    Output row fields, in order: ``shot_count``, ``cycle_time_s``, each ``values`` signal,
    then ``{s}_mean`` and ``{s}_max`` for each ``stats`` signal (NaN when the cycle had no
    finite reading of it).
    """

    def __init__(self, config: ShotsConfig) -> None:
        self.config = config
        self.fields: tuple[str, ...] = (
            "shot_count",
            "cycle_time_s",
            *config.values,
            *(f"{s}_{k}" for s in config.stats for k in ("mean", "max")),
        )
        self._latest: dict[str, float] = {v: math.nan for v in config.values}
        self._sum: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._max: dict[str, float] = {}
        self._reset_stats()
        self._last_trigger: float | None = None  # last counter value / cycle-signal level
        self._last_end_ms: int | None = None
        self._cycles = 0
        self.resets = 0
        """Counter decreases (or implausible jumps) seen: counting restarted."""
        self.missed = 0
        """Cycles completed without a reading of their own (counter jumped by > 1)."""

    def _reset_stats(self) -> None:
        for s in self.config.stats:
            self._sum[s] = 0.0
            self._n[s] = 0
            self._max[s] = -math.inf

    def gap(self) -> None:
        """The link was down: the next cycle's time is unknown (its ``cycle_time_s`` NaN)."""
        self._last_end_ms = None

    def push(self, t_ms: int, row: Mapping[str, float]) -> list[tuple[int, dict[str, float]]]:
        """Add one row (signal name -> mapped value, NaN = no reading) at ``t_ms``.

        Returns:
            the shot rows (time, fields) this row completes: zero or one.
        """
        for s in self.config.stats:
            v = row.get(s, math.nan)
            if math.isfinite(v):
                self._sum[s] += v
                self._n[s] += 1
                self._max[s] = max(self._max[s], v)
        for s in self.config.values:
            v = row.get(s, math.nan)
            if math.isfinite(v):
                self._latest[s] = v
        trig = row.get(self.config.trigger, math.nan)
        if not math.isfinite(trig):
            return []
        prev, self._last_trigger = self._last_trigger, trig
        if prev is None:
            return []  # first reading after start: a baseline, no completed cycle known
        if self.config.counter is not None:
            delta = trig - prev
            if delta <= 0 or delta > MAX_COUNTER_JUMP or delta != math.floor(delta):
                if delta != 0:
                    self.resets += 1
                    self._last_end_ms = None
                return []
            n = int(delta)
            count = trig
        else:
            if not (prev <= 0.5 < trig):
                return []
            n = 1
            self._cycles += 1
            count = float(self._cycles)
        self.missed += n - 1
        cycle_s = math.nan if self._last_end_ms is None else (t_ms - self._last_end_ms) / 1000 / n
        self._last_end_ms = t_ms
        out: dict[str, float] = {"shot_count": count, "cycle_time_s": cycle_s}
        out.update(self._latest)
        for s in self.config.stats:
            k = self._n[s]
            out[f"{s}_mean"] = self._sum[s] / k if k else math.nan
            out[f"{s}_max"] = self._max[s] if k else math.nan
        self._reset_stats()
        return [(t_ms, out)]
