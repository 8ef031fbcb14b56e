"""Issue 15's proof, end to end: from a gateway going dark to the owner hearing that a
partner took the work.

Real parts only, each on a free loopback port: Mosquitto, the disruption watcher
(:class:`renkei.cloud.disruption.DisruptionWatcher`), the API served by uvicorn with a temp
SQLite registry, headless Chromium, an SMTP server (aiosmtpd) and a recording HTTP server
standing in for the LINE Messaging API.

1. Two of ``tohoku-mold``'s gateways die abruptly (socket closed without DISCONNECT): the
   broker publishes their MQTT Last Will and the watcher records a *suspected* disruption.
2. The owner's operator confirms it in the web page.
3. A **drill** takeover is planned for it (through the API, ``POST /firms/{firm}/takeovers``
   with ``"drill": true`` as the owner's operator; the page's drill switch and promote
   button are tested in ``test_drill_and_notify_pages.py``); the
   page shows the drill badge. No partner is contacted: neither the SMTP server nor the
   LINE recorder receives anything.
4. The drill is promoted to a real takeover (through the API,
   ``POST .../takeovers/{id}/promote`` as the owner's operator). The partner
   ``kyoto-mold`` receives one e-mail and one LINE push (``Authorization: Bearer <channel
   token>``, JSON ``{"to": ..., "messages": [{"type": "text", "text": ...}]}``).
5. The partner accepts its offer in the web page; the owner is told by e-mail and LINE.

The API's clock and the watcher's clock are the rig's fixed clock (no dependence on the
date or time of day). Every wait is bounded; nothing sleeps for a tuned time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.services import Mosquitto
from harness.wait import wait_for
from renkei.cloud.disruption import DisruptionWatcher, SuspectRules, WatchSettings
from renkei.cloud.notify import NotifySettings
from renkei.cloud.registry import Role
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import GatewayState, encode, gateway_topic
from tests.api.rig import NOW, ApiRig
from tests.notify_servers import Recorded, RecordingServer, SmtpSink
from tests.web.harness import Browser, LiveServer
from tests.web.seed import HIT, KYOTO, WINDOW, seed_network
from tests.web.test_takeovers import _open_plan

TOKEN = "e2e-LINE-channel-token-0123456789"
LINE_KYOTO = "U" + "c" * 32
LINE_HIT = "U" + "d" * 32
MAIL_KYOTO = "plan@kyoto.example.jp"
MAIL_HIT = "boss@tohoku.example.jp"
SITE = f"{HIT}-s1"
T0_MS = int((NOW - timedelta(hours=1)).timestamp() * 1000)
"""``sent_ms`` of the gateways' births and Wills (the rig's clock, an hour earlier)."""


class Gateway:
    """A gateway's MQTT side as :mod:`renkei.edge.transport.publisher` sets it up: MQTT 5,
    Last Will ``online = false`` retained at QoS 1, a retained birth after connecting."""

    def __init__(self, port: int, gw: str) -> None:
        self.topic = gateway_topic(firm=HIT, site=SITE, gateway=gw, kind="state")
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"e2e-{gw}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        will = encode(GatewayState(v=1, gw=gw, online=False, sent_ms=T0_MS))
        self.client.will_set(self.topic, will, qos=1, retain=True)
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.connect("127.0.0.1", port, keepalive=60, clean_start=True)
        self.client.loop_start()
        assert self.connected.wait(10), f"gateway {gw} did not connect"
        birth = encode(
            GatewayState(v=1, gw=gw, online=True, sent_ms=T0_MS + 1, agent_version="e2e")
        )
        self.client.publish(self.topic, birth, qos=1, retain=True).wait_for_publish(10)

    def crash(self) -> None:
        """Close the socket without DISCONNECT: the broker publishes the Last Will at once."""
        sock = self.client.socket()
        self.client.loop_stop()
        assert sock is not None
        sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class World:
    rig: ApiRig
    server: LiveServer
    smtp: SmtpSink
    line: RecordingServer

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for e, m in self.smtp.messages if e.rcpt_tos == [address]]

    def pushes_to(self, target: str) -> list[Recorded]:
        return [q for q in self.line.requests if q.json().get("to") == target]

    def drain(self) -> None:
        assert self.rig.app.state.notify.drain(20.0), "notifications not delivered in 20 s"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The API with notifications going to a real SMTP server and a LINE recorder."""
    smtp, line = SmtpSink(), RecordingServer()
    (tmp_path / "api").mkdir()
    rig = ApiRig(
        tmp_path / "api",
        notify=NotifySettings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from="renkei@example.jp",
            line_api_base=line.url,
            line_channel_token=TOKEN,
            backoff_s=0,
        ),
    )
    server = LiveServer(rig.app)
    server.start()
    try:
        yield World(rig, server, smtp, line)
    finally:
        server.stop()
        rig.close()
        line.close()
        smtp.close()


