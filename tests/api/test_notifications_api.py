"""Notification settings, Grafana's webhook → LINE, and takeover offers/answers notified
by e-mail (aiosmtpd) and LINE (a recording server standing in for the LINE platform),
after the commit, with secrets never returned nor logged and no cross-firm pushes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.cloud.notify import NotifySettings
from renkei.cloud.registry import NotificationDelivery, session_scope
from tests.api.rig import ApiRig
from tests.api.test_takeovers_api import WINDOW, declare, job, seed_world
from tests.notify_servers import RecordingServer, SmtpSink

TOKEN = "platform-LINE-token-0123456789-SECRET"
SLACK = "https://hooks.slack.example/services/T0/B0/SLACKSECRETxyz"
LINE_A = "U" + "a" * 32
LINE_B = "C" + "b" * 32


@pytest.fixture
def nrig(
    tmp_path: Path, registry_url: str, line: RecordingServer, smtp: SmtpSink
) -> Iterator[ApiRig]:
    settings = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="renkei@example.jp",
        line_api_base=line.url,
        line_channel_token=TOKEN,
        backoff_s=0,
        slack_hosts=("hooks.slack.example",),
    )
    r = ApiRig(tmp_path, database_url=registry_url, notify=settings)
    try:
        yield r
    finally:
        r.close()


def drain(rig: ApiRig) -> None:
    assert rig.app.state.notify.drain(30.0)


def deliveries(rig: ApiRig, firm: str) -> list[NotificationDelivery]:
    with session_scope(rig.engine) as s:
        return list(
            s.scalars(select(NotificationDelivery).where(NotificationDelivery.firm_id == firm))
        )


def test_settings_secrets_are_write_only_and_owner_only(
    nrig: ApiRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    nrig.seed_firm("A")
    nrig.seed_firm("B")
    a = nrig.client("A")
    url = "/api/v1/firms/A/notifications"
    assert a.get(url).json()["slack_webhook_set"] is False
    r = a.patch(
        url,
        json={
            "language": "en",
            "email_to": ["ops@a.example.jp"],
            "line_to": [LINE_A],
            "slack_webhook_url": SLACK,
            "line_channel_token": "firm-own-token-ABCDEFGHIJKLMNOP",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["slack_webhook_set"] and body["line_channel_token_set"]
    assert body["slack_webhook_masked"] == "https://hooks.slack.example/…Txyz"
    for resp in (r, a.get(url)):
        assert "SLACKSECRET" not in resp.text and "firm-own-token" not in resp.text
    # A partial update keeps the secrets; null removes one.
    assert a.patch(url, json={"language": "ja"}).json()["slack_webhook_set"] is True
    assert a.patch(url, json={"line_channel_token": None}).json()["line_channel_token_set"] is False
    # Bad values: 422 naming the field, never echoing a secret.
    bad = a.patch(url, json={"slack_webhook_url": "http://insecure/SLACKSECRET2"})
    assert bad.status_code == 422 and "slack_webhook_url" in bad.text
    assert "SLACKSECRET2" not in bad.text
    bad = a.patch(url, json={"line_to": ["not-a-line-id"]})
    assert bad.status_code == 422 and "line_to[0]" in bad.text
    # Another firm can neither read nor change A's settings; a partner key not even its own.
    b = nrig.client("B")
    assert b.get(url).status_code == 403
    assert b.patch(url, json={"line_to": [LINE_B]}).status_code == 403
    assert nrig.client("A", "partner").get(url).status_code == 403
    assert a.get(url).json()["line_to"] == [LINE_A]
    assert "SLACKSECRET" not in caplog.text and "firm-own-token" not in caplog.text


GRAFANA = {
    "receiver": "renkei",
    "status": "firing",
    "title": "[FIRING:1] Mold due for maintenance",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Mold due for maintenance", "machine": "a1", "mold": "m1"},
            "annotations": {"summary": "m1 on a1: maintenance due within 5000 shots"},
            "fingerprint": "x",
        }
    ],
    "to": LINE_B,  # a target in the payload is ignored: only the firm's settings count
}


def test_grafana_webhook_pushes_to_the_firms_own_line_target(
    nrig: ApiRig, line: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    nrig.seed_firm("A")
    nrig.seed_firm("B")
    a, b = nrig.client("A"), nrig.client("B")
    assert a.patch("/api/v1/firms/A/notifications", json={"line_to": [LINE_A]}).status_code == 200
    assert b.patch("/api/v1/firms/B/notifications", json={"line_to": [LINE_B]}).status_code == 200
    # B's key cannot push to A's target, nor can an anonymous caller.
    assert b.post("/api/v1/firms/A/notifications/grafana", json=GRAFANA).status_code == 403
    assert (
        nrig.client().post("/api/v1/firms/A/notifications/grafana", json=GRAFANA).status_code == 401
    )
    grafana = nrig.client("A", "engineer")
    r = grafana.post("/api/v1/firms/A/notifications/grafana", json=GRAFANA)
    assert r.status_code == 202, r.text
    assert r.json() == {"alerts": 1, "channels": ["line"]}
    drain(nrig)
    (req,) = line.requests
    assert req.path == "/v2/bot/message/push"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    pushed = req.json()
    assert pushed["to"] == LINE_A
    text = pushed["messages"][0]["text"]
    assert pushed["messages"][0]["type"] == "text" and len(text) <= 5000
    assert "アラート 発生 1 件" in text and "m1 on a1: maintenance due" in text
    (row,) = deliveries(nrig, "A")
    assert (row.channel.value, row.status.value, row.target) == ("line", "sent", "Uaaaa…")
    assert deliveries(nrig, "B") == []
    listed = a.get("/api/v1/firms/A/notifications/deliveries").json()
    assert [d["status"] for d in listed] == ["sent"]
    assert b.get("/api/v1/firms/A/notifications/deliveries").status_code == 403
    assert (
        grafana.post("/api/v1/firms/A/notifications/grafana?channels=fax", json=GRAFANA).status_code
        == 422
    )
    assert TOKEN not in caplog.text


def test_offer_and_answers_notify_partner_and_owner_after_commit(
    nrig: ApiRig, line: RecordingServer, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_world(nrig)
    a, b = nrig.client("A"), nrig.client("B")
    b.patch(
        "/api/v1/firms/B/notifications",
        json={"language": "ja", "email_to": ["plan@b.example.jp"], "line_to": [LINE_B]},
    )
    a.patch(
        "/api/v1/firms/A/notifications",
        json={"language": "en", "email_to": ["boss@a.example.jp"], "slack_webhook_url": SLACK},
    )
    disruption = declare(nrig)
    body = {"id": "tko-1", "disruption_id": disruption, **WINDOW, "jobs": [job("J1", "m1", 5000)]}
    r = a.post("/api/v1/firms/A/takeovers", json=body)
    assert r.status_code == 201, r.text
    drain(nrig)
    offers_b = [x for x in r.json()["assignments"] if x["partner_firm_id"] == "B"]
    assert offers_b, r.json()["assignments"]
    # The partner B: one e-mail in Japanese and one LINE push.
    mails = [m for e, m in smtp.messages if e.rcpt_tos == ["plan@b.example.jp"]]
    assert len(mails) == 1
    assert mails[0]["Subject"] == "[Renkei] A Co. から代替生産の依頼 (1 件)"
    assert "P-J1" in mails[0].get_content() and "承諾または辞退" in mails[0].get_content()
    pushes = [q.json() for q in line.requests]
    assert [p["to"] for p in pushes] == [LINE_B]
    assert "代替生産" in pushes[0]["messages"][0]["text"]
    # The owner accepts nothing itself: no mail to A yet.
    assert not [m for e, m in smtp.messages if e.rcpt_tos == ["boss@a.example.jp"]]

    # LINE is down: B's accept still succeeds; the owner A is told by e-mail in English;
    # its Slack webhook (unreachable host) fails and is recorded without the URL.
    line.replies.extend([(500, "{}")] * 10)
    r = b.post(f"/api/v1/firms/B/assignments/{offers_b[0]['id']}/accept", json={"note": "OK"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    drain(nrig)
    mails = [m for e, m in smtp.messages if e.rcpt_tos == ["boss@a.example.jp"]]
    assert len(mails) == 1 and mails[0]["Subject"] == "[Renkei] B Co. accepted: P-J1"
    assert "Note: OK" in mails[0].get_content()
    rows = {(d.event, d.channel.value): d for d in deliveries(nrig, "A")}
    assert rows["accepted", "email"].status.value == "sent"
    slack = rows["accepted", "slack"]
    assert slack.status.value == "failed" and "SLACKSECRET" not in slack.reason + slack.target
    assert "SLACKSECRET" not in caplog.text and TOKEN not in caplog.text


def test_decline_notifies_owner_and_a_failed_line_is_recorded(
    nrig: ApiRig, line: RecordingServer, smtp: SmtpSink
) -> None:
    seed_world(nrig)
    a, b = nrig.client("A"), nrig.client("B")
    b.patch("/api/v1/firms/B/notifications", json={"line_to": [LINE_B]})
    a.patch("/api/v1/firms/A/notifications", json={"language": "ja", "line_to": [LINE_A]})
    disruption = declare(nrig)
    body = {"id": "tko-2", "disruption_id": disruption, **WINDOW, "jobs": [job("J1", "m1", 5000)]}
    plan = a.post("/api/v1/firms/A/takeovers", json=body).json()
    drain(nrig)
    offer = next(x for x in plan["assignments"] if x["partner_firm_id"] == "B")
    line.requests.clear()
    line.replies.append((400, '{"message":"Failed to send messages"}'))
    r = b.post(f"/api/v1/firms/B/assignments/{offer['id']}/decline", json={"note": "full"})
    assert r.status_code == 200 and r.json()["status"] == "declined"
    drain(nrig)
    to_a = [q.json() for q in line.requests if q.json()["to"] == LINE_A]
    assert len(to_a) == 1 and "辞退" in to_a[0]["messages"][0]["text"]
    failed = [d for d in deliveries(nrig, "A") if d.status.value == "failed"]
    assert not failed or "HTTP 400" in failed[0].reason


def test_a_slack_url_on_another_host_is_never_called(
    nrig: ApiRig, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """A firm cannot make the cloud post to an internal address (SSRF): a webhook URL whose
    host is not in ``RENKEI_NOTIFY_SLACK_HOSTS`` is skipped, with the host named."""
    caplog.set_level(logging.DEBUG)
    seed_world(nrig)
    a, b = nrig.client("A"), nrig.client("B")
    internal = "https://169.254.169.254/latest/meta-data/SECRETPATH"
    r = a.patch(
        "/api/v1/firms/A/notifications",
        json={"email_to": ["boss@a.example.jp"], "slack_webhook_url": internal},
    )
    assert r.status_code == 200, r.text
    disruption = declare(nrig)
    body = {"id": "tko-3", "disruption_id": disruption, **WINDOW, "jobs": [job("J1", "m1", 5000)]}
    plan = a.post("/api/v1/firms/A/takeovers", json=body).json()
    drain(nrig)
    offer = next(x for x in plan["assignments"] if x["partner_firm_id"] == "B")
    assert b.post(f"/api/v1/firms/B/assignments/{offer['id']}/accept", json={}).status_code == 200
    drain(nrig)
    rows = {(d.event, d.channel.value): d for d in deliveries(nrig, "A")}
    slack = rows["accepted", "slack"]
    assert slack.status.value == "skipped", slack.reason
    assert "'169.254.169.254' is not in RENKEI_NOTIFY_SLACK_HOSTS" in slack.reason
    assert rows["accepted", "email"].status.value == "sent"  # the other channels still go
    assert "SECRETPATH" not in slack.reason + slack.target + caplog.text
