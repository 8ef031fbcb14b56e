"""The three senders behind one small interface, :class:`Notifier`.

- :class:`EmailNotifier`: SMTP (``smtplib``), STARTTLS, implicit TLS or plain, optional
  AUTH; one message per address.
- :class:`SlackNotifier`: a Slack incoming webhook, ``POST <webhook URL>`` with
  ``{"text": ...}`` (the URL is the secret and the target).
- :class:`LineNotifier`: the LINE Messaging API push message,
  ``POST {base}/v2/bot/message/push`` with ``Authorization: Bearer <channel access token>``,
  ``X-Line-Retry-Key: <UUID>`` (the same on every retry, so LINE executes it once and
  answers 409 to a repeat of an accepted request, which counts as sent) and
  ``{"to": id, "messages": [{"type": "text", "text": ...}]}`` (text at most 5,000
  characters: longer texts are cut and end with "…").

Every ``send`` raises :class:`~renkei.cloud.notify.errors.DeliveryFailed` (never a library
exception) after at most ``attempts`` tries on retryable errors (timeouts, connection
errors, 5xx, 429; waits ``backoff_s`` doubling, or ``Retry-After`` when given, at most 60
s). Error messages name the channel and status, never the URL, token or password.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from renkei.cloud.notify.errors import DeliveryFailed
from renkei.cloud.registry import NotificationChannel

__all__ = [
    "LINE_TEXT_MAX",
    "EmailNotifier",
    "LineNotifier",
    "Message",
    "Notifier",
    "SlackNotifier",
    "mask",
]

LINE_TEXT_MAX = 5000
"""Most characters of one LINE text message (Messaging API reference)."""

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One notification in one language: ``subject`` (e-mail subject, first line
    elsewhere) and ``text`` (plain text body)."""

    subject: str
    text: str
    language: str = "en"


class Notifier(Protocol):
    """Sends a :class:`Message` to one target of its channel (an address, a webhook URL,
    a LINE user/group id). Raises :class:`DeliveryFailed`."""

    channel: NotificationChannel

    def send(self, target: str, message: Message) -> None: ...


def mask(channel: NotificationChannel | str, target: str) -> str:
    """A form of ``target`` safe to log, store and return.

    E-mail ``a***@example.com``; Slack ``https://hooks.slack.com/…abcd`` (last 4 characters);
    LINE ``U1234…``.
    """
    channel = NotificationChannel(channel)
    if channel is NotificationChannel.EMAIL:
        local, _, domain = target.partition("@")
        return f"{local[:1]}***@{domain}"
    if channel is NotificationChannel.SLACK:
        parts = urlsplit(target)
        return f"{parts.scheme}://{parts.hostname or '?'}/…{target[-4:]}"
    return f"{target[:5]}…"


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        return default


class _HttpSender:
    """Retry loop shared by the two HTTP senders."""

    name = "http"

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        sleep: Sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def _accepted(self, response: httpx.Response, attempt: int) -> bool:
        return response.is_success

    def _describe(self, response: httpx.Response) -> str:
        return f"{self.name} answered HTTP {response.status_code}"

    def _post(self, url: str, *, json: Any, headers: dict[str, str]) -> None:
        wait = self._backoff_s
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.post(url, json=json, headers=headers)
            except httpx.TimeoutException as exc:
                failure = DeliveryFailed(
                    f"{self.name}: timeout ({type(exc).__name__})", retryable=True
                )
                delay = wait
            except httpx.TransportError as exc:
                failure = DeliveryFailed(
                    f"{self.name}: connection failed ({type(exc).__name__})", retryable=True
                )
                delay = wait
            else:
                if self._accepted(response, attempt):
                    return
                retryable = response.status_code == 429 or response.status_code >= 500
                failure = DeliveryFailed(self._describe(response), retryable=retryable)
                delay = _retry_after(response, wait)
            if not failure.retryable or attempt == self._attempts:
                raise failure
            self._sleep(delay)
            wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover


