"""The ingest's liveness heartbeat (see :mod:`renkei.core.wire`, "Ingest heartbeat").

A worker publishes :class:`renkei.core.wire.HostHeartbeat` on
``renkei/host/v1/{group}/heartbeat`` (QoS 0, not retained) every ``interval_s`` while its
subscription is granted on the current connection. Gateways hold their outbox after each
(re)connect until they see one, so no data is published while no ingest subscription
exists (e.g. right after a broker restart, which drops shared subscriptions).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from renkei.core.wire import HostHeartbeat, encode, host_heartbeat_topic

__all__ = ["Heartbeat"]


class Heartbeat:
    """A daemon thread publishing heartbeats while ``active()`` is true.

    Args:
        client: the worker's connected paho client (publishing is thread-safe).
        group: the ingest group name gateways wait for (``mqtt.wait_for_ingest``).
        client_id: this worker's MQTT client id (informational).
        interval_s: seconds between beats.
        active: True while the worker is connected, subscribed and not stopping.
    """

    def __init__(
        self,
        *,
        client: mqtt.Client,
        group: str,
        client_id: str,
        interval_s: float,
        active: Callable[[], bool],
    ) -> None:
        self._client = client
        self._topic = host_heartbeat_topic(group)
        self._group = group
        self._client_id = client_id
        self._interval_s = interval_s
        self._active = active
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-heartbeat", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self._interval_s + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._active():
                beat = HostHeartbeat(
                    v=1,
                    group=self._group,
                    client_id=self._client_id,
                    sent_ms=time.time_ns() // 1_000_000,
                )
                info = self._client.publish(self._topic, encode(beat), qos=0, retain=False)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self.sent += 1
            self._stop.wait(self._interval_s)
