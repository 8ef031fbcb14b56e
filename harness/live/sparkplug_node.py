"""A Sparkplug B Edge Node for tests: payloads by ``pysparkplug``, MQTT by paho (real broker).

It behaves like a plant's Edge Node (Sparkplug 3.0.0 §5.4, §5.6): the MQTT CONNECT carries
an NDEATH Will with ``bdSeq``; NBIRTH (``seq`` 0, ``bdSeq``, ``Node Control/Rebirth``, node
metrics with aliases) then one DBIRTH per device; DDATA/NDATA by alias with the next ``seq``
modulo 256. It subscribes to its NCMD topic and records every command; with
``auto_rebirth`` it answers ``Node Control/Rebirth`` by publishing its births again. After a
lost connection paho reconnects; the node then uses the next ``bdSeq`` and is born again.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pysparkplug as spb
from paho.mqtt.enums import CallbackAPIVersion

from harness.wait import wait_for
from renkei.edge.sources.live.base import now_ms

__all__ = ["EdgeNode", "MetricDef"]


@dataclass(frozen=True)
class MetricDef:
    """A metric of the node or of a device: name, alias, datatype and initial value."""

    name: str
    alias: int
    datatype: spb.DataType
    value: Any


class EdgeNode:
    """See the module docstring.

    Args:
        port: the broker's port on 127.0.0.1.
        group: Sparkplug group id.
        node_id: Edge Node id.
        node_metrics: metrics of the node itself (NBIRTH/NDATA).
        devices: device id -> its metrics (DBIRTH/DDATA).
        auto_rebirth: answer a rebirth NCMD with new births.
    """

    def __init__(
        self,
        *,
        port: int,
        group: str,
        node_id: str,
        node_metrics: list[MetricDef] | None = None,
        devices: dict[str, list[MetricDef]] | None = None,
        auto_rebirth: bool = True,
    ) -> None:
        self.port = port
        self.group = group
        self.node_id = node_id
        self.node_metrics = node_metrics or []
        self.devices = devices or {}
        self.auto_rebirth = auto_rebirth
        self.bd_seq = 0
        self.seq = 0
        self.commands: list[spb.NCmd] = []
        self.births = 0
        self._lock = threading.Lock()
        self._births_on_connect = True
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edge-{node_id}", protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._set_will()

    # ----------------------------------------------------------------- topics

    def topic(self, mtype: str, device: str | None = None) -> str:
        return f"spBv1.0/{self.group}/{mtype}/{self.node_id}" + (f"/{device}" if device else "")

    # ----------------------------------------------------------------- lifecycle

    def start(self, *, births: bool = True) -> EdgeNode:
        """Connect (with the NDEATH Will) and, if ``births``, publish the births."""
        self._births_on_connect = births
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        wait_for(lambda: self.client.is_connected() and self._subscribed, 10, "edge node up")
        return self

    def close(self) -> None:
        """Intentional disconnect: NDEATH first (§5.5), then DISCONNECT."""
        if self.client.is_connected():
            self.publish_ndeath()
        self.client.disconnect()
        self.client.loop_stop()

    def drop_connection(self) -> None:
        """Lose the TCP connection without DISCONNECT: the broker delivers the Will."""
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)

    def stop_loop(self) -> None:
        """Stop the network thread without any MQTT packet (for use after drop_connection)."""
        self.client.loop_stop()

    _subscribed = False

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            return
        client.subscribe(self.topic("NCMD"), qos=1)
        self._subscribed = True
        if self._births_on_connect:
            self.publish_births()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        # The next CONNECT is a new session: next bdSeq in its Will and NBIRTH (§4.2.1.1).
        self._subscribed = False
        self.bd_seq = (self.bd_seq + 1) % 256
        self._births_on_connect = True
        self._set_will()

    def _set_will(self) -> None:
        self.client.will_set(self.topic("NDEATH"), self._ndeath_payload(self.bd_seq), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        cmd = spb.NCmd.decode(bytes(msg.payload))
        with self._lock:
            self.commands.append(cmd)
        rebirth = any(m.name == "Node Control/Rebirth" and m.value is True for m in cmd.metrics)
        if rebirth and self.auto_rebirth:
            self.publish_births()

    # ----------------------------------------------------------------- publishing

    def _next_seq(self) -> int:
        with self._lock:
            seq = self.seq
            self.seq = (self.seq + 1) % 256
            return seq

    def skip_seq(self, n: int = 1) -> None:
        """Lose ``n`` sequence numbers (as if messages were lost on the way)."""
        with self._lock:
            self.seq = (self.seq + n) % 256

    @staticmethod
    def _ndeath_payload(bd_seq: int) -> bytes:
        bd = spb.Metric(timestamp=None, name="bdSeq", datatype=spb.DataType.UINT64, value=bd_seq)
        return spb.NDeath(timestamp=now_ms(), bd_seq_metric=bd).encode(include_dtypes=True)

    def publish_births(self) -> None:
        """NBIRTH (seq 0, bdSeq, Node Control/Rebirth, node metrics) and every DBIRTH."""
        t = now_ms()
        with self._lock:
            self.seq = 0
        metrics = [
            spb.Metric(timestamp=t, name="bdSeq", datatype=spb.DataType.UINT64, value=self.bd_seq),
            spb.Metric(
                timestamp=t,
                name="Node Control/Rebirth",
                datatype=spb.DataType.BOOLEAN,
                value=False,
            ),
            *(
                spb.Metric(
                    timestamp=t, name=m.name, datatype=m.datatype, value=m.value, alias=m.alias
                )
                for m in self.node_metrics
            ),
        ]
        nbirth = spb.NBirth(timestamp=t, seq=self._next_seq(), metrics=tuple(metrics))
        self.client.publish(self.topic("NBIRTH"), nbirth.encode(include_dtypes=True), qos=0)
        for device, defs in self.devices.items():
            dbirth = spb.DBirth(
                timestamp=t,
                seq=self._next_seq(),
                metrics=tuple(
                    spb.Metric(
                        timestamp=t, name=m.name, datatype=m.datatype, value=m.value, alias=m.alias
                    )
                    for m in defs
                ),
            )
            self.client.publish(
                self.topic("DBIRTH", device), dbirth.encode(include_dtypes=True), qos=0
            )
        self.births += 1

    def _defs(self, device: str | None) -> dict[str, MetricDef]:
        defs = self.node_metrics if device is None else self.devices[device]
        return {m.name: m for m in defs}

    def publish_data(
        self,
        values: dict[str, Any],
        *,
        device: str | None = None,
        t_ms: int | None = None,
        metric_time: bool = True,
        null: tuple[str, ...] = (),
    ) -> int:
        """NDATA (``device`` None) or DDATA by alias, datatypes omitted (as in the field).
        Metric timestamps ``t_ms`` (default now) unless ``metric_time`` is False (then only
        the payload has it). Returns the seq used."""
        t = now_ms() if t_ms is None else t_ms
        defs = self._defs(device)
        metrics = []
        for name, value in values.items():
            d = defs[name]
            metrics.append(
                spb.Metric(
                    timestamp=t if metric_time else None,
                    name=None,
                    alias=d.alias,
                    datatype=d.datatype,
                    value=None if name in null else value,
                    is_null=name in null,
                )
            )
        seq = self._next_seq()
        payload_cls = spb.NData if device is None else spb.DData
        payload = payload_cls(timestamp=t, seq=seq, metrics=tuple(metrics))
        mtype = "NDATA" if device is None else "DDATA"
        self.client.publish(self.topic(mtype, device), payload.encode(), qos=0)
        return seq

    def publish_ddeath(self, device: str) -> None:
        payload = spb.DDeath(timestamp=now_ms(), seq=self._next_seq())
        self.client.publish(self.topic("DDEATH", device), payload.encode(), qos=0)

    def publish_ndeath(self, bd_seq: int | None = None) -> None:
        """An NDEATH with ``bd_seq`` (default: the current session's)."""
        bd = self.bd_seq if bd_seq is None else bd_seq
        self.client.publish(self.topic("NDEATH"), self._ndeath_payload(bd), qos=1).wait_for_publish(
            5
        )

    def publish_raw(self, mtype: str, payload: bytes, device: str | None = None) -> None:
        """Anything on one of the node's topics (garbage, for robustness tests)."""
        self.client.publish(self.topic(mtype, device), payload, qos=0)
