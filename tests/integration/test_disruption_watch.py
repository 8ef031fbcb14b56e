"""The disruption watcher against a real Mosquitto: gateways with a Last Will die
abruptly, a suspected disruption appears, and the firm confirms or dismisses it over the
API.

Gateways are paho clients set up like :mod:`renkei.edge.transport.publisher` (MQTT 5, Last Will
``online = false`` retained at QoS 1, built once at start-up, and a retained birth per connect). A
crash closes the TCP socket without DISCONNECT, so the broker publishes the Will at once
(keepalive is 60 s: nothing here waits for a keepalive timeout). Every wait is bounded.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.services import Mosquitto
from harness.wait import pause, wait_for
from renkei.cloud.disruption import DisruptionWatcher, SuspectRules, WatchSettings
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import GatewayState, encode, gateway_topic
from tests.api.rig import ApiRig

REPO = Path(__file__).resolve().parents[2]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class FakeGateway:
    """A gateway's MQTT side: Last Will + retained birth, like
    :mod:`renkei.edge.transport.publisher`."""

    def __init__(self, port: int, firm: str, site: str, gw: str) -> None:
        self.topic = gateway_topic(firm=firm, site=site, gateway=gw, kind="state")
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{firm}-{gw}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        death = encode(GatewayState(v=1, gw=gw, online=False, sent_ms=_now_ms()))
        self.client.will_set(self.topic, death, qos=1, retain=True)
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.connect("127.0.0.1", port, keepalive=60, clean_start=True)
        self.client.loop_start()
        assert self.connected.wait(10), "gateway did not connect"
        birth = encode(GatewayState(v=1, gw=gw, online=True, sent_ms=_now_ms(), agent_version="t"))
        self.client.publish(self.topic, birth, qos=1, retain=True).wait_for_publish(10)

    def crash(self) -> None:
        """Close the socket without DISCONNECT: the broker publishes the Last Will."""
        sock = self.client.socket()
        self.client.loop_stop()
        assert sock is not None
        sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ApiRig]:
    (tmp_path / "api").mkdir()
    r = ApiRig(tmp_path / "api")
    r.now = datetime.now(UTC)  # the watcher stamps with the real clock
    try:
        yield r
    finally:
        r.close()


def _suspected(rig: ApiRig, firm: str) -> list[dict[str, Any]]:
    r = rig.client(firm).get(f"/api/v1/firms/{firm}/disruptions?status=suspected")
    assert r.status_code == 200, r.text
    return list(r.json())


def _online(rig: ApiRig, firm: str) -> dict[str, bool]:
    gws = rig.client(firm).get(f"/api/v1/firms/{firm}/gateways").json()
    return {g["gateway_id"]: g["online"] for g in gws}


@pytest.mark.timeout(60)
def test_two_of_three_gateways_die_and_the_firm_confirms(mosquitto: Mosquitto, rig: ApiRig) -> None:
    rig.seed_firm("acme")
    watcher = DisruptionWatcher(
        settings=WatchSettings(
            broker=BrokerSettings.from_url(mosquitto.url, client_id="watch-test")
        ),
        engine=rig.engine,
        rules=SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2),
    )
    watcher.start()
    gateways: list[FakeGateway] = []
    try:
        assert watcher.wait_ready(10)
        gateways = [FakeGateway(mosquitto.port, "acme", "acme-s1", f"gw-{i}") for i in (1, 2, 3)]
        wait_for(
            lambda: _online(rig, "acme") == {"gw-1": True, "gw-2": True, "gw-3": True},
            10,
            '_online(rig, "acme") == {"gw-1": True, "gw-2": True, "gw-3": True}',
        )
        # malformed state messages are counted and do not stop the watcher
        bad = gateways[2].client
        bad.publish("renkei/v1/acme/acme-s1/_gw/gw-x/state", b"not json", qos=1).wait_for_publish(5)
        wrong_gw = encode(GatewayState(v=1, gw="gw-2", online=False, sent_ms=_now_ms()))
        bad.publish("renkei/v1/acme/acme-s1/_gw/gw-9/state", wrong_gw, qos=1).wait_for_publish(5)
        wait_for(lambda: watcher.stats().malformed == 2, 10, lambda: str(watcher.stats()))
        assert _suspected(rig, "acme") == []

        gateways[0].crash()
        wait_for(
            lambda: _online(rig, "acme").get("gw-1") is False,
            10,
            '_online(rig, "acme").get("gw-1") is False',
        )
        assert _suspected(rig, "acme") == []  # one of three is not "most"
        gateways[1].crash()
        wait_for(lambda: len(_suspected(rig, "acme")) == 1, 10, lambda: str(watcher.stats()))
        [d] = _suspected(rig, "acme")
        assert d["source"] == "last_will" and d["site_id"] == "acme-s1"
        assert {g["gateway_id"] for g in d["detail"]["offline"]} == {"gw-1", "gw-2"}
        assert d["radius_km"] == 30.0
        assert watcher.stats().suspicions == 1

        r = rig.client("acme").post(f"/api/v1/firms/acme/disruptions/{d['id']}/confirm")
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        assert watcher.stats().errors == 0 and watcher.stats().db_retries == 0
    finally:
        for g in gateways:
            g.close()
        watcher.stop()


class WatchProcess:
    """``renkei cloud watch`` as a child process (the real command line)."""

    def __init__(self, broker: str, database_url: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "renkei.cli",
                "cloud",
                "watch",
                "--broker",
                broker,
                "--database-url",
                database_url,
                "--client-id",
                "watch-cli-test",
                "--no-migrate",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: any("subscribed" in x for x in self.lines), 20, lambda: str(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.mark.timeout(90)
def test_outage_while_the_watcher_is_down_then_dismissed(mosquitto: Mosquitto, rig: ApiRig) -> None:
    """``renkei cloud watch`` records the births and stops cleanly on SIGTERM; the Wills
    published while no watcher runs wait in its persistent session and raise the
    suspicion when a watcher with the same client id comes back; the firm dismisses it,
    and the same outage is not raised again."""
    rig.seed_firm("beta")
    watch = WatchProcess(mosquitto.url, str(rig.engine.url))
    gateways: list[FakeGateway] = []
    watcher: DisruptionWatcher | None = None
    try:
        gateways = [FakeGateway(mosquitto.port, "beta", "beta-s1", f"gw-{i}") for i in (1, 2, 3)]
        wait_for(lambda: len(_online(rig, "beta")) == 3, 10, "three beta gateways online")
        watch.stop()
        assert watch.proc.returncode == 0, watch.lines
        gateways[0].crash()
        gateways[1].crash()
        pause(0.5, "the Wills are queued in the watcher's session meanwhile")
        assert _suspected(rig, "beta") == []
        watcher = DisruptionWatcher(
            settings=WatchSettings(
                broker=BrokerSettings.from_url(mosquitto.url, client_id="watch-cli-test")
            ),
            engine=rig.engine,
            rules=SuspectRules(),
        )
        watcher.start()
        wait_for(lambda: len(_suspected(rig, "beta")) == 1, 15, lambda: str(watcher.stats()))
        [d] = _suspected(rig, "beta")
        rig.now = datetime.now(UTC)
        r = rig.client("beta").post(
            f"/api/v1/firms/beta/disruptions/{d['id']}/dismiss", json={"note": "switch reboot"}
        )
        assert r.status_code == 200 and r.json()["status"] == "dismissed"
        gateways[2].crash()
        wait_for(
            lambda: _online(rig, "beta").get("gw-3") is False,
            10,
            '_online(rig, "beta").get("gw-3") is False',
        )
        pause(0.3, "no suspicion may follow the dismissed one")
        assert _suspected(rig, "beta") == []
        listed = rig.client("beta").get("/api/v1/firms/beta/disruptions").json()
        assert [x["status"] for x in listed] == ["dismissed"]
    finally:
        for g in gateways:
            g.close()
        watch.stop()
        if watcher is not None:
            watcher.stop()
