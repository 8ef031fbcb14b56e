"""Runtime contract between a protocol driver and :class:`~renkei.edge.sources.live.LiveSource`.

A *driver* (one per live source: OPC UA, Modbus, SLMP, MTConnect, Sparkplug B) talks to the
device on its own thread. It never builds sample blocks: it hands :class:`Reading` objects
(raw values, device or gateway timestamps, quality) and link events to a :class:`LiveSink`,
which is thread-safe. The :class:`~renkei.edge.sources.live.LiveSource` on the agent's main thread
drains the sink, applies the signal mapping (scale, offset, unit), orders rows in time and
builds ``slow`` and ``shot`` blocks, ``quality`` rows and ``event`` rows.

Polling drivers (Modbus, SLMP) that read many signals at one instant may hand a whole read
over as one :class:`ReadingBlock` (:meth:`LiveSink.put_blocks`: columns of values, one
timestamp) instead of one :class:`Reading` per signal; the source assembles rows from it
with array operations and the same rules. A :class:`RawBlock` defers even the decoding of a
response to the main thread: a driver thread then holds the GIL only briefly per response
(with dozens of driver threads, GIL hand-overs cost more than the decoding itself).

A driver's :meth:`Driver.run` blocks until ``stop`` is set. It owns reconnection: on a
failed connect or a lost link it calls :meth:`LiveSink.link_down` (once per outage), waits
with :class:`~renkei.edge.sources.live.backoff.Backoff`, and reconnects, restoring everything it
had (OPC UA session, subscriptions and monitored items; Modbus TCP connection) without help
from the agent. It raises only for a problem no retry can fix (a certificate the server
refuses, a config the device contradicts); :class:`LiveSource` then reports it as an event
and keeps restarting the driver with backoff, so a live machine never stops its gateway.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from renkei.edge.sources.live.signals import ShotsConfig, SignalMap

log = logging.getLogger(__name__)

__all__ = [
    "MAX_PENDING_EVENTS",
    "MAX_PENDING_READINGS",
    "Driver",
    "LinkEvent",
    "LiveSink",
    "Quality",
    "RawBlock",
    "Reading",
    "ReadingBlock",
    "bad_readings",
    "now_ms",
]

#: Readings the sink holds for the main thread before it drops the oldest (bounds memory
#: if the main thread stalls); drops are counted and reported as an event.
MAX_PENDING_READINGS: Final = 1_000_000

#: Events the sink holds before it drops the oldest (a device flapping a condition while
#: the main thread stalls must not grow memory); drops are counted in ``events_dropped``.
MAX_PENDING_EVENTS: Final = 10_000


def now_ms() -> int:
    """Gateway wall clock, UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Quality(enum.IntEnum):
    """Quality of a reading (the OPC UA StatusCode severity classes, OPC 10000-4 §7.39).

    ``BAD`` readings are never published as values (the field is ``null``); ``UNCERTAIN``
    values are published and counted.
    """

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one signal.

    Attributes:
        signal: the configured signal name (``SignalMap.name``).
        t_ms: UTC epoch ms: the device's timestamp if ``device_time``, else the gateway's
            clock when the value was received.
        value: the *raw* value (before ``scale``/``offset``); booleans as 0.0/1.0; NaN when
            there is none (``BAD`` readings may carry NaN).
        quality: :class:`Quality`.
        device_time: ``True`` if ``t_ms`` comes from the device (OPC UA SourceTimestamp,
            MTConnect timestamp, Sparkplug metric timestamp), ``False`` if the gateway
            stamped it (Modbus, SLMP: the protocols carry no time).
        reason: for a non-good reading, why (``BadCommunicationError``,
            ``modbus exception 2 (illegal data address)``, ``timeout``); counted per reason.
    """

    signal: str
    t_ms: int
    value: float
    quality: Quality = Quality.GOOD
    device_time: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReadingBlock:
    """Values of several signals read at one time (a columnar batch of :class:`Reading`).

    Meant for polling drivers: one read request (a Modbus register block, an SLMP batch
    read) becomes one block instead of one object per signal. Entry ``i`` is the reading
    ``Reading(names[index[i]], t_ms, values[i], quality[i], device_time, reason_i)``
    (:meth:`readings` builds exactly those).

    Attributes:
        names: the signal names ``index`` points into; pass the *same* tuple every time
            (usually the driver's ``signals`` in order): the source caches its mapping by
            identity.
        index: int array ``(m,)``, positions in ``names``; each signal at most once per
            block (a repeated or out-of-range position is counted as ``unknown``).
        values: float64 ``(m,)``, raw values (before scale/offset); NaN where none.
        t_ms: UTC epoch ms of all entries (see :attr:`Reading.t_ms`).
        quality: uint8 ``(m,)`` :class:`Quality` codes, or ``None`` when all are ``GOOD``.
        reason: why the non-good entries are not good (all of them).
        reasons: entry position -> reason, overriding ``reason`` for that entry.
        device_time: see :attr:`Reading.device_time` (``False`` for Modbus and SLMP).

    Raises:
        ValueError: ``index``, ``values`` (and ``quality``) differ in length.
    """

    names: tuple[str, ...]
    index: npt.NDArray[np.intp]
    values: npt.NDArray[np.float64]
    t_ms: int
    quality: npt.NDArray[np.uint8] | None = None
    reason: str = ""
    reasons: Mapping[int, str] = field(default_factory=dict)
    device_time: bool = False

    def __post_init__(self) -> None:
        m = len(self.index)
        if len(self.values) != m or (self.quality is not None and len(self.quality) != m):
            raise ValueError(
                f"a reading block needs index, values and quality of one length, got {m}, "
                f"{len(self.values)}, {None if self.quality is None else len(self.quality)}"
            )

    def __len__(self) -> int:
        return len(self.index)

    def reason_of(self, i: int) -> str:
        """The reason given for entry ``i`` (``""`` if none)."""
        return self.reasons.get(i, self.reason)

    def readings(self) -> list[Reading]:
        """The block as :class:`Reading` objects, entry order (out-of-range positions
        become the name ``#<position>``, which no source knows)."""
        q = [Quality.GOOD] * len(self) if self.quality is None else map(Quality, self.quality)
        out: list[Reading] = []
        n = len(self.names)
        for i, (pos, v, qual) in enumerate(zip(self.index.tolist(), self.values.tolist(), q)):
            name = self.names[pos] if 0 <= pos < n else f"#{pos}"
            reason = "" if qual is Quality.GOOD else self.reason_of(i)
            out.append(Reading(name, self.t_ms, v, qual, self.device_time, reason))
        return out


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A response handed over undecoded: the main thread calls ``decode(payload, t_ms)``
    (which must not raise) to make its :class:`ReadingBlock` of ``size`` entries.

    Attributes:
        decode: e.g. a bound method of the driver's precomputed block decoder.
        payload: the response as the protocol library returned it (e.g. the registers).
        t_ms: gateway time of the response, UTC epoch ms.
        size: entries the decoded block has (counts against the sink's bound).
    """

    decode: Callable[[Any, int], ReadingBlock]
    payload: Any
    t_ms: int
    size: int

    def __len__(self) -> int:
        return self.size


def bad_readings(signals: Iterable[str], reason: str, *, t_ms: int) -> list[Reading]:
    """``BAD`` readings (no value, gateway time ``t_ms``) of ``signals`` for ``reason``:
    what a poll hands over for the signals it could not read."""
    nan = float("nan")
    return [Reading(s, t_ms, nan, Quality.BAD, device_time=False, reason=reason) for s in signals]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An event a driver reports (becomes an ``event`` row of the machine).

    ``code`` is a short snake_case identifier (``source_down``, ``source_up``,
    ``sequence_gap``, ``condition_fault``, ``rebirth_requested``); ``severity`` one of
    ``info``, ``warning``, ``alarm``; ``message`` human-readable (≤ 512 characters).
    """

    t_ms: int
    code: str
    severity: str
    message: str


class LiveSink:
    """Thread-safe hand-over from a driver thread to the main thread.

    Args:
        wake: called (from the driver's thread) after new data arrived, so the agent's main
            loop can process it without polling delay.
        max_pending: readings kept before the oldest are dropped (counted in
            :attr:`dropped`).
        max_events: events kept before the oldest are dropped (counted in
            :attr:`events_dropped`).
        signals: the configured signal names; :meth:`set_unit` ignores other names (a
            device announcing thousands of unknown metrics must not grow memory). ``None``
            accepts any name.
    """

    def __init__(
        self,
        *,
        wake: Callable[[], None] = lambda: None,
        max_pending: int = MAX_PENDING_READINGS,
        max_events: int = MAX_PENDING_EVENTS,
        signals: Collection[str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._readings: deque[Reading | ReadingBlock | RawBlock] = deque()
        self._cells = 0  # readings held (a block counts its entries)
        self._events: deque[LinkEvent] = deque()
        self._units: dict[str, str] = {}
        self._known = None if signals is None else frozenset(signals)
        self._wake = wake
        self._max = max_pending
        self._max_events = max_events
        self.events_dropped = 0
        """Events dropped because the main thread did not keep up."""
        self._down_since_ms: int | None = None
        self._down_reason = ""
        self._ever_up = False
        self.dropped = 0
        """Readings dropped because the main thread did not keep up."""
        self.outages = 0
        """Times the link went down (after having been up) or a connect failed."""
        self.connects = 0
        """Successful (re)connects."""

    # ----------------------------------------------------------------- driver side

    def put(self, readings: Iterable[Reading]) -> None:
        """Hand over readings (any order; the source orders them in time)."""
        with self._lock:
            n = len(self._readings)
            self._readings.extend(readings)
            self._cells += len(self._readings) - n
            self._bound()
        self._wake()

    def put_blocks(self, blocks: Iterable[ReadingBlock | RawBlock]) -> None:
        """Hand over reading blocks (see :class:`ReadingBlock`, :class:`RawBlock`; any
        order)."""
        with self._lock:
            for b in blocks:
                self._readings.append(b)
                self._cells += len(b)
            self._bound()
        self._wake()

    def _bound(self) -> None:
        """Drop the oldest readings above ``max_pending`` (whole blocks; lock held)."""
        while self._cells > self._max and self._readings:
            n = _size(self._readings.popleft())
            self._cells -= n
            self.dropped += n

    def put_bad(self, signals: Iterable[str], reason: str, *, t_ms: int | None = None) -> None:
        """Report that ``signals`` could not be read now (``BAD`` readings at gateway
        time ``t_ms``, default now)."""
        self.put(bad_readings(signals, reason, t_ms=now_ms() if t_ms is None else t_ms))

    def set_unit(self, signal: str, unit: str) -> None:
        """The device's own unit of a signal (used where the config leaves ``unit`` empty;
        ignored for a signal that is not configured; at most 32 characters kept)."""
        if self._known is not None and signal not in self._known:
            return
        with self._lock:
            self._units[signal] = unit[:32]

    def event(self, code: str, severity: str, message: str, *, t_ms: int | None = None) -> None:
        """Report an event (see :class:`LinkEvent`)."""
        ev = LinkEvent(now_ms() if t_ms is None else t_ms, code, severity, message[:512])
        with self._lock:
            self._events.append(ev)
            if len(self._events) > self._max_events:
                self._events.popleft()
                self.events_dropped += 1
        self._wake()

    def link_up(self, detail: str = "") -> None:
        """The driver is connected and reading. Ends an outage (``source_up`` event with its
        duration); idempotent (a call while up changes nothing, :attr:`connects` counts
        only the first connect and the ends of outages)."""
        t = now_ms()
        with self._lock:
            since, self._down_since_ms = self._down_since_ms, None
            first = not self._ever_up
            self._ever_up = True
            if since is not None or first:
                self.connects += 1
        if since is not None:
            self.event(
                "source_up",
                "info",
                f"connected again after {(t - since) / 1000:.1f} s"
                + (f" ({detail})" if detail else ""),
                t_ms=t,
            )
        elif first:
            self.event("source_up", "info", "connected" + (f" ({detail})" if detail else ""))

    def link_down(self, reason: str) -> None:
        """The link failed or could not be made. Starts an outage (one ``source_down``
        event per outage, however many reconnects fail); idempotent while down."""
        t = now_ms()
        with self._lock:
            if self._down_since_ms is not None:
                return
            self._down_since_ms = t
            self._down_reason = reason
            self.outages += 1
        self.event("source_down", "alarm", f"device unreachable: {reason}", t_ms=t)

    @property
    def down(self) -> bool:
        """True during an outage."""
        return self._down_since_ms is not None

    @property
    def up(self) -> bool:
        """True once connected and not in an outage (False before the first connect)."""
        return self._ever_up and self._down_since_ms is None

    # ----------------------------------------------------------------- main-thread side

    @property
    def idle(self) -> bool:
        """True if no reading, block or event waits (a cheap check without the lock)."""
        return not self._readings and not self._events

    @property
    def pending(self) -> int:
        """Readings handed over and not yet taken (a block counts its entries)."""
        return self._cells

    def take(
        self, max_readings: int | None = None
    ) -> tuple[list[Reading], list[LinkEvent], dict[str, str]]:
        """What was handed over since the last call: the oldest ``max_readings`` readings
        (all if ``None``; the rest stay for the next call), all events, the device units."""
        items, events, units = self.take_items(max_readings)
        readings: list[Reading] = []
        for it in items:
            if isinstance(it, ReadingBlock):
                readings += it.readings()
            else:
                readings.append(it)
        return readings, events, units

    def take_items(
        self, max_readings: int | None = None
    ) -> tuple[list[Reading | ReadingBlock], list[LinkEvent], dict[str, str]]:
        """As :meth:`take`, but blocks stay blocks (in hand-over order; a :class:`RawBlock`
        is decoded here); a block counts its entries against ``max_readings`` and is never
        split (at least one item is taken). A decoder that raises loses its block (counted
        in :attr:`dropped`, logged)."""
        items: list[Reading | ReadingBlock | RawBlock]
        with self._lock:
            if max_readings is None or max_readings >= self._cells:
                items = list(self._readings)
                self._readings.clear()
                self._cells = 0
            else:
                items = []
                budget = max_readings
                pop = self._readings.popleft
                while self._readings and (budget > 0 or not items):
                    it = pop()
                    items.append(it)
                    n = _size(it)
                    budget -= n
                    self._cells -= n
            events = list(self._events)
            self._events.clear()
            units = dict(self._units)
        return [r for it in items if (r := self._decoded(it)) is not None], events, units

    def _decoded(self, item: Reading | ReadingBlock | RawBlock) -> Reading | ReadingBlock | None:
        if not isinstance(item, RawBlock):
            return item
        try:
            return item.decode(item.payload, item.t_ms)
        except Exception:  # a decoder bug must not stop the main thread
            log.exception("decoding a block of %d readings failed; dropped", item.size)
            with self._lock:
                self.dropped += item.size
            return None


def _size(item: Reading | ReadingBlock | RawBlock) -> int:
    return 1 if isinstance(item, Reading) else len(item)


class Driver(Protocol):
    """A protocol driver (see the module docstring).

    Attributes:
        signals: the signals it reports (usually the config's ``signals``; a preset such as
            OPC UA ``euromap77`` supplies its own). Readings of other names are counted as
            ``unknown`` and dropped.
        shots: the shot trigger (the config's ``shots``, or a preset's), or ``None``.
        describe: one line naming the device (endpoint, host:port/unit) for logs and events.
    """

    signals: Sequence[SignalMap]
    shots: ShotsConfig | None
    describe: str

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Read the device until ``stop`` is set, reconnecting by itself.

        Raises:
            renkei.edge.sources.live.LiveSourceError: a problem retrying cannot fix; the message
                names the device and the cause (e.g. "server refused the client
                certificate").
        """
        ...
