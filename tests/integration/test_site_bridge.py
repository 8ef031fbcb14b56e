"""A site broker bridged to the cloud broker, run for real: two Mosquittos, TLS, the ACL.

The site broker runs exactly what ``renkei cloud site-bridge`` renders
(:func:`renkei.cloud.site_bridge.render_site_conf`); the cloud broker runs the project's
``renkei.conf`` plus a TLS listener, passwords and the ACL rendered by
:func:`renkei.cloud.broker_acl.render_acl` with the bridge's block. Between them a TCP proxy
(:class:`harness.site_bridge.TcpProxy`) plays the WAN and can be cut. Gateways are plain
MQTT 5 clients publishing QoS 1 messages numbered per gateway; the cloud side counts them by
``(gateway, seq)``.

Proven: a WAN outage (a silent blackhole, noticed only by keepalive) loses none of the
messages published through it, each arrives at least once (duplicates are counted and
reported: the bridge re-sends what was in flight), the gateways see no disconnect and no failed
PUBACK, and cloud-to-site acks published during the outage arrive after it; the cloud sees
the bridge state ``1``/``0`` (retained) flip to ``0`` during the outage and when the site
broker is killed with SIGKILL, and back to ``1``; a full site queue drops the newest
messages while the gateways still get PUBACK success (the documented limit); the bridge
user may write only its own site's topics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from harness.seq_mqtt import SeqCounter, SeqGateways, tally
from harness.site_bridge import WATCH_USER, BridgeRig, site_gateway_passwords, start_rig
from harness.wait import pause, wait_for

NOT_AUTHORIZED = 135


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[BridgeRig]:
    r = start_rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_wan_outage_loses_nothing_and_the_gateways_never_notice(rig: BridgeRig) -> None:
    gateways = SeqGateways(port=rig.site.port, count=4)
    site_acks = SeqCounter(port=rig.site.port, topic="renkei/ack/v1/#", client_id="site-tool")
    try:

        def publish_for(seconds: float, rate_hz: float = 10.0) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                gateways.publish_round()
                pause(1 / rate_hz, "the gateways' message rate")

        publish_for(2)
        wait_for(lambda: tally(gateways.sent, rig.cloud_sub)["lost"] == 0, 15, "pre-outage data")
        rig.proxy.sever("blackhole")
        outage_start = time.monotonic()
        publish_for(3)
        # The cloud breaks the silent connection by keepalive (1.5 x 5 s) and fires the
        # bridge's Last Will: the site is reported offline while the WAN is still down.
        wait_for(lambda: rig.state()[-1:] == [b"0"], 15, "bridge state 0 at the cloud")
        # The ingest confirms something for gw-0 while the site is unreachable.
        rig.cloud_sub.client.publish(
            "renkei/ack/v1/acme/osaka/gw-0", b'{"during": "outage"}', qos=1
        )
        publish_for(max(0.0, 15 - (time.monotonic() - outage_start)))
        during = tally(gateways.sent, rig.cloud_sub)
        assert during["lost"] > 0, "the WAN cut did not hold anything back"
        assert site_acks.payloads("renkei/ack/v1/acme/osaka/gw-0") == []
        rig.proxy.restore()
        publish_for(2)
        wait_for(
            lambda: tally(gateways.sent, rig.cloud_sub)["lost"] == 0,
            60,
            lambda: f"every message at the cloud: {tally(gateways.sent, rig.cloud_sub)}",
        )
        wait_for(gateways.all_acked, 30, "PUBACKs of every message")
        wait_for(lambda: rig.state()[-1:] == [b"1"], 30, "bridge state 1 again")
        wait_for(
            lambda: site_acks.payloads("renkei/ack/v1/acme/osaka/gw-0"),
            15,
            "the ack published during the outage, at the site",
        )
        final = tally(gateways.sent, rig.cloud_sub)
        assert final["unique"] == final["sent"] >= 4 * 100
        # At least once: a message in flight when the link died may come twice.
        assert final["received"] == final["unique"] + final["duplicates"]
        print(f"site bridge outage: {during['lost']} held back during the outage; {final}")
        assert gateways.disconnects == []
        assert gateways.failed_acks == []
        assert b"0" in rig.state() and rig.state()[0] == b"1"
    finally:
        site_acks.close()
        gateways.close()


def test_bridge_state_follows_a_site_broker_killed_and_restarted(rig: BridgeRig) -> None:
    rig.site.kill()  # SIGKILL: no clean disconnect, the cloud fires the Last Will
    wait_for(lambda: rig.state()[-1:] == [b"0"], 20, "bridge state 0 after kill -9")
    # Retained: the disruption watcher's user, subscribing later, still learns it.
    late = SeqCounter(
        port=rig.cloud.tls_port,
        topic="renkei/bridge/v1/+/+/state",
        user=WATCH_USER,
        password=rig.passwords[WATCH_USER],
        ca=rig.pki.ca,
    )
    try:
        wait_for(lambda: late.payloads(rig.bridge.state_topic) == [b"0"], 30, "retained 0")
    finally:
        late.close()
    rig.site.start()
    wait_for(lambda: rig.state()[-1:] == [b"1"], 30, "bridge state 1 after the restart")
    assert rig.state() == [b"1", b"0", b"1"]


def test_a_full_site_queue_drops_the_newest_messages_and_the_gateways_are_not_told(
    tmp_path: Path,
) -> None:
    rig = start_rig(tmp_path, max_queued_messages=50)
    gateways = SeqGateways(port=rig.site.port, count=1)
    try:
        rig.proxy.sever("reset")
        wait_for(lambda: rig.state()[-1:] == [b"0"], 15, "bridge state 0")
        for _ in range(200):
            gateways.publish_round()
        wait_for(gateways.all_acked, 30, "PUBACKs of all 200")
        rig.proxy.restore()
        wait_for(lambda: rig.state()[-1:] == [b"1"], 30, "bridge state 1 again")
        wait_for(lambda: rig.cloud_sub.count("gw-0") >= 50, 15, "the queued 50")
        pause(2, "nothing beyond the queue may arrive")
        assert sorted(set(rig.cloud_sub.seqs["gw-0"])) == list(range(50))
        assert gateways.failed_acks == [] and gateways.disconnects == []
        assert "Outgoing messages are being dropped for client local." in (
            rig.site.log_path.read_text()
        )
    finally:
        gateways.close()
        rig.close()


def test_the_bridge_user_may_write_only_its_own_site(rig: BridgeRig) -> None:
    rig.site.stop()  # the impostor below logs in with the bridge's user (= client id)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=rig.bridge.bridge_user,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(rig.bridge.bridge_user, rig.passwords[rig.bridge.bridge_user])
    client.tls_set(ca_certs=str(rig.pki.ca))
    codes: dict[int, int] = {}
    client.on_publish = lambda c, u, mid, reason, p: codes.__setitem__(mid, reason.value)
    client.connect("127.0.0.1", rig.cloud.tls_port)
    client.loop_start()
    try:
        wait_for(client.is_connected, 30, "bridge user connects")
        topics = {
            "renkei/v1/acme/osaka/molding/line-1/imm-0/telemetry": 0,
            "renkei/bridge/v1/acme/osaka/state": 0,
            "renkei/v1/acme/kobe/molding/line-1/imm-0/telemetry": NOT_AUTHORIZED,
            "renkei/v1/rival/osaka/molding/line-1/imm-0/telemetry": NOT_AUTHORIZED,
            "renkei/bridge/v1/acme/kobe/state": NOT_AUTHORIZED,
            "renkei/ack/v1/acme/osaka/gw-0": NOT_AUTHORIZED,
            "renkei/rollout/v1/acme/osaka/gw-0/desired": NOT_AUTHORIZED,
        }
        mids = {client.publish(t, b"{}", qos=1).mid: (t, want) for t, want in topics.items()}
        wait_for(lambda: len(codes) == len(mids), 30, "PUBACKs")
        got = {t: codes[mid] for mid, (t, _w) in mids.items()}
        assert got == topics
    finally:
        client.disconnect()
        client.loop_stop()


def test_with_the_sites_own_users_and_acl_the_bridge_still_carries_both_ways(
    tmp_path: Path,
) -> None:
    users = site_gateway_passwords(2)
    rig = start_rig(tmp_path, local_users=users)
    gateways = SeqGateways(port=rig.site.port, count=2, passwords=users)
    try:
        gw0 = gateways.client("gw-0")
        gw0.subscribe("renkei/ack/v1/acme/osaka/gw-0", qos=1)
        for _ in range(20):
            gateways.publish_round()
        wait_for(lambda: tally(gateways.sent, rig.cloud_sub)["lost"] == 0, 15, "all 40")
        rig.cloud_sub.client.publish("renkei/ack/v1/acme/osaka/gw-0", b'{"ack": 1}', qos=1)
        wait_for(
            lambda: [r for r in gateways.received if r[0] == "gw-0"],
            15,
            "the cloud's ack at gw-0, through the bridge and the site's ACL",
        )
        # The site's ACL still holds: gw-0 may not write gw-1's machine.
        codes: list[int] = []
        gw0.on_publish = lambda c, u, mid, reason, p: codes.append(reason.value)
        gw0.publish("renkei/v1/acme/osaka/molding/line-1/imm-1/telemetry", b"{}", qos=1)
        wait_for(lambda: codes, 30, "PUBACK of the forged message")
        assert codes == [NOT_AUTHORIZED]
        assert gateways.disconnects == [] and gateways.failed_acks == []
    finally:
        gateways.close()
        rig.close()


def test_the_site_queue_survives_a_clean_restart_of_the_site_broker(rig: BridgeRig) -> None:
    gateways = SeqGateways(port=rig.site.port, count=2)
    try:
        rig.proxy.sever("reset")
        wait_for(lambda: rig.state()[-1:] == [b"0"], 15, "bridge state 0")
        for _ in range(100):
            gateways.publish_round()
        wait_for(gateways.all_acked, 30, "PUBACKs of all 200")
    finally:
        gateways.close()
    rig.site.stop()  # SIGTERM: Mosquitto saves its database, the bridge's queue included
    rig.site.start()
    rig.proxy.restore()
    wait_for(
        lambda: tally(gateways.sent, rig.cloud_sub)["lost"] == 0,
        45,
        lambda: f"the 200 queued messages at the cloud: {tally(gateways.sent, rig.cloud_sub)}",
    )
    assert tally(gateways.sent, rig.cloud_sub)["unique"] == 200
