"""renkei.core.mqtt: broker settings (URL parsing, validation rules), the client factory and
the session's bookkeeping (without a broker; tests/integration/test_core_mqtt_broker.py
connects to a real one)."""

from __future__ import annotations

import logging
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from renkei.core.mqtt import BrokerSettings, BrokerSettingsError, MqttSession, Will, make_client


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.local", "broker.local", 1883, False),
        ("mqtt://10.0.0.5:1884", "10.0.0.5", 1884, False),
        ("mqtts://broker.example.com", "broker.example.com", 8883, True),
        ("mqtts://broker:9883", "broker", 9883, True),
        ("mqtt://[::1]:1883", "::1", 1883, False),
    ],
)
def test_from_url_good(url: str, host: str, port: int, tls: bool) -> None:
    s = BrokerSettings.from_url(url)
    assert (s.host, s.port, s.tls, s.uses_tls) == (host, port, tls, tls)
    assert s.url.startswith("mqtts://" if tls else "mqtt://")


def test_from_url_takes_other_fields() -> None:
    s = BrokerSettings.from_url(
        "mqtt://b", username="u", password="s3cr3t", keepalive_s=60, tls=True
    )
    assert s.username == "u" and s.password is not None
    assert s.password.get_secret_value() == "s3cr3t" and "s3cr3t" not in repr(s)
    assert s.keepalive_s == 60 and s.uses_tls and s.url == "mqtts://b:1883"


@pytest.mark.parametrize(
    "url",
    [
        "http://broker:1883",
        "broker:1883",
        "mqtt://",
        "mqtt://:1883",
        "mqtt://b:99999",
        "mqtt://b:x",
    ],
)
def test_from_url_bad(url: str) -> None:
    with pytest.raises(BrokerSettingsError, match="broker URL"):
        BrokerSettings.from_url(url)


def test_port_zero_is_invalid_not_the_default() -> None:
    with pytest.raises(ValueError, match="port"):
        BrokerSettings.from_url("mqtt://b:0")


@pytest.mark.parametrize(("cert", "key"), [("c.pem", None), (None, "k.pem")])
def test_cert_and_key_come_together(cert: str | None, key: str | None) -> None:
    with pytest.raises(ValidationError, match="tls_cert_file and tls_key_file"):
        BrokerSettings(tls_cert_file=cert, tls_key_file=key)


def test_cert_and_key_pair_implies_tls() -> None:
    s = BrokerSettings(tls_cert_file=Path("c.pem"), tls_key_file=Path("k.pem"))
    assert s.uses_tls and s.address.endswith("(TLS)")


@pytest.mark.parametrize("client_id", ["gw-1", "a", "x" * 64, "Gw_1.2-3"])
def test_client_id_good(client_id: str) -> None:
    assert BrokerSettings(client_id=client_id).client_id == client_id


@pytest.mark.parametrize("client_id", ["", "x" * 65, "gw 1", "gw/1", "gw#", "gw+1", "ü"])
def test_client_id_bad(client_id: str) -> None:
    with pytest.raises(ValidationError, match="client_id must be 1-64 characters"):
        BrokerSettings(client_id=client_id)


@pytest.mark.parametrize(("value", "ok"), [(4, False), (5, True), (65_535, True), (65_536, False)])
def test_keepalive_bounds(value: int, ok: bool) -> None:
    if ok:
        assert BrokerSettings(keepalive_s=value).keepalive_s == value
    else:
        with pytest.raises(ValidationError, match="keepalive_s"):
            BrokerSettings(keepalive_s=value)


def test_settings_are_frozen_and_strict() -> None:
    s = BrokerSettings()
    with pytest.raises(ValidationError):
        s.port = 1884  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        BrokerSettings(hots="b")  # type: ignore[call-arg]


def test_tls_with_a_missing_ca_file_names_the_url(tmp_path: Path) -> None:
    s = BrokerSettings(host="broker", port=8883, tls_ca_file=tmp_path / "missing-ca.crt")
    with pytest.raises(BrokerSettingsError, match=r"mqtts://broker:8883") as info:
        make_client(s, client_id="c", persistent_session=False)
    assert isinstance(info.value, ValueError)


def test_make_client_protocol_and_session() -> None:
    v5 = make_client(BrokerSettings(), client_id="a", persistent_session=True)
    assert v5.protocol == MQTTProtocolVersion.MQTTv5
    v3 = make_client(
        BrokerSettings(protocol="3.1.1"), client_id="b", persistent_session=True, manual_ack=True
    )
    assert v3.protocol == MQTTProtocolVersion.MQTTv311
    assert v3._clean_session is False  # persistent session on 3.1.1
    clean = make_client(BrokerSettings(protocol="3.1.1"), client_id="c", persistent_session=False)
    assert clean._clean_session is True


