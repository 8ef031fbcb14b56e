"""OEE accounting on the gateway: one row of run-state seconds, shots and counts per interval.

Why on the gateway (and not in the cloud from raw telemetry): the gateway sees every
reading of the run-state signal at the source's rate, so time in each state is measured
exactly (each reading holds until the next, at most ``hold_ms``), even for a machine whose
raw telemetry is never published (``publish_telemetry: false``): raw signals stay on the
shop floor and only per-interval sums travel. The cloud only sums the rows over a range
(``A = sum(run_s) / sum(planned_s)`` ..., :mod:`renkei.core.influx.contract` ``oee``).
Definitions and bases: :mod:`renkei.core.oee` (Nakajima; ISO 22400-2:2014).

Intervals are ``[k·interval_ms, (k+1)·interval_ms)`` of the *source's* time (the caller
maps a row's end time to its published time). An interval is closed once any stream's
data time is ``grace_ms`` past its end, or at :meth:`OeeAccumulator.finish`. Per interval:

- availability: with a run-state plan, time per state (``run_s``, ``idle_s``,
  ``setup_s``, ``down_s``; ``planned_s`` = their sum, ``unknown_s`` = unmapped values and
  gaps); if the interval has no known state at all, or there is no plan, the data-arrival
  proxy: ``run_s`` = time covered by data, ``planned_s`` = covered + gaps;
- performance: ``shots`` (rows of the shot stream); ``ideal_s`` = Σ ideal cycle time
  per shot and ``ideal_run_s`` = ``run_s`` when every shot of the interval has an ideal
  cycle time (the mold's, else the machine's latest nominal), also with no shots at all;
- quality: ``good``/``reject`` = deltas of the configured counters (a drop is a reset:
  the new value is the delta), else the scored rows (unflagged/flagged) as the proxy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from renkei.core.oee import BASIS_CODES, AvailabilityBasis, PerformanceBasis, QualityBasis

__all__ = ["OeeAccumulator", "OeePlan", "RunStates"]

State = Literal["running", "idle", "setup", "down"]
_STATES: Final[tuple[State, ...]] = ("running", "idle", "setup", "down")
#: Longest gap accounted as unknown time (bounds the loop over intervals after an outage).
_MAX_GAP_MS: Final = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStates:
    """A run-state signal: value -> state, and whether it is the machine's own status."""

    signal: str
    states: Mapping[float, State]
    basis: Literal["run_state", "status"] = "run_state"


@dataclass(frozen=True, slots=True, kw_only=True)
class OeePlan:
    """Where each component of one machine comes from (built from the gateway config).

    Attributes:
        interval_ms: accounting interval, ms (> 0).
        hold_ms: a reading holds for at most this long, ms (> 0).
        grace_ms: an interval closes when data time is this far past its end, ms.
        run_state: the run-state signal, or None (data-arrival proxy).
        ideal_cycle_time_s: the mounted mold's ideal cycle time (registry), s, or None.
        nominal_signal: slow signal with the machine's own expected cycle time, s.
        good_signal, reject_signal: slow counter signals of good and rejected parts.
        proxy_quality: use scored rows (anomaly flags) when no counts are reported.
        time_scale: accounted ms per source ms (``1 / speed`` for a re-based replay or
            simulation played faster than real time), applied to ideal cycle times.
    """

    interval_ms: int = 60_000
    hold_ms: int = 10_000
    grace_ms: int = 5_000
    run_state: RunStates | None = None
    ideal_cycle_time_s: float | None = None
    nominal_signal: str | None = None
    good_signal: str | None = None
    reject_signal: str | None = None
    proxy_quality: bool = True
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.interval_ms <= 0 or self.hold_ms <= 0 or self.grace_ms < 0:
            raise ValueError(
                f"need interval_ms > 0, hold_ms > 0, grace_ms >= 0; got {self.interval_ms}, "
                f"{self.hold_ms}, {self.grace_ms}"
            )


@dataclass(slots=True)
class _Bucket:
    state_ms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STATES, 0))
    unknown_ms: int = 0
    covered_ms: int = 0
    gap_ms: int = 0
    shots: int = 0
    ideal_s: float = 0.0
    ideal_missing: bool = False
    good: float = 0.0
    reject: float = 0.0
    counted: bool = False
    scored_ok: int = 0
    scored_flagged: int = 0


