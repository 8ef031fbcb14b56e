"""What the publisher watches besides its own messages: the ingest gate and broker outages.

:class:`BrokerWatch` is the part of :class:`renkei.edge.transport.publisher.Publisher` that
implements its module docstring's "Ingest gate" (hold outbox records until a live heartbeat
of the ingest group arrives; a heartbeat after a gap re-publishes what awaits confirmation)
and "Broker outages are not silent" (one WARNING naming the address and the reason,
reminders with the failed attempts and the backlog, the outage's duration and attempts on
recovery). A mixin: the methods run on the
publisher's pump thread and use its state, declared below.
"""

from __future__ import annotations

import logging
import time

import orjson

from renkei.edge.transport.outbox import Outbox
from renkei.edge.transport.publisher_settings import MqttSettings
from renkei.edge.transport.publisher_state import GATE_LOG_EVERY_S, ConnectFailed

__all__ = ["BrokerWatch"]

# The publisher's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("renkei.edge.transport.publisher")


class BrokerWatch:
    """The ingest-gate and outage-reporting methods of the publisher (module docstring)."""

    # Publisher state used here (set by Publisher.__init__, pump thread only).
    _settings: MqttSettings
    _outbox: Outbox
    _e2e: bool
    _awaiting: dict[int, tuple[float, int]]
    _ingest_seen: bool
    _last_heartbeat: float
    _gate_logged_at: float
    _outage_since: float | None
    _outage_reason: str
    _outage_logged_at: float
    _outage_attempts: int
    _down_since: float | None

    def _redrain(self) -> None:
        raise NotImplementedError  # ConfirmTracking's

    def _handle_heartbeat(self) -> None:
        now = time.monotonic()
        gap = now - self._last_heartbeat
        self._last_heartbeat = now
        if not self._ingest_seen:
            self._ingest_seen = True
            log.info(
                "ingest group %s is subscribed (heartbeat seen); publishing",
                self._settings.wait_for_ingest,
            )
        elif self._e2e and gap >= self._settings.ingest_gap_s:
            log.info(
                "ingest heartbeat back after %.1f s of silence; re-publishing the %d "
                "unconfirmed messages",
                gap,
                len(self._awaiting),
            )
            self._redrain()

    def _log_gate_wait(self, now: float) -> None:
        if now - self._gate_logged_at >= GATE_LOG_EVERY_S:
            self._gate_logged_at = now
            log.warning(
                "connected, but no heartbeat from ingest group %s yet: holding %d messages "
                "in the outbox until an ingest is subscribed",
                self._settings.wait_for_ingest,
                self._outbox.stats().backlog_msgs,
            )

    def _handle_connect_failed(self, ev: ConnectFailed) -> None:
        now = time.monotonic()
        self._outage_reason = ev.reason
        self._outage_attempts += 1
        if self._outage_since is not None:
            return
        self._outage_since = now
        if self._down_since is None:
            self._down_since = now
        self._outage_logged_at = now
        log.warning(
            "cannot connect to broker %s: %s; messages stay in the outbox (%s); retrying "
            "every <= %g s",
            self._settings.address,
            ev.reason,
            self._backlog_text(),
            self._settings.reconnect_max_s,
        )

    def _remind_outage(self, now: float) -> None:
        if self._outage_since is None:
            return
        if now - self._outage_logged_at < self._settings.outage_log_interval_s:
            return
        self._outage_logged_at = now
        down = now - (self._down_since if self._down_since is not None else self._outage_since)
        log.warning(
            "broker %s still not connected after %.0f s and %d failed attempts (%s); "
            "messages stay in the outbox (%s)",
            self._settings.address,
            down,
            self._outage_attempts,
            self._outage_reason,
            self._backlog_text(),
        )

    def _backlog_text(self) -> str:
        st = self._outbox.stats()
        text = f"backlog {st.backlog_msgs} messages, {st.backlog_bytes} bytes"
        age = self._oldest_age_s()
        return text if age is None else f"{text}, oldest {age:.0f} s old"

    def _oldest_age_s(self) -> float | None:
        """Age of the oldest buffered message from its payload's ``sent_ms``, seconds."""
        recs = self._outbox.peek(-1, 1)
        if not recs:
            return None
        try:
            sent = orjson.loads(recs[0].payload).get("sent_ms")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        if not isinstance(sent, int):
            return None
        return max(0.0, time.time() - sent / 1000.0)
