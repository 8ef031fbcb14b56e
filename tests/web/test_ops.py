"""The firm in trouble and its partners act from the page, in a real headless Chromium at
390 px (a phone) and 1366 px (a laptop):

- the disrupted firm's operator confirms a suspicion raised by its gateways' Last Will,
  ends it, declares a new disruption; dismisses another suspicion (in Japanese);
- it creates a takeover request, sees the plan with every unmet volume's reason and
  re-plans it after a partner opened more capacity;
- a partner accepts one assignment and declines another;
- an owner edits a sharing grant and sees, live, what the partner will see (en and ja),
  and creates a partner group;
- axe-core finds no serious or critical violation on these pages.

Screenshots of the main pages at both widths are written to ``docs/screenshots/``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.cloud.disruption import SuspectRules, apply_gateway_state, check_site
from renkei.cloud.registry import (
    Disruption,
    Role,
    SharingGrant,
    TakeoverAssignment,
    session_scope,
)
from renkei.core.wire import GatewayState
from tests.api.rig import NOW
from tests.web.axe_ops import serious_violations
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, KYOTO, NAGOYA, create_takeover, seed_network

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = (390, 1366)
HEIGHT = 900
RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2, zone_radius_km=30)


def _metrics(page: Browser, width: int, height: int) -> None:
    # mobile=False: Chrome's mobile emulation scrolls a visual viewport inside the layout
    # viewport on focus(), and WebDriver then clicks beside the element (a test artefact)
    page.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def width(request: pytest.FixtureRequest, page: Browser) -> Iterator[int]:
    """The viewport's CSS width for this test (device metrics override), reset after."""
    w: int = request.param
    _metrics(page, w, HEIGHT)
    yield w
    page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def screenshot(page: Browser, name: str, width: int) -> None:
    """The whole page as ``docs/screenshots/<name>-<width>.png`` (the viewport is made as
    tall as the page for the capture, then put back)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = int(page.js("return document.documentElement.scrollHeight"))
    _metrics(page, width, min(max(height, HEIGHT), 6000))
    try:
        shot = page.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        _metrics(page, width, HEIGHT)
    (SHOTS / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))


_WIDE_JS = """
return [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((e) => !(e.parentElement && e.parentElement.closest('.table-scroll')))
  .slice(0, 5)
  .map((e) => `${e.tagName}#${e.id}.${e.className}`);
"""
"""Up to five elements that stick out of the viewport (outside a scrolling table)."""


def assert_fits(page: Browser, width: int) -> None:
    """No sideways scrolling of the page itself (wide tables scroll in their own box)."""
    assert page.js("return window.innerWidth") == width
    overflow = page.js("return document.documentElement.scrollWidth - window.innerWidth")
    wide = page.js(_WIDE_JS)
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px: {wide}"


def assert_actions_on_screen(page: Browser, css: str) -> None:
    """Every action button under ``css`` lies inside the viewport's width (no sideways
    scrolling needed to reach it)."""
    outside = page.js(
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter((b) => b.getBoundingClientRect().right > window.innerWidth"
        " || b.getBoundingClientRect().left < 0).map((b) => b.getAttribute('aria-label'))",
        f"{css} button",
    )
    assert outside == [], f"action buttons off screen: {outside}"


def assert_accessible(page: Browser) -> None:
    assert serious_violations(page) == []


def _suspect(live: Live, firm: str) -> int:
    """Two gateways of ``firm``'s site go offline (Last Will): a suspicion; its id."""
    t0 = NOW - timedelta(hours=1)

    def state(gw: str, online: bool, at: datetime) -> Disruption | None:
        with session_scope(live.rig.engine) as s:
            ms = int((at if online else t0).timestamp() * 1000)
            out = apply_gateway_state(
                s,
                firm_id=firm,
                site_id=f"{firm}-s1",
                gateway_id=gw,
                state=GatewayState(v=1, gw=gw, online=online, sent_ms=ms),
                received_at=at,
            )
            if out.offline:
                d = check_site(s, firm_id=firm, site_id=f"{firm}-s1", rules=RULES)
                if d is not None:
                    s.expunge(d)
                return d
        return None

    for gw in ("gw-1", "gw-2"):
        state(gw, True, t0)
    state("gw-1", False, t0 + timedelta(seconds=30))
    d = state("gw-2", False, t0 + timedelta(seconds=60))
    assert d is not None and d.status.value == "suspected"
    return d.id


