"""Capacity search on the page, in a real headless Chromium.

A partner key of ``tohoku-mold`` searches injection-molding capacity: it sees the firms
that share with it (``kyoto-mold`` weekly with machines, ``sendai-resin`` daily, totals
only) and never ``nagoya-plast``, which shares nothing. What the page shows is compared
with what the API answers for the same query.
"""

from __future__ import annotations

from typing import Any

from renkei.cloud.registry import Role
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, KYOTO, NAGOYA, SENDAI, seed_network

START, END = "2026-11-30", "2026-12-13"
"""The search period as the form shows it (both days included)."""
END_EXCLUSIVE = "2026-12-14"
"""The API's ``end`` for the same period (exclusive)."""


def _search(page: Browser, **fields: str) -> None:
    """Fill the search form (ids as in index.html) and wait for the results."""
    page.wait_view("search")
    page.js("document.getElementById('search-results').replaceChildren();")
    page.fill_date("#s-start", fields.pop("start", START))
    page.fill_date("#s-end", fields.pop("end", END))
    for css, value in fields.items():
        if css == "s-process" or css == "s-region":
            page.select(f"#{css}", value)
        else:
            page.fill(f"#{css}", value)
    page.click("#search-submit")
    page.wait_for(
        lambda d: (
            d.find_elements("css selector", "#search-summary")
            or d.find_element("id", "error").is_displayed()
        ),
        "search results",
    )
    page.wait_idle()


def _api(live: Live, **query: str) -> dict[str, Any]:
    r = live.rig.client(HIT, Role.PARTNER).get(
        "/api/v1/capacity/search", params={"start": START, "end": END_EXCLUSIVE} | query
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _firms_shown(page: Browser) -> list[str]:
    return [e.get_attribute("data-firm-id") or "" for e in page.find_all("article.firm-result")]


def test_partner_sees_sharing_firms_only_with_classes_and_machines(
    live: Live, page: Browser
) -> None:
    seed_network(live.rig)
    expected = _api(live, process="injection_molding")
    by_firm = {r["firm_id"]: r for r in expected["results"]}
    assert set(by_firm) == {KYOTO, SENDAI}

    page.open(live.url, "/app/")
    page.sign_in(live.rig.key(HIT, Role.PARTNER))
    _search(page, **{"s-process": "injection_molding"})
    assert not page.visible("#error"), page.text("#error")
    assert sorted(_firms_shown(page)) == [KYOTO, SENDAI]
    assert NAGOYA not in page.text("#search-results")
    assert "nagoya" not in page.driver.page_source
    summary = page.text("#search-summary")
    assert summary.startswith("2 partner firms, ")
    assert summary.endswith("(Nov 30 – Dec 13, 2026)")
    assert f"{expected['total_spare_h']:,.1f}".rstrip("0").rstrip(".") in summary

    kyoto = page.find(f'article.firm-result[data-firm-id="{KYOTO}"]')
    assert "kyoto-mold Co." in kyoto.text
    assert "Region: Kansai" in kyoto.text
    assert "Shared weekly" in kyoto.text
    k = by_firm[KYOTO]
    assert k["granularity"] == "week" and k["machine_detail"]
    class_rows = kyoto.find_elements("css selector", "table.classes tbody tr")
    assert [r.get_attribute("data-class") for r in class_rows] == [
        c["capability_class"] for c in k["classes"]
    ]
    assert "Injection molding, 1,000–2,000 kN" in kyoto.text
    headers = kyoto.find_element("css selector", "table.classes thead").text
    assert "Week of 11/30" in headers
    machine_rows = kyoto.find_elements("css selector", "table.machines tbody tr")
    assert sorted(r.get_attribute("data-machine-id") or "" for r in machine_rows) == [
        "kyoto-1",
        "kyoto-2",
    ]
    assert "510 × 510" in kyoto.find_element("css selector", "table.machines").text

    sendai = page.find(f'article.firm-result[data-firm-id="{SENDAI}"]')
    assert "Shared daily" in sendai.text
    assert not sendai.find_elements("css selector", "table.machines")
    assert "totals per capability class only" in sendai.text
    assert "sendai-1" not in sendai.text
    assert "Mon, 11/30" in sendai.find_element("css selector", "table.classes thead").text

    # switch to Japanese: labels, class names and dates follow
    page.click("#lang-toggle")
    page.wait_text("#search-summary", "パートナー")
    assert page.find("label[for=s-min-clamp]").text == "下限"
    assert page.find("#search-submit").text == "検索"
    assert "地域：関西" in page.text(f'article[data-firm-id="{KYOTO}"]')
    assert "射出成形 1,000〜2,000 kN" in page.text(f'article[data-firm-id="{KYOTO}"]')
    assert "11/30の週" in page.text(f'article[data-firm-id="{KYOTO}"] thead')
    assert "能力クラス" in page.text(f'article[data-firm-id="{KYOTO}"] thead')
    assert page.console_problems() == []


def test_attribute_filters_narrow_the_results(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    page.open(live.url, "/app/?lang=ja")
    page.sign_in(live.rig.key(HIT, Role.PARTNER))
    _search(page, **{"s-process": "injection_molding", "s-min-clamp": "5000"})
    assert (
        _firms_shown(page)
        == [SENDAI]
        == [
            r["firm_id"]
            for r in _api(live, process="injection_molding", min_clamp_force_kN="5000")["results"]
        ]
    )
    _search(page, **{"s-min-clamp": "", "s-region": "kansai"})
    assert _firms_shown(page) == [KYOTO]
    _search(page, **{"s-region": "", "s-mold-thickness": "750"})
    assert _firms_shown(page) == [SENDAI]  # only sendai-1 opens to 800 mm
    _search(page, **{"s-mold-thickness": "", "s-process": "press"})
    assert _firms_shown(page) == []
    assert page.visible("#search-empty")
    assert page.console_problems() == []


def test_invalid_search_shows_the_api_error(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key(HIT, Role.PARTNER))
    _search(page, start=END, end=START)
    banner = page.wait_visible("#error")
    assert "(invalid · HTTP 422)" in banner.text
    assert "Some input is not valid." in banner.text
    assert page.console_problems(allow_http_errors=True) == []
