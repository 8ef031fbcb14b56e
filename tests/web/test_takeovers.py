"""Takeover plans and partners' answers, in a real headless Chromium.

The disrupted firm's operator sees its plan with every unmet reason in words; a partner
accepts one assignment and declines another on its page (the rows change without a
reload), and the disrupted firm then sees both answers in its plan.
"""

from __future__ import annotations

from sqlalchemy import select

from renkei.cloud.registry import Role, TakeoverAssignment, session_scope
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, KYOTO, create_takeover, seed_network

REASONS_EN = {
    "no_compatible_machine": "no partner machine fits the mold",
    "no_capacity": "no spare hours left in the window",
    "not_shared": "do not share them with you",
    "only_inside_zone": "inside the disrupted zone",
}
REASONS_JA = {
    "no_compatible_machine": "金型に合うパートナーの設備がありません",
    "no_capacity": "期間内の余力が残っていません",
    "not_shared": "貴社に共有されていません",
    "only_inside_zone": "被災地域の中にしかありません",
}


def _open_plan(page: Browser, request_id: str) -> None:
    page.wait_view("takeovers")
    page.click(f'#takeover-list tr[data-request-id="{request_id}"] a')
    page.wait_for(
        lambda d: d.execute_script(
            "const p = document.getElementById('takeover-plan');"
            "return p && p.dataset.requestId === arguments[0];",
            request_id,
        ),
        f"plan {request_id}",
    )
    page.wait_idle()


