"""Row assembly of a live source: readings and reading blocks into ``slow`` sample blocks
(and ``shot`` blocks), with the per-signal quality bookkeeping and its events.

- ``slow`` blocks: one row per distinct timestamp, every configured signal a field
  (``value = raw * scale + offset``; NaN where the row has no reading of it, the reading
  was ``BAD``, or its value is not finite -- such a reading counts as ``bad``). Rows are
  strictly increasing in time: a reading older than the last row
  already handed on (a late notification) is placed 1 ms after it and counted as ``late``;
  two readings of one signal at the same time get rows 1 ms apart. Nothing is dropped.
  With ``row_merge_ms``, readings of one slot of that length share rows.
- ``shot`` blocks from the ``shots`` trigger
  (:class:`~renkei.edge.sources.live.shots.ShotAssembler`).
- events: ``signal_bad``/``signal_good`` when signals change quality between polls
  (grouped by reason; a signal bad at the end of a poll that was not bad before is
  ``signal_bad``, and the reverse ``signal_good``), and ``clock_skew``.

Time: device timestamps are kept (UTC epoch ms); the agent publishes them unchanged. A
device timestamp more than ``max_clock_skew_s`` behind the gateway clock, or more than
``min(max_clock_skew_s, MAX_FUTURE_SKEW_S)`` ahead of it, is replaced by the gateway's time
(the ingest refuses points more than 300 s in the future by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from renkei.edge.sources.base import SampleBlock
from renkei.edge.sources.live.base import LinkEvent, Quality, Reading, ReadingBlock
from renkei.edge.sources.live.quality import QualityCounters
from renkei.edge.sources.live.shots import ShotAssembler
from renkei.edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["MAX_FUTURE_SKEW_S", "MERGE_GRACE_MS", "LiveBatch", "RowAssembler"]

#: ``row_merge_ms``: how long after ``row_merge_ms`` the newest slot waits for late
#: notifications before it becomes a row, gateway ms.
MERGE_GRACE_MS: Final = 200
#: Signals named in one ``signal_bad``/``signal_good`` event before "and N more".
_NAMES_PER_EVENT: Final = 10

#: Most a device timestamp may lie ahead of the gateway clock, s, whatever
#: ``max_clock_skew_s`` says: the ingest's admission window refuses points more than 300 s
#: in the future (``IngestSettings.max_future_s``), which would dead-letter a whole message.
MAX_FUTURE_SKEW_S: Final = 240.0

#: Distinct ``ReadingBlock`` index layouts a source caches (a driver has one per request).
_MAX_LAYOUTS: Final = 1024
_NO_ROW: Final = np.iinfo(np.int64).min // 2


@dataclass(slots=True)
class LiveBatch:
    """What one :meth:`LiveSource.poll` produced (all in time order)."""

    blocks: list[SampleBlock] = field(default_factory=list)
    events: list[LinkEvent] = field(default_factory=list)
    quality: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    more: bool = False
    """Readings are still waiting (the poll took at most ``MAX_POLL_CELLS`` values):
    poll again soon."""


class RowAssembler:
    """Turns one source's readings into rows (module docstring); keeps the last row time,
    the held ``row_merge_ms`` slot and the set of bad signals between polls.

    Args:
        config: the source's config (``row_merge_ms``, ``max_clock_skew_s``).
        signals: the configured signals by name, in field order.
        shots: the shot assembler, when the source has a shot trigger.
        quality: the quality counters the readings are counted in.
    """

    def __init__(
        self,
        *,
        config: LiveSourceConfig,
        signals: dict[str, SignalMap],
        shots: ShotAssembler | None,
        quality: QualityCounters,
    ) -> None:
        self.config = config
        self._names = list(signals)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._scale = np.array([s.scale for s in signals.values()], dtype=np.float64)
        self._offset = np.array([s.offset for s in signals.values()], dtype=np.float64)
        self._shots = shots
        self._quality = quality
        # ReadingBlock layouts: (id(names), index bytes) -> (names, own index, kept entries)
        self._layouts: dict[
            tuple[int, bytes], tuple[tuple[str, ...], np.ndarray, np.ndarray | None]
        ] = {}
        self.held: list[Reading] = []  # row_merge_ms: the newest slot, not yet closed
        self._held_slot: int | None = None
        self._held_since = 0
        self._last_t: int | None = None
        self._bad: dict[str, str] = {}
        self._skewed = False

    def hold_newest_slot(self, readings: list[Reading], now: int, *, final: bool) -> list[Reading]:
        merge = self.config.row_merge_ms
        if self.held:
            readings = self.held + readings
            self.held = []
        if not readings or final:
            return readings
        top = max(r.t_ms for r in readings) // merge
        if top != self._held_slot:
            self._held_slot, self._held_since = top, now
        if now - self._held_since >= merge + MERGE_GRACE_MS:
            return readings
        out: list[Reading] = []
        for r in readings:
            (self.held if r.t_ms // merge == top else out).append(r)
        return out

    def rows(self, readings: list[Reading], now: int, batch: LiveBatch) -> None:
        past_ms = self.config.max_clock_skew_s * 1000
        future_ms = min(self.config.max_clock_skew_s, MAX_FUTURE_SKEW_S) * 1000
        rows: dict[int, dict[int, tuple[float, Quality]]] = {}
        last_of: dict[int, int] = {}  # signal index -> its last row time in this batch
        merge = self.config.row_merge_ms
        # row_merge_ms: (slot, n-th reading of a signal in the slot) -> row time
        slot_rows: dict[tuple[int, int], int] = {}
        nth: dict[tuple[int, int], int] = {}
        was_bad = dict(self._bad)
        skew_seen: Reading | None = None
        for r in sorted(readings, key=_by_time):
            idx = self._index.get(r.signal)
            if idx is None:
                self._quality.count("unknown")
                continue
            if r.quality is not Quality.BAD and not math.isfinite(r.value):
                r = Reading(r.signal, r.t_ms, math.nan, Quality.BAD, r.device_time, "no value")
            t = int(r.t_ms)
            device_time = r.device_time
            if device_time and not -past_ms <= t - now <= future_ms:
                skew_seen = r
                t, device_time = now, False
            if not device_time:
                self._quality.count("gateway_time")
            if self._last_t is not None and t <= self._last_t:
                if t < self._last_t:
                    self._quality.count("late")
                t = self._last_t + 1
            # a signal's times only grow in this loop (sorted input): its next free row is
            # 1 ms after its last one (O(1), not a scan: 10^5 readings at one ms stay fast)
            if merge:
                slot = t // merge
                k = nth.get((slot, idx), 0)
                nth[(slot, idx)] = k + 1
                row_t = slot_rows.get((slot, k))
                if row_t is None:
                    row_t = slot_rows[(slot, k)] = t
                    while row_t in rows:  # another slot's row at this ms
                        row_t += 1
                    slot_rows[(slot, k)] = row_t
                    rows[row_t] = {}
                rows[row_t][idx] = (r.value, r.quality)
            else:
                prev = last_of.get(idx)
                if prev is not None and t <= prev:
                    t = prev + 1
                last_of[idx] = t
                rows.setdefault(t, {})[idx] = (r.value, r.quality)
            self._quality.count("readings")
            if r.quality is Quality.GOOD:
                self._bad.pop(r.signal, None)
                continue
            name = "bad" if r.quality is Quality.BAD else "uncertain"
            self._quality.count(name)
            self._quality.worst[r.signal] = max(
                self._quality.worst.get(r.signal, 0), int(r.quality)
            )
            if r.quality is Quality.BAD:
                self._bad[r.signal] = r.reason or "bad quality"
        self._skew_event(skew_seen, now, batch)
        self._quality_events(was_bad, now, batch)
        if not rows:
            return
        ts = sorted(rows)
        k = len(self._names)
        values = np.full((k, len(ts)), np.nan)
        for j, t in enumerate(ts):
            for idx, (v, quality) in rows[t].items():
                if quality is not Quality.BAD:
                    values[idx, j] = v
        self._emit_rows(ts, values, batch)

    def _quality_events(self, was_bad: dict[str, str], now: int, batch: LiveBatch) -> None:
        """``signal_bad``/``signal_good`` for the net changes over this poll (a signal
        flapping inside one poll is counted, not announced twice); configured order."""
        if self._bad == was_bad:
            return
        newly_bad: dict[str, list[str]] = {}
        recovered: list[str] = []
        for name in self._names:
            if name in self._bad and name not in was_bad:
                newly_bad.setdefault(self._bad[name], []).append(name)
            elif name in was_bad and name not in self._bad:
                recovered.append(name)
        for reason, names in newly_bad.items():
            batch.events.append(
                LinkEvent(now, "signal_bad", "warning", _names_message(names, f"bad: {reason}"))
            )
        if recovered:
            batch.events.append(
                LinkEvent(now, "signal_good", "info", _names_message(recovered, "good again"))
            )

    def _layout(self, b: ReadingBlock) -> tuple[np.ndarray, np.ndarray | None]:
        """``b``'s entries as this source's signal indexes (entries of unknown names,
        out-of-range or repeated positions left out: ``kept`` lists the others, ``None``
        when all are kept); cached per (names tuple, index) layout."""
        key = (id(b.names), b.index.tobytes())
        hit = self._layouts.get(key)
        if hit is not None and hit[0] is b.names:
            return hit[1], hit[2]
        own_of = [self._index.get(n, -1) for n in b.names]
        pos = b.index.tolist()
        own: list[int] = []
        kept: list[int] = []
        seen: set[int] = set()
        for i, p in enumerate(pos):
            o = own_of[p] if 0 <= p < len(own_of) else -1
            if o >= 0 and o not in seen:
                seen.add(o)
                own.append(o)
                kept.append(i)
        own_arr = np.asarray(own, dtype=np.intp)
        kept_arr = None if len(kept) == len(pos) else np.asarray(kept, dtype=np.intp)
        if len(self._layouts) >= _MAX_LAYOUTS:
            self._layouts.clear()  # bounded: a driver making endless layouts is a bug
        self._layouts[key] = (b.names, own_arr, kept_arr)
        return own_arr, kept_arr

    def block_rows(self, blocks: list[ReadingBlock], now: int, batch: LiveBatch) -> None:
        """:meth:`rows` for reading blocks (same rules, array operations: a block of ``m``
        values costs a few numpy calls, not ``m`` objects)."""
        past_ms = self.config.max_clock_skew_s * 1000
        future_ms = min(self.config.max_clock_skew_s, MAX_FUTURE_SKEW_S) * 1000
        k = len(self._names)
        last_of = np.full(k, _NO_ROW, dtype=np.int64)  # signal -> its last row in this batch
        parts: list[tuple[np.ndarray, int | np.ndarray, np.ndarray]] = []
        was_bad = dict(self._bad)
        skew_seen: Reading | None = None
        for b in sorted(blocks, key=_by_time):
            own, kept = self._layout(b)
            m = len(own)
            if m < len(b):
                self._quality.count("unknown", len(b) - m)
            if not m:
                continue
            vals = b.values if kept is None else b.values[kept]
            q = b.quality if b.quality is None or kept is None else b.quality[kept]
            finite = np.isfinite(vals)
            all_finite = bool(finite.all())
            if q is None and all_finite:
                bad = None
                n_bad = n_unc = 0
            else:
                bad = ~finite if q is None else (q == Quality.BAD) | ~finite
                n_bad = int(np.count_nonzero(bad))
                n_unc = 0 if q is None else int(np.count_nonzero((q == Quality.UNCERTAIN) & ~bad))
            t = int(b.t_ms)
            device_time = b.device_time
            if device_time and not -past_ms <= t - now <= future_ms:
                skew_seen = Reading(self._names[int(own[0])], t, math.nan)
                t, device_time = now, False
            if not device_time:
                self._quality.count("gateway_time", m)
            if self._last_t is not None and t <= self._last_t:
                if t < self._last_t:
                    self._quality.count("late", m)
                t = self._last_t + 1
            prev = last_of[own]
            rt: int | np.ndarray = t
            if int(prev.max()) >= t:  # a signal already has a row at t: 1 ms after it
                rt = np.maximum(prev + 1, t)
            last_of[own] = rt
            self._quality.count("readings", m)
            if bad is not None:
                vals = np.where(bad, np.nan, vals)
            parts.append((own, rt, vals))
            if n_bad or n_unc:
                self._block_quality(b, own, kept, q, bad, finite)
                if n_bad:
                    self._quality.count("bad", n_bad)
                if n_unc:
                    self._quality.count("uncertain", n_unc)
            elif self._bad:
                for i in own.tolist():
                    self._bad.pop(self._names[i], None)
        self._skew_event(skew_seen, now, batch)
        self._quality_events(was_bad, now, batch)
        if not parts:
            return
        if all(isinstance(rt, int) for _, rt, _ in parts):
            ts_list = sorted({rt for _, rt, _ in parts if isinstance(rt, int)})
        else:
            ts_list = np.unique(np.concatenate([np.atleast_1d(rt) for _, rt, _ in parts])).tolist()
        values = np.full((k, len(ts_list)), np.nan)
        col_of = {t: j for j, t in enumerate(ts_list)}
        for own, rt, vals in parts:
            if isinstance(rt, int):
                values[own, col_of[rt]] = vals
            else:
                values[own, np.searchsorted(ts_list, rt)] = vals
        self._emit_rows(ts_list, values, batch)

    def _block_quality(
        self,
        b: ReadingBlock,
        own: np.ndarray,
        kept: np.ndarray | None,
        q: np.ndarray | None,
        bad: np.ndarray | None,
        finite: np.ndarray,
    ) -> None:
        """Per-signal bookkeeping of a block with non-good entries (worst quality of the
        interval, the bad set and its reasons), entry order as :meth:`rows` does."""
        assert bad is not None
        for j, o in enumerate(own.tolist()):
            name = self._names[o]
            if bad[j]:
                self._quality.worst[name] = int(Quality.BAD)
                if finite[j] or (q is not None and q[j] == Quality.BAD):
                    reason = b.reason_of(j if kept is None else int(kept[j]))
                else:
                    reason = "no value"
                self._bad[name] = reason or "bad quality"
            elif q is not None and q[j] == Quality.UNCERTAIN:
                self._quality.worst[name] = max(
                    self._quality.worst.get(name, 0), int(Quality.UNCERTAIN)
                )
            else:
                self._bad.pop(name, None)

    def _emit_rows(self, ts: Sequence[int], values: np.ndarray, batch: LiveBatch) -> None:
        """Scale/offset the raw ``values`` (signals x rows) and append the ``slow`` block
        (and the shot rows) of rows ``ts``."""
        self._last_t = ts[-1]
        with np.errstate(over="ignore", invalid="ignore"):
            values = values * self._scale[:, None] + self._offset[:, None]
        values[~np.isfinite(values)] = np.nan  # a huge raw value * scale: no value, not inf
        t_arr = np.asarray(ts, dtype=np.int64)
        self._quality.totals["rows"] += len(ts)
        fields = dict(zip(self._names, values))
        batch.blocks.append(
            SampleBlock(
                stream="slow",
                t_ms=t_arr,
                fields=fields,
                labels=None,
                sample_rate_hz=None,
                matrix=values,
            )
        )
        if self._shots is not None:
            self._shot_block(ts, values, batch)

    def _shot_block(self, ts: Sequence[int], values: np.ndarray, batch: LiveBatch) -> None:
        assert self._shots is not None
        used = [self._index[n] for n in self._shot_inputs()]
        shots: list[tuple[int, dict[str, float]]] = []
        for j, t in enumerate(ts):
            row = {self._names[i]: float(values[i, j]) for i in used}
            shots.extend(self._shots.push(t, row))
        if not shots:
            return
        names = self._shots.fields
        batch.blocks.append(
            SampleBlock(
                stream="shot",
                t_ms=np.asarray([t for t, _ in shots], dtype=np.int64),
                fields={
                    n: np.asarray([row[n] for _, row in shots], dtype=np.float64) for n in names
                },
                labels=None,
                sample_rate_hz=None,
            )
        )

    def _shot_inputs(self) -> list[str]:
        assert self._shots is not None
        cfg = self._shots.config
        return list(dict.fromkeys((cfg.trigger, *cfg.values, *cfg.stats)))

    def _skew_event(self, r: Reading | None, now: int, batch: LiveBatch) -> None:
        if r is None:
            self._skewed = False
            return
        if self._skewed:
            return
        self._skewed = True
        batch.events.append(
            LinkEvent(
                now,
                "clock_skew",
                "warning",
                f"device time of {r.signal!r} is {(r.t_ms - now) / 1000:+.0f} s off the "
                f"gateway clock (limit {self.config.max_clock_skew_s:g} s); using the "
                "gateway's time until the device clock is fixed",
            )
        )


def _by_time(r: Reading | ReadingBlock) -> int:
    return r.t_ms


def _names_message(names: list[str], what: str) -> str:
    shown = ", ".join(names[:_NAMES_PER_EVENT])
    more = len(names) - _NAMES_PER_EVENT
    return f"{len(names)} signal(s) {what}: {shown}" + (f" and {more} more" if more > 0 else "")
