"""Deliver notifications after the business transaction commits, never inside it.

Code that changes business state calls :func:`enqueue` with a :class:`Notification`
(texts already rendered from the session's data); the note waits in ``session.info``.
:func:`install` hooks a ``sessionmaker``: on ``after_commit`` the waiting notes go to the
:class:`Dispatcher`'s thread pool, on rollback they are dropped. So a notification never
blocks, slows or rolls back the business action, and nothing is announced that did not
happen. Sessions of a factory without the hook (CLI, tests) simply drop their notes.

:meth:`Dispatcher.deliver` reads the firm's :class:`~renkei.cloud.registry.NotificationSettings`,
sends the text in the firm's language on each configured channel (optionally only some),
and writes one :class:`~renkei.cloud.registry.NotificationDelivery` row per target
(``sent``/``failed``/``skipped`` with the reason; targets masked) and one log line per
target (masked, never a URL, token or password).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from renkei.cloud.notify.errors import DeliveryFailed
from renkei.cloud.notify.senders import (
    EmailNotifier,
    LineNotifier,
    Message,
    Notifier,
    SlackNotifier,
    mask,
)
from renkei.cloud.notify.settings import NotifySettings
from renkei.cloud.registry import (
    DeliveryStatus,
    NotificationChannel,
    NotificationDelivery,
    NotificationSettings,
)

__all__ = ["OUTBOX_KEY", "Dispatcher", "Notification", "enqueue", "install"]

log = logging.getLogger(__name__)

OUTBOX_KEY: Final = "renkei.notify.outbox"
"""Key of the pending notes in ``Session.info``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """What to tell one firm.

    Attributes:
        firm_id: the recipient firm (its own settings decide where; never the caller).
        event: ``offer``, ``accepted``, ``declined``, ``alert`` or ``test``.
        reference: what it is about (``takeover T1 assignment 5``), logged and stored.
        texts: the message per language (``ja``, ``en``).
        channels: only these channels; ``None`` = every configured one.
    """

    firm_id: str
    event: str
    reference: str
    texts: dict[str, Message]
    channels: frozenset[NotificationChannel] | None = None


def enqueue(session: Session, note: Notification) -> None:
    """Deliver ``note`` once ``session`` commits (dropped on rollback)."""
    session.info.setdefault(OUTBOX_KEY, []).append(note)


