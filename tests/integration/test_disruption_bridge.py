"""The disruption watcher and site broker bridge states, with real Mosquittos.

1. One plain Mosquitto: gateway births, then a retained bridge ``0`` published as Mosquitto's
   bridge would, raise a suspected disruption (``detail.rule = "site_bridge"``) seen over
   the API; forged (another firm's site, unknown firm) and malformed bridge states are
   ignored; ``1`` dismisses the suspicion (the rule of :mod:`renkei.cloud.disruption.bridge`).
2. End to end: a real site broker bridging to a real TLS cloud broker (the rendered configs
   and ACL, :mod:`harness.site_bridge`), gateways on the site broker, the watcher on the
   cloud as the ACL's ``renkei-watch`` user; the site broker is killed with SIGKILL (its
   gateways' Last Wills never reach the cloud), the bridge's Last Will ``0`` raises the
   suspicion, and the restarted site broker's ``1`` dismisses it; then a silent WAN cut
   (the harness's TCP proxy) raises a new one after the bridge keepalive, and the WAN's
   return dismisses it.

Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.services import Mosquitto
from harness.site_bridge import WATCH_USER, start_rig
from harness.wait import pause, wait_for
from renkei.cloud.disruption import DisruptionWatcher, SuspectRules, WatchSettings
from renkei.core.mqtt import BrokerSettings
from tests.api.rig import ApiRig
from tests.integration.test_disruption_watch import FakeGateway

RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ApiRig]:
    (tmp_path / "api").mkdir()
    r = ApiRig(tmp_path / "api")
    r.now = datetime.now(UTC)
    try:
        yield r
    finally:
        r.close()


def _listed(rig: ApiRig, firm: str) -> list[dict[str, Any]]:
    r = rig.client(firm).get(f"/api/v1/firms/{firm}/disruptions")
    assert r.status_code == 200, r.text
    return list(r.json())


def _online(rig: ApiRig, firm: str) -> dict[str, bool]:
    gws = rig.client(firm).get(f"/api/v1/firms/{firm}/gateways").json()
    return {g["gateway_id"]: g["online"] for g in gws}


class Publisher:
    """A plain MQTT client publishing retained bridge states (as Mosquitto's bridge does)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bridge-forger")
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.timeout(60)
def test_bridge_zero_raises_one_clears_forgeries_ignored(mosquitto: Mosquitto, rig: ApiRig) -> None:
    rig.seed_firm("acme")
    rig.seed_firm("beta")
    watcher = DisruptionWatcher(
        settings=WatchSettings(
            broker=BrokerSettings.from_url(mosquitto.url, client_id="watch-bridge-test")
        ),
        engine=rig.engine,
        rules=RULES,
    )
    watcher.start()
    gateways: list[FakeGateway] = []
    pub = Publisher(mosquitto.port)
    try:
        assert watcher.wait_ready(10)
        gateways = [
            FakeGateway(mosquitto.port, firm, f"{firm}-s1", f"gw-{i}")
            for firm in ("acme", "beta")
            for i in (1, 2, 3)
        ]
        wait_for(
            lambda: [len(_online(rig, f)) for f in ("acme", "beta")] == [3, 3],
            10,
            "three gateways of each firm online",
        )
        # forged and malformed bridge states: acme's topic naming beta's site, an unknown
        # firm naming acme's site, an unknown site, payloads other than 1/0
        pub.send("renkei/bridge/v1/acme/beta-s1/state", b"0")
        pub.send("renkei/bridge/v1/evil/acme-s1/state", b"0")
        pub.send("renkei/bridge/v1/acme/nowhere/state", b"0")
        pub.send("renkei/bridge/v1/acme/acme-s1/state", b"down")
        pub.send("renkei/bridge/v1/acme/acme-s1/state", b"")  # clears the retained copy
        wait_for(
            lambda: watcher.stats().unknown_sites == 3 and watcher.stats().malformed == 2,
            10,
            lambda: str(watcher.stats()),
        )
        assert _listed(rig, "acme") == [] and _listed(rig, "beta") == []

        sent = time.monotonic()
        pub.send("renkei/bridge/v1/acme/acme-s1/state", b"0")
        wait_for(lambda: len(_listed(rig, "acme")) == 1, 30, lambda: str(watcher.stats()))
        print(f"bridge 0 -> suspected disruption in {time.monotonic() - sent:.3f} s")
        [d] = _listed(rig, "acme")
        assert d["status"] == "suspected" and d["source"] == "last_will"
        assert d["detail"]["rule"] == "site_bridge"
        assert d["detail"]["bridge"]["topic"] == "renkei/bridge/v1/acme/acme-s1/state"
        assert {g["gateway_id"] for g in d["detail"]["offline"]} == {"gw-1", "gw-2", "gw-3"}
        assert _listed(rig, "beta") == []

        pub.send("renkei/bridge/v1/acme/acme-s1/state", b"1")
        wait_for(
            lambda: [x["status"] for x in _listed(rig, "acme")] == ["dismissed"],
            10,
            lambda: str(watcher.stats()),
        )
        [d] = _listed(rig, "acme")
        assert d["detail"]["cleared"]["by"] == "site_bridge"
        st = watcher.stats()
        assert (st.suspicions, st.cleared, st.errors, st.db_retries) == (1, 1, 0, 0)
    finally:
        pub.send("renkei/bridge/v1/acme/acme-s1/state", b"")
        pub.close()
        for g in gateways:
            g.close()
        watcher.stop()


@pytest.mark.timeout(120)
def test_a_killed_site_broker_raises_and_its_return_clears(tmp_path: Path, rig: ApiRig) -> None:
    rig.seed_firm("acme")
    bridge_rig = start_rig(tmp_path / "bridge", firm="acme", site="acme-s1")
    watcher: DisruptionWatcher | None = None
    gateways: list[FakeGateway] = []
    try:
        watcher = DisruptionWatcher(
            settings=WatchSettings(
                broker=BrokerSettings.from_url(
                    f"mqtts://127.0.0.1:{bridge_rig.cloud.tls_port}",
                    client_id=WATCH_USER,
                    username=WATCH_USER,
                    password=bridge_rig.passwords[WATCH_USER],
                    tls_ca_file=bridge_rig.pki.ca,
                )
            ),
            engine=rig.engine,
            rules=RULES,
        )
        watcher.start()
        assert watcher.wait_ready(10), watcher.stats()
        # gateways on the site broker; their births reach the cloud through the bridge
        gateways = [
            FakeGateway(bridge_rig.site.port, "acme", "acme-s1", f"gw-{i}") for i in (1, 2, 3)
        ]
        wait_for(
            lambda: _online(rig, "acme") == {"gw-1": True, "gw-2": True, "gw-3": True},
            15,
            lambda: f"births through the bridge: {_online(rig, 'acme')} {watcher.stats()}",
        )
        assert _listed(rig, "acme") == []

        killed = time.monotonic()
        bridge_rig.site.kill()  # SIGKILL: the gateways' Wills die with it; the bridge's fires
        wait_for(lambda: len(_listed(rig, "acme")) == 1, 20, lambda: str(watcher.stats()))
        print(f"kill -9 -> suspected disruption in {time.monotonic() - killed:.3f} s")
        [d] = _listed(rig, "acme")
        assert d["status"] == "suspected" and d["detail"]["rule"] == "site_bridge"
        assert _online(rig, "acme") == {"gw-1": True, "gw-2": True, "gw-3": True}

        for g in gateways:
            g.client.loop_stop()  # their broker is gone; new ones connect after the restart
        bridge_rig.site.start()
        wait_for(
            lambda: [x["status"] for x in _listed(rig, "acme")] == ["dismissed"],
            30,
            lambda: f"dismissed after the bridge's 1: {bridge_rig.state()} {watcher.stats()}",
        )
        pause(0.5, "nothing else is raised")
        assert [x["status"] for x in _listed(rig, "acme")] == ["dismissed"]

        # A silent WAN loss: noticed by the bridge keepalive (5 s here) x 1.5 at the cloud.
        cut = time.monotonic()
        bridge_rig.proxy.sever("blackhole")
        wait_for(
            lambda: (
                [x["status"] for x in _listed(rig, "acme")] == ["suspected", "dismissed"]
                or [x["status"] for x in _listed(rig, "acme")] == ["dismissed", "suspected"]
            ),
            20,
            lambda: f"a new suspicion after the WAN cut: {watcher.stats()}",
        )
        print(f"WAN blackhole -> suspected disruption in {time.monotonic() - cut:.3f} s")
        bridge_rig.proxy.restore()
        wait_for(
            lambda: [x["status"] for x in _listed(rig, "acme")] == ["dismissed", "dismissed"],
            40,
            lambda: f"dismissed after the WAN returned: {bridge_rig.state()} {watcher.stats()}",
        )
        st = watcher.stats()
        assert (st.suspicions, st.cleared, st.errors) == (2, 2, 0)
    finally:
        if watcher is not None:
            watcher.stop()
        bridge_rig.close()
