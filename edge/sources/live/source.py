"""A live source: a protocol driver on its own thread, turned into sample blocks.

:class:`LiveSource` runs a :class:`~renkei.edge.sources.live.base.Driver` on a daemon thread and,
on the agent's main thread, turns what the driver handed over (:meth:`LiveSource.poll`)
into a :class:`LiveBatch`:

- ``slow`` and ``shot`` blocks, one row per distinct timestamp, strictly increasing in
  time, nothing dropped (:mod:`renkei.edge.sources.live.rows`, which also says how device
  timestamps are kept or replaced);
- ``quality`` rows every ``quality_interval_s`` and at each link change
  (:mod:`renkei.edge.sources.live.quality`);
- events: the driver's (``source_down``/``source_up`` with the outage duration, protocol
  events), ``signal_bad``/``signal_good`` and ``clock_skew`` (from the row assembly), and
  ``driver_failed`` when the driver raised (the source restarts it with backoff: a live
  machine never stops the gateway; :mod:`renkei.edge.sources.live.supervise`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from renkei.edge.sources.base import SourceError
from renkei.edge.sources.live.base import Driver, LiveSink, Reading, ReadingBlock, now_ms
from renkei.edge.sources.live.quality import QualityCounters
from renkei.edge.sources.live.rows import (
    MAX_FUTURE_SKEW_S,
    MERGE_GRACE_MS,
    LiveBatch,
    RowAssembler,
)
from renkei.edge.sources.live.shots import ShotAssembler
from renkei.edge.sources.live.signals import LiveSourceConfig, SignalMap, check_signal_names
from renkei.edge.sources.live.supervise import supervise

__all__ = [
    "MAX_FUTURE_SKEW_S",
    "MAX_POLL_CELLS",
    "MERGE_GRACE_MS",
    "LiveBatch",
    "LiveSource",
    "LiveSourceError",
]

log = logging.getLogger(__name__)

#: Above this many signals without ``row_merge_ms`` a start-up warning explains the cost.
_MANY_SIGNALS: Final = 500

#: Most values (signals x rows) one :meth:`LiveSource.poll` assembles (16 MB of float64):
#: a backlog (the main loop was slow) is taken in parts, never as one huge block.
MAX_POLL_CELLS: Final = 2_000_000


class LiveSourceError(SourceError):
    """A live source cannot work as configured; the message names the device and cause."""


class LiveSource:
    """Runs a protocol driver and turns its readings into blocks (module docstring).

    Args:
        config: the source's config (common keys: link, shots, clock skew, quality period).
        driver: the protocol driver; its ``signals`` and ``shots`` define the fields.
        wake: called from the driver thread when data arrived (the agent's loop wakes up).
        clock: gateway wall clock, UTC epoch ms (tests pin it).

    Raises:
        LiveSourceError: two signals with one name, or a shot key naming no signal.
    """

    live = True

    def __init__(
        self,
        *,
        config: LiveSourceConfig,
        driver: Driver,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.config = config
        self.driver = driver
        self.signals: dict[str, SignalMap] = {}
        for s in driver.signals:
            if s.name in self.signals:
                raise LiveSourceError(f"{driver.describe}: signal {s.name!r} is listed twice")
            self.signals[s.name] = s
        self._names = list(self.signals)
        if len(self._names) > _MANY_SIGNALS and not config.row_merge_ms:
            log.warning(
                "%s: %d signals with row_merge_ms 0: every distinct device timestamp makes a "
                "row of all of them; set row_merge_ms (e.g. the sampling interval) if they "
                "change at unrelated times",
                driver.describe,
                len(self._names),
            )
        self._shots: ShotAssembler | None = None
        if driver.shots is not None:
            cfg = driver.shots
            missing = [n for n in (cfg.trigger, *cfg.values, *cfg.stats) if n not in self.signals]
            if missing:
                raise LiveSourceError(
                    f"{driver.describe}: shots name signals that are not read: {missing}"
                )
            problems = check_signal_names(self._names, cfg)  # e.g. shot field clashes
            if problems:
                raise LiveSourceError(
                    f"{driver.describe}: " + "; ".join(f"{k}: {m}" for k, m in problems)
                )
            self._shots = ShotAssembler(cfg)
        self._clock = clock
        self.sink = LiveSink(wake=wake, signals=self._names)
        self._device_units: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._quality = QualityCounters(clock)
        self._rows = RowAssembler(
            config=config, signals=self.signals, shots=self._shots, quality=self._quality
        )
        self.driver_failures = 0
        """Times the driver raised and was restarted."""
        self.totals: dict[str, int] = self._quality.totals
        """Counters since start (the demo's live view and tests read them)."""

    # ----------------------------------------------------------------- Source API

    @property
    def fields(self) -> dict[str, str]:
        """Signal name -> unit (config ``unit``, else the device's, else ``""``)."""
        return {n: s.unit or self._device_units.get(n, "") for n, s in self.signals.items()}

    @property
    def streams(self) -> set[str]:
        """``{"slow"}``, plus ``"shot"`` with a shot trigger."""
        return {"slow", "shot"} if self._shots is not None else {"slow"}

    @property
    def describe(self) -> str:
        """The device, for logs."""
        return self.driver.describe

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the driver thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._supervise, name=f"live:{self.driver.describe}"[:60], daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Ask the driver to stop and wait up to ``timeout_s`` for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s: driver did not stop within %.1f s", self.describe, timeout_s)

    @property
    def running(self) -> bool:
        """True while the driver thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _supervise(self) -> None:
        supervise(
            self.driver,
            self.sink,
            self._stop,
            link=self.config.link,
            expected=(LiveSourceError,),
            on_failure=self._driver_failed,
        )

    def _driver_failed(self) -> None:
        self.driver_failures += 1

    # ----------------------------------------------------------------- main thread

    def poll(self, *, final: bool = False) -> LiveBatch:
        """Turn what the driver handed over since the last call into a batch (at most
        :data:`MAX_POLL_CELLS` values; ``batch.more`` says readings are left).

        With ``row_merge_ms``, the newest slot's readings are held back until a later slot
        starts or ``row_merge_ms`` + :data:`MERGE_GRACE_MS` have passed on the gateway
        clock, so a slot whose notifications arrive in two polls still makes one row;
        ``final=True`` (the agent's last poll at stop) releases them.
        """
        if (
            not final
            and not self._rows.held
            and self._quality.start is not None
            and self.sink.idle
            and self._clock() - self._quality.start < self.config.quality_interval_s * 1000
        ):
            return LiveBatch()  # nothing arrived, no quality row due (the agent polls often)
        limit = max(64, MAX_POLL_CELLS // max(1, len(self._names)))
        items, events, units = self.sink.take_items(limit)
        self._device_units = units
        now = self._clock()
        blocks: list[ReadingBlock] = []
        readings: list[Reading] = []
        if items and not self.config.row_merge_ms and not self._rows.held:
            blocks = [it for it in items if isinstance(it, ReadingBlock)]
            if len(blocks) != len(items):  # mixed: the per-reading path keeps the order
                blocks = []
        if not blocks:
            for it in items:
                if isinstance(it, ReadingBlock):
                    readings += it.readings()
                else:
                    readings.append(it)
        if self.config.row_merge_ms:
            readings = self._rows.hold_newest_slot(readings, now, final=final)
        batch = LiveBatch()
        if self._quality.start is None:
            self._quality.start = now
        if self._shots is not None and any(ev.code == "source_down" for ev in events):
            self._shots.gap()  # before the rows: a cycle must not span an outage
        if readings:
            self._rows.rows(readings, now, batch)
        elif blocks:
            self._rows.block_rows(blocks, now, batch)
        link_rows = False
        for ev in events:
            if ev.code in ("source_down", "source_up"):
                # the outage's start and end each get a row (readings of this poll are
                # counted in the first), at the event's own time
                self._emit_quality(ev.t_ms, batch, link_up=ev.code == "source_up")
                link_rows = True
        batch.events.extend(events)
        due = now - self._quality.start >= self.config.quality_interval_s * 1000
        if due and not link_rows:
            self._emit_quality(now, batch, link_up=self.sink.up)
        batch.more = self.sink.pending > 0
        return batch

    def _emit_quality(self, t_ms: int, batch: LiveBatch, *, link_up: bool) -> None:
        batch.quality.append(self._quality.row(t_ms, link_up=link_up, dropped=self.sink.dropped))

    def status(self) -> dict[str, int | bool]:
        """Counters for the live view and health: totals, outages, driver failures."""
        return {
            **self.totals,
            "link_up": self.sink.up,
            "outages": self.sink.outages,
            "connects": self.sink.connects,
            "dropped": self.sink.dropped,
            "events_dropped": self.sink.events_dropped,
            "driver_failures": self.driver_failures,
        }