class _Holder:
    """The last reading of a signal; it holds until the next one, at most ``hold_ms``."""

    __slots__ = ("t_ms", "value")

    def __init__(self) -> None:
        self.t_ms: int | None = None
        self.value: str | None = None


class OeeAccumulator:
    """Accounts one machine's data into per-interval ``oee`` rows (module docstring).

    Not thread-safe: owned by the machine's pipeline.
    """

    def __init__(self, plan: OeePlan) -> None:
        self.plan = plan
        self._buckets: dict[int, _Bucket] = {}
        self._state = _Holder()
        self._cover = _Holder()
        self._counters: dict[str, float] = {}
        self._nominal: float | None = None
        self._max_t: int | None = None
        self._closed_before = -(2**62)  # first interval index still open

    # ------------------------------------------------------------------ input

    def add_slow(self, t_ms: npt.NDArray[np.int64], fields: Mapping[str, np.ndarray]) -> None:
        """Slow rows (source time, ms, increasing) with their signals' values."""
        p = self.plan
        times = [int(t) for t in t_ms]
        if not times:
            return
        rs = p.run_state
        states = fields.get(rs.signal) if rs is not None else None
        for i, t in enumerate(times):
            self._hold(self._cover, t, "covered")
            if rs is not None and states is not None:
                v = float(states[i])
                self._hold(self._state, t, rs.states.get(v) if math.isfinite(v) else None)
        for name in (p.good_signal, p.reject_signal):
            col = fields.get(name) if name is not None else None
            if col is not None:
                self._count(name or "", times, col)
        nominal = fields.get(p.nominal_signal) if p.nominal_signal is not None else None
        if nominal is not None:
            finite = [float(x) for x in nominal if math.isfinite(float(x)) and float(x) > 0]
            if finite:
                self._nominal = finite[-1]
        self._advance(times[-1])

    def add_block_times(self, t_ms: Sequence[int]) -> None:
        """Arrival of other data (vibration blocks): only covers time for the proxy."""
        for t in t_ms:
            self._hold(self._cover, int(t), "covered")
        if len(t_ms):
            self._advance(int(t_ms[-1]))

    def add_shots(self, t_ms: Sequence[int]) -> None:
        """Shots (one per machine cycle) at source times ``t_ms``."""
        ideal = self.plan.ideal_cycle_time_s or self._nominal
        ideal = None if ideal is None else ideal * self.plan.time_scale
        for t in t_ms:
            b = self._bucket(int(t))
            b.shots += 1
            if ideal is None:
                b.ideal_missing = True
            else:
                b.ideal_s += ideal
            self._hold(self._cover, int(t), "covered")
        if len(t_ms):
            self._advance(int(t_ms[-1]))

    def add_scored(self, t_ms: int, *, flagged: bool) -> None:
        """A scored window or shot (source time): the quality proxy's input."""
        b = self._bucket(int(t_ms))
        if flagged:
            b.scored_flagged += 1
        else:
            b.scored_ok += 1

    # ------------------------------------------------------------------ output

    def close(self) -> list[tuple[int, dict[str, float]]]:
        """Rows of the intervals now closed: (interval end in source ms, ``oee`` fields)."""
        if self._max_t is None:
            return []
        limit = (self._max_t - self.plan.grace_ms) // self.plan.interval_ms
        return self._emit(lambda k: k < limit)

    def finish(self) -> list[tuple[int, dict[str, float]]]:
        """Rows of every interval still open (end of the source), up to the last data."""
        for h, kind in ((self._state, "state"), (self._cover, "cover")):
            if h.t_ms is not None and self._max_t is not None and h.t_ms < self._max_t:
                end = min(self._max_t, h.t_ms + self.plan.hold_ms)
                self._segment(h.value, h.t_ms, end, cover=kind == "cover")
                h.t_ms = end
        return self._emit(lambda k: True)

    # ------------------------------------------------------------------ internals

    def _advance(self, t: int) -> None:
        self._max_t = t if self._max_t is None else max(self._max_t, t)

    def _bucket(self, t: int) -> _Bucket:
        k = max(t // self.plan.interval_ms, self._closed_before)  # late data: first open one
        b = self._buckets.get(k)
        if b is None:
            b = self._buckets[k] = _Bucket()
        return b

    def _hold(self, h: _Holder, t: int, value: str | None) -> None:
        if h.t_ms is not None and t > h.t_ms:
            held = min(t, h.t_ms + self.plan.hold_ms)
            self._segment(h.value, h.t_ms, held, cover=h is self._cover)
            if t > held:
                self._segment(None, held, min(t, held + _MAX_GAP_MS), cover=h is self._cover)
        if h.t_ms is None or t >= h.t_ms:
            h.t_ms, h.value = t, value

    def _segment(self, value: str | None, t0: int, t1: int, *, cover: bool) -> None:
        """Account ``[t0, t1)`` to ``value`` (None = unknown / uncovered), split by interval."""
        step = self.plan.interval_ms
        t = t0
        while t < t1:  # bounded: (t1 - t0) / interval_ms + 1 steps, t1 - t0 <= a day + hold
            k = t // step
            end = min(t1, (k + 1) * step)
            b = self._bucket(t)
            d = end - t
            if cover:
                if value is None:
                    b.gap_ms += d
                else:
                    b.covered_ms += d
            elif value is None:
                b.unknown_ms += d
            else:
                b.state_ms[value] += d
            t = end

    def _count(self, name: str, times: list[int], col: np.ndarray) -> None:
        last = self._counters.get(name)
        for t, raw in zip(times, col, strict=True):
            v = float(raw)
            if not math.isfinite(v):
                continue
            b = self._bucket(t)
            b.counted = True
            if last is not None:
                delta = v - last if v >= last else v  # a drop: the counter was reset
                if name == self.plan.good_signal:
                    b.good += delta
                else:
                    b.reject += delta
            last = v
        if last is not None:
            self._counters[name] = last

    def _emit(self, closed: Callable[[int], bool]) -> list[tuple[int, dict[str, float]]]:
        keys = sorted(k for k in self._buckets if closed(k))
        rows = [(((k + 1) * self.plan.interval_ms), self._row(self._buckets.pop(k))) for k in keys]
        if keys:
            self._closed_before = max(self._closed_before, keys[-1] + 1)
        return [(t, r) for t, r in rows if r]

    def _row(self, b: _Bucket) -> dict[str, float]:
        p = self.plan
        known = sum(b.state_ms.values())
        a_basis: AvailabilityBasis
        row: dict[str, float] = {}
        if p.run_state is not None and known > 0:
            a_basis = p.run_state.basis
            run_ms = b.state_ms["running"]
            row.update(
                planned_s=known / 1000,
                run_s=run_ms / 1000,
                idle_s=b.state_ms["idle"] / 1000,
                setup_s=b.state_ms["setup"] / 1000,
                down_s=b.state_ms["down"] / 1000,
                unknown_s=b.unknown_ms / 1000,
            )
        elif b.covered_ms + b.gap_ms > 0:
            a_basis = "proxy_data_arrival"
            run_ms = b.covered_ms
            row.update(planned_s=(b.covered_ms + b.gap_ms) / 1000, run_s=b.covered_ms / 1000)
        else:
            return {}
        row["shots"] = float(b.shots)
        p_basis: PerformanceBasis = "unknown"
        has_ideal = p.ideal_cycle_time_s is not None or self._nominal is not None
        if not b.ideal_missing and (b.shots > 0 or has_ideal):
            p_basis = "mold_registry" if p.ideal_cycle_time_s is not None else "machine_nominal"
            row.update(ideal_s=b.ideal_s, ideal_run_s=run_ms / 1000)
        q_basis: QualityBasis = "unknown"
        if b.counted and (p.good_signal is not None or p.reject_signal is not None):
            q_basis = "counts"
            row.update(good=b.good, reject=b.reject)
        elif p.proxy_quality and b.scored_ok + b.scored_flagged > 0:
            q_basis = "proxy_anomaly_rate"
            row.update(good=float(b.scored_ok), reject=float(b.scored_flagged))
        row.update(
            availability_basis=float(BASIS_CODES[a_basis]),
            performance_basis=float(BASIS_CODES[p_basis]),
            quality_basis=float(BASIS_CODES[q_basis]),
        )
        return row
