"""renkei.cloud.broker_acl: the shipped broker ACL is the one rendered from the gateway configs.

The rendered ACL runs in the real broker in tests/integration/test_broker_security.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from renkei.cloud.broker_acl import (
    AclConfigError,
    CloudUsers,
    all_rules,
    load_gateway,
    render_acl,
)
from renkei.cloud.broker_dynsec import render_roles
from renkei.cloud.cli import app

REPO = Path(__file__).resolve().parents[2]
ACL = REPO / "deploy" / "mosquitto" / "acl"
ROLES = REPO / "deploy" / "mosquitto" / "dynsec-roles"
COMPOSE_GATEWAYS = sorted((REPO / "deploy" / "compose" / "gateways").glob("*.yaml"))


def write_gateway(path: Path, **changes: object) -> Path:
    """A minimal gateway config (only the fields the ACL reads, plus one it ignores)."""
    doc: dict[str, object] = {
        "gateway_id": "gw-a",
        "firm": "acme",
        "site": "nagoya",
        "mqtt": {"username": "gw-a", "port": 8883},
        "machines": [
            {"id": "imm-1", "area": "molding", "line": "line-1", "window_s": 1},
            {"id": "press-2", "area": "press", "line": "line-9"},
        ],
    }
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_acl_equals_the_one_rendered_from_the_compose_gateways() -> None:
    assert [p.stem for p in COMPOSE_GATEWAYS] == [
        "gw-compose-sim-01",
        "gw-compose-sim-02",
        "gw-compose-sim-03",
    ]
    rendered = render_acl([load_gateway(p) for p in COMPOSE_GATEWAYS])
    assert ACL.read_text() == rendered, (
        "deploy/mosquitto/acl is stale: renkei cloud broker-acl "
        "deploy/compose/gateways/*.yaml --out deploy/mosquitto/acl"
    )


def test_shipped_dynsec_roles_hold_exactly_the_acl_files_rules() -> None:
    """deploy/mosquitto/dynsec-roles (entrypoint.sh's first start) is rendered from the same
    rules as the ACL file: one role per ACL user, write -> publishClientSend, read ->
    subscribePattern + publishClientReceive, nothing else."""
    gateways = [load_gateway(p) for p in COMPOSE_GATEWAYS]
    assert ROLES.read_text() == render_roles(all_rules(gateways)), (
        "deploy/mosquitto/dynsec-roles is stale: renkei cloud broker-acl "
        "deploy/compose/gateways/*.yaml --out deploy/mosquitto/acl "
        "--roles-out deploy/mosquitto/dynsec-roles"
    )
    # Parsed back, the roles file says what the ACL file says.
    acl: dict[str, set[tuple[str, str]]] = {}
    for line in ACL.read_text().splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            acl[user] = set()
        elif line.startswith("topic "):
            _, access, topic = line.split()
            acl[user].add((access, topic))
    roles: dict[str, set[tuple[str, str]]] = {}
    for line in ROLES.read_text().splitlines():
        if line.startswith("createRole renkei:"):
            roles[line.removeprefix("createRole renkei:")] = set()
        elif line.startswith("addRoleACL "):
            _, role, acltype, topic, allow = line.split()
            assert allow == "allow"
            access = "write" if acltype == "publishClientSend" else "read"
            roles[role.removeprefix("renkei:")].add((access, topic))
    assert roles == acl
    subscribe = [ln.split()[3] for ln in ROLES.read_text().splitlines() if "subscribePattern" in ln]
    receive = [ln.split()[3] for ln in ROLES.read_text().splitlines() if "ClientReceive" in ln]
    assert subscribe == receive


def test_a_gateway_is_granted_exactly_its_machines_and_its_own_gateway_topics(
    tmp_path: Path,
) -> None:
    text = render_acl([load_gateway(write_gateway(tmp_path / "a.yaml"))], CloudUsers())
    blocks = text.split("\nuser ")
    gw = next(b for b in blocks if b.startswith("gw-a\n")).strip().splitlines()
    assert gw == [
        "gw-a",
        "topic write renkei/v1/acme/nagoya/molding/line-1/imm-1/+",
        "topic write renkei/v1/acme/nagoya/press/line-9/press-2/+",
        "topic write renkei/v1/acme/nagoya/_gw/gw-a/+",
        "topic read renkei/host/v1/+/heartbeat",
        "topic read renkei/ack/v1/acme/nagoya/gw-a",
    ]
    rollout = next(b for b in blocks if b.startswith("gw-a-rollout\n")).strip().splitlines()
    assert rollout == [
        "gw-a-rollout",
        "topic read renkei/rollout/v1/acme/nagoya/gw-a/desired",
        "topic write renkei/rollout/v1/acme/nagoya/gw-a/report",
    ]
    users = [ln.split()[1] for ln in text.splitlines() if ln.startswith("user ")]
    assert users == [
        "renkei-ingest-1",
        "renkei-ingest-2",
        "renkei-watch",
        "renkei-rollout",
        "gw-a",
        "gw-a-rollout",
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"mqtt": {}}, "mqtt.username: not set"),
        ({"firm": "acme/#"}, "firm: String should match pattern"),
        ({"machines": [{"id": "m+", "area": "a", "line": "l"}]}, "machines.0.id:"),
        ({"machines": [{"id": "m1", "line": "l"}]}, "machines.0.area: Field required"),
        ({"machines": []}, "machines: empty"),
    ],
)
def test_bad_gateway_configs_are_refused_naming_file_and_key(
    tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    path = write_gateway(tmp_path / "bad.yaml", **changes)
    with pytest.raises(AclConfigError) as err:
        load_gateway(path)
    assert str(path) in str(err.value) and expected in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # another gateway of the site claims gw-a's machine imm-1
        (
            {"gateway_id": "gw-b", "mqtt": {"username": "gw-b"}},
            "machine acme/nagoya/molding/line-1/imm-1 is also in",
        ),
        (
            {"mqtt": {"username": "gw-a2"}, "machines": [{"id": "x", "area": "a", "line": "l"}]},
            "gateway_id 'gw-a' at acme/nagoya is also in",
        ),
        (
            {"gateway_id": "gw-b", "machines": [{"id": "x", "area": "a", "line": "l"}]},
            "MQTT user 'gw-a' is also in",
        ),
    ],
)
def test_overlapping_gateways_are_refused(
    tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    a = load_gateway(write_gateway(tmp_path / "a.yaml"))
    b = load_gateway(write_gateway(tmp_path / "b.yaml", **changes))
    with pytest.raises(AclConfigError, match="b.yaml") as err:
        render_acl([a, b])
    assert expected in str(err.value)


def test_a_gateway_user_may_not_be_a_cloud_services_user(tmp_path: Path) -> None:
    # "renkei" + "-rollout" is the rollout controller's user
    g = load_gateway(write_gateway(tmp_path / "a.yaml", mqtt={"username": "renkei"}))
    with pytest.raises(AclConfigError, match="'renkei-rollout' is also in the cloud services"):
        render_acl([g])


def test_cli_writes_the_acl_and_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    out = tmp_path / "acl"
    runner = CliRunner()
    roles = tmp_path / "dynsec-roles"
    ok = runner.invoke(
        app,
        ["broker-acl", *map(str, COMPOSE_GATEWAYS), "--out", str(out), "--roles-out", str(roles)],
        catch_exceptions=False,
    )
    assert ok.exit_code == 0, ok.output
    assert out.read_text() == ACL.read_text()
    assert roles.read_text() == ROLES.read_text()
    bad = write_gateway(tmp_path / "bad.yaml", mqtt={})
    failed = runner.invoke(app, ["broker-acl", str(bad)])
    assert failed.exit_code == 2
    assert "mqtt.username: not set" in failed.output
