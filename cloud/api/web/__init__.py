"""The partner web page: a static, dependency-free single page served by the API.

Routes added by :func:`mount`:

- ``GET /`` and ``GET /app`` redirect to ``/app/``.
- ``GET /app/`` serves ``static/index.html``.
- ``GET /app/static/...`` serves the page's CSS, JavaScript modules and message
  catalogues (``static/i18n/{en,ja}.json``).

The page is plain HTML, CSS and ES modules: no build step, no third-party code, no CDN.
It talks to ``/api/v1`` with the firm's API key (``Authorization: Bearer rk_...``), which
it keeps in ``sessionStorage`` only. Every response under ``/app`` carries a strict
Content-Security-Policy (``default-src 'self'``, no inline script or style), so an
injected ``<script>`` or ``style=""`` never runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["APP_PATH", "CSP", "STATIC_DIR", "mount"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The page's files (``index.html``, ``css/``, ``js/``, ``i18n/``)."""

APP_PATH = "/app"
"""Where the page is served (``/app/``; assets under ``/app/static/``)."""

CSP = (
    "default-src 'self'; "
    "script-src 'self'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Content-Security-Policy of every ``/app`` response: only this origin, nothing inline."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _is_page(path: str) -> bool:
    return path == "/" or path == APP_PATH or path.startswith(APP_PATH + "/")


def mount(app: FastAPI) -> None:
    """Serve the partner web page on ``app`` (see the module docs for the routes)."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(APP_PATH + "/", status_code=307)

    @app.get(APP_PATH, include_in_schema=False)
    def app_no_slash() -> RedirectResponse:
        return RedirectResponse(APP_PATH + "/", status_code=307)

    @app.get(APP_PATH + "/", include_in_schema=False)
    def index() -> FileResponse:
        # revalidate every time: a new release must not meet a stale page
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    app.mount(APP_PATH + "/static", StaticFiles(directory=STATIC_DIR), name="web-static")

    @app.middleware("http")
    async def _security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if _is_page(request.url.path):
            for name, value in _SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if request.url.path.startswith(APP_PATH + "/static/"):
                response.headers.setdefault("Cache-Control", "no-cache")
        return response
