"""Sign-in, sign-out, bad keys and the language switch, in a real headless Chromium."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from renkei.cloud.registry import Role
from tests.web.conftest import Live
from tests.web.harness import Browser


def _seed(live: Live) -> None:
    live.rig.seed_firm("kyoto-mold", region="kansai")


def test_sign_in_shows_firm_and_role_and_keeps_key_in_session_storage_only(
    live: Live, page: Browser
) -> None:
    _seed(live)
    key = live.rig.key("kyoto-mold", Role.PARTNER)
    page.open(live.url, "/")
    assert urlparse(page.driver.current_url).path == "/app/"
    assert page.js("return document.documentElement.lang") == "en"
    assert page.visible("#api-key")
    assert page.find("label[for=api-key]").text == "API key"

    page.sign_in(key)
    page.wait_view("search")
    assert page.wait_text("#whoami", "kyoto-mold Co.").text == "kyoto-mold Co. — Partner"
    # a partner key sees search and assignments, not the takeover plans of its firm
    assert page.visible("nav a[data-view=search]")
    assert page.visible("nav a[data-view=assignments]")
    assert not page.visible("nav a[data-view=takeovers]")
    assert page.js("return sessionStorage.getItem('renkei.apiKey')") == key
    assert page.js("return localStorage.length") == 0
    assert page.js("return document.cookie") == ""
    assert key not in page.driver.current_url

    # a reload in the same tab stays signed in (sessionStorage survives it)
    page.driver.refresh()
    page.wait_for(
        lambda d: d.execute_script("return document.documentElement.dataset.ready"), "reload"
    )
    page.wait_view("search")

    page.click("#sign-out")
    page.wait_view("signin")
    assert page.js("return sessionStorage.getItem('renkei.apiKey')") is None
    assert not page.visible("#nav")
    assert not page.visible("#whoami")
    assert page.console_problems() == []


def test_bad_key_shows_the_api_error_and_stays_on_sign_in(live: Live, page: Browser) -> None:
    _seed(live)
    page.open(live.url, "/app/")
    page.sign_in("rk_not-a-real-key")
    banner = page.wait_visible("#error")
    assert "unauthenticated" in page.text("#error-code")
    assert "HTTP 401" in page.text("#error-code")
    assert "unknown, malformed or revoked API key" in banner.text  # the API's message
    assert "The API key is not valid" in banner.text  # the page's explanation
    assert page.js("return document.documentElement.dataset.view") == "signin"
    assert page.js("return sessionStorage.getItem('renkei.apiKey')") is None
    assert page.console_problems(allow_http_errors=True) == []


def test_revoked_key_sends_back_to_sign_in(live: Live, page: Browser) -> None:
    _seed(live)
    operator = live.rig.client("kyoto-mold", Role.OPERATOR)
    key = live.rig.key("kyoto-mold", Role.PARTNER)
    page.open(live.url, "/app/")
    page.sign_in(key)
    page.wait_view("search")
    key_id = live.rig.client("kyoto-mold", Role.PARTNER).get("/api/v1/me").json()["key_id"]
    r = operator.delete(f"/api/v1/firms/kyoto-mold/credentials/{key_id}")
    assert r.status_code in (200, 204), r.text
    page.click("nav a[data-view=assignments]")
    page.wait_view("signin")
    assert "unauthenticated" in page.wait_visible("#error").text
    assert "no longer accepted" in page.text("#error")
    assert page.js("return sessionStorage.getItem('renkei.apiKey')") is None


def test_language_from_query_then_switch_button(live: Live, page: Browser) -> None:
    _seed(live)
    page.open(live.url, "/app/?lang=ja")
    assert page.js("return document.documentElement.lang") == "ja"
    assert page.find("#signin-title").text == "サインイン"
    assert page.find("label[for=api-key]").text == "APIキー"
    assert page.find("#lang-toggle").text == "English"
    assert page.driver.title == "連携 — パートナーページ"

    page.click("#lang-toggle")
    page.wait_for(
        lambda d: d.execute_script("return document.documentElement.lang") == "en", "English"
    )
    assert page.find("#signin-title").text == "Sign in"
    assert page.find("#lang-toggle").text == "日本語"
    assert page.find("#lang-toggle").get_attribute("lang") == "ja"
    assert parse_qs(urlparse(page.driver.current_url).query)["lang"] == ["en"]
    assert page.console_problems() == []


def test_language_defaults_to_the_browser_language(live: Live, page: Browser) -> None:
    _seed(live)
    page.open(live.url, "/app/", languages="ja-JP,ja;q=0.9")
    assert page.js("return navigator.language") == "ja-JP"
    assert page.js("return document.documentElement.lang") == "ja"
    assert page.find("#signin-submit").text == "サインイン"
    # ?lang= wins over the browser's language
    page.open(live.url, "/app/?lang=en", languages="ja-JP,ja;q=0.9")
    assert page.js("return document.documentElement.lang") == "en"
    # a language the page lacks falls back to English
    page.open(live.url, "/app/", languages="de-DE,de")
    assert page.js("return document.documentElement.lang") == "en"


def test_signed_in_views_switch_language_with_the_firm_shown(live: Live, page: Browser) -> None:
    _seed(live)
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key("kyoto-mold", Role.OPERATOR))
    page.wait_view("search")
    assert page.find("#whoami").text == "kyoto-mold Co. — Operator"
    assert page.visible("nav a[data-view=takeovers]")
    page.click("#lang-toggle")
    page.wait_text("#whoami", "運用担当")
    assert page.find("#whoami").text == "kyoto-mold Co.（運用担当）"
    assert page.find("label[for=s-process]").text == "工程"
    assert page.find("#s-process option[value=injection_molding]").text == "射出成形"
    assert page.find("#search-submit").text == "検索"
    assert page.find("nav a[data-view=assignments]").text == "割り当て"
    assert page.console_problems() == []


def test_role_without_views_sees_a_notice(live: Live, page: Browser) -> None:
    _seed(live)
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key("kyoto-mold", Role.ENGINEER))
    page.wait_view("none")
    assert "no view on this page" in page.text("#view-none")
    assert page.visible("#sign-out")


def test_csp_blocks_injected_inline_script(live: Live, page: Browser) -> None:
    """The served CSP is enforced by the browser: an inline script never runs."""
    _seed(live)
    page.open(live.url, "/app/")
    page.js(
        "const s = document.createElement('script');"
        "s.textContent = 'window.__inlineRan = true;';"
        "document.body.append(s);"
    )
    assert page.js("return window.__inlineRan === true") is False
    problems = page.console_problems()
    assert any("Content Security Policy" in p for p in problems), problems


def test_names_from_the_api_are_text_not_markup(live: Live, page: Browser) -> None:
    live.rig.seed(
        {"firms": [{"id": "evil", "name": '<img src=x id="pwn"> & Co.', "region": "kanto"}]}
    )
    page.open(live.url, "/app/")
    page.sign_in(live.rig.key("evil", Role.PARTNER))
    page.wait_view("search")
    assert page.find("#whoami").text == '<img src=x id="pwn"> & Co. — Partner'
    assert page.find_all("#pwn") == []
    assert page.console_problems() == []