class SlackNotifier(_HttpSender):
    """Slack incoming webhooks: ``POST <url>`` with ``{"text": "<subject>\\n<text>"}``."""

    channel = NotificationChannel.SLACK
    name = "Slack webhook"

    def _describe(self, response: httpx.Response) -> str:
        # Slack answers a short plain-text code (invalid_payload, no_service, ...).
        code = response.text.strip()[:60] if response.text else ""
        return f"{self.name} answered HTTP {response.status_code} {code}".rstrip()

    def send(self, target: str, message: Message) -> None:
        """Post ``message`` to the webhook URL ``target``. Raises :class:`DeliveryFailed`."""
        if not target.startswith(("https://", "http://")):
            raise DeliveryFailed("Slack webhook URL must start with https://")
        self._post(target, json={"text": f"*{message.subject}*\n{message.text}"}, headers={})


class LineNotifier(_HttpSender):
    """LINE Messaging API push messages to one user, group or room id."""

    channel = NotificationChannel.LINE
    name = "LINE Messaging API"

    def __init__(
        self,
        *,
        token: str,
        base_url: str = "https://api.line.me",
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        sleep: Sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
            sleep=sleep,
            transport=transport,
        )
        self._token = token
        self._url = base_url.rstrip("/") + "/v2/bot/message/push"

    def _accepted(self, response: httpx.Response, attempt: int) -> bool:
        # 409 on a retry: an earlier attempt with this X-Line-Retry-Key was accepted.
        return response.is_success or (response.status_code == 409 and attempt > 1)

    def _describe(self, response: httpx.Response) -> str:
        try:
            detail = str(response.json().get("message", ""))[:120]
        except ValueError:
            detail = ""
        return f"{self.name} answered HTTP {response.status_code} {detail}".rstrip()

    @staticmethod
    def body(to: str, message: Message) -> dict[str, Any]:
        """The push request body: one text message, cut to :data:`LINE_TEXT_MAX` characters."""
        text = f"{message.subject}\n{message.text}"
        if len(text) > LINE_TEXT_MAX:
            text = text[: LINE_TEXT_MAX - 1] + "…"
        return {"to": to, "messages": [{"type": "text", "text": text}]}

    def send(self, target: str, message: Message) -> None:
        """Push ``message`` to the LINE id ``target``. Raises :class:`DeliveryFailed`."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "X-Line-Retry-Key": str(uuid.uuid4()),
        }
        self._post(self._url, json=self.body(target, message), headers=headers)


class EmailNotifier:
    """E-mail over SMTP: one ``text/plain; charset=utf-8`` message per address."""

    channel = NotificationChannel.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        security: str = "starttls",
        sender: str = "renkei@localhost",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._sender, self._username, self._password = sender, username, password
        self._ca_file, self._timeout_s = ca_file, timeout_s

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_file)

    def _build(self, target: str, message: Message) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = target
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="renkei")
        msg.set_content(message.text, charset="utf-8")
        msg["Content-Language"] = message.language  # after set_content, which resets it
        return msg

    def send(self, target: str, message: Message) -> None:
        """Send ``message`` to the address ``target``. Raises :class:`DeliveryFailed`."""
        msg = self._build(target, message)
        try:
            smtp: smtplib.SMTP
            if self._security == "tls":
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout_s, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
            with smtp:
                if self._security == "starttls":
                    smtp.starttls(context=self._context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"SMTP login refused ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("SMTP server refused the recipient") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"SMTP server answered {exc.smtp_code}", retryable=exc.smtp_code >= 400
            ) from None
        except smtplib.SMTPException as exc:
            raise DeliveryFailed(f"SMTP failed ({type(exc).__name__})", retryable=True) from None
        except ssl.SSLError as exc:
            raise DeliveryFailed(f"SMTP TLS failed ({exc.reason})") from None
        except OSError as exc:
            raise DeliveryFailed(
                f"SMTP server {self._host}:{self._port} unreachable ({type(exc).__name__})",
                retryable=True,
            ) from None
