"""Driver of the ``mtconnect`` live source (see :mod:`renkei.edge.sources.live.base`).

Protocol (MTConnect Standard Part 1, "Fundamentals", REST API):

1. ``GET /probe`` (or ``/<device>/probe``): the device model; every signal is resolved to
   one DataItem (:func:`.mapping.resolve`), its ``units`` become the signal's device unit.
2. ``GET /current``: the latest value of every DataItem (initial readings, active
   conditions) and the Header's ``nextSequence``.
3. ``GET /sample?from=<nextSequence>&count=<count>``: in ``poll`` mode every
   ``interval_ms``; in ``stream`` mode once, with ``interval`` and ``heartbeat``, as a
   long-lived ``multipart/x-mixed-replace`` response, one MTConnectStreams document per part.

Continuity: each answer's Header is checked. ``firstSequence`` beyond the ``from`` asked
(or an ``OUT_OF_RANGE`` error: the agent's ring buffer wrapped while the gateway was away or
slow) gives one ``sequence_gap`` event naming how many observations were lost, then reading
continues at the oldest one still buffered. A new ``instanceId`` means the agent restarted:
an ``agent_restarted`` event, then probe and ``/current`` again. After a lost connection the
driver reports ``link_down``, waits with backoff and resumes from the last sequence read
(same ``instanceId``), so nothing still buffered is lost.

Observations become readings at their own timestamp (``device_time``); ``UNAVAILABLE`` is a
``BAD`` reading with reason ``UNAVAILABLE``. CONDITION changes become ``condition_warning``,
``condition_fault`` and (when an active one clears) ``condition_normal`` events.

Hostile agents: every document is size-bounded (``max_document_bytes``) and parsed without
DTDs or entities (:mod:`.parse`); every request has timeouts and a whole-answer deadline;
a stream silent for ``heartbeat_ms`` + ``link.timeout_s`` is cut and reopened.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

import httpx

from renkei.core.errors import RenkeiError
from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LiveSink, now_ms
from renkei.edge.sources.live.mtconnect.config import MtconnectSignal, MtconnectSourceConfig
from renkei.edge.sources.live.mtconnect.mapping import Decoder, MappingError, resolve
from renkei.edge.sources.live.mtconnect.multipart import MultipartError, PartReader, boundary_of
from renkei.edge.sources.live.mtconnect.parse import (
    AgentError,
    DeviceModel,
    DocumentError,
    Observation,
    Streams,
    parse_devices,
    parse_streams,
)
from renkei.edge.sources.live.mtconnect.transport import (
    Guard,
    TooLarge,
    make_client,
    open_stream,
    read_document,
)
from renkei.edge.sources.live.signals import ShotsConfig, SignalMap
from renkei.edge.sources.live.source import LiveSourceError

__all__ = ["MtconnectDriver", "make_driver"]

log = logging.getLogger(__name__)

#: A whole document (probe, current, one poll) must arrive within this many ``timeout_s``.
_DOCUMENT_TIMEOUTS: Final = 4.0


class _Restarted(RenkeiError):
    """The agent's instanceId changed mid-session: probe and resync."""


class _Closed(RenkeiError):
    """The agent ended a stream or the guard cut it."""


_LINK_ERRORS: Final = (
    httpx.HTTPError,
    OSError,
    DocumentError,
    MultipartError,
    AgentError,
    TooLarge,
    _Closed,
)


