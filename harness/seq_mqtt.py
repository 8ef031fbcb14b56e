"""MQTT clients that count messages by per-client sequence number (tests, benchmarks).

:class:`SeqGateways`: gateways as plain paho MQTT 5 clients publishing QoS 1 messages
``{"v": 1, "gw", "seq"}`` numbered per gateway, recording every disconnect, failed PUBACK
and publish error; :class:`SeqCounter`: a persistent-session subscriber recording every
message and the ``(gateway, seq)`` it carries; :func:`tally`: sent vs received, lost,
duplicates.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.wait import wait_for

__all__ = ["SeqCounter", "SeqGateways", "seq_topic", "tally"]

FIRM, SITE = "acme", "osaka"


def seq_topic(gateway: int) -> str:
    return f"renkei/v1/{FIRM}/{SITE}/molding/line-1/imm-{gateway}/telemetry"


class SeqGateways:
    """``count`` gateways (paho, MQTT 5) on the site broker, publishing QoS 1 seq messages."""

    def __init__(
        self,
        *,
        port: int,
        count: int,
        prefix: str = "gw",
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.names = [f"{prefix}-{i}" for i in range(count)]
        self.sent: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.failed_acks: list[str] = []
        self.disconnects: list[str] = []
        self.publish_errors: list[str] = []
        self.received: list[tuple[str, str, bytes]] = []
        """``(gateway, topic, payload)`` of every message a gateway received."""
        self._lock = threading.Lock()
        self._clients: list[mqtt.Client] = []
        for name in self.names:
            c = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=name,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
            if passwords is not None:
                c.username_pw_set(name, passwords[name])
            c.max_inflight_messages_set(1000)
            c.max_queued_messages_set(0)
            c.on_disconnect = self._on_disconnect(name)
            c.on_publish = self._on_publish(name)
            c.on_message = self._on_message(name)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            c.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
            c.loop_start()
            self._clients.append(c)
        wait_for(lambda: all(c.is_connected() for c in self._clients), 10, "gateways connect")

    def _on_disconnect(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            with self._lock:
                self.disconnects.append(f"{name} at {time.monotonic():.1f}: {reason}")

        return cb

    def _on_publish(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            with self._lock:
                if reason.is_failure:
                    self.failed_acks.append(f"{name} mid {mid}: {reason}")
                self.acked[name] += 1

        return cb

    def _on_message(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.received.append((name, msg.topic, bytes(msg.payload)))

        return cb

    def client(self, name: str) -> mqtt.Client:
        """The paho client of gateway ``name`` (to subscribe or publish something else)."""
        return self._clients[self.names.index(name)]

    def publish_round(self) -> None:
        """One QoS 1 message from every gateway, payload ``{"gw", "seq"}``."""
        for i, (name, c) in enumerate(zip(self.names, self._clients, strict=True)):
            seq = self.sent[name]
            payload = orjson.dumps({"v": 1, "gw": name, "seq": seq, "pad": "x" * 200})
            info = c.publish(seq_topic(i), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # Not connected: paho keeps the message and sends it after reconnecting;
                # the disconnect itself is in self.disconnects.
                self.publish_errors.append(f"{name} seq {seq}: {mqtt.error_string(info.rc)}")
            self.sent[name] = seq + 1

    def all_acked(self) -> bool:
        with self._lock:
            return all(self.acked[n] == self.sent[n] for n in self.names)

    def close(self) -> None:
        for c in self._clients:
            c.on_disconnect = None
            c.disconnect()
            c.loop_stop()


class SeqCounter:
    """A persistent-session subscriber (MQTT 5, QoS 1) recording every message it gets."""

    def __init__(
        self,
        *,
        port: int,
        topic: str,
        user: str | None = None,
        password: str | None = None,
        ca: Path | None = None,
        client_id: str | None = None,
    ) -> None:
        self.seqs: dict[str, list[int]] = {}
        self.raw: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._topic = topic
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or user or "seq-counter",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"subscription to {topic} not acknowledged")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.raw.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            if msg.payload.startswith(b"{"):
                doc = orjson.loads(msg.payload)
                if "seq" in doc:
                    self.seqs.setdefault(doc["gw"], []).append(int(doc["seq"]))

    def count(self, gw: str) -> int:
        with self._lock:
            return len(set(self.seqs.get(gw, [])))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.raw if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tally(sent: Counter[str], counter: SeqCounter) -> dict[str, int]:
    """``sent``/``received``/``unique``/``lost``/``duplicates`` over every gateway."""
    total = sum(sent.values())
    received = sum(len(v) for v in counter.seqs.values())
    unique = sum(len(set(v)) for v in counter.seqs.values())
    lost = sum(len(set(range(n)) - set(counter.seqs.get(gw, []))) for gw, n in sent.items())
    return {
        "sent": total,
        "received": received,
        "unique": unique,
        "lost": lost,
        "duplicates": received - unique,
    }
