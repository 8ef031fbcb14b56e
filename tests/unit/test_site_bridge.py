"""renkei.cloud.site_bridge: the site broker's config and the bridge's block of the cloud ACL.

Both run in real Mosquittos in tests/integration/test_site_bridge.py; here: the shipped
example is the rendered one, the topics match the wire contract, bad input is named.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from renkei.cloud.broker_acl import AclConfigError, render_acl
from renkei.cloud.cli import app
from renkei.cloud.site_bridge import (
    PASSWORD_PLACEHOLDER,
    SiteBridge,
    SiteBridgeError,
    bridge_acl_block,
    render_site_conf,
)
from renkei.core.wire import (
    ack_topic,
    bridge_state_topic,
    gateway_topic,
    host_heartbeat_topic,
    machine_topic,
    rollout_topic,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "site-broker" / "mosquitto.conf.example"
EXAMPLE_SITE = SiteBridge(firm="demo-molding", site="osaka", cloud_host="mqtt.example.com")


def _matches(pattern: str, topic: str) -> bool:
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)


def test_the_shipped_example_is_the_rendered_config() -> None:
    rendered = render_site_conf(EXAMPLE_SITE, password=PASSWORD_PLACEHOLDER)
    assert EXAMPLE.read_text() == rendered, (
        "deploy/site-broker/mosquitto.conf.example is stale: render it again "
        "(tests/unit/test_site_bridge.py, EXAMPLE_SITE)"
    )


def test_the_bridge_carries_the_sites_topics_and_nothing_of_another_site() -> None:
    conf = render_site_conf(EXAMPLE_SITE, password="pw")
    topics = [ln.split()[1:] for ln in conf.splitlines() if ln.startswith("topic ")]
    out = [p for p, d, _q in topics if d == "out"]
    inward = [p for p, d, _q in topics if d == "in"]
    site = {"firm": "demo-molding", "site": "osaka"}
    mine_out = [
        machine_topic(**site, area="a", line="l", machine="m", kind="telemetry"),
        gateway_topic(**site, gateway="gw-1", kind="state"),
        gateway_topic(**site, gateway="gw-1", kind="health"),
        rollout_topic(**site, gateway="gw-1", kind="report"),
    ]
    mine_in = [
        rollout_topic(**site, gateway="gw-1", kind="desired"),
        ack_topic(**site, gateway="gw-1"),
        host_heartbeat_topic("renkei-ingest"),
    ]
    assert all(any(_matches(p, t) for p in out) for t in mine_out)
    assert all(any(_matches(p, t) for p in inward) for t in mine_in)
    other = {"firm": "demo-molding", "site": "kobe"}
    for t in (
        machine_topic(**other, area="a", line="l", machine="m", kind="telemetry"),
        rollout_topic(**other, gateway="gw-1", kind="desired"),
        ack_topic(**other, gateway="gw-1"),
    ):
        assert not any(_matches(p, t) for p in out + inward), t
    # Nothing flows both ways (no loops), and data goes at QoS 1.
    assert not set(out) & set(inward)
    assert all(q == "1" for p, d, q in topics if "heartbeat" not in p)
    assert f"notification_topic {bridge_state_topic(**site)}" in conf
    for line in ("cleansession false", "persistence true", "notifications true"):
        assert line in conf.splitlines()


def test_the_cloud_acl_grants_the_bridge_exactly_what_it_carries() -> None:
    block = bridge_acl_block(EXAMPLE_SITE)
    assert block[1:] == [
        "user bridge-demo-molding-osaka",
        "topic write renkei/v1/demo-molding/osaka/#",
        "topic write renkei/rollout/v1/demo-molding/osaka/+/report",
        "topic read renkei/rollout/v1/demo-molding/osaka/+/desired",
        "topic read renkei/ack/v1/demo-molding/osaka/+",
        "topic read renkei/host/v1/+/heartbeat",
        "topic write renkei/bridge/v1/demo-molding/osaka/state",
    ]
    acl = render_acl([], bridges=[EXAMPLE_SITE])
    assert "\n".join(block[1:]) in acl
    assert "user renkei-watch\ntopic read renkei/v1/+/+/_gw/+/state\n" in acl
    assert "topic read renkei/bridge/v1/+/+/state" in acl


def test_two_bridges_of_one_site_or_a_taken_user_are_refused() -> None:
    with pytest.raises(AclConfigError, match="listed twice"):
        render_acl([], bridges=[EXAMPLE_SITE, EXAMPLE_SITE.model_copy(update={"user": "b2"})])
    taken = EXAMPLE_SITE.model_copy(update={"user": "renkei-watch"})
    with pytest.raises(AclConfigError, match="'renkei-watch' is taken"):
        render_acl([], bridges=[taken])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"firm": "acme/#"}, "firm: String should match pattern"),
        ({"cloud_host": "a b"}, "cloud_host:"),
        ({"cloud_port": 0}, "cloud_port: Input should be greater than or equal to 1 (got 0)"),
        ({"max_queued_messages": 0}, "max_queued_messages:"),
        ({"keepalive_s": 2}, "keepalive_s:"),
    ],
)
def test_bad_settings_are_named(values: dict[str, object], expected: str) -> None:
    base: dict[str, object] = {"firm": "acme", "site": "osaka", "cloud_host": "mqtt.example.com"}
    with pytest.raises(SiteBridgeError) as err:
        SiteBridge.build(**(base | values))
    assert expected in str(err.value), str(err.value)


@pytest.mark.parametrize("password", ["", " pw", "a\nb"])
def test_a_password_mosquitto_would_misread_is_refused(password: str) -> None:
    with pytest.raises(SiteBridgeError, match="password"):
        render_site_conf(EXAMPLE_SITE, password=password)


def test_cli_writes_a_private_config_and_never_echoes_the_password(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-bridge\n")
    out = tmp_path / "site.conf"
    args = ["site-bridge", "--firm", "acme", "--site", "osaka", "--cloud-host", "mqtt.x"]
    res = CliRunner().invoke(app, [*args, "--password-file", str(secret), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "remote_password s3cret-bridge" in out.read_text().splitlines()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "s3cret" not in res.output
    bad = CliRunner().invoke(
        app, [*args, "--password-file", str(tmp_path / "none"), "--out", str(out)]
    )
    assert bad.exit_code == 2 and "--password-file" in bad.output
    gw = str(REPO / "deploy" / "compose" / "gateways" / "gw-compose-sim-01.yaml")
    acl = CliRunner().invoke(app, ["broker-acl", gw, "--site-bridge", "acme/osaka=br-1"])
    assert acl.exit_code == 0 and "user br-1\n" in acl.output, acl.output
    refused = CliRunner().invoke(app, ["broker-acl", gw, "--site-bridge", "acme"])
    assert refused.exit_code == 2 and "FIRM/SITE" in refused.output
