"""Real loopback servers for the notification tests: an HTTP recorder standing in for
Slack and the LINE platform, and an SMTP server (aiosmtpd) keeping what it receives."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from harness.services import free_port

__all__ = ["Recorded", "RecordingServer", "SmtpSink"]


@dataclass
class Recorded:
    """One HTTP request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingServer:
    """Records every request; answers with the queued ``(status, body)`` or 200 ``{}``."""

    requests: list[Recorded] = field(default_factory=list)
    replies: deque[tuple[int, str]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append(
                    Recorded(
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                status, body = outer.replies.popleft() if outer.replies else (200, "{}")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Keep:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope, msg))
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server on a free loopback port; ``messages`` holds what it received.

    Extra keyword arguments go to aiosmtpd's ``Controller`` (``tls_context``,
    ``require_starttls``, ``authenticator``, ``auth_require_tls`` ...).
    """

    def __init__(self, **smtp: Any) -> None:
        self._keep = _Keep()
        self.port = free_port()
        self._controller = Controller(self._keep, hostname="127.0.0.1", port=self.port, **smtp)
        self._controller.start()

    @property
    def messages(self) -> list[tuple[Envelope, EmailMessage]]:
        return self._keep.messages

    def close(self) -> None:
        self._controller.stop()