def _suspected(rig: ApiRig) -> list[dict[str, Any]]:
    r = rig.client(HIT).get(f"/api/v1/firms/{HIT}/disruptions?status=suspected")
    assert r.status_code == 200, r.text
    return list(r.json())


def _assert_line_push(req: Recorded, to: str) -> str:
    """The LINE Messaging API's push request shape; returns the text."""
    assert req.method == "POST" and req.path == "/v2/bot/message/push"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"].startswith("application/json")
    body = req.json()
    assert set(body) == {"to", "messages"} and body["to"] == to
    [message] = body["messages"]
    assert set(message) == {"type", "text"} and message["type"] == "text"
    text: str = message["text"]
    assert 0 < len(text) <= 5000
    return text


@pytest.mark.timeout(120)
def test_gateway_offline_to_partner_accepting_with_notifications(
    mosquitto: Mosquitto, world: World, page: Browser
) -> None:
    rig = world.rig
    seed_network(rig)
    owner, partner = rig.client(HIT, Role.OPERATOR), rig.client(KYOTO, Role.OPERATOR)
    for client, firm, mail, line_to in (
        (owner, HIT, MAIL_HIT, LINE_HIT),
        (partner, KYOTO, MAIL_KYOTO, LINE_KYOTO),
    ):
        r = client.patch(
            f"/api/v1/firms/{firm}/notifications",
            json={"language": "en", "email_to": [mail], "line_to": [line_to]},
        )
        assert r.status_code == 200, r.text

    # 1. two of the site's three gateways die: Last Will -> suspected disruption
    watcher = DisruptionWatcher(
        settings=WatchSettings(
            broker=BrokerSettings.from_url(mosquitto.url, client_id=f"e2e-{uuid.uuid4().hex[:6]}")
        ),
        engine=rig.engine,
        rules=SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2),
        clock=lambda: rig.now,
    )
    watcher.start()
    gateways: list[Gateway] = []
    try:
        assert watcher.wait_ready(10), "the watcher did not subscribe in 10 s"
        gateways = [Gateway(mosquitto.port, f"gw-{i}") for i in (1, 2, 3)]

        def online() -> dict[str, bool]:
            gws = owner.get(f"/api/v1/firms/{HIT}/gateways").json()
            return {g["gateway_id"]: g["online"] for g in gws}

        wait_for(
            lambda: online() == dict.fromkeys(("gw-1", "gw-2", "gw-3"), True),
            10,
            lambda: str(online()),
        )
        gateways[0].crash()
        gateways[1].crash()
        wait_for(lambda: len(_suspected(rig)) == 1, 10, lambda: str(watcher.stats()))
        [suspicion] = _suspected(rig)
        assert (suspicion["source"], suspicion["site_id"]) == ("last_will", SITE)
        assert {g["gateway_id"] for g in suspicion["detail"]["offline"]} == {"gw-1", "gw-2"}
        assert watcher.stats().errors == 0
    finally:
        for g in gateways:
            g.close()
        watcher.stop()
    disruption_id = suspicion["id"]

    # 2. the owner confirms it in the web page
    page.open(world.server.url, "/app/#disruptions")
    page.sign_in(rig.key(HIT, Role.OPERATOR))
    page.wait_view("disruptions")
    row = page.find(f"#disruption-{disruption_id}")
    assert row.get_attribute("data-status") == "suspected"
    assert "gw-1" in row.text and "gw-2" in row.text
    page.click(f"#disruption-{disruption_id} button.confirm")
    page.wait_visible("#disruption-dialog")
    page.click("#disruption-dialog-ok")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"disruption-{disruption_id}").get_attribute("data-status")
            == "confirmed"
        ),
        "the disruption confirmed in the page",
    )
    url = f"/api/v1/firms/{HIT}/disruptions?status=confirmed"
    wait_for(
        lambda: [d["id"] for d in owner.get(url).json()] == [disruption_id],
        10,
        "the stored confirmation",
    )

    # 3. a drill takeover for it (API as the owner's operator)
    takeovers = f"/api/v1/firms/{HIT}/takeovers"
    r = owner.post(
        takeovers,
        json={
            "id": "drill-e2e",
            "drill": True,
            "disruption_id": disruption_id,
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "jobs": [
                {"job_id": "J1", "part_id": "P-COVER", "mold_id": "m-cover", "weekly_volume": 3000}
            ],
        },
    )
    assert r.status_code == 201, r.text
    drill = r.json()
    assert drill["drill"] is True and drill["origin_site_id"] == SITE
    assert {a["partner_firm_id"] for a in drill["assignments"]} == {KYOTO}
    assert {a["status"] for a in drill["assignments"]} == {"drill"}
    page.click("nav a[data-view=takeovers]")
    _open_plan(page, "drill-e2e")
    assert page.visible("#plan-drill")
    world.drain()
    assert world.mails_to(MAIL_KYOTO) == [] and world.pushes_to(LINE_KYOTO) == []
    assert world.smtp.messages == [] and world.line.requests == []  # nobody at all
    kyoto = rig.client(KYOTO, Role.PARTNER)
    assert kyoto.get(f"/api/v1/firms/{KYOTO}/assignments").json() == []

    # 4. promoted to a real takeover (API as the owner's operator)
    r = owner.post(f"{takeovers}/drill-e2e/promote", json={"id": "tko-e2e"})
    assert r.status_code == 201, r.text
    real = r.json()
    assert (real["id"], real["drill"], real["disruption_id"]) == ("tko-e2e", False, disruption_id)
    [offer] = [a for a in real["assignments"] if a["partner_firm_id"] == KYOTO]
    assert offer["status"] == "proposed"
    world.drain()
    [offer_mail] = world.mails_to(MAIL_KYOTO)
    assert offer_mail["From"] == "renkei@example.jp"
    assert "tko-e2e" in offer_mail.get_content() and "P-COVER" in offer_mail.get_content()
    [push] = world.pushes_to(LINE_KYOTO)
    assert "tko-e2e" in _assert_line_push(push, LINE_KYOTO)
    assert world.mails_to(MAIL_HIT) == [] and world.pushes_to(LINE_HIT) == []
    assert len(world.smtp.messages) == 1 and len(world.line.requests) == 1

    # 5. the partner accepts in the web page; the owner is told by e-mail and LINE
    page.click("#sign-out")
    page.sign_in(rig.key(KYOTO, Role.PARTNER))
    page.click("nav a[data-view=assignments]")
    page.wait_view("assignments")
    page.click(f"#assignment-{offer['id']} button.accept")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"assignment-{offer['id']}").get_attribute("data-status")
            == "accepted"
        ),
        "the assignment accepted in the page",
    )
    wait_for(
        lambda: (
            {a["id"]: a["status"] for a in kyoto.get(f"/api/v1/firms/{KYOTO}/assignments").json()}
            == {offer["id"]: "accepted"}
        ),
        10,
        "the stored acceptance",
    )
    world.drain()
    [to_owner] = world.mails_to(MAIL_HIT)
    assert "accepted" in to_owner["Subject"] and "P-COVER" in to_owner["Subject"]
    [owner_push] = world.pushes_to(LINE_HIT)
    text = _assert_line_push(owner_push, LINE_HIT)
    assert "tko-e2e" in text or "P-COVER" in text
    assert len(world.mails_to(MAIL_KYOTO)) == 1 and len(world.pushes_to(LINE_KYOTO)) == 1
    assert TOKEN not in page.text("body")
    assert page.console_problems() == []
