"""The API reference pages, served from this process: no CDN, so they work offline.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline
``<script>``: blank without Internet, and blocked by a strict Content-Security-Policy.
:func:`mount` replaces it (the app is built with ``docs_url=None, redoc_url=None``):

- ``GET /docs``: Swagger UI over ``/openapi.json``, under :data:`DOCS_CSP` (this origin
  only, no inline script or style, like the partner web page).
- ``GET /docs/static/...``: the Swagger UI bundle of the ``fastapi-offline`` wheel (MIT;
  Swagger UI itself Apache-2.0), and ``docs-init.js``, which starts Swagger UI (the
  OpenAPI URL is read from the page's markup, not from inline code).

ReDoc is not served: it needs inline styles and fetches its logo from its vendor's CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_CSP", "DOCS_STATIC", "mount"]

ASSETS: Final = Path(fastapi_offline.__file__).resolve().parent / "static"
"""The wheel's ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``favicon.png`` (and ReDoc's)."""

DOCS_STATIC: Final = "/docs/static"
"""Where the assets are served."""

DOCS_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Content-Security-Policy of ``/docs`` and its assets."""

_INIT_JS = """\
// Starts Swagger UI on #swagger-ui with the OpenAPI URL of its data-openapi-url.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

_DOCS_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" href="{static}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/docs-init.js"></script>
</body>
</html>
"""


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def mount(app: FastAPI, *, title: str, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs`` and its assets on ``app`` (see the module docs)."""
    docs_html = _DOCS_HTML.format(title=title, static=DOCS_STATIC, openapi=openapi_url)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(docs_html, headers=_headers(DOCS_CSP))

    @app.get(DOCS_STATIC + "/docs-init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(
            _INIT_JS, media_type="text/javascript; charset=utf-8", headers=_headers(DOCS_CSP)
        )

    app.mount(DOCS_STATIC, StaticFiles(directory=ASSETS), name="docs-static")