def test_disrupted_operator_sees_plan_with_unmet_reasons(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    plan = create_takeover(live.rig)
    reasons = {u["reason"] for j in plan["jobs"] for u in j["unmet"]}
    assert reasons == set(REASONS_EN)  # the seed exercises every reason

    page.open(live.url, "/app/")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.click("nav a[data-view=takeovers]")
    page.wait_view("takeovers")
    row = page.find(f'#takeover-list tr[data-request-id="{plan["id"]}"]')
    assert "Open" in row.text
    assert "Nov 30 – Dec 13, 2026" in row.text  # window end is exclusive: last day shown
    s = plan["summary"]
    assert f"{s['covered_parts']:,} pcs of {s['needed_parts']:,} pcs" in row.text

    _open_plan(page, plan["id"])
    assert page.find("#plan-title").text == f"Plan of request {plan['id']}"
    for job in plan["jobs"]:
        tr = page.find(f'#takeover-plan tr[data-job-id="{job["job_id"]}"]')
        cells = [c.text for c in tr.find_elements("css selector", "th, td")]
        assert cells[:6] == [
            job["job_id"],
            job["part_id"],
            job["mold_id"],
            f"{job['needed_parts']:,}",
            f"{job['covered_parts']:,}",
            "0",
        ]
        if not job["unmet"]:
            assert cells[6] == "Fully covered"
        for u in job["unmet"]:
            li = tr.find_element("css selector", f'li[data-reason="{u["reason"]}"]')
            assert li.text.startswith(f"{u['parts']:,} pcs: ")
            assert REASONS_EN[u["reason"]] in li.text
            # the explanation: job-level facts and the nearest candidates, with numbers
            for x in u["explanation"]["shortfalls"] + u["explanation"]["candidates"]:
                assert x["text"]["en"] in li.text
    for a in plan["assignments"]:
        tr = page.find(f'#takeover-plan tr[data-assignment-id="{a["id"]}"]')
        assert tr.get_attribute("data-status") == "proposed"
        assert "Awaiting answer" in tr.text
        assert "kyoto-mold Co." in tr.text
        assert a["machine_id"] in tr.text  # kyoto shares machine detail with the hit firm

    # the same plan in Japanese, numbers and reasons included
    page.click("#lang-toggle")
    page.wait_text("#plan-title", "の計画")
    assert page.find("#plan-title").text == f"依頼 {plan['id']} の計画"
    for reason, text in REASONS_JA.items():
        assert text in page.text(f'#takeover-plan li[data-reason="{reason}"]'), reason
    assert "回答待ち" in page.text("#takeover-plan tr[data-assignment-id]")
    assert "個：" in page.text("#takeover-plan li[data-reason]")
    for job in plan["jobs"]:
        for u in job["unmet"]:
            shown = page.text(f'#takeover-plan tr[data-job-id="{job["job_id"]}"] li[data-reason]')
            for x in u["explanation"]["shortfalls"] + u["explanation"]["candidates"]:
                assert x["text"]["ja"] in shown, x["text"]
    assert page.console_problems() == []


def test_partner_accepts_and_declines_then_requester_sees_answers(
    live: Live, page: Browser
) -> None:
    seed_network(live.rig)
    plan = create_takeover(live.rig)
    offered = sorted(a["id"] for a in plan["assignments"] if a["partner_firm_id"] == KYOTO)
    assert len(offered) >= 2, plan["assignments"]
    accept_id, decline_id = offered[0], offered[-1]

    page.open(live.url, "/app/#assignments")
    page.sign_in(live.rig.key(KYOTO, Role.PARTNER))
    page.wait_view("assignments")
    for aid in offered:
        row = page.find(f"#assignment-{aid}")
        assert row.get_attribute("data-status") == "proposed"
        assert "tohoku-mold Co." in row.text
        assert "Awaiting answer" in row.text
    assert "400 × 400 × 350 mm, 450 kg, 1,200 kN, PP, 2 cav." in page.text("#assignment-list")
    page.js("window.__sameDocument = 'yes';")

    # accept one
    page.click(f"#assignment-{accept_id} button.accept")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"assignment-{accept_id}").get_attribute("data-status")
            == "accepted"
        ),
        "the accepted row",
    )
    row = page.find(f"#assignment-{accept_id}")
    assert "Accepted" in row.text
    assert row.find_elements("css selector", "button") == []
    assert f"Assignment #{accept_id} accepted." in page.text("#status")

    # decline another, with a note
    page.click(f"#assignment-{decline_id} button.decline")
    page.wait_visible("#decline-dialog")
    assert f"#{decline_id}" in page.text("#decline-summary")
    page.fill("#decline-note", "Mold change needs a crane we lack")
    page.click("#decline-confirm")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"assignment-{decline_id}").get_attribute("data-status")
            == "declined"
        ),
        "the declined row",
    )
    assert not page.visible("#decline-dialog")
    assert "Declined" in page.text(f"#assignment-{decline_id}")
    assert page.js("return window.__sameDocument") == "yes"  # no reload happened
    assert not page.visible("#error")
    with session_scope(live.rig.engine) as s:
        stored = {a.id: a for a in s.scalars(select(TakeoverAssignment))}
        assert stored[accept_id].status == "accepted"
        assert stored[decline_id].status == "declined"
        assert stored[decline_id].note == "Mold change needs a crane we lack"

    # the filter lists only the accepted ones
    page.select("#assignment-filter", "accepted")
    page.wait_for(
        lambda d: not d.find_elements("css selector", "#assignment-list tr[data-status=declined]"),
        "the accepted-only list",
    )
    assert page.find_all(f"#assignment-{accept_id}[data-status=accepted]")
    assert page.console_problems() == []

    # the requester's operator sees both answers in its plan
    page.click("#sign-out")
    page.wait_view("signin")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.driver.get(f"{live.url}/app/#takeovers")
    page.wait_for(
        lambda d: d.execute_script("return document.documentElement.dataset.ready"), "load"
    )
    _open_plan(page, plan["id"])
    accepted = page.find(f'#takeover-plan tr[data-assignment-id="{accept_id}"]')
    declined = page.find(f'#takeover-plan tr[data-assignment-id="{decline_id}"]')
    assert accepted.get_attribute("data-status") == "accepted"
    assert "Accepted" in accepted.text
    assert declined.get_attribute("data-status") == "declined"
    assert "Declined" in declined.text
    # the decline re-planned the request: a newer revision
    assert int(page.find("#takeover-plan").get_attribute("data-revision") or 0) >= 2
    assert page.console_problems() == []


def test_conflicting_answer_shows_the_api_error(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    plan = create_takeover(live.rig)
    aid = min(a["id"] for a in plan["assignments"] if a["partner_firm_id"] == KYOTO)
    page.open(live.url, "/app/?lang=ja#assignments")
    page.sign_in(live.rig.key(KYOTO, Role.PARTNER))
    page.wait_view("assignments")
    # another user of the firm accepts first
    r = live.rig.client(KYOTO, Role.OPERATOR).post(
        f"/api/v1/firms/{KYOTO}/assignments/{aid}/accept", json={}
    )
    assert r.status_code == 200, r.text
    page.click(f"#assignment-{aid} button.decline")
    page.wait_visible("#decline-dialog")
    page.click("#decline-confirm")
    banner = page.wait_visible("#error")
    assert "(conflict · HTTP 409)" in banner.text
    assert "現在の状態と矛盾します" in banner.text
    assert f"assignment {aid} is accepted" in banner.text  # the API's own message
    assert page.find(f"#assignment-{aid}").get_attribute("data-status") == "proposed"
    assert page.console_problems(allow_http_errors=True) == []