def _count(live: Live, model: type[Disruption]) -> int:
    with session_scope(live.rig.engine) as s:
        return len(list(s.scalars(select(model))))


def _stored(live: Live, disruption_id: int) -> Disruption:
    with session_scope(live.rig.engine) as s:
        d = s.get(Disruption, disruption_id)
        assert d is not None
        s.expunge(d)
        return d


def _decide(page: Browser, disruption_id: int, action: str) -> None:
    page.click(f"#disruption-{disruption_id} button.{action}")
    page.wait_visible("#disruption-dialog")


def _wait_status(page: Browser, disruption_id: int, status: str) -> None:
    page.wait_for(
        lambda d: (
            d.find_element("id", f"disruption-{disruption_id}").get_attribute("data-status")
            == status
        ),
        f"disruption {disruption_id} {status}",
    )


def test_confirm_end_and_declare_disruption(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    suspected = _suspect(live, HIT)
    page.open(live.url, "/app/#disruptions")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.wait_view("disruptions")
    row = page.find(f"#disruption-{suspected}")
    assert row.get_attribute("data-status") == "suspected"
    assert "Gateways went offline" in row.text
    assert "2 of 2 gateways offline within 5 min" in row.text
    assert "gw-1" in row.text and "gw-2" in row.text
    assert "Nov 23, 2026, 09:00" in row.text  # start in Japan time (00:00 UTC)
    assert_fits(page, width)
    assert_actions_on_screen(page, "#disruption-list")

    # confirm the suspicion with a wider zone
    _decide(page, suspected, "confirm")
    assert "Confirm this disruption?" in page.text("#disruption-dialog-title")
    page.fill("#dd-radius", "45")
    page.click("#disruption-dialog-ok")
    _wait_status(page, suspected, "confirmed")
    assert f"Disruption #{suspected} confirmed." in page.text("#status")
    page.wait_for(lambda _: _stored(live, suspected).radius_km == 45.0, "the stored radius")

    # end it (at the API's clock)
    _decide(page, suspected, "end")
    page.fill("#dd-note", "power back")
    page.click("#disruption-dialog-ok")
    _wait_status(page, suspected, "ended")
    assert "Nov 23, 2026, 10:00" in page.text(f"#disruption-{suspected}")  # NOW in Japan
    page.wait_for(lambda _: _stored(live, suspected).note == "power back", "the stored end")
    assert _stored(live, suspected).status.value == "ended"
    assert not page.find_all(f"#disruption-{suspected} button")

    # declare a new one on the same site
    page.click("#disruption-new")
    page.wait_visible("#disruption-form")
    page.select("#d-site", f"{HIT}-s1")
    page.fill_date("#d-start", "2026-11-23T11:30")
    page.fill("#d-radius", "20")
    page.fill("#d-note", "flood")
    page.click("#disruption-submit")
    page.wait_for(
        lambda d: len(d.find_elements("css selector", "tr[data-disruption-id]")) == 2, "2"
    )
    page.wait_for(lambda _: _count(live, Disruption) == 2, "the stored declaration")
    with session_scope(live.rig.engine) as s:
        new = s.scalars(select(Disruption).where(Disruption.id != suspected)).one()
        assert (new.status.value, new.source.value, new.radius_km) == ("confirmed", "declared", 20)
        assert new.start.isoformat().startswith("2026-11-23T02:30")  # 11:30 JST in UTC
        new_id = new.id
    assert page.find(f"#disruption-{new_id}").get_attribute("data-status") == "confirmed"
    assert page.find_all(f"#disruption-{new_id} button.end")
    assert not page.visible("#error")
    assert_fits(page, width)
    assert_actions_on_screen(page, "#disruption-list")
    screenshot(page, "disruptions", width)
    assert_accessible(page)

    # from the confirmed disruption straight to a takeover request
    page.click(f"#disruption-{new_id} button.takeover")
    page.wait_view("takeovers")
    page.wait_visible("#takeover-form")
    assert page.find("#tf-disruption").get_attribute("value") == str(new_id)
    assert page.find("#tf-origin").get_attribute("value") == f"{HIT}-s1"
    assert page.console_problems() == []


def test_dismiss_suspicion_in_japanese(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    suspected = _suspect(live, HIT)
    page.open(live.url, "/app/?lang=ja#disruptions")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.wait_view("disruptions")
    assert "停止の疑い" in page.text(f"#disruption-{suspected}")
    _decide(page, suspected, "dismiss")
    page.fill("#dd-note", "回線工事")
    page.click("#disruption-dialog-ok")
    _wait_status(page, suspected, "dismissed")
    assert "却下" in page.text(f"#disruption-{suspected}")
    page.wait_for(lambda _: _stored(live, suspected).note == "回線工事", "the stored note")
    # a partner key has no disruptions view
    page.click("#sign-out")
    page.sign_in(live.rig.key(KYOTO, Role.PARTNER))
    assert not page.visible("nav a[data-view=disruptions]")
    assert page.console_problems() == []


def test_create_takeover_see_reasons_and_replan(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    page.open(live.url, "/app/#takeovers")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.wait_view("takeovers")
    page.click("#takeover-new")
    page.wait_visible("#takeover-form")
    page.fill_date("#tf-start", "2026-11-30")
    page.fill_date("#tf-last", "2026-12-13")
    page.fill("#tf-id", "tko-web-1")
    page.fill("#tf-job-1-part", "P-COVER")
    page.select("#tf-job-1-mold", "m-cover")
    page.fill("#tf-job-1-volume", "32000")
    for n, (part, mold, volume) in enumerate(
        [("P-PANEL", "m-panel", "1000"), ("P-HULL", "m-hull", "100")], start=2
    ):
        page.click("#tf-add-job")
        page.fill(f"#tf-job-{n}-part", part)
        page.select(f"#tf-job-{n}-mold", mold)
        page.fill(f"#tf-job-{n}-volume", volume)
    assert_fits(page, width)
    page.click("#tf-submit")
    page.wait_for(
        lambda d: d.execute_script(
            "const p = document.getElementById('takeover-plan');"
            "return p && p.dataset.requestId === 'tko-web-1';"
        ),
        "the new plan",
    )
    page.wait_idle()
    assert "Request tko-web-1 created and planned." in page.text("#status")
    client = live.rig.client(HIT, Role.OPERATOR)
    url = f"/api/v1/firms/{HIT}/takeovers/tko-web-1"
    page.wait_for(lambda _: client.get(url).status_code == 200, "the stored request")
    plan = client.get(url)
    body = plan.json()
    assert body["window_end"] == "2026-12-14"  # last day inclusive -> exclusive end
    reasons = {j["job_id"]: {u["reason"] for u in j["unmet"]} for j in body["jobs"]}
    assert "no_compatible_machine" in reasons["J3"] and "not_shared" in reasons["J2"]
    for job in body["jobs"]:
        for u in job["unmet"]:
            li = page.find(
                f'#takeover-plan tr[data-job-id="{job["job_id"]}"] li[data-reason="{u["reason"]}"]'
            )
            assert li.text.startswith(f"{u['parts']:,} pcs: ")
    assert "no partner machine fits the mold" in page.text("#takeover-plan")
    assert "do not share them with you" in page.text("#takeover-plan")

    # nagoya opens its machine to the firm; re-planning covers the panel job
    r = live.rig.client(NAGOYA, Role.OPERATOR).post(
        f"/api/v1/firms/{NAGOYA}/grants",
        json={"grantee_kind": "firm", "grantee_id": HIT, "granularity": "week"},
    )
    assert r.status_code == 201, r.text
    page.click("#plan-replan")
    page.wait_for(
        lambda d: d.find_element("id", "takeover-plan").get_attribute("data-revision") == "2",
        "revision 2",
    )
    assert "Request tko-web-1 re-planned (revision 2)." in page.text("#status")
    panel = page.find('#takeover-plan tr[data-job-id="J2"]')
    assert "not_shared" not in {
        li.get_attribute("data-reason") for li in panel.find_elements("css selector", "li")
    }
    assert "nagoya-plast" in page.text("#takeover-plan")
    assert_fits(page, width)
    screenshot(page, "takeover-plan", width)
    assert_accessible(page)

    # the same plan in Japanese (the screenshot needs a CJK font: ./dev installs IPA Gothic)
    page.click("#lang-toggle")
    page.wait_for(lambda d: d.execute_script("return document.documentElement.lang") == "ja", "ja")
    page.wait_for(
        lambda d: "金型" in d.find_element("id", "takeover-plan").text, "the plan in Japanese"
    )
    # the status line follows the language switch too
    assert "依頼 tko-web-1 を再計画しました（改訂 2）。" in page.text("#status")
    assert_fits(page, width)
    screenshot(page, "takeover-plan-ja", width)
    assert page.console_problems() == []


def test_unmet_fields_the_api_may_add_are_rendered(live: Live, page: Browser) -> None:
    """Richer explanations (rule, required vs offered, texts in ja/en) show up as they come."""
    seed_network(live.rig)
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    unmet = {
        "parts": 1200,
        "reason": "no_compatible_machine",
        "rule": "clamp_force",
        "message": {"en": "The mold needs 4,500 kN", "ja": "金型は 4,500 kN 必要"},
        "required": {"clamp_force_kN": 4500},
        "nearest": [{"machine_id": "kyoto-2", "offered": {"clamp_force_kN": 1800}}],
    }
    script = """
        const done = arguments[arguments.length - 1];
        import(new URL('static/js/views/unmet.js', document.baseURI).href)
          .then((m) => done(m.unmetItem(arguments[0]).textContent))
          .catch((e) => done('error: ' + e));
    """
    text = page.driver.execute_async_script(script, unmet)
    assert text.startswith("1,200 pcs: no partner machine fits the mold"), text
    for part in (
        "Rule: clamp_force",
        "The mold needs 4,500 kN",
        "clamp force kN: 4,500",
        "kyoto-2",
        "1,800",
    ):
        assert part in text, (part, text)
    page.click("#lang-toggle")
    text = page.driver.execute_async_script(script, unmet)
    assert "金型は 4,500 kN 必要" in text and "1,200 個" in text, text


def test_partner_accepts_one_and_declines_another(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    plan = create_takeover(live.rig)
    offered = sorted(a["id"] for a in plan["assignments"] if a["partner_firm_id"] == KYOTO)
    accept_id, decline_id = offered[0], offered[-1]
    page.open(live.url, "/app/#assignments")
    page.sign_in(live.rig.key(KYOTO, Role.PARTNER))
    page.wait_view("assignments")
    screenshot(page, "assignments", width)
    page.click(f"#assignment-{accept_id} button.accept")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"assignment-{accept_id}").get_attribute("data-status")
            == "accepted"
        ),
        "accepted",
    )
    page.click(f"#assignment-{decline_id} button.decline")
    page.wait_visible("#decline-dialog")
    page.fill("#decline-note", "no crane")
    page.click("#decline-confirm")
    page.wait_for(
        lambda d: (
            d.find_element("id", f"assignment-{decline_id}").get_attribute("data-status")
            == "declined"
        ),
        "declined",
    )

    def stored() -> tuple[str, str]:
        with session_scope(live.rig.engine) as s:
            st = {a.id: str(a.status) for a in s.scalars(select(TakeoverAssignment))}
        return st[accept_id], st[decline_id]

    page.wait_for(lambda _: stored() == ("accepted", "declined"), "the stored answers")
    assert_fits(page, width)
    assert_accessible(page)
    assert page.console_problems() == []


def _grants(live: Live, owner: str) -> list[SharingGrant]:
    with session_scope(live.rig.engine) as s:
        rows = list(s.scalars(select(SharingGrant).where(SharingGrant.owner_firm_id == owner)))
        for g in rows:
            s.expunge(g)
        return rows


def test_owner_edits_grant_and_sees_preview(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    (old,) = _grants(live, KYOTO)
    page.open(live.url, "/app/#sharing")
    page.sign_in(live.rig.key(KYOTO, Role.OPERATOR))
    page.wait_view("sharing")
    row = page.find(f"#grant-{old.id}")
    assert (
        f"Partner {HIT} will see: your firm's name and region, machine type and clamp force "
        "class (every class), free hours per week, each machine's id, name, site, clamp force"
    ) in row.text
    assert "never: process settings, raw telemetry, your bookings (plans and customers)" in row.text
    assert "Until you revoke it." in row.text
    assert_fits(page, width)
    assert_actions_on_screen(page, "#grant-list")

    page.click(f"#grant-{old.id} button.edit")
    page.wait_text("#grant-form-title", f"Edit grant #{old.id}")
    assert page.find("#g-grantee").get_attribute("value") == HIT
    page.driver.find_element("id", "g-detail").click()  # machine detail off
    page.select("#g-granularity", "day")
    page.fill("#g-classes", "injection_molding")
    preview = page.wait_text("#grant-preview", "free hours per day")
    assert f"Partner {HIT} will see:" in preview.text
    assert "machine type and clamp force class (Injection molding)" in preview.text
    assert "which machine it is, its name or attributes" in preview.text  # under "Never"
    assert "each machine's id" not in preview.text
    assert_fits(page, width)
    screenshot(page, "sharing", width)
    page.click("#grant-save")
    # saved in place (PUT): same id, new terms, and the partner sees them at once
    page.wait_text("#status", f"Grant #{old.id} saved")
    (new,) = _grants(live, KYOTO)
    assert new.id == old.id and new.created_at == old.created_at
    assert (new.grantee_id, new.granularity.value, new.machine_detail) == (HIT, "day", False)
    assert new.capability_classes == ["injection_molding"]
    assert "free hours per day" in page.text(f"#grant-{new.id}")
    seen = live.rig.client(HIT, Role.PARTNER).get("/api/v1/capacity/search").json()["results"]
    (kyoto,) = [x for x in seen if x["firm_id"] == KYOTO]
    assert (kyoto["granularity"], kyoto["machine_detail"], kyoto["machines"]) == ("day", False, [])

    # the same preview in Japanese
    page.click("#lang-toggle")
    ja = page.wait_text(f"#grant-{new.id}", "に見える内容")
    assert f"パートナー {HIT}に見える内容" in ja.text
    assert "日ごとの余力時間" in ja.text and "生の稼働データ" in ja.text
    page.click("#lang-toggle")

    # a partner group, then a grant to it names its members
    page.fill("#grp-id", "kyoto-friends")
    page.fill("#grp-name", "Kyoto friends")
    page.fill("#grp-members", f"{HIT}, {NAGOYA}")
    page.click("#group-create")
    page.wait_visible("#group-kyoto-friends")
    page.select("#g-kind", "group")
    page.fill("#g-grantee", "kyoto-friends")
    page.wait_text("#grant-preview", f"Members of group Kyoto friends ({NAGOYA}, {HIT}) will see:")
    assert_accessible(page)
    assert page.console_problems() == []