class MtconnectDriver:
    """Reads one MTConnect agent (module docstring).

    Args:
        config: the source config.
        ca: TLS context for an https agent with ``ca_file`` (else system CAs).
    """

    def __init__(self, config: MtconnectSourceConfig, *, ca: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._signals: list[MtconnectSignal] = list(config.signals)
        self.signals: Sequence[SignalMap] = self._signals
        self.shots: ShotsConfig | None = config.shots
        self.describe = f"mtconnect {config.url}" + (
            f" device {config.device}" if config.device else ""
        )
        self._ca = ca
        self._prefix = f"/{quote(config.device, safe='')}" if config.device else ""
        self._instance: str | None = None
        self._next: int | None = None
        self._decoder: Decoder | None = None
        self._agent_error = ""  # last agent_error event of this outage
        self._backoff: Backoff | None = None
        self.gaps = 0
        """``sequence_gap`` events reported."""
        self.lost = 0
        """Observations lost to buffer wrap-around, total."""

    # ----------------------------------------------------------------- run loop

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Read the agent until ``stop`` is set (see
        :class:`~renkei.edge.sources.live.base.Driver`).

        Raises:
            LiveSourceError: signals match no DataItem or several (names the candidates),
                or the agent has no such device.
        """
        link = self.config.link
        backoff = Backoff(min_s=link.reconnect_min_s, max_s=link.reconnect_max_s)
        guard = Guard(stop)
        # the guard's whole-part deadline (heartbeat + timeout) fires before httpx's read
        # timeout, so a silent stream is reported as such
        quiet_s = max(self.config.heartbeat_ms, self.config.interval_ms) / 1000
        read_s = link.timeout_s * 2 + quiet_s if self._streaming else link.timeout_s
        client = make_client(
            self.config.url, timeout_s=link.timeout_s, read_timeout_s=read_s, ca=self._ca
        )
        try:
            while not stop.is_set():
                try:
                    self._session(client, guard, sink, stop, backoff)
                except _Restarted:
                    # resync at once, but never spin on an agent that keeps changing instanceId
                    if stop.wait(min(link.reconnect_min_s, 1.0)):
                        return
                    continue
                except _LINK_ERRORS as exc:
                    if stop.is_set():
                        return
                    reason = self._reason(exc, guard)
                    log.info("%s: %s", self.describe, reason)
                    if isinstance(exc, AgentError) and reason != self._agent_error:
                        self._agent_error = reason
                        sink.event("agent_error", "warning", f"MTConnect {reason}")
                    sink.link_down(reason)
                    if backoff.wait(stop):
                        return
        finally:
            guard.close()
            client.close()

    @property
    def _streaming(self) -> bool:
        return self.config.mode == "stream"

    def _reason(self, exc: BaseException, guard: Guard) -> str:
        fired, guard.fired = guard.fired, None
        if fired is not None and fired != "stopping":
            return fired
        if isinstance(exc, AgentError):
            return f"agent error {exc}"
        if isinstance(exc, httpx.HTTPError) and not str(exc):
            return type(exc).__name__
        return str(exc)[:300] or type(exc).__name__

    def _session(
        self,
        client: httpx.Client,
        guard: Guard,
        sink: LiveSink,
        stop: threading.Event,
        backoff: Backoff,
    ) -> None:
        model = self._probe(client, guard)
        if self._decoder is None or model.instance_id != self._instance or self._next is None:
            if self._instance is not None and model.instance_id != self._instance:
                sink.event(
                    "agent_restarted",
                    "warning",
                    f"MTConnect agent restarted (instanceId {self._instance} -> "
                    f"{model.instance_id}): resynchronised from /current; observations made "
                    "between the last read and the restart are not available",
                )
            self._setup(model, sink)
            self._current(client, guard, sink)
        sink.link_up(f"{self.config.mode}, from sequence {self._next}")
        self._agent_error = ""
        self._backoff = backoff  # reset by the first sample answer accepted
        if self._streaming:
            self._stream(client, guard, sink, stop)
        else:
            self._poll(client, guard, sink, stop)

    # ----------------------------------------------------------------- requests

    def _document(
        self, client: httpx.Client, guard: Guard, name: str, params: dict[str, str | int]
    ) -> bytes:
        status, body = read_document(
            client,
            f"{self._prefix}/{name}",
            params,
            guard=guard,
            deadline_s=self.config.link.timeout_s * _DOCUMENT_TIMEOUTS,
            max_bytes=self.config.max_document_bytes,
        )
        if status != 200:
            _raise_status(status, body, name)
        return body

    def _probe(self, client: httpx.Client, guard: Guard) -> DeviceModel:
        try:
            model = parse_devices(self._document(client, guard, "probe", {}))
        except AgentError as exc:
            if "NO_DEVICE" in exc.codes:
                raise LiveSourceError(
                    f"{self.describe}: the agent has no device {self.config.device!r} ({exc})"
                ) from None
            raise
        dev = self.config.device
        if dev is not None:
            items = [i for i in model.data_items if dev in (i.device, i.device_uuid)]
            if not items:
                names = [f"{n} (uuid {u})" for n, u in model.devices]
                raise LiveSourceError(
                    f"{self.describe}: no device {dev!r} in /probe; devices: {names}"
                )
            model = DeviceModel(model.instance_id, model.devices, items)
        return model

    def _setup(self, model: DeviceModel, sink: LiveSink) -> None:
        try:
            mapping = resolve(self._signals, model.data_items)
        except MappingError as exc:
            raise LiveSourceError(f"{self.describe}: {exc}") from None
        for name, item in mapping.items():
            sig = next(s for s in self._signals if s.name == name)
            if item.units and item.category != "CONDITION" and not sig.states:
                sink.set_unit(name, item.units[:32])
        if self.config.conditions == "all":
            conds = [i for i in model.data_items if i.category == "CONDITION"]
        elif self.config.conditions == "mapped":
            conds = [i for i in mapping.values() if i.category == "CONDITION"]
        else:
            conds = []
        self._decoder = Decoder(mapping, self._signals, conds)
        self._instance = model.instance_id
        self._next = None  # until /current of this instance succeeded

    def _current(self, client: httpx.Client, guard: Guard, sink: LiveSink) -> None:
        doc = parse_streams(self._document(client, guard, "current", {}))
        self._instance = doc.header.instance_id
        assert self._decoder is not None
        self._decoder.reset()
        self._deliver(doc.observations, sink, initial=True)
        self._next = doc.header.next_sequence

    def _deliver(self, obs: list[Observation], sink: LiveSink, *, initial: bool = False) -> None:
        assert self._decoder is not None
        readings, events = self._decoder.decode(obs, initial=initial)
        if readings:
            sink.put(readings)
        skew_ms = self.config.max_clock_skew_s * 1000
        for ev in events:
            t = ev.t_ms if abs(ev.t_ms - now_ms()) <= skew_ms else None  # a wrong device clock
            sink.event(ev.code, ev.severity, ev.message, t_ms=t)

    # ----------------------------------------------------------------- continuity

    def _accept(self, doc: Streams, frm: int, sink: LiveSink) -> None:
        """Check a Streams answer to a request ``from=frm`` and deliver it."""
        h = doc.header
        if h.instance_id != self._instance:
            raise _Restarted(h.instance_id)
        if h.first_sequence > frm:
            self._gap(frm, h.first_sequence, h.buffer_size, sink)
        self._deliver([o for o in doc.observations if o.sequence >= frm], sink)
        self._next = max(frm, h.next_sequence)
        if self._backoff is not None:  # a working link: the next outage starts short again
            self._backoff.reset()
            self._backoff = None

    def _gap(self, frm: int, first: int, buffer_size: int, sink: LiveSink) -> None:
        lost = first - frm
        self.gaps += 1
        self.lost += lost
        sink.event(
            "sequence_gap",
            "warning",
            f"{lost} observation(s) lost: the agent's buffer (bufferSize {buffer_size}) "
            f"wrapped before they were read (next to read was sequence {frm}, the oldest "
            f"still buffered is {first})",
        )

    def _out_of_range(self, client: httpx.Client, guard: Guard, frm: int, sink: LiveSink) -> None:
        """``from`` fell out of the agent's buffer: report the gap, continue at its start."""
        doc = parse_streams(self._document(client, guard, "current", {}))
        h = doc.header
        if h.instance_id != self._instance:
            raise _Restarted(h.instance_id)
        if h.first_sequence > frm:
            self._gap(frm, h.first_sequence, h.buffer_size, sink)
            self._next = h.first_sequence
            return
        raise DocumentError(
            f"agent refused from={frm} as OUT_OF_RANGE although its buffer holds "
            f"{h.first_sequence}..{h.last_sequence}"
        )

    # ----------------------------------------------------------------- sample loops

    def _sample_params(self, frm: int) -> dict[str, str | int]:
        return {"from": frm, "count": self.config.count}

    def _poll(
        self, client: httpx.Client, guard: Guard, sink: LiveSink, stop: threading.Event
    ) -> None:
        interval_s = self.config.interval_ms / 1000
        while not stop.is_set():
            assert self._next is not None
            frm = self._next
            try:
                doc = parse_streams(
                    self._document(client, guard, "sample", self._sample_params(frm))
                )
            except AgentError as exc:
                if "OUT_OF_RANGE" not in exc.codes:
                    raise
                self._out_of_range(client, guard, frm, sink)
                continue
            self._accept(doc, frm, sink)
            if frm < self._next <= doc.header.last_sequence:
                continue  # more is buffered: read on at once
            if stop.wait(interval_s):
                return

    def _stream(
        self, client: httpx.Client, guard: Guard, sink: LiveSink, stop: threading.Event
    ) -> None:
        cfg = self.config
        # parts come at least every heartbeat (no data) or interval (data)
        silence_s = max(cfg.heartbeat_ms, cfg.interval_ms) / 1000 + cfg.link.timeout_s
        while not stop.is_set():
            assert self._next is not None
            params = self._sample_params(self._next)
            params.update(interval=cfg.interval_ms, heartbeat=cfg.heartbeat_ms)
            frm = self._next
            try:
                with open_stream(
                    client,
                    f"{self._prefix}/sample",
                    params,
                    guard=guard,
                    silence_s=silence_s,
                    max_bytes=cfg.max_document_bytes,
                ) as (resp, body):
                    if body is not None:
                        if resp.status_code != 200:
                            _raise_status(resp.status_code, body, "sample")
                        self._accept(parse_streams(body), frm, sink)
                        if stop.wait(cfg.interval_ms / 1000):
                            return
                        continue
                    boundary = boundary_of(resp.headers.get("content-type", ""))
                    reader = PartReader(boundary, max_part=cfg.max_document_bytes)
                    for chunk in resp.iter_bytes():
                        for part in reader.feed(chunk):
                            guard.extend(silence_s)
                            assert self._next is not None
                            self._accept(parse_streams(part), self._next, sink)
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    raise _Closed(guard.fired or "the agent ended the sample stream")
            except AgentError as exc:
                if "OUT_OF_RANGE" not in exc.codes:
                    raise
                self._out_of_range(client, guard, self._next, sink)


def _raise_status(status: int, body: bytes, what: str) -> None:
    """An HTTP error answer: the agent's MTConnectError if it sent one, else the status."""
    try:
        parse_streams(body)
    except AgentError:
        raise
    except DocumentError:
        pass
    raise DocumentError(f"/{what}: HTTP {status}")


def make_driver(config: MtconnectSourceConfig) -> Driver:
    """The driver for ``config``.

    Raises:
        renkei.edge.sources.live.LiveSourceError: ``ca_file`` cannot be read as a PEM CA bundle.
    """
    ca: ssl.SSLContext | None = None
    if config.ca_file is not None:
        try:
            ca = ssl.create_default_context(cafile=str(config.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise LiveSourceError(
                f"mtconnect {config.url}: cannot load ca_file {config.ca_file}: {exc}"
            ) from None
    return MtconnectDriver(config, ca=ca)
