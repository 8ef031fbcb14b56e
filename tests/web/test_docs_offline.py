"""``/docs`` works without Internet: every asset is served by the API itself.

The HTML must reference only local URLs (no CDN), each of which answers 200 with the
right content type, under a Content-Security-Policy of this origin only; and Swagger UI
really renders in Chromium (which has no route off loopback) without a CSP violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from renkei.cloud.api.docs import DOCS_CSP
from tests.api.rig import ApiRig
from tests.web.conftest import Live
from tests.web.harness import Browser

_REF = re.compile(r"""\b(?:src|href|spec-url|data-openapi-url)="([^"]+)\"""")
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    rig = ApiRig(tmp_path_factory.mktemp("docs"))
    try:
        yield rig.client()
    finally:
        rig.close()


def test_docs_page_loads_only_local_assets(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert csp == DOCS_CSP
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp
    assert not re.search(r"<script>|<script [^>]*>[^<]+</script>", r.text), "inline script"
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    refs = _REF.findall(r.text)
    assert refs and all(u.startswith("/") and not u.startswith("//") for u in refs), refs
    for url in refs:
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].startswith(_TYPES[suffix]), (url, asset.headers)
        assert len(asset.content) > 100, url


def test_openapi_document_is_still_served_and_redoc_is_not(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.json()["info"]["title"] == "Renkei API"
    assert client.get("/redoc").status_code == 404


def test_swagger_ui_renders_offline_under_its_csp(live: Live, page: Browser) -> None:
    page.driver.get(live.url + "/docs")
    page.wait_visible(".swagger-ui .opblock")  # operations listed: the spec loaded
    assert "Renkei API" in page.text(".swagger-ui .info")
    loaded = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(live.url + "/") for u in loaded), loaded
    assert page.console_problems() == []
