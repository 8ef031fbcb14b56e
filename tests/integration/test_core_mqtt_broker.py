"""renkei.core.mqtt against a real Mosquitto: ``make_client`` + ``connect_async`` connect
with MQTT 5 and 3.1.1, and a message goes round trip (QoS 1); an ``MqttSession`` connects
(both versions), acknowledges on its own connection only, reports refused credentials
once, and reports a killed broker as lost, then reconnects."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from harness.services import Mosquitto
from renkei.core.mqtt import BrokerSettings, MqttSession, connect_async, make_client

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


# ---------------------------------------------------------------------- MqttSession


class _Hooks:
    """Records what an :class:`MqttSession` reports (hooks run on paho's thread)."""

    def __init__(self) -> None:
        self.connected: list[bool] = []
        self.refused: list[str] = []
        self.lost: list[str] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.gens: list[int] = []
        self.event = threading.Event()

    def wait(self, what: str, cond: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.event.wait(0.05)
            self.event.clear()


def _session(settings: BrokerSettings, hooks: _Hooks, client_id: str) -> MqttSession:
    session: MqttSession

    def on_connected(present: bool, _props: Properties | None) -> None:
        hooks.connected.append(present)
        session.client.subscribe("core/session", qos=1)
        hooks.event.set()

    def on_message(msg: mqtt.MQTTMessage) -> None:
        hooks.messages.append(msg)
        hooks.gens.append(session.gen)
        hooks.event.set()

    def note(into: list[str]) -> Callable[[str], None]:
        def hook(reason: str) -> None:
            into.append(reason)
            hooks.event.set()

        return hook

    session = MqttSession(
        settings,
        name=f"test {client_id}",
        client_id=client_id,
        manual_ack=True,
        reconnect_min_s=0.1,
        reconnect_max_s=0.2,
        on_connected=on_connected,
        on_refused=note(hooks.refused),
        on_lost=note(hooks.lost),
        on_message=on_message,
    )
    return session


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_session_connects_acks_and_stops(mosquitto: Mosquitto, protocol: str) -> None:
    settings = BrokerSettings.from_url(mosquitto.url, protocol=protocol, keepalive_s=10)
    hooks = _Hooks()
    session = _session(settings, hooks, f"session-{protocol.replace('.', '')}")
    assert not session.connected
    session.start(clean_start=True, session_expiry_s=0, receive_maximum=10)
    try:
        hooks.wait("on_connected", lambda: hooks.connected)
        assert session.connected and hooks.connected == [False]
        assert session.client.protocol == (mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        time.sleep(0.2)  # the SUBACK
        session.client.publish("core/session", b"x", qos=1).wait_for_publish(TIMEOUT_S)
        hooks.wait("the message", lambda: hooks.messages)
        msg = hooks.messages[0]
        delivery = _Delivery(hooks.gens[0], msg.mid, msg.qos)
        assert session.is_current(delivery.gen)
        assert session.ack([delivery]) == (1, 0)
    finally:
        session.stop()
    assert not session.connected and not session.is_current(delivery.gen)
    assert session.ack([delivery]) == (0, 1)
    assert hooks.refused == []


def test_session_refused_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "alice", "right"],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    broker = Mosquitto(
        workdir=tmp_path / "mq", extra_conf=f"allow_anonymous false\npassword_file {passwd}\n"
    )
    broker.start()
    caplog.set_level(logging.WARNING, logger="renkei.core.mqtt.session")
    try:
        settings = BrokerSettings.from_url(broker.url, username="alice", password="wrong")
        hooks = _Hooks()
        session = _session(settings, hooks, "session-refused")
        session.start(clean_start=True)
        try:
            hooks.wait("two refusals", lambda: len(hooks.refused) >= 2)
            assert not session.connected and hooks.connected == [] and hooks.lost == []
        finally:
            session.stop()
        refusals = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]  # once per reason
        assert f"127.0.0.1:{broker.port}" in refusals[0].getMessage()
        good = BrokerSettings.from_url(broker.url, username="alice", password="right")
        hooks = _Hooks()
        session = _session(good, hooks, "session-accepted")
        session.start(clean_start=True)
        try:
            hooks.wait("on_connected", lambda: hooks.connected)
        finally:
            session.stop()
        assert hooks.refused == []
    finally:
        broker.kill()


def test_session_reports_loss_and_reconnects(mosquitto: Mosquitto) -> None:
    settings = BrokerSettings.from_url(mosquitto.url, keepalive_s=10)
    hooks = _Hooks()
    session = _session(settings, hooks, "session-loss")
    session.start(clean_start=False, session_expiry_s=60)
    try:
        hooks.wait("on_connected", lambda: hooks.connected)
        gen = session.gen
        mosquitto.kill()
        hooks.wait("on_lost", lambda: hooks.lost)
        assert not session.connected and session.gen > gen
        assert not session.is_current(gen)
        mosquitto.start()
        hooks.wait("on_connected again", lambda: len(hooks.connected) == 2)
        assert session.connected and session.gen > gen + 1
        assert len(hooks.lost) == 1
    finally:
        session.stop()
    assert len(hooks.lost) == 2  # the stop ends the connection too
    assert hooks.refused == []


class _Delivery:
    def __init__(self, gen: int, mid: int, qos: int) -> None:
        self.gen, self.mid, self.qos = gen, mid, qos
