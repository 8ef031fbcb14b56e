"""Request body size limit (ASGI middleware): 413 before an oversized body is buffered.

``Content-Length`` is checked before anything is read; bodies without one (``chunked``)
are counted as their chunks arrive and refused as soon as they pass the limit, so the
process never holds more than the limit (plus one chunk) of any request. The 413 body
names the limit: ``{"error": {"code": "payload_too_large", "message": ..., "detail":
{"limit_bytes": N}}}``. The limit is ``ApiSettings.max_body_bytes``
(``RENKEI_API_MAX_BODY_BYTES``); the reverse proxy enforces the same size in front.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renkei.core.errors import RenkeiError

__all__ = ["BodyLimit", "BodyTooLarge", "too_large_body"]


class BodyTooLarge(HTTPException, RenkeiError):
    """The request body passed ``limit_bytes`` (raised while it is being received).

    An :class:`HTTPException`, so FastAPI's body parsing passes it through unchanged
    (other exceptions there become a 400) to the app's handler, which answers 413.
    """

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, f"request body larger than the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


def too_large_body(limit_bytes: int) -> dict[str, Any]:
    """The JSON error body of a 413 (the API's error shape)."""
    return {
        "error": {
            "code": "payload_too_large",
            "message": f"request body larger than the limit of {limit_bytes} bytes",
            "detail": {"limit_bytes": limit_bytes},
        }
    }


class BodyLimit:
    """ASGI middleware refusing request bodies larger than ``limit_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, limit_bytes: int) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def _refuse(self, send: Send, status: int, body: dict[str, Any]) -> None:
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(
                        send,
                        400,
                        {"error": {"code": "bad_request", "message": "invalid Content-Length"}},
                    )
                    return
                if declared > limit:
                    await self._refuse(send, 413, too_large_body(limit))
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send, 413, too_large_body(limit))
