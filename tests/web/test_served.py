"""How the API serves the page: redirects, files, content types and security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from renkei.cloud.api.web import CSP, STATIC_DIR
from tests.api.rig import ApiRig


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One API for the module (these tests only read)."""
    rig = ApiRig(tmp_path_factory.mktemp("served"))
    try:
        yield rig.client()
    finally:
        rig.close()


def test_root_and_app_redirect_to_the_page(client: TestClient) -> None:
    for path in ("/", "/app"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 307, path
        assert r.headers["location"] == "/app/"


def test_page_is_served_with_a_strict_csp(client: TestClient) -> None:
    r = client.get("/app/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert csp == CSP
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="static/js/app.js"></script>' in r.text


def test_markup_has_no_inline_script_style_or_handlers() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in m.group(1) and not m.group(2).strip(), m.group(0)
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "javascript:" not in html


def test_every_input_has_a_label() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    ids = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', html)
    labelled = set(re.findall(r'<label\b[^>]*\bfor="([^"]+)"', html))
    assert ids and set(ids) <= labelled, set(ids) - labelled
    assert not re.search(r"<(?:input|select|textarea)\b(?![^>]*\bid=)", html), "control without id"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/app/static/js/app.js", "javascript"),
        ("/app/static/js/views/search.js", "javascript"),
        ("/app/static/css/app.css", "text/css"),
        ("/app/static/i18n/ja.json", "application/json"),
    ],
)
def test_assets_are_served_with_types_and_csp(
    client: TestClient, path: str, content_type: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200, path
    assert content_type in r.headers["content-type"]
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"


def test_missing_asset_is_404_and_no_traversal(client: TestClient) -> None:
    assert client.get("/app/static/js/nope.js").status_code == 404
    r = client.get("/app/static/../__init__.py")
    assert r.status_code == 404 or "def mount" not in r.text
    assert client.get("/app/static/%2e%2e/__init__.py").status_code == 404


def test_api_keeps_its_json_errors_and_no_page_headers(client: TestClient) -> None:
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert "content-security-policy" not in r.headers


def test_page_routes_are_not_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p == "/" or p.startswith("/app") for p in paths)
