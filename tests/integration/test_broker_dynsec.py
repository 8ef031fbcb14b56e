"""renkei.cloud.broker_dynsec against a real Mosquitto with its dynamic-security plugin.

Proven: a gateway's two users, created from :func:`renkei.cloud.broker_acl.gateway_rules`
(the rules the static ACL file is rendered from), may publish exactly their own topics and
read their own; a user that was removed is disconnected at once and refused afterwards;
the plugin's refusals, a wrong admin password and a broker without the plugin map to
DynsecRefused / DynsecUnavailable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from harness.services import DynsecMosquitto, Mosquitto
from harness.wait import pause, wait_for
from renkei.cloud.broker_acl import GatewayGrant, TopicRule, cloud_rules, gateway_rules
from renkei.cloud.broker_dynsec import (
    DynsecAdmin,
    DynsecRefused,
    DynsecSettings,
    DynsecUnavailable,
    UserGrant,
    default_acl_access,
    role_name,
)
from renkei.core.errors import MqttError, RenkeiError
from renkei.core.mqtt import BrokerSettings
from tests.dynsec_helpers import Peer, admin_settings, dynsec_broker

GW = GatewayGrant(
    user="gw-a",
    gateway_id="gw-a",
    firm="acme",
    site="nagoya",
    machines=(("molding", "line-1", "imm-1"), ("press", "line-9", "press-2")),
)
SITE = "renkei/v1/acme/nagoya"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DynsecMosquitto]:
    with dynsec_broker(tmp_path / "broker") as b:
        yield b


def grants(rules: dict[str, tuple[TopicRule, ...]]) -> list[UserGrant]:
    """Each user with the password ``pw-{user}-0123456789``."""
    return [
        UserGrant(username=u, password=SecretStr(f"pw-{u}-0123456789"), rules=r)
        for u, r in rules.items()
    ]


def test_gateway_users_get_exactly_the_acl_rules(broker: DynsecMosquitto) -> None:
    ingest = {"renkei-ingest-1": cloud_rules()["renkei-ingest-1"]}
    with DynsecAdmin(settings=admin_settings(broker)) as admin:
        admin.run(default_acl_access())
        admin.provision_users(grants({**gateway_rules(GW), **ingest}))
        record = admin.get_client("gw-a")
    assert record is not None and record["roles"] == [{"rolename": role_name("gw-a")}]

    sink = Peer(broker.port, "renkei-ingest-1", "pw-renkei-ingest-1-0123456789").connect()
    assert sink.subscribe("renkei/#") == "Granted QoS 1"
    gw = Peer(broker.port, "gw-a", "pw-gw-a-0123456789").connect()
    assert gw.subscribe("renkei/ack/v1/acme/nagoya/gw-a") == "Granted QoS 1"
    assert gw.subscribe("renkei/host/v1/+/heartbeat") == "Granted QoS 1"
    assert gw.subscribe("renkei/ack/v1/acme/nagoya/gw-b") == "Not authorized"
    assert gw.subscribe("renkei/v1/#") == "Not authorized"
    own = [
        f"{SITE}/molding/line-1/imm-1/telemetry",
        f"{SITE}/press/line-9/press-2/shot",
        f"{SITE}/_gw/gw-a/state",
    ]
    for topic in own:
        gw.client.publish(topic, b"1", qos=1).wait_for_publish(5)
    wait_for(lambda: len(sink.topics()) == 3, 5.0, "the gateway's three messages")
    assert sink.topics() == own

    rollout = Peer(broker.port, "gw-a-rollout", "pw-gw-a-rollout-0123456789").connect()
    assert rollout.subscribe("renkei/rollout/v1/acme/nagoya/gw-a/desired") == "Granted QoS 1"
    assert rollout.subscribe("renkei/rollout/v1/acme/nagoya/gw-b/desired") == "Not authorized"
    rollout.client.publish("renkei/rollout/v1/acme/nagoya/gw-a/report", b"r", qos=1)
    wait_for(lambda: len(sink.topics()) == 4, 5.0, "the rollout report")
    for p in (sink, gw, rollout):
        p.close()


def test_foreign_topics_never_reach_the_ingest(broker: DynsecMosquitto) -> None:
    """Another machine of the same site, another gateway's state: dropped by the broker
    (Mosquitto 2.0.11 also ends the offending connection)."""
    ingest = {"renkei-ingest-1": cloud_rules()["renkei-ingest-1"]}
    with DynsecAdmin(settings=admin_settings(broker)) as admin:
        admin.run(default_acl_access())
        admin.provision_users(grants({**gateway_rules(GW), **ingest}))
    sink = Peer(broker.port, "renkei-ingest-1", "pw-renkei-ingest-1-0123456789").connect()
    sink.subscribe("renkei/#")
    for topic in (f"{SITE}/molding/line-1/imm-9/telemetry", f"{SITE}/_gw/gw-b/state"):
        gw = Peer(broker.port, "gw-a", "pw-gw-a-0123456789").connect()
        gw.client.publish(topic, b"forged", qos=1)
        pause(0.5, "let a forged message reach the ingest if the broker let it through")
        gw.close()
    assert sink.topics() == []
    sink.close()


def test_removed_user_is_disconnected_at_once_and_refused(broker: DynsecMosquitto) -> None:
    with DynsecAdmin(settings=admin_settings(broker)) as admin:
        admin.provision_users(grants(gateway_rules(GW)))
        gw = Peer(broker.port, "gw-a", "pw-gw-a-0123456789").connect()
        admin.remove_users(["gw-a", "gw-a-rollout"])
        wait_for(lambda: gw.disconnects, 1.0, "the removed gateway's disconnect")
        assert admin.get_client("gw-a") is None
        admin.remove_users(["gw-a", "gw-a-rollout"])  # idempotent
    gw.close()
    Peer(broker.port, "gw-a", "pw-gw-a-0123456789").connect(expect="Not authorized").close()


def test_refusals_map_to_dynsec_refused(broker: DynsecMosquitto) -> None:
    users = grants(gateway_rules(GW))
    with DynsecAdmin(settings=admin_settings(broker)) as admin:
        admin.provision_users(users)
        with pytest.raises(DynsecRefused, match="'renkei:gw-a': Role already exists") as info:
            admin.provision_users(users[:1], replace=False)
        assert (info.value.command, info.value.reason) == ("createRole", "Role already exists")
        with pytest.raises(DynsecRefused, match="'nobody': Client not found"):
            admin.run({"command": "deleteClient", "username": "nobody"})
    assert isinstance(info.value, RenkeiError)
    assert "pw-gw-a" not in str(info.value)


def test_wrong_admin_password_is_unavailable_naming_auth(broker: DynsecMosquitto) -> None:
    with pytest.raises(DynsecUnavailable, match="auth: the broker refused") as info:
        DynsecAdmin(settings=admin_settings(broker, password="wrong")).connect()
    assert isinstance(info.value, MqttError)


def test_broker_without_the_plugin_times_out_with_a_hint(mosquitto: Mosquitto) -> None:
    settings = DynsecSettings(
        broker=BrokerSettings(host="127.0.0.1", port=mosquitto.port), timeout_s=0.5
    )
    with (
        DynsecAdmin(settings=settings) as admin,
        pytest.raises(DynsecUnavailable, match="plugin not loaded"),
    ):
        admin.run({"command": "listClients"})


def test_nothing_listening_is_unavailable() -> None:
    from harness.services import free_port

    settings = DynsecSettings(
        broker=BrokerSettings(host="127.0.0.1", port=free_port()), timeout_s=2.0
    )
    with pytest.raises(DynsecUnavailable, match="dynamic security: mqtt://127.0.0.1"):
        DynsecAdmin(settings=settings).connect()
