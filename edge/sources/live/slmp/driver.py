"""Driver of the ``slmp`` live source (see :mod:`renkei.edge.sources.live.base`).

One TCP connection to the PLC carries all reads. The configured devices are grouped per
device code (:func:`renkei.edge.sources.live.blocks.plan_reads`: adjacent devices merged into one
Device Read (batch) request of up to 960 words / 7168 bits, holes of at most ``max_gap``
bridged) and every block is read once per ``poll_interval_ms`` on a monotonic schedule;
a poll that takes longer than the interval is an *overrun* (counted, ``poll_overrun``
event once per episode) and the missed slots are skipped, never bunched.

Failure handling:

- an error end code (e.g. 0xC056, device outside the CPU's range) makes that block's
  signals ``BAD`` with reason ``end code 0xC056``; other blocks are unaffected;
- no answer within ``link.timeout_s``: that block and the rest of the poll are ``BAD``
  (``timeout``); after ``timeouts_before_reconnect`` consecutive such polls the connection
  is dropped and made anew (a late answer on a kept connection is drained before the next
  request);
- a malformed response (wrong subheader, route or length, a length field beyond what the
  request can get) makes the block ``BAD`` and drops the connection (the byte stream can no
  longer be trusted); no read ever exceeds the largest legitimate response;
- a lost or refused connection: ``link_down`` (one ``source_down`` event per outage),
  reconnect with :class:`~renkei.edge.sources.live.backoff.Backoff`, ``link_up`` after the first
  valid response.

Readings carry the gateway's time (SLMP has no timestamps): one timestamp per poll.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from renkei.core.errors import TransportError
from renkei.edge.sources.live import registers
from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LiveSink, Quality, Reading, bad_readings, now_ms
from renkei.edge.sources.live.blocks import Item, ReadBlock, plan_reads
from renkei.edge.sources.live.schedule import PollSchedule
from renkei.edge.sources.live.signals import ShotsConfig, SignalMap
from renkei.edge.sources.live.slmp import frames
from renkei.edge.sources.live.slmp.config import SlmpSignal, SlmpSourceConfig
from renkei.edge.sources.live.slmp.link import Link, RequestTimeout, Stopped

__all__ = ["SlmpDriver", "make_driver"]

log = logging.getLogger(__name__)

#: A few common end codes (SH-080956ENG appendix "Error codes"); others show as hex only.
END_CODES = {
    0xC056: "read/write request exceeds the maximum address",
    0xC059: "command or subcommand not supported",
    0xC061: "request data length mismatch",
}


@dataclass(frozen=True, slots=True)
class Area:
    """What one request reads: a device code in bit or word units."""

    name: str
    code: int
    bit_units: bool


Block = ReadBlock[Area, SlmpSignal]


def plan(config: SlmpSourceConfig) -> list[Block]:
    """The read blocks of ``config``: bit devices in bit units, word devices (and bits of
    words, ``D100.3``) in word units, merged per device code."""
    word_items: list[Item[Area, SlmpSignal]] = []
    bit_items: list[Item[Area, SlmpSignal]] = []
    for sig in config.signals:
        addr = sig.address
        if addr.spec.bit:
            bit_items.append(Item(Area(addr.spec.name, addr.spec.code, True), addr.number, 1, sig))
        else:
            width = 1 if sig.type == "bool" else registers.word_count(sig.type)
            area = Area(addr.spec.name, addr.spec.code, False)
            word_items.append(Item(area, addr.number, width, sig))
    blocks = plan_reads(word_items, max_len=config.max_read_words, max_gap=config.max_gap)
    blocks += plan_reads(bit_items, max_len=config.max_read_bits, max_gap=config.max_gap)
    return blocks


def decode_block(block: Block, data: bytes, t_ms: int) -> list[Reading]:
    """Readings of ``block`` from its normal response data (gateway time ``t_ms``).

    Raises:
        renkei.edge.sources.live.slmp.frames.FrameError: data of the wrong size.
    """
    out: list[Reading] = []
    if block.area.bit_units:
        bits = frames.decode_bits(data, block.count)
        for it in block.items:
            out.append(Reading(it.ref.name, t_ms, float(bits[block.offset(it)]), device_time=False))
        return out
    words = frames.decode_words(data)
    if len(words) != block.count:
        raise frames.FrameError(f"{len(words)} words for {block.count} points")
    for it in block.items:
        sig, off = it.ref, block.offset(it)
        if sig.type == "bool":  # a bit of a word device (config validation guarantees it)
            value = float((words[off] >> _bit_index(sig)) & 1)
        elif it.width == 1:  # int16/uint16 fast path (same result as registers.decode_words)
            w = words[off]
            if sig.byte_order == "little":
                w = ((w & 0xFF) << 8) | (w >> 8)
            value = float(w - 0x10000 if sig.type == "int16" and w & 0x8000 else w)
        else:
            value = registers.decode_words(
                words[off : off + it.width],
                sig.type,
                word_order=sig.word_order,
                byte_order=sig.byte_order,
            )
        if math.isfinite(value):
            out.append(Reading(sig.name, t_ms, value, device_time=False))
        else:
            out.append(Reading(sig.name, t_ms, math.nan, Quality.BAD, False, "non-finite float"))
    return out


@functools.lru_cache(maxsize=65_536)
def _bit_index(sig: SlmpSignal) -> int:
    bit = sig.address.bit_index
    return 0 if bit is None else bit


class _LinkLost(TransportError):
    """The connection must be dropped (message: why)."""


class SlmpDriver:
    """Polls one MELSEC CPU (module docstring). Counters for tests and benchmarks:
    ``polls``, ``requests``, ``overruns``."""

    def __init__(self, config: SlmpSourceConfig) -> None:
        self.config = config
        self.signals: Sequence[SignalMap] = list(config.signals)
        self.shots: ShotsConfig | None = config.shots
        self.describe = f"slmp {config.host}:{config.port}"
        self.route = frames.Route(config.network, config.pc, config.module_io, config.station)
        self.blocks = plan(config)
        self._frames = [
            frames.encode_batch_read(
                self.route,
                device_code=b.area.code,
                head=b.start,
                points=b.count,
                bit_units=b.area.bit_units,
                monitoring_timer=config.monitoring_timer,
            )
            for b in self.blocks
        ]
        self.polls = 0
        self.requests = 0
        self.overruns = 0
        self._timeouts = 0
        self._up = False
        self._backoff = Backoff(min_s=1, max_s=1)  # replaced per run

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, reconnecting with backoff (never raises for a
        device or network failure)."""
        cfg = self.config
        backoff = Backoff(min_s=cfg.link.reconnect_min_s, max_s=cfg.link.reconnect_max_s)
        while not stop.is_set():
            link: Link | None = None
            try:
                link = Link(cfg.host, cfg.port, timeout_s=cfg.link.timeout_s, stop=stop)
                self._timeouts = 0
                self._poll_loop(link, sink, stop, backoff)
            except Stopped:
                return
            except (OSError, _LinkLost) as exc:
                reason = str(exc) or type(exc).__name__
                level = logging.DEBUG if sink.down else logging.WARNING  # once per outage
                log.log(level, "%s: %s", self.describe, reason)
                sink.link_down(reason)
            finally:
                if link is not None:
                    link.close()
            if backoff.wait(stop):
                return

    def _poll_loop(
        self, link: Link, sink: LiveSink, stop: threading.Event, backoff: Backoff
    ) -> None:
        schedule = PollSchedule(self.config.poll_interval_ms / 1000.0)
        self._up = False
        self._backoff = backoff
        while schedule.wait(stop) is not None:
            self._poll(link, sink)
            overrun = schedule.finish()
            if overrun is None:
                continue
            self.overruns += 1
            if overrun.new_episode:
                sink.event(
                    "poll_overrun",
                    "warning",
                    f"{self.describe}: a poll took longer than "
                    f"poll_interval_ms={self.config.poll_interval_ms}",
                )

    def _poll(self, link: Link, sink: LiveSink) -> None:
        """Read every block once (the first valid answer on a connection is ``link_up``).

        Raises:
            _LinkLost, OSError: the connection must be made anew.
            Stopped: the stop event was set.
        """
        self.polls += 1
        t_ms = now_ms()
        readings: list[Reading] = []
        try:
            for i, (block, frame) in enumerate(zip(self.blocks, self._frames, strict=True)):
                max_len = frames.max_response_len(block.count, bit_units=block.area.bit_units)
                self.requests += 1
                try:
                    body = link.request(frame, self.route, max_len=max_len)
                    end_code, data = frames.split_body(
                        body, block.count, bit_units=block.area.bit_units
                    )
                    if not self._up:  # the PLC answers: the link is up
                        self._up = True
                        self._backoff.reset()
                        sink.link_up(self.describe)
                    if end_code:
                        name = END_CODES.get(end_code)
                        reason = f"end code 0x{end_code:04X}" + (f" ({name})" if name else "")
                        readings += bad_readings(_names([block]), reason, t_ms=t_ms)
                        continue
                    readings += decode_block(block, data, t_ms)
                except RequestTimeout:
                    readings += bad_readings(_names(self.blocks[i:]), "timeout", t_ms=t_ms)
                    self._timeouts += 1
                    if self._timeouts >= self.config.timeouts_before_reconnect:
                        raise _LinkLost(
                            f"no response to {self._timeouts} consecutive polls"
                        ) from None
                    return
                except frames.FrameError as exc:
                    readings += bad_readings(_names([block]), f"bad response: {exc}", t_ms=t_ms)
                    raise _LinkLost(f"bad response from the PLC: {exc}") from None
        finally:  # one hand-over per poll: its readings share one row
            if readings:
                sink.put(readings)
        self._timeouts = 0


def _names(blocks: Sequence[Block]) -> list[str]:
    return [it.ref.name for b in blocks for it in b.items]


def make_driver(config: SlmpSourceConfig) -> Driver:
    """The driver for ``config`` (no I/O until :meth:`SlmpDriver.run`).

    Raises:
        renkei.edge.sources.live.LiveSourceError: never for this protocol (no secrets); kept for
            the registry's contract.
    """
    return SlmpDriver(config)