def install(sessions: sessionmaker[Session], dispatcher: Dispatcher) -> None:
    """Hand the notes of every committed session of ``sessions`` to ``dispatcher``."""

    def committed(session: Session) -> None:
        notes = session.info.pop(OUTBOX_KEY, [])
        if notes:
            dispatcher.submit(notes)

    def rolled_back(session: Session) -> None:
        session.info.pop(OUTBOX_KEY, None)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_rollback", rolled_back)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Sends notifications on a small thread pool and records every outcome.

    Args:
        settings: the platform's SMTP and LINE settings.
        sessions: registry sessions (a new one per delivery).
        clock: current UTC time of the delivery rows.
        sleep: waits between retries (tests pass a no-op).
        transport: the httpx transport of Slack and LINE requests (default: network).
    """

    def __init__(
        self,
        *,
        settings: NotifySettings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        self._pool = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="renkei-notify"
        )
        self._pending: set[Future[list[NotificationDelivery]]] = set()
        self._lock = threading.Lock()

    # -- queueing -------------------------------------------------------------------------

    def submit(self, notes: Iterable[Notification]) -> None:
        """Deliver ``notes`` in the background (returns at once)."""
        for note in notes:
            future = self._pool.submit(self.deliver, note)
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(self._done)

    def _done(self, future: Future[list[NotificationDelivery]]) -> None:
        with self._lock:
            self._pending.discard(future)
        exc = future.exception()
        if exc is not None:
            log.error("notification delivery crashed: %s", type(exc).__name__, exc_info=exc)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every submitted note is delivered; ``False`` on timeout."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout_s)
        return not not_done

    def close(self) -> None:
        """Finish what is queued and stop the threads."""
        self._pool.shutdown(wait=True)

    # -- delivery -------------------------------------------------------------------------

    def _notifiers(self, prefs: NotificationSettings) -> dict[NotificationChannel, Notifier | str]:
        """A notifier per channel, or the reason it is skipped."""
        s = self.settings
        out: dict[NotificationChannel, Notifier | str] = {}
        if s.smtp_host:
            out[NotificationChannel.EMAIL] = EmailNotifier(
                host=s.smtp_host,
                port=s.smtp_port,
                security=s.smtp_security,
                sender=s.smtp_from,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                ca_file=s.smtp_ca_file,
                timeout_s=s.smtp_timeout_s,
            )
        else:
            out[NotificationChannel.EMAIL] = "e-mail is off: RENKEI_NOTIFY_SMTP_HOST is not set"
        slack_host = (urlsplit(prefs.slack_webhook_url or "").hostname or "").lower()
        if slack_host in {h.lower() for h in s.slack_hosts}:
            out[NotificationChannel.SLACK] = SlackNotifier(
                timeout_s=s.http_timeout_s,
                attempts=s.attempts,
                backoff_s=s.backoff_s,
                sleep=self._sleep,
                transport=self._transport,
            )
        else:
            out[NotificationChannel.SLACK] = (
                f"Slack is off for this webhook: host {slack_host!r} is not in "
                "RENKEI_NOTIFY_SLACK_HOSTS"
            )
        token = prefs.line_channel_token or (
            s.line_channel_token.get_secret_value() if s.line_channel_token else None
        )
        if token:
            out[NotificationChannel.LINE] = LineNotifier(
                token=token,
                base_url=s.line_api_base,
                timeout_s=s.http_timeout_s,
                attempts=s.attempts,
                backoff_s=s.backoff_s,
                sleep=self._sleep,
                transport=self._transport,
            )
        else:
            out[NotificationChannel.LINE] = (
                "LINE is off: no channel access token (RENKEI_NOTIFY_LINE_CHANNEL_TOKEN)"
            )
        return out

    def deliver(self, note: Notification) -> list[NotificationDelivery]:
        """Send ``note`` on the firm's channels now and record the outcomes (see module)."""
        with self._sessions() as session:
            rows = self.send(session, note)
            try:
                session.commit()
            except SQLAlchemyError as exc:
                log.error(
                    "notification %s for firm %s: delivery log not written (%s)",
                    note.event,
                    note.firm_id,
                    type(exc).__name__,
                )
            return rows

    def send(self, session: Session, note: Notification) -> list[NotificationDelivery]:
        """Send ``note`` now, in the caller's transaction; returns the delivery rows.

        The firm's settings are read through ``session`` and the rows are added to it (the
        caller commits them). Blocks for the whole send, retries included; used by
        :meth:`deliver` and by the "send a test message" endpoint, which answers with the
        outcomes. A firm without settings gets no rows. Never raises for a failed target:
        its row says ``failed`` and why.
        """
        prefs = session.get(NotificationSettings, note.firm_id)
        if prefs is None:
            log.info("notification %s for firm %s: no settings", note.event, note.firm_id)
            return []
        message = note.texts.get(prefs.language) or note.texts["en"]
        targets: list[tuple[NotificationChannel, str]] = [
            *((NotificationChannel.EMAIL, t) for t in prefs.email_to),
            *(
                [(NotificationChannel.SLACK, prefs.slack_webhook_url)]
                if prefs.slack_webhook_url
                else []
            ),
            *((NotificationChannel.LINE, t) for t in prefs.line_to),
        ]
        if note.channels is not None:
            targets = [t for t in targets if t[0] in note.channels]
        notifiers = self._notifiers(prefs)
        rows: list[NotificationDelivery] = []
        try:
            for channel, target in targets:
                rows.append(self._send_one(note, notifiers[channel], channel, target, message))
        finally:
            for n in notifiers.values():
                if isinstance(n, SlackNotifier | LineNotifier):
                    n.close()
        session.add_all(rows)
        return rows

    def _send_one(
        self,
        note: Notification,
        notifier: Notifier | str,
        channel: NotificationChannel,
        target: str,
        message: Message,
    ) -> NotificationDelivery:
        shown = mask(channel, target)
        status, reason = DeliveryStatus.SENT, ""
        if isinstance(notifier, str):
            status, reason = DeliveryStatus.SKIPPED, notifier
        else:
            try:
                notifier.send(target, message)
            except DeliveryFailed as exc:
                status, reason = DeliveryStatus.FAILED, str(exc)[:500]
        level = logging.WARNING if status is DeliveryStatus.FAILED else logging.INFO
        log.log(
            level,
            "notification %s (%s) to firm %s via %s %s: %s%s",
            note.event,
            note.reference,
            note.firm_id,
            channel.value,
            shown,
            status.value,
            f" ({reason})" if reason else "",
        )
        return NotificationDelivery(
            firm_id=note.firm_id,
            event=note.event,
            reference=note.reference[:200],
            channel=channel,
            target=shown,
            status=status,
            reason=reason,
            at=self._clock(),
        )
