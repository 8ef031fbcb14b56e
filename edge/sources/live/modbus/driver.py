"""Driver of the ``modbus`` live source (see :mod:`renkei.edge.sources.live.base`): pymodbus's
synchronous TCP/RTU client on the driver thread.

One connection per source: every read of every unit id goes over it, one request at a time
(Modbus TCP devices and serial gateways often accept a single connection; an RS-485 line
allows one master). It is opened once and kept; it is closed before a new one is opened, so
there are never two.

A poll runs the planned reads (:mod:`.plan`) on a monotonic schedule: poll *k* is due at
``t0 + k · poll_interval_ms``, independent of how long the reads took. A poll that ends
after the next one was due is an *overrun*: the missed slots are skipped and counted, and
one ``poll_overrun`` event is reported per episode (until a poll fits its slot again).

Each response is handed over undecoded as a :class:`~renkei.edge.sources.live.base.RawBlock`
(one :meth:`~renkei.edge.sources.live.base.LiveSink.put_blocks` per poll); the main thread decodes
it into a columnar :class:`~renkei.edge.sources.live.base.ReadingBlock`
(:meth:`.plan.BlockDecoder.columns`), so a driver thread holds the GIL only briefly per
response.

All readings of one poll carry one gateway time, that of the poll's first response (Modbus
has no timestamps, so ``device_time=False``): a poll is one scan and makes one row, not one
sparse row per read request.

Per-block quality:

- exception response (V1.1b3 §7): the block's signals ``BAD``, reason
  ``modbus exception N (name)``; the device answered, so the link is fine;
- no (valid) response within ``link.timeout_s`` (also garbage, a wrong transaction id or
  unit id): ``BAD`` ``timeout``/``invalid response``; after ``timeouts_before_reconnect``
  such requests in a row the connection is reopened (``link_down``, backoff);
- a short response, a non-finite float: that signal ``BAD`` (see :func:`.plan.decode_block`);
- connection lost or refused: ``link_down`` once per outage, reconnect with
  :class:`~renkei.edge.sources.live.backoff.Backoff`; ``link_up`` at the first response after a
  (re)connect.

Stop: ``run`` returns within about the time of the request in flight; on TCP a helper
thread shuts the socket down as soon as ``stop`` is set, so a silent device does not hold
the gateway for ``timeout_s``. On RTU the serial port is closed likewise.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from renkei.core.errors import TransportError
from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LiveSink, RawBlock, ReadingBlock, now_ms
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.modbus.plan import Block, BlockDecoder, exception_reason, plan
from renkei.edge.sources.live.schedule import PollSchedule
from renkei.edge.sources.live.signals import ShotsConfig, SignalMap

if TYPE_CHECKING:
    from pymodbus.client import ModbusBaseSyncClient

__all__ = ["JitterRing", "ModbusDriver", "PollStats", "make_driver"]

log = logging.getLogger(__name__)

#: Jitter samples kept (a preallocated ring: constant memory; the bench reads them).
_JITTER_SAMPLES: Final = 4096


class JitterRing:
    """The last ``size`` poll start delays, ms, in preallocated storage (no growth)."""

    def __init__(self, size: int = _JITTER_SAMPLES) -> None:
        self._buf = array("d", bytes(8 * size))
        self._n = 0

    def append(self, ms: float) -> None:
        """Record one delay."""
        self._buf[self._n % len(self._buf)] = ms
        self._n += 1

    def clear(self) -> None:
        """Forget all samples."""
        self._n = 0

    def values(self) -> list[float]:
        """The samples kept (oldest order not preserved)."""
        return list(self._buf[: min(self._n, len(self._buf))])


Outcome = Literal["ok", "exception", "timeout", "invalid"]


class _LinkLost(TransportError):
    """The connection failed (closed by the peer, reset, refused)."""


@dataclass(slots=True)
class PollStats:
    """Counters of a :class:`ModbusDriver` since it was made (read by tests and bench)."""

    polls: int = 0
    """Polls run."""
    requests: int = 0
    """Read requests sent."""
    overruns: int = 0
    """Polls that ended after the next poll was due."""
    skipped: int = 0
    """Poll slots skipped because of overruns."""
    overrun_episodes: int = 0
    """``poll_overrun`` events reported."""
    timeouts: int = 0
    invalid: int = 0
    exceptions: int = 0
    connects: int = 0
    """Connections opened."""
    jitter_ms: JitterRing = field(default_factory=JitterRing)
    """Start delay of each poll behind its scheduled time, ms (the most recent ones)."""


class ModbusDriver:
    """Polls one Modbus TCP device/gateway or RTU line (module docstring).

    Args:
        config: the source's config.

    Attributes:
        blocks: the planned read requests of one poll.
        stats: :class:`PollStats`.
    """

    def __init__(self, config: ModbusSourceConfig) -> None:
        self.config = config
        self.signals: Sequence[SignalMap] = list(config.signals)
        self.shots: ShotsConfig | None = config.shots
        self.describe = f"modbus {config.endpoint} unit {config.unit_id}"
        self.blocks: list[Block] = plan(config)
        names = tuple(s.name for s in self.signals)
        self._decoders = [BlockDecoder(b, names) for b in self.blocks]
        self.stats = PollStats()
        self._client: ModbusBaseSyncClient | None = None
        self._watched: set[int] = set()

    # ----------------------------------------------------------------- connection

    def _make_client(self) -> ModbusBaseSyncClient:
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        from pymodbus.framer import FramerType

        cfg = self.config
        client: ModbusBaseSyncClient
        if cfg.transport == "tcp":
            assert cfg.host is not None
            client = ModbusTcpClient(cfg.host, port=cfg.port, timeout=cfg.link.timeout_s, retries=0)
        else:
            assert cfg.serial_port is not None
            client = ModbusSerialClient(
                cfg.serial_port,
                framer=FramerType.RTU,
                baudrate=cfg.baudrate,
                bytesize=cfg.bytesize,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                timeout=cfg.link.timeout_s,
                retries=0,
            )
        # We count silent requests and reconnect ourselves (timeouts_before_reconnect).
        client.set_max_no_responses(1 << 30)
        return client

    def _watch(self, stop: threading.Event) -> None:
        """Abort the request in flight as soon as ``stop`` is set (one helper per event)."""
        if id(stop) in self._watched:
            return
        self._watched.add(id(stop))

        def abort() -> None:
            stop.wait()
            client = self._client
            port: Any = getattr(client, "socket", None)
            try:
                if isinstance(port, socket.socket):
                    port.shutdown(socket.SHUT_RDWR)
                elif port is not None:
                    port.close()  # pyserial: the polling read fails at once
            except (OSError, AttributeError):
                pass

        threading.Thread(target=abort, name="modbus-stop", daemon=True).start()

    # ----------------------------------------------------------------- Driver API

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, reconnecting by itself (never raises for I/O)."""
        self._watch(stop)
        link = self.config.link
        backoff = Backoff(min_s=link.reconnect_min_s, max_s=link.reconnect_max_s)
        client = self._make_client()
        self._client = client
        try:
            while not stop.is_set():
                reason = self._session(client, sink, stop, backoff)
                client.close()  # type: ignore[no-untyped-call]
                if stop.is_set() or reason is None:
                    return
                sink.link_down(reason)
                if backoff.wait(stop):
                    return
        finally:
            client.close()  # type: ignore[no-untyped-call]
            self._client = None

    def _session(
        self,
        client: ModbusBaseSyncClient,
        sink: LiveSink,
        stop: threading.Event,
        backoff: Backoff,
    ) -> str | None:
        """One connection: poll until it fails (returns why) or ``stop`` (returns None)."""
        if not client.connect():
            return f"cannot connect to {self.config.endpoint}"
        if stop.is_set():
            return None
        self.stats.connects += 1
        schedule = PollSchedule(self.config.poll_interval_ms / 1000.0)
        failures = 0  # requests in a row without a valid response
        answered = False
        while True:
            late_s = schedule.wait(stop)
            if late_s is None:
                return None
            started = time.monotonic()
            self.stats.jitter_ms.append(late_s * 1000.0)
            self.stats.polls += 1
            readings: list[ReadingBlock | RawBlock] = []
            t: int | None = None  # the poll's time: its first response
            for block, decoder in zip(self.blocks, self._decoders, strict=True):
                if stop.is_set():
                    sink.put_blocks(readings)
                    return None
                try:
                    outcome, payload = self._read(client, block)
                except _LinkLost as exc:
                    sink.put_blocks(readings)
                    return f"connection lost: {exc}"
                if t is None:
                    t = now_ms()
                if outcome in ("ok", "exception"):
                    failures = 0
                    if not answered:
                        answered = True
                        backoff.reset()
                        sink.link_up(self.config.endpoint)
                else:
                    failures += 1
                if outcome == "ok":  # decoded on the main thread (base.RawBlock)
                    readings.append(RawBlock(decoder.columns, payload, t, len(decoder.index)))
                else:
                    reason = exception_reason(payload) if outcome == "exception" else payload
                    readings.append(decoder.bad(reason, t))
                if failures >= self.config.timeouts_before_reconnect:
                    sink.put_blocks(readings)
                    return f"no valid response to {failures} requests in a row ({payload})"
            sink.put_blocks(readings)
            overrun = schedule.finish()
            if overrun is None:
                continue
            self.stats.overruns += 1
            self.stats.skipped += overrun.missed
            if overrun.new_episode:
                self.stats.overrun_episodes += 1
                sink.event(
                    "poll_overrun",
                    "warning",
                    f"a poll of {len(self.blocks)} reads took "
                    f"{(time.monotonic() - started) * 1000:.0f} ms, more than poll_interval_ms="
                    f"{self.config.poll_interval_ms}; skipping missed polls",
                )

    def _read(self, client: ModbusBaseSyncClient, block: Block) -> tuple[Outcome, Any]:
        """Send one read request; the outcome and its registers/bits, exception code or
        failure reason.

        Raises:
            _LinkLost: the connection is gone.
        """
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        read: Callable[..., Any] = {
            "coil": client.read_coils,
            "discrete_input": client.read_discrete_inputs,
            "holding_register": client.read_holding_registers,
            "input_register": client.read_input_registers,
        }[block.area.table]
        self.stats.requests += 1
        try:
            resp = read(block.start, count=block.count, device_id=block.area.unit_id)
        except ConnectionException as exc:
            raise _LinkLost(_short(exc)) from None
        except ModbusIOException as exc:
            if "No response" in str(exc):
                self.stats.timeouts += 1
                return "timeout", "timeout"
            self.stats.invalid += 1
            return "invalid", f"invalid response ({_short(exc)})"
        except OSError as exc:
            raise _LinkLost(_short(exc)) from None
        except Exception as exc:  # a hostile frame must not stop the poll
            self.stats.invalid += 1
            return "invalid", f"invalid response ({type(exc).__name__})"
        try:
            if resp.isError():
                self.stats.exceptions += 1
                return "exception", int(getattr(resp, "exception_code", 0) or 0)
            values = resp.bits if block.area.bits else resp.registers
            return "ok", list(values)
        except Exception as exc:  # wrong response type
            self.stats.invalid += 1
            return "invalid", f"invalid response ({type(exc).__name__})"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def make_driver(config: ModbusSourceConfig) -> Driver:
    """The driver for ``config`` (the read plan is made here, once).

    Raises:
        renkei.edge.sources.live.LiveSourceError: never for a valid config (kept for the protocol).
    """
    # pymodbus logs every timeout and refused connect at ERROR; the driver reports them
    # itself (events, quality rows), so keep its log for real trouble only.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return ModbusDriver(config)
