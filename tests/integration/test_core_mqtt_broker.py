"""renkei.core.mqtt against a real Mosquitto: ``make_client`` + ``connect_async`` connect
with MQTT 5 and 3.1.1, and a message goes round trip (QoS 1)."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from harness.services import Mosquitto
from renkei.core.mqtt import BrokerSettings, connect_async, make_client

TIMEOUT_S = 10.0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_make_client_connects_and_round_trips(mosquitto: Mosquitto, protocol: str) -> None:
    settings = BrokerSettings.from_url(mosquitto.url, protocol=protocol, keepalive_s=10)
    client = make_client(settings, client_id=f"core-test-{protocol}", persistent_session=False)
    connacks: list[tuple[ReasonCode, Properties | None]] = []
    connected, got = threading.Event(), threading.Event()
    received: list[bytes] = []

    def on_connect(
        c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, props: Properties | None
    ) -> None:
        connacks.append((rc, props))
        c.subscribe("core/test", qos=1)
        connected.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        got.set()

    client.on_connect = on_connect
    client.on_message = on_message
    connect_async(client, settings, clean_start=True, session_expiry_s=0, receive_maximum=50)
    client.loop_start()
    try:
        assert connected.wait(TIMEOUT_S), "no CONNACK"
        rc, props = connacks[0]
        assert not rc.is_failure, rc
        assert client.protocol == (mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        if protocol == "5":
            assert props is not None  # an MQTT 5 CONNACK carries properties
        info = client.publish("core/test", b"hello", qos=1)
        info.wait_for_publish(TIMEOUT_S)
        assert info.is_published()
        assert got.wait(TIMEOUT_S), "message not received"
        assert received == [b"hello"]
    finally:
        client.disconnect()
        client.loop_stop()
