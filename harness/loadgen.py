"""Synthetic packed machine messages and a QoS 1 publisher.

Used by the ingest benchmark and integration tests, and handy to smoke-test a deployment:
:func:`machine_message` builds a valid ``renkei.core.wire`` v1 message with ``rows`` readings of
``fields`` fields (deterministic values), and :class:`QoS1Publisher` publishes with a plain
paho client, waiting for the broker's PUBACKs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from renkei.core.wire import machine_topic

__all__ = ["QoS1Publisher", "machine_message", "machine_topic_for"]

#: First timestamp of the synthetic messages: the start of the current UTC hour minus 7
#: days, fixed for the process. It lies inside the ingest's admission window
#: (``IngestSettings.max_past_s``, default 14 days) and leaves room for long benchmark
#: runs before the 5-minute future bound; messages are reproducible within one run.
T0_MS = (time.time_ns() // 3_600_000_000_000 - 7 * 24) * 3_600_000


def machine_topic_for(machine: int, *, firm: str = "acme", kind: str = "telemetry") -> str:
    """Topic of synthetic machine number ``machine``: ``renkei/v1/acme/plant1/a1/l1/m{n}/..``."""
    return machine_topic(
        firm=firm, site="plant1", area="a1", line="l1", machine=f"m{machine}", kind=kind
    )


def machine_message(
    *,
    seq: int,
    rows: int,
    fields: int,
    gw: str = "gw-01",
    t0_ms: int = T0_MS,
    step_ms: int = 10,
    kind: str = "telemetry",
    tags: dict[str, str] | None = None,
) -> bytes:
    """A valid v1 machine payload with ``rows`` x ``fields`` values (no nulls).

    Row ``i`` has timestamp ``t0_ms + (seq * rows + i) * step_ms``, so messages with
    different ``seq`` never share a timestamp. Values look like sensor readings with four
    decimals (e.g. ``41.2734``).
    """
    base = seq * rows
    ts = [t0_ms + (base + i) * step_ms for i in range(rows)]
    cols = {
        f"f{j}": [round(50.0 + 20.0 * math.sin(0.01 * (base + i) + j), 4) for i in range(rows)]
        for j in range(fields)
    }
    payload: dict[str, Any] = {
        "v": 1,
        "gw": gw,
        "seq": seq,
        "sent_ms": t0_ms + base * step_ms,
        "kind": kind,
        "ts_ms": ts,
        "fields": cols,
    }
    if tags:
        payload["tags"] = tags
    return orjson.dumps(payload)


class QoS1Publisher:
    """A plain paho client publishing at QoS 1 and waiting for PUBACKs.

    Args:
        host, port: the broker.
        client_id: MQTT client id ("" = random, clean session).
        protocol: ``"5"`` or ``"3.1.1"``.
        window: most unacknowledged publishes at a time in :meth:`publish_many`.

    Raises:
        TimeoutError: not connected within ``connect_timeout_s``.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str = "",
        protocol: str = "5",
        window: int = 100,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.window = window
        self._connected = threading.Event()
        version = MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version
        )
        self._client.max_inflight_messages_set(max(window, 1))
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(connect_timeout_s):
            self.close()
            raise TimeoutError(f"publisher not connected to {host}:{port}")

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait for the (re)connection; ``False`` on timeout."""
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, timeout_s: float = 30.0) -> None:
        """Publish one message and wait for its PUBACK.

        Raises:
            TimeoutError: no PUBACK within ``timeout_s``.
            RuntimeError: paho could not send it (not connected).
        """
        self.publish_many([(topic, payload)], timeout_s=timeout_s)

    def publish_many(
        self, messages: Iterable[tuple[str, bytes]], *, timeout_s: float = 60.0
    ) -> int:
        """Publish messages with up to ``window`` in flight; wait for every PUBACK.

        Returns the number of messages published.

        Raises:
            TimeoutError: a PUBACK did not come within ``timeout_s``.
            RuntimeError: paho could not send (not connected).
        """
        pending: deque[mqtt.MQTTMessageInfo] = deque()
        n = 0
        for topic, payload in messages:
            while len(pending) >= self.window:
                self._wait(pending.popleft(), timeout_s)
            info = self._client.publish(topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
            pending.append(info)
            n += 1
        while pending:
            self._wait(pending.popleft(), timeout_s)
        return n

    @staticmethod
    def _wait(info: mqtt.MQTTMessageInfo, timeout_s: float) -> None:
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK for message {info.mid} within {timeout_s} s")

    def __enter__(self) -> QoS1Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
