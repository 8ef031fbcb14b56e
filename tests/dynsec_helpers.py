"""Test helpers for the dynamic-security broker: a fixture-ready broker and MQTT clients.

:class:`Peer` is a plain paho client that records what it receives, its CONNACKs and its
disconnects with :func:`time.monotonic` stamps, independent of the code under test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from harness.services import DynsecMosquitto
from harness.wait import wait_for
from renkei.cloud.broker_dynsec import DynsecSettings
from renkei.core.mqtt import BrokerSettings

ADMIN_USER = "renkei-dynsec-admin"
ADMIN_PASSWORD = "admin-password-for-tests-only-0123"


@contextmanager
def dynsec_broker(workdir: Path) -> Iterator[DynsecMosquitto]:
    """A started Mosquitto with the dynamic-security plugin (killed afterwards)."""
    broker = DynsecMosquitto(workdir=workdir, admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def admin_settings(broker: DynsecMosquitto, *, password: str = ADMIN_PASSWORD) -> DynsecSettings:
    """The admin connection to ``broker``."""
    return DynsecSettings(
        broker=BrokerSettings(
            host="127.0.0.1", port=broker.port, username=ADMIN_USER, password=SecretStr(password)
        ),
        timeout_s=5.0,
    )


class Peer:
    """A paho MQTT 5 client logged in as ``username`` (client id = user name)."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connacks: list[str] = []
        self.disconnects: list[tuple[float, str]] = []
        self.subacks: list[str] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=username,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.port = port

    def _on_connect(
        self, c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: Properties | None
    ) -> None:
        self.connacks.append(str(rc))

    def _on_disconnect(
        self, c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: Properties | None
    ) -> None:
        self.disconnects.append((time.monotonic(), str(rc)))

    def _on_message(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((m.topic, bytes(m.payload)))

    def _on_subscribe(
        self, c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        self.subacks.extend(str(rc) for rc in rcs)

    def connect(self, *, expect: str = "Success") -> Peer:
        """Connect and wait for the CONNACK; it must say ``expect``."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        wait_for(lambda: self.connacks, 5.0, "CONNACK")
        assert self.connacks[-1] == expect, self.connacks
        return self

    def subscribe(self, topic: str) -> str:
        """Subscribe at QoS 1 and return the SUBACK's reason text."""
        before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: len(self.subacks) > before, 5.0, f"SUBACK for {topic}")
        return self.subacks[-1]

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