def test_make_client_credentials_will_and_limits() -> None:
    s = BrokerSettings(username="u", password="p")
    c = make_client(
        s,
        client_id="gw",
        persistent_session=False,
        will=Will("t/state", b"dead", qos=1, retain=True),
        unlimited_inflight=True,
    )
    assert isinstance(c, mqtt.Client)
    assert c._username == b"u" and c._password == b"p"
    assert c._will_topic == b"t/state" and c._will_payload == b"dead"
    assert c._will_retain and c._will_qos == 1
    assert c._max_inflight_messages == 0 and c._max_queued_messages == 0
    assert c._client_id == b"gw"
    assert make_client(BrokerSettings(), client_id="x", persistent_session=False)._username is None


# ---------------------------------------------------------------------- MqttSession
# paho's callbacks are called directly here (what its network thread does on CONNACK and
# on a closed connection); tests/integration/test_core_mqtt_broker.py uses a real broker.


def _connack(session: MqttSession, reason: str, *, present: bool = False) -> None:
    session._on_connect(
        session.client,
        None,
        mqtt.ConnectFlags(session_present=present),
        ReasonCode(PacketTypes.CONNACK, reason),
        None,
    )


def _closed(session: MqttSession) -> None:
    session._on_disconnect(
        session.client,
        None,
        mqtt.DisconnectFlags(is_disconnect_packet_from_server=False),
        ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"),
        None,
    )


class _Delivery:
    def __init__(self, gen: int, mid: int, qos: int) -> None:
        self.gen, self.mid, self.qos = gen, mid, qos


def test_session_needs_a_client_id_and_installs_only_supplied_hooks() -> None:
    with pytest.raises(ValueError, match="client id"):
        MqttSession(BrokerSettings(), name="x")
    bare = MqttSession(BrokerSettings(client_id="from-settings"), name="x")
    assert bare.client._client_id == b"from-settings"
    assert bare.client.on_message is None and bare.client.on_publish is None
    assert bare.client.on_connect_fail is None and bare.client.on_subscribe is None
    got: list[mqtt.MQTTMessage] = []
    hooked = MqttSession(
        BrokerSettings(), name="x", client_id="c", manual_ack=True, on_message=got.append
    )
    assert hooked.client.on_message is not None
    assert hooked.client._manual_ack


def test_session_refusal_is_logged_once_per_reason_and_hooked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused: list[str] = []
    connected: list[bool] = []
    session = MqttSession(
        BrokerSettings(),
        name="unit",
        client_id="c",
        on_refused=refused.append,
        on_connected=lambda present, _p: connected.append(present),
    )
    with caplog.at_level(logging.WARNING, logger="renkei.core.mqtt.session"):
        _connack(session, "Not authorized")
        _connack(session, "Not authorized")
        _closed(session)  # the broker closes after a refusal: not a loss
        _connack(session, "Server unavailable")
    assert refused == ["Not authorized", "Not authorized", "Server unavailable"]
    assert not session.connected and connected == []
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("refused the connection" in m for m in lines), lines
    _connack(session, "Success", present=True)
    assert session.connected and connected == [True]


def test_session_generation_guards_acks_and_loss_is_reported_once() -> None:
    lost: list[str] = []
    session = MqttSession(
        BrokerSettings(), name="unit", client_id="c", manual_ack=True, on_lost=lost.append
    )
    acked: list[tuple[int, int]] = []

    def ack(mid: int, qos: int) -> MQTTErrorCode:
        acked.append((mid, qos))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    session.client.ack = ack  # type: ignore[method-assign]
    _connack(session, "Success")
    first = session.gen
    assert session.is_current(first)
    assert session.ack([_Delivery(first, 7, 1), _Delivery(first, 0, 0)]) == (2, 0)
    assert acked == [(7, 1)]  # QoS 0 has nothing to acknowledge
    _closed(session)
    _closed(session)  # a second close of the same connection
    assert lost == ["Unspecified error"] and not session.connected
    _connack(session, "Success")
    assert session.gen > first and not session.is_current(first)
    assert session.ack([_Delivery(first, 8, 1)]) == (0, 1)  # stale: never acknowledged
    assert acked == [(7, 1)]
