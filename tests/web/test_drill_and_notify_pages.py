"""Disaster drills and notification settings from the page, in a real headless Chromium
at 390 px (a phone) and 1366 px (a laptop):

- the disrupted firm's operator creates a takeover request as a *drill* from the form: the
  plan shows the drill badge and nothing is offered to a partner (checked through the
  API); "Make it a real request" (after a confirm dialog) promotes it, the page opens the
  new real request and the partner has offers;
- it edits its notification settings (language, e-mail, LINE, Slack webhook): after the
  save, the webhook URL is nowhere in the page's HTML, only its masked form; the recent
  deliveries are listed with their outcome and reason;
- it stores its own LINE channel access token (write-only: the page says "set", never the
  token) and sends a test message from the button: each destination's outcome is shown
  (e-mail and LINE sent to aiosmtpd and a recording LINE stand-in, Slack skipped with the
  host named), in English and Japanese; a second test at once is refused and explained;
- axe-core finds no serious or critical violation on both views.

Screenshots (viewport only) are written to ``docs/screenshots/`` at both widths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from renkei.cloud.notify import NotifySettings
from renkei.cloud.registry import (
    DeliveryStatus,
    NotificationChannel,
    NotificationDelivery,
    Role,
    session_scope,
)
from tests.api.rig import NOW, ApiRig
from tests.notify_servers import RecordingServer, SmtpSink
from tests.web.axe import horizontal_overflow, screenshot, serious_violations
from tests.web.conftest import Live
from tests.web.harness import Browser, LiveServer
from tests.web.seed import HIT, KYOTO, seed_network

WIDTHS = (390, 1366)
_WIDE_JS = """
return [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((e) => !(e.parentElement && e.parentElement.closest('.table-scroll')))
  .slice(0, 5)
  .map((e) => `${e.tagName}#${e.id}.${e.className}`);
"""
HEIGHT = 900
SLACK_URL = "https://hooks.slack.com/services/T000/B000/s3cretWebhookTail9z"
LINE_ID = "U" + "0123456789abcdef" * 2


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def width(request: pytest.FixtureRequest, page: Browser) -> Iterator[int]:
    """The viewport's CSS width for this test (mobile=False, as in test_ops), reset after."""
    w: int = request.param
    page.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": w, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    yield w
    page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _plan_shown(page: Browser, request_id: str) -> None:
    page.wait_for(
        lambda d: d.execute_script(
            "const p = document.getElementById('takeover-plan');"
            "return p && p.dataset.requestId === arguments[0];",
            request_id,
        ),
        f"plan {request_id}",
    )
    page.wait_idle()


def test_drill_from_the_page_then_promote(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    owner = live.rig.client(HIT, Role.OPERATOR)
    partner = live.rig.client(KYOTO, Role.PARTNER)
    page.open(live.url, "/app/#takeovers")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.wait_view("takeovers")
    page.click("#takeover-new")
    page.wait_visible("#takeover-form")
    assert "partners are not contacted" in page.text("#tf-drill-hint")
    page.fill_date("#tf-start", "2026-11-30")
    page.fill_date("#tf-last", "2026-12-13")
    page.fill("#tf-id", "drill-web")
    page.fill("#tf-job-1-part", "P-COVER")
    page.select("#tf-job-1-mold", "m-cover")
    page.fill("#tf-job-1-volume", "3000")
    page.click("#tf-drill")
    assert page.find("#tf-drill").is_selected()
    page.click("#tf-submit")
    _plan_shown(page, "drill-web")

    # the plan shows the drill badge; nothing is offered (API)
    assert page.visible("#plan-drill")
    assert "Drill" in page.text('#takeover-list tr[data-request-id="drill-web"]')
    stored = owner.get(f"/api/v1/firms/{HIT}/takeovers/drill-web").json()
    assert stored["drill"] is True
    assert stored["assignments"], "the drill is planned with partners' machines"
    assert {a["status"] for a in stored["assignments"]} == {"drill"}
    offered = partner.get(f"/api/v1/firms/{KYOTO}/assignments")
    assert offered.status_code == 200, offered.text
    assert offered.json() == []
    assert horizontal_overflow(page) <= 0, page.js(_WIDE_JS)
    screenshot(page, f"drill-plan-{width}", at="#takeover-plan")
    assert serious_violations(page) == []

    # cancel first: nothing happens; then confirm
    page.click("#plan-promote")
    page.wait_visible("#promote-dialog")
    assert "drill-web" in page.text("#promote-summary")
    page.click("#promote-cancel")
    page.wait_for(lambda d: not page.visible("#promote-dialog"), "the dialog to close")
    assert owner.get(f"/api/v1/firms/{HIT}/takeovers/drill-web").json()["promoted_to"] is None
    page.click("#plan-promote")
    page.wait_visible("#promote-dialog")
    assert serious_violations(page, context="#promote-dialog") == []
    page.click("#promote-confirm")
    page.wait_for(
        lambda d: d.execute_script(
            "const p = document.getElementById('takeover-plan');"
            "return p && p.dataset.requestId !== 'drill-web' && p.dataset.requestId;"
        ),
        "the promoted request",
    )
    page.wait_idle()
    new_id = str(page.find("#takeover-plan").get_attribute("data-request-id"))
    assert new_id in page.driver.current_url
    assert not page.visible("#plan-drill") and not page.visible("#plan-promote")
    assert f"Drill drill-web is now the real request {new_id}." in page.text("#status")
    real = owner.get(f"/api/v1/firms/{HIT}/takeovers/{new_id}").json()
    assert real["drill"] is False
    assert {a["status"] for a in real["assignments"]} == {"proposed"}
    drill = owner.get(f"/api/v1/firms/{HIT}/takeovers/drill-web").json()
    assert (drill["status"], drill["promoted_to"]) == ("closed", new_id)
    offers = partner.get(f"/api/v1/firms/{KYOTO}/assignments").json()
    assert offers and {a["status"] for a in offers} == {"proposed"}
    assert page.find_all("#takeover-plan tr[data-assignment-id][data-status=proposed]")
    assert not page.visible("#error")
    assert page.console_problems() == []


def _seed_deliveries() -> list[NotificationDelivery]:
    return [
        NotificationDelivery(
            firm_id=HIT,
            event="accepted",
            reference="assignment 7",
            channel=NotificationChannel.LINE,
            target="U012…cdef",
            status=DeliveryStatus.SENT,
            reason="",
            at=NOW - timedelta(hours=2),
        ),
        NotificationDelivery(
            firm_id=HIT,
            event="alert",
            reference="grafana firing (1 alerts)",
            channel=NotificationChannel.EMAIL,
            target="ops@…",
            status=DeliveryStatus.FAILED,
            reason="SMTP server refused the connection",
            at=NOW - timedelta(hours=1),
        ),
    ]


def test_notification_settings_from_the_page(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    with session_scope(live.rig.engine) as s:
        s.add_all(_seed_deliveries())
    owner = live.rig.client(HIT, Role.OPERATOR)
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.click("nav a[data-view=notifications]")
    page.wait_view("notifications")
    page.wait_visible("#notify-form")
    assert "No Slack webhook stored." in page.text("#n-slack-now")

    # the deliveries, newest first, with outcome and reason
    rows = page.find_all("#notify-deliveries tr[data-delivery-id]")
    assert [r.get_attribute("data-status") for r in rows] == ["failed", "sent"]
    assert "SMTP server refused the connection" in rows[0].text
    assert "Failed" in rows[0].text and "Sent" in rows[1].text

    page.select("#n-language", "en")
    page.fill("#n-email", "ops@tohoku-mold.example\nboss@tohoku-mold.example")
    page.fill("#n-line", LINE_ID)
    page.fill("#n-slack", SLACK_URL)
    page.click("#notify-save")
    page.wait_text("#status", "Notification settings saved.")
    page.wait_idle()
    stored = owner.get(f"/api/v1/firms/{HIT}/notifications").json()
    assert stored["language"] == "en"
    assert stored["email_to"] == ["boss@tohoku-mold.example", "ops@tohoku-mold.example"]
    assert stored["line_to"] == [LINE_ID]
    assert stored["slack_webhook_set"] is True
    html = page.driver.page_source
    assert SLACK_URL not in html and "s3cretWebhookTail" not in html
    assert stored["slack_webhook_masked"] in page.text("#n-slack-now")
    assert page.find("#n-slack").get_attribute("value") in (None, "")
    assert horizontal_overflow(page) <= 0, page.js(_WIDE_JS)
    screenshot(page, f"notifications-{width}")
    assert serious_violations(page) == []

    # an empty URL field keeps the stored URL; other fields still change
    page.fill("#n-line", "")
    page.click("#notify-save")
    page.wait_for(
        lambda _: owner.get(f"/api/v1/firms/{HIT}/notifications").json()["line_to"] == [],
        "LINE ids removed",
    )
    page.wait_idle()
    again = owner.get(f"/api/v1/firms/{HIT}/notifications").json()
    assert again["slack_webhook_masked"] == stored["slack_webhook_masked"]

    # a bad LINE id: the API's error is shown, nothing is stored
    page.fill("#n-line", "not-a-line-id")
    page.click("#notify-save")
    page.wait_visible("#notify-form .form-errors")
    assert "line_to" in page.text("#notify-form .form-errors")
    assert owner.get(f"/api/v1/firms/{HIT}/notifications").json()["line_to"] == []

    # removing the webhook
    page.click("#n-slack-clear")
    page.fill("#n-line", "")
    page.click("#notify-save")
    page.wait_text("#n-slack-now", "No Slack webhook stored.")
    assert owner.get(f"/api/v1/firms/{HIT}/notifications").json()["slack_webhook_set"] is False
    assert page.console_problems(allow_http_errors=True) == []


FIRM_LINE_TOKEN = "firmOwnLineToken-0123456789-s3cret"


@dataclass
class NotifyLive(Live):
    """A live API whose notifications go to aiosmtpd and a recording LINE stand-in."""

    smtp: SmtpSink
    line: RecordingServer


@pytest.fixture
def nlive(tmp_path: Path) -> Iterator[NotifyLive]:
    smtp, line = SmtpSink(), RecordingServer()
    notify = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="renkei@example.jp",
        line_api_base=line.url,
        backoff_s=0,
        slack_hosts=("127.0.0.1",),  # hooks.slack.com is skipped, never looked up
    )
    rig = ApiRig(tmp_path, notify=notify)
    server = LiveServer(rig.app)
    server.start()
    try:
        yield NotifyLive(rig, server, smtp, line)
    finally:
        server.stop()
        rig.close()
        line.close()
        smtp.close()


def test_line_token_and_test_message_from_the_page(
    nlive: NotifyLive, page: Browser, width: int
) -> None:
    seed_network(nlive.rig)
    owner = nlive.rig.client(HIT, Role.OPERATOR)
    r = owner.patch(
        f"/api/v1/firms/{HIT}/notifications",
        json={
            "language": "en",
            "email_to": ["ops@tohoku-mold.example"],
            "line_to": [LINE_ID],
            "slack_webhook_url": SLACK_URL,  # hooks.slack.com: not an allowed host here
        },
    )
    assert r.status_code == 200, r.text
    page.open(nlive.url, "/app/")
    page.sign_in(nlive.rig.key(HIT, Role.OPERATOR))
    page.click("nav a[data-view=notifications]")
    page.wait_view("notifications")
    page.wait_visible("#notify-form")
    assert "Not set" in page.text("#n-line-token-now")

    # the firm's own LINE token: write-only
    page.fill("#n-line-token", FIRM_LINE_TOKEN)
    page.click("#notify-save")
    page.wait_text("#status", "Notification settings saved.")
    page.wait_text("#n-line-token-now", "Set:")
    assert owner.get(f"/api/v1/firms/{HIT}/notifications").json()["line_channel_token_set"]
    assert FIRM_LINE_TOKEN not in page.driver.page_source
    assert page.find("#n-line-token").get_attribute("value") in (None, "")

    # the test message: each destination's outcome under the button
    page.click("#notify-test-send")
    page.wait_text("#status", "Test message: 2 sent, 0 failed, 1 skipped.")
    items = page.find_all("#notify-test-result li")
    got = [(i.get_attribute("data-channel"), i.get_attribute("data-status")) for i in items]
    assert got == [("email", "sent"), ("slack", "skipped"), ("line", "sent")]
    assert "'hooks.slack.com' is not in RENKEI_NOTIFY_SLACK_HOSTS" in items[1].text
    assert "Sent" in items[0].text and "o***@tohoku-mold.example" in items[0].text
    ((envelope, mail),) = nlive.smtp.messages
    assert envelope.rcpt_tos == ["ops@tohoku-mold.example"]
    assert mail["Subject"] == "[Renkei] Test notification"
    (push,) = nlive.line.requests
    assert push.headers["authorization"] == f"Bearer {FIRM_LINE_TOKEN}"
    assert push.json()["to"] == LINE_ID
    page.wait_for(
        lambda _: len(page.find_all("#notify-deliveries tr[data-delivery-id]")) == 3,
        "the deliveries list with the test",
    )
    assert "Test message" in page.text("#notify-deliveries")
    html = page.driver.page_source
    for secret in (FIRM_LINE_TOKEN, "s3cretWebhookTail"):
        assert secret not in html
    assert horizontal_overflow(page) <= 0, page.js(_WIDE_JS)
    screenshot(page, f"notifications-test-{width}", at="#notify-test")
    assert serious_violations(page) == []

    # in Japanese, the outcomes are re-rendered
    page.click("#lang-toggle")
    page.wait_text("#notify-test-result", "送信済み")
    assert "スキップ" in page.text("#notify-test-result")
    assert serious_violations(page) == []
    page.click("#lang-toggle")

    # again at once: refused (429), explained, the outcomes shown stay
    page.click("#notify-test-send")
    page.wait_text("#error", "Please wait a moment before trying again.")
    assert "too_many_requests" in page.text("#error")
    assert len(page.find_all("#notify-test-result li")) == 3
    assert len(nlive.smtp.messages) == 1 and len(nlive.line.requests) == 1

    # removing the token
    page.click("#n-line-token-clear")
    page.click("#notify-save")
    page.wait_text("#n-line-token-now", "Not set")
    assert not owner.get(f"/api/v1/firms/{HIT}/notifications").json()["line_channel_token_set"]
    assert page.console_problems(allow_http_errors=True) == []
