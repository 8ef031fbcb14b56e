"""renkei.cloud.broker_dynsec, pure parts: a user's dynamic-security role is made from the
same rules as its block of the shipped ACL file; settings are validated; no password
shows in a repr. The plugin itself runs in tests/integration/test_broker_dynsec.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from renkei.cloud.broker_acl import CloudUsers, cloud_rules, gateway_rules, load_gateway
from renkei.cloud.broker_dynsec import (
    DynsecRefused,
    DynsecSettings,
    UserGrant,
    default_acl_access,
    role_acls,
    role_name,
)
from renkei.core.errors import RenkeiError
from renkei.core.mqtt import BrokerSettings

REPO = Path(__file__).resolve().parents[2]
ACL = REPO / "deploy" / "mosquitto" / "acl"
COMPOSE_GATEWAYS = sorted((REPO / "deploy" / "compose" / "gateways").glob("*.yaml"))


def acl_blocks() -> dict[str, list[tuple[str, str]]]:
    """``{user: [(read|write, topic), ...]}`` of the shipped ACL file."""
    blocks: dict[str, list[tuple[str, str]]] = {}
    user = ""
    for line in ACL.read_text().splitlines():
        if line.startswith("user "):
            user = line.split(" ", 1)[1]
            blocks[user] = []
        elif line.startswith("topic "):
            _, access, topic = line.split(" ", 2)
            blocks[user].append((access, topic))
    return blocks


def as_rules(acls: list[dict[str, object]]) -> list[tuple[str, str]]:
    """The plugin's ACL entries back as (read|write, topic), checking read's two parts."""
    out: list[tuple[str, str]] = []
    for entry in acls:
        assert entry["allow"] is True
        kind, topic = entry["acltype"], str(entry["topic"])
        if kind == "publishClientSend":
            out.append(("write", topic))
        elif kind == "subscribePattern":
            out.append(("read", topic))
        else:
            assert kind == "publishClientReceive" and out[-1] == ("read", topic)
    return out


def test_every_role_is_the_users_block_of_the_shipped_acl() -> None:
    blocks = acl_blocks()
    users = dict(cloud_rules(CloudUsers()))
    for path in COMPOSE_GATEWAYS:
        users.update(gateway_rules(load_gateway(path)))
    assert set(users) == set(blocks)
    for user, rules in users.items():
        assert as_rules(role_acls(rules)) == blocks[user], user


def test_default_access_denies_all_but_unsubscribe() -> None:
    allowed = {a["acltype"]: a["allow"] for a in default_acl_access()["acls"]}
    assert allowed == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert role_name("gw-a") == "renkei:gw-a"


def test_settings_are_frozen_and_bounded() -> None:
    broker = BrokerSettings(username="admin", password=SecretStr("s3cret-admin-password"))
    settings = DynsecSettings(broker=broker)
    assert settings.timeout_s == 5.0
    with pytest.raises(ValidationError):
        settings.timeout_s = 1.0  # type: ignore[misc]
    for bad in (0, -1, 61):
        with pytest.raises(ValidationError, match="timeout_s"):
            DynsecSettings(broker=broker, timeout_s=bad)
    assert "s3cret" not in repr(settings)
    grant = UserGrant(username="gw-a", password=SecretStr("gw-password"), rules=())
    assert "gw-password" not in repr(grant)


def test_refusal_names_command_subject_and_reason() -> None:
    exc = DynsecRefused("deleteRole", "Role not found", "renkei:gw-a")
    assert isinstance(exc, RenkeiError)
    assert str(exc) == "dynamic security refused deleteRole 'renkei:gw-a': Role not found"
    assert (exc.command, exc.reason) == ("deleteRole", "Role not found")
