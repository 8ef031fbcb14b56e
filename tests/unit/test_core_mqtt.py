"""renkei.core.mqtt: broker settings (URL parsing, validation rules) and the client factory
(without a broker; tests/integration/test_core_mqtt_broker.py connects to a real one)."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import ValidationError

from renkei.core.mqtt import BrokerSettings, BrokerSettingsError, Will, make_client


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
