"""``POST /firms/{firm}/notifications/test``: one test message to each configured target,
sent at once, answered with each target's outcome and recorded in the delivery log (at
most one every 30 s per firm); against aiosmtpd and a recording HTTP server standing in
for the LINE platform. Another firm's key is refused and sends nothing; no secret appears
in a response or a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from renkei.cloud.notify import NotifySettings
from tests.api.rig import ApiRig
from tests.notify_servers import RecordingServer, SmtpSink

TOKEN = "platform-LINE-token-0123456789-SECRET"
FIRM_TOKEN = "firm-own-LINE-token-ABCDEFGHIJKLMNOP"
# An allowed Slack host (loopback) on a closed port: the webhook call fails, offline.
SLACK_DOWN = "https://127.0.0.1:9/services/T0/B0/SLACKSECRETxyz"
SLACK_ELSEWHERE = "https://hooks.slack.com/services/T0/B0/SLACKSECRETabc"
LINE_A = "U" + "a" * 32
LINE_A2 = "C" + "c" * 32
URL = "/api/v1/firms/{}/notifications/test"


@pytest.fixture
def trig(tmp_path: Path, line: RecordingServer, smtp: SmtpSink) -> Iterator[ApiRig]:
    settings = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="renkei@example.jp",
        line_api_base=line.url,
        line_channel_token=TOKEN,
        backoff_s=0,
        slack_hosts=("127.0.0.1",),
    )
    r = ApiRig(tmp_path, notify=settings)
    r.seed_firm("A")
    r.seed_firm("B")
    try:
        yield r
    finally:
        r.close()


def test_test_message_reaches_every_target_and_reports_each_outcome(
    trig: ApiRig, line: RecordingServer, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a = trig.client("A")
    r = a.patch(
        "/api/v1/firms/A/notifications",
        json={
            "language": "en",
            "email_to": ["ops@a.example.jp"],
            "line_to": [LINE_A, LINE_A2],
            "slack_webhook_url": SLACK_DOWN,
            "line_channel_token": FIRM_TOKEN,
        },
    )
    assert r.status_code == 200, r.text
    line.replies.extend([(200, "{}"), (400, '{"message":"The property, \'to\', is invalid"}')])

    r = a.post(URL.format("A"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["language"] == "en"
    got = [(d["channel"], d["target"], d["status"], d["event"]) for d in out["deliveries"]]
    assert got == [
        ("email", "o***@a.example.jp", "sent", "test"),
        ("slack", "https://127.0.0.1/…Txyz", "failed", "test"),
        ("line", "Uaaaa…", "sent", "test"),
        ("line", "Ccccc…", "failed", "test"),
    ]
    reasons = [d["reason"] for d in out["deliveries"]]
    assert reasons[0] == "" and reasons[2] == ""
    assert "Slack webhook: connection failed" in reasons[1]
    assert reasons[3] == "LINE Messaging API answered HTTP 400 The property, 'to', is invalid"

    # What was really sent: one e-mail in English, two LINE pushes with the firm's token.
    ((envelope, mail),) = smtp.messages
    assert envelope.rcpt_tos == ["ops@a.example.jp"]
    assert mail["Subject"] == "[Renkei] Test notification"
    assert "test of A Co.'s Renkei notification settings" in mail.get_content()
    assert [q.json()["to"] for q in line.requests] == [LINE_A, LINE_A2]
    assert {q.headers["authorization"] for q in line.requests} == {f"Bearer {FIRM_TOKEN}"}
    assert "[Renkei] Test notification" in line.requests[0].json()["messages"][0]["text"]

    # Recorded like any other delivery.
    listed = a.get("/api/v1/firms/A/notifications/deliveries").json()
    assert sorted(d["id"] for d in listed) == sorted(d["id"] for d in out["deliveries"])

    # Again at once: 429 with Retry-After, nothing sent (a key cannot flood the targets).
    again = a.post(URL.format("A"))
    assert again.status_code == 429, again.text
    assert again.headers["retry-after"] == "30"
    assert again.json()["error"]["detail"] == {"retry_after_s": 30}
    assert len(smtp.messages) == 1 and len(line.requests) == 2
    trig.now += timedelta(seconds=29)
    assert a.post(URL.format("A")).headers["retry-after"] == "1"
    trig.now += timedelta(seconds=1)

    # In Japanese when the firm says so; a Slack host not allowed is skipped and named.
    a.patch(
        "/api/v1/firms/A/notifications",
        json={"language": "ja", "line_to": [], "slack_webhook_url": SLACK_ELSEWHERE},
    )
    out = a.post(URL.format("A")).json()
    assert out["language"] == "ja"
    assert [(d["channel"], d["status"]) for d in out["deliveries"]] == [
        ("email", "sent"),
        ("slack", "skipped"),
    ]
    assert "'hooks.slack.com' is not in RENKEI_NOTIFY_SLACK_HOSTS" in out["deliveries"][1]["reason"]
    assert smtp.messages[-1][1]["Subject"] == "[Renkei] テスト通知"
    assert "この宛先への通知は正しく動作しています" in smtp.messages[-1][1].get_content()

    everything = r.text + a.get("/api/v1/firms/A/notifications/deliveries").text + caplog.text
    for secret in ("SLACKSECRET", FIRM_TOKEN, TOKEN):
        assert secret not in everything


def test_another_firm_cannot_send_a_test_and_nothing_is_sent(
    trig: ApiRig, line: RecordingServer, smtp: SmtpSink
) -> None:
    a = trig.client("A")
    a.patch(
        "/api/v1/firms/A/notifications",
        json={"email_to": ["ops@a.example.jp"], "line_to": [LINE_A]},
    )
    assert trig.client("B").post(URL.format("A")).status_code == 403
    assert trig.client("A", "partner").post(URL.format("A")).status_code == 403
    assert trig.client("A", "engineer").post(URL.format("A")).status_code == 403
    assert trig.client().post(URL.format("A")).status_code == 401
    assert smtp.messages == [] and line.requests == []
    assert a.get("/api/v1/firms/A/notifications/deliveries").json() == []
    # B itself has nothing set up: its own test sends nothing and says so (no rows).
    own = trig.client("B").post(URL.format("B"))
    assert own.status_code == 200 and own.json() == {"language": "ja", "deliveries": []}
    assert smtp.messages == [] and line.requests == []
    # An admin may test for a firm; a firm that does not exist is a 404.
    assert trig.client("A", "admin").post(URL.format("nobody")).status_code == 404
