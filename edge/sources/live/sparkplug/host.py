"""Sparkplug Host Application state: births, aliases, ``seq`` order, deaths (no I/O).

:class:`SparkplugHost` keeps, for each configured Edge Node, what Sparkplug 3.0.0 asks a
Host Application to track, and turns messages into :class:`~renkei.edge.sources.live.Reading`
objects and events on a :class:`~renkei.edge.sources.live.LiveSink`:

- NBIRTH (§4.2.1.1, §6.4.19): starts the Edge Node's session: its ``bdSeq``, ``seq`` = 0,
  the alias table and datatypes of its metrics; forgets its devices (their DBIRTHs follow).
- DBIRTH (§4.2.2.1, §6.4.20): a Device's alias table and datatypes.
- NDATA/DDATA (§6.4.21, §6.4.22): metrics by name or alias; the metric timestamp, else the
  payload timestamp (device time); ``is_null`` → ``BAD``. Datatypes come from the BIRTH
  when DATA omits them (§6.4.6).
- ``seq`` (§5.9 Message Ordering): every NBIRTH/DBIRTH/NDATA/DDATA/DDEATH carries the next
  ``seq`` modulo 256. A gap starts the Reorder Timeout; if the missing messages have not
  arrived when it elapses, a ``Node Control/Rebirth`` NCMD is requested (§5.15, §5.17). So
  is DATA that cannot be understood: DATA/DBIRTH before the NBIRTH, DDATA before its
  DBIRTH, an alias not in the BIRTH (§5.15). At most one rebirth request per Edge Node per
  ``rebirth_min_interval_s`` (and at most one ``sequence_gap`` event).
- NDEATH (§5.5, §6.4.25): if its ``bdSeq`` matches the NBIRTH's, every metric of the Edge
  Node and of its Devices is STALE: their signals get ``BAD`` readings at the gateway's
  time (reason ``stale (NDEATH)``). An NDEATH with another ``bdSeq`` is a late Will of an
  older MQTT session and is ignored.
- DDEATH (§5.7, §6.4.26): the Device's signals become ``BAD`` (``stale (DDEATH)``).

Memory is bounded by the config: state is kept only for configured Edge Nodes and
Devices; alias tables by the payload size limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from renkei.edge.sources.live.base import LiveSink, Quality, Reading, now_ms
from renkei.edge.sources.live.sparkplug.codec import (
    BD_SEQ_METRIC,
    MalformedPayload,
    SpbMetric,
    SpbPayload,
    decode_payload,
    metric_value,
    type_name,
)
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.sources.live.sparkplug.topic import SpbTopic, parse_topic

__all__ = ["SparkplugHost"]

#: Seconds between two ``malformed_payload`` events (each names the running count).
MALFORMED_EVENT_INTERVAL_S: Final = 60.0


@dataclass(slots=True)
class _Metrics:
    """Alias table and datatypes of one BIRTH (of an Edge Node or a Device)."""

    aliases: dict[int, str] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Node:
    """State of one Edge Node."""

    born: bool = False
    bd_seq: int | None = None
    expected_seq: int | None = None
    missing: set[int] = field(default_factory=set)
    gap_deadline: float | None = None
    metrics: _Metrics = field(default_factory=_Metrics)
    devices: dict[str, _Metrics] = field(default_factory=dict)
    rebirth_reason: str | None = None
    last_rebirth: float | None = None
    last_gap_event: float | None = None
    rebirths: int = 0


class SparkplugHost:
    """The Host Application state of one ``sparkplug`` source (module docstring).

    Args:
        config: the source config (group, signals, rebirth and reorder settings).
        sink: where readings and events go.
        send_rebirth: publishes the rebirth NCMD to an Edge Node; returns False if it could
            not be sent now (it is retried at the next :meth:`tick`).
        monotonic: clock for timeouts, s (tests pin it).
        clock: wall clock, UTC epoch ms.
    """

    def __init__(
        self,
        config: SparkplugSourceConfig,
        sink: LiveSink,
        send_rebirth: Callable[[str], bool],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.config = config
        self._sink = sink
        self._send = send_rebirth
        self._mono = monotonic
        self._clock = clock
        # (edge node, device or None, metric name) -> signal name
        self._signal: dict[tuple[str, str | None, str], str] = {}
        self._by_node: dict[str, list[str]] = {}
        self._by_device: dict[tuple[str, str], list[str]] = {}
        for s in config.signals:
            node = config.node_of(s)
            self._signal[(node, s.device, s.metric)] = s.name
            self._by_node.setdefault(node, []).append(s.name)
            if s.device is not None:
                self._by_device.setdefault((node, s.device), []).append(s.name)
        self._devices = {key[1] for key in self._by_device}
        self.nodes: dict[str, _Node] = {n: _Node() for n in config.edge_nodes}
        self._unsupported: set[str] = set()
        self.malformed = 0
        """Payloads that could not be decoded (or were too large)."""
        self._malformed_event_at: float | None = None

    # ----------------------------------------------------------------- messages

    def on_message(self, topic: str, payload: bytes) -> None:
        """Handle one MQTT message of the subscriptions (never raises for bad input)."""
        t = parse_topic(topic)
        if t is None or t.group != self.config.group_id:
            return
        node = self.nodes.get(t.edge_node)
        if node is None:
            return
        if len(payload) > self.config.max_payload_bytes:
            self._malformed(t, f"{len(payload)} bytes > max_payload_bytes")
            return
        try:
            p = decode_payload(payload)
        except MalformedPayload as exc:
            self._malformed(t, str(exc))
            return
        mtype = t.message_type
        if mtype == "NDEATH":
            self._ndeath(t, node, p)
        elif mtype == "NBIRTH":
            self._nbirth(t, node, p)
        else:
            if not node.born:
                self._want_rebirth(t.edge_node, node, f"{mtype} before the NBIRTH")
            self._check_seq(t, node, p)
            if mtype == "DBIRTH":
                self._dbirth(t, node, p)
            elif mtype == "DDEATH":
                self._ddeath(t, node)
            elif mtype in ("NDATA", "DDATA"):
                self._data(t, node, p)
        self._due(t.edge_node, node)

    def _nbirth(self, t: SpbTopic, node: _Node, p: SpbPayload) -> None:
        bd_seq = _bd_seq(p)
        node.born = True
        node.bd_seq = bd_seq
        node.expected_seq = ((p.seq or 0) + 1) % 256
        node.missing.clear()
        node.gap_deadline = None
        node.rebirth_reason = None
        node.metrics = _birth_metrics(p)
        node.devices.clear()
        self._sink.event(
            "node_birth",
            "info",
            f"edge node {t.group}/{t.edge_node} born (bdSeq {bd_seq}, {len(p.metrics)} metrics)",
        )
        self._readings(t, node.metrics, p)

    def _dbirth(self, t: SpbTopic, node: _Node, p: SpbPayload) -> None:
        assert t.device is not None
        if t.device not in self._devices:
            return
        metrics = node.devices[t.device] = _birth_metrics(p)
        self._readings(t, metrics, p)

    def _data(self, t: SpbTopic, node: _Node, p: SpbPayload) -> None:
        if t.device is None:
            metrics = node.metrics
        else:
            if t.device not in self._devices:
                return
            found = node.devices.get(t.device)
            if found is None:
                self._want_rebirth(t.edge_node, node, f"DDATA of {t.device} before its DBIRTH")
                return
            metrics = found
        self._readings(t, metrics, p)

    def _ndeath(self, t: SpbTopic, node: _Node, p: SpbPayload) -> None:
        bd_seq = _bd_seq(p)
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            self._sink.event(
                "ndeath_ignored",
                "info",
                f"edge node {t.edge_node}: NDEATH with bdSeq {bd_seq} ignored (current "
                f"session bdSeq {node.bd_seq}: a late Will of an older MQTT session)",
            )
            return
        node.born = False
        node.expected_seq = None
        node.missing.clear()
        node.gap_deadline = None
        node.rebirth_reason = None
        node.devices.clear()
        stale = self._by_node.get(t.edge_node, [])
        self._sink.put_bad(stale, "stale (NDEATH)", t_ms=self._clock())
        self._sink.event(
            "node_death",
            "warning",
            f"edge node {t.group}/{t.edge_node} offline (NDEATH bdSeq {bd_seq}): "
            f"{len(stale)} signal(s) stale",
        )

    def _ddeath(self, t: SpbTopic, node: _Node) -> None:
        assert t.device is not None
        node.devices.pop(t.device, None)
        stale = self._by_device.get((t.edge_node, t.device), [])
        if not stale:
            return
        self._sink.put_bad(stale, "stale (DDEATH)", t_ms=self._clock())
        self._sink.event(
            "device_death",
            "warning",
            f"device {t.edge_node}/{t.device} offline (DDEATH): {len(stale)} signal(s) stale",
        )

    def _readings(self, t: SpbTopic, metrics: _Metrics, p: SpbPayload) -> None:
        out: list[Reading] = []
        node = self.nodes[t.edge_node]
        for m in p.metrics:
            name = m.name
            if name is None:
                if m.alias is None:
                    continue
                name = metrics.aliases.get(m.alias)
                if name is None:
                    self._want_rebirth(
                        t.edge_node, node, f"alias {m.alias} not in the BIRTH ({_where(t)})"
                    )
                    continue
            signal = self._signal.get((t.edge_node, t.device, name))
            if signal is None:
                continue
            reading = self._reading(signal, m, metrics.types.get(name, 0), p.timestamp)
            if reading is not None:
                out.append(reading)
        if out:
            self._sink.put(out)

    def _reading(
        self, signal: str, m: SpbMetric, birth_type: int, payload_ts: int | None
    ) -> Reading | None:
        ts = m.timestamp if m.timestamp is not None else payload_ts
        device_time = ts is not None
        t_ms = ts if ts is not None else self._clock()
        datatype = m.datatype or birth_type
        if m.is_null:
            return Reading(signal, t_ms, float("nan"), Quality.BAD, device_time, "is_null")
        value = metric_value(datatype, m.raw)
        if value is None:
            if m.raw is None or signal in self._unsupported:
                return None
            self._unsupported.add(signal)
            what = type_name(datatype)
            self._sink.event(
                "unsupported_metric",
                "warning",
                f"signal {signal!r}: the metric's Sparkplug datatype is {what}; only "
                "numeric and Boolean metrics are read",
            )
            return Reading(
                signal, t_ms, float("nan"), Quality.BAD, device_time, f"unsupported {what}"
            )
        return Reading(signal, t_ms, value, Quality.GOOD, device_time)

    # ----------------------------------------------------------------- seq and rebirth

    def _check_seq(self, t: SpbTopic, node: _Node, p: SpbPayload) -> None:
        seq = p.seq
        if seq is None:
            return
        expected = node.expected_seq
        if expected is None:
            node.expected_seq = (seq + 1) % 256
            return
        if seq == expected:
            node.expected_seq = (seq + 1) % 256
        elif seq in node.missing:
            node.missing.discard(seq)
        else:
            n = (seq - expected) % 256
            node.missing.update((expected + i) % 256 for i in range(n))
            node.expected_seq = (seq + 1) % 256
            now = self._mono()
            if node.gap_deadline is None:
                node.gap_deadline = now + self.config.reorder_timeout_s
            last = node.last_gap_event
            if last is None or now - last >= self.config.rebirth_min_interval_s:
                node.last_gap_event = now
                self._sink.event(
                    "sequence_gap",
                    "warning",
                    f"edge node {t.edge_node}: seq {seq} where {expected} was expected "
                    f"({n} message(s) missing)",
                )
        if not node.missing:
            node.gap_deadline = None

    def _want_rebirth(self, edge_node: str, node: _Node, reason: str) -> None:
        if node.rebirth_reason is None:
            node.rebirth_reason = reason

    def _due(self, edge_node: str, node: _Node) -> None:
        now = self._mono()
        if node.gap_deadline is not None and now >= node.gap_deadline:
            node.gap_deadline = None
            lost = len(node.missing)
            node.missing.clear()
            self._want_rebirth(edge_node, node, f"{lost} message(s) missing after the seq gap")
        if node.rebirth_reason is None:
            return
        if not self.config.rebirth:
            self._sink.event(
                "rebirth_needed",
                "warning",
                f"edge node {edge_node}: {node.rebirth_reason}; rebirth requests are off",
            )
            node.rebirth_reason = None
            return
        interval = self.config.rebirth_min_interval_s
        if node.last_rebirth is not None and now - node.last_rebirth < interval:
            return
        if not self._send(edge_node):
            return
        node.last_rebirth = now
        node.rebirths += 1
        self._sink.event(
            "rebirth_requested",
            "warning",
            f"asked edge node {self.config.group_id}/{edge_node} for a rebirth "
            f"(Node Control/Rebirth): {node.rebirth_reason}",
        )
        node.rebirth_reason = None

    def tick(self) -> None:
        """Expire Reorder Timeouts and send rebirth requests that were held back."""
        for edge_node, node in self.nodes.items():
            self._due(edge_node, node)

    def on_connected(self, *, again: bool) -> None:
        """The MQTT session (re)started and the subscriptions are in place. After a
        reconnect, messages may have been lost: ``seq`` tracking restarts and every Edge Node
        that was online is asked for a rebirth."""
        if not again:
            return
        for edge_node, node in self.nodes.items():
            node.expected_seq = None
            node.missing.clear()
            node.gap_deadline = None
            if node.born:
                self._want_rebirth(
                    edge_node, node, "reconnected to the MQTT server: messages may be lost"
                )
            self._due(edge_node, node)

    def _malformed(self, t: SpbTopic, why: str) -> None:
        self.malformed += 1
        now = self._mono()
        last = self._malformed_event_at
        if last is not None and now - last < MALFORMED_EVENT_INTERVAL_S:
            return
        self._malformed_event_at = now
        self._sink.event(
            "malformed_payload",
            "warning",
            f"{t.message_type} of {_where(t)} dropped: {why} ({self.malformed} so far)",
        )


def _bd_seq(p: SpbPayload) -> int | None:
    for m in p.metrics:
        if m.name == BD_SEQ_METRIC and isinstance(m.raw, int):
            return int(m.raw)
    return None


def _birth_metrics(p: SpbPayload) -> _Metrics:
    out = _Metrics()
    for m in p.metrics:
        if m.name is None:
            continue
        if m.alias is not None:
            out.aliases[m.alias] = m.name
        out.types[m.name] = m.datatype
    return out


def _where(t: SpbTopic) -> str:
    return t.edge_node + (f"/{t.device}" if t.device else "")
