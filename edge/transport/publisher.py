"""MQTT publisher: drains the durable outbox to the broker with QoS 1 (paho-mqtt 2.x).

The :class:`Publisher` owns one MQTT connection (a :class:`renkei.core.mqtt.MqttSession`:
paho ``CallbackAPIVersion.VERSION2``; MQTT 5 by default, 3.1.1 selectable) and one *pump*
thread. The agent writes messages to the
:class:`~renkei.edge.transport.outbox.Outbox` and calls :meth:`Publisher.notify`; the pump publishes
them and deletes each one only once the ingest confirmed it is stored (``ack="ingest"``, the
default; see "End-to-end acknowledgement") or, with ``ack="broker"``, after its PUBACK. A
message is therefore on disk from the moment ``enqueue`` returns until the ingest (or the
broker) has taken responsibility for it. Where this docstring says a record is "acked" on
PUBACK, read "awaits confirmation" for ``ack="ingest"``.

Why this module is long: this docstring is the publisher's delivery contract (no loss,
bounded duplicates, who re-sends what), and the :class:`Publisher` class is one state
machine on one thread -- the in-flight window, the live/backlog/retry/solo streams and the
reaction to connect, disconnect and PUBACK all move the same cursors and tables, so
splitting them would scatter one invariant over several files. What is a job of its own
lives beside it: the settings (:mod:`~renkei.edge.transport.publisher_settings`), the
events, counters and stats (:mod:`~renkei.edge.transport.publisher_state`), end-to-end
confirmation (:mod:`~renkei.edge.transport.publisher_confirm`), and the ingest gate and
outage reporting (:mod:`~renkei.edge.transport.publisher_watch`).

State topic, birth and Last Will
    The client registers a Last Will: ``death`` retained, QoS 1, on ``state_topic``. On
    every (re)connect the pump first publishes ``birth()`` retained, QoS 1, on the same
    topic; a clean :meth:`Publisher.stop` publishes ``death`` retained before
    disconnecting (a normal DISCONNECT suppresses the Will). So the retained state is
    ``online=false`` whenever the gateway is not connected, whichever way it left.

Live data versus backlog
    At each connect the pump takes a *watermark*: the highest outbox id at that moment.
    Records with ``id <= watermark`` are backlog (buffered during the outage, or at
    start-up) and are published in id order at most ``drain_rate_msgs_per_s`` (token
    bucket), using at most 3/4 of the in-flight window. Records enqueued after the
    watermark are live and are published as soon as :meth:`notify` wakes the pump (or
    within 0.25 s without it). Live data therefore keeps flowing while a long backlog
    drains, and the drain cannot flood the broker or the cloud ingest.

In-flight window and acknowledgements
    At most ``max_inflight`` outbox records are unacknowledged at once (clamped to the
    broker's MQTT 5 Receive Maximum). On a successful PUBACK (on_publish with a success
    reason code; "no matching subscribers" counts as success) the record is acked in the
    outbox; acks are committed in batches (every 50 ms or 256 records, and on disconnect
    and stop). A PUBACK with a failure reason code (MQTT 5: not authorized, quota
    exceeded, payload format invalid, ...) does *not* delete the record: it is kept,
    counted in :class:`PublisherStats`, logged once per reason code, and re-published
    with exponential backoff (``puback_retry_min_s`` .. ``puback_retry_max_s``) until the
    broker accepts it. It is never dropped by the publisher.

Retries and poison messages
    A record gets a *strike* when its PUBACK is a failure or when the connection drops
    while it is in flight. Struck records leave the id-ordered live/backlog streams and
    are re-published when their backoff expires: after one strike together with the
    others, after two or more *one at a time*. Some brokers close the connection instead
    of (or after) refusing a PUBLISH -- MQTT 3.1.1 allows it [MQTT-3.3.5-2], and
    Mosquitto 2.0.11 does it with ``max_queued_messages 0`` -- so a "poison" message
    would otherwise kill every connection as soon as the backlog reached it and block
    everything behind it. With strikes it costs one reconnect per backoff period
    (at most every ``puback_retry_max_s``) while all other data flows.

End-to-end acknowledgement (``ack``, default ``"ingest"``)
    A PUBACK only means the broker holds the message; a broker killed before its next
    autosave loses it (issue 11: 17 of 2,682 points). With ``ack="ingest"`` a PUBACK
    still paces the in-flight window, but the record stays in the outbox, *awaiting
    confirmation*, until the ingest's :class:`renkei.core.wire.IngestAck` on
    ``renkei/ack/v1/{firm}/{site}/{gateway}`` (subscribed at QoS 1 on every connect)
    names its seq: then it is deleted. Awaiting records are re-published (QoS 1) after
    ``confirm_timeout_s`` (doubling per round up to ``confirm_timeout_max_s``), and all of
    them after every reconnect (they are backlog again) and when the ingest heartbeat
    comes back after a gap of ``ingest_gap_s`` (the ingest restarted; what the broker
    held for it may be gone). Duplicates are harmless: the ingest rewrites identical
    points. At most ``max_unconfirmed`` records await confirmation or are in flight; when
    full, new records wait on disk (``PublisherStats.unconfirmed_full``) until
    confirmations arrive. ``ack="broker"`` deletes on PUBACK (an old ingest without acks,
    or a broker-only deployment). Acks of a later boot epoch than the outbox's
    (``Outbox.epoch``: its guard file was lost and numbering restarted) are ignored; acks of
    earlier epochs confirm the records enqueued before a restart.

Broker outages are not silent
    When the broker cannot be reached, one WARNING names the address (``host:port``, TLS
    or plain TCP; never credentials) and the reason (refused, unreachable, auth or TLS:
    :mod:`renkei.core.mqtt.reasons`); every ``outage_log_interval_s`` a reminder gives the
    number of failed attempts and the outbox backlog (messages, bytes, age of the oldest:
    the data is kept, not lost); one INFO on recovery gives the outage's duration and the
    failed attempts. A refused CONNACK (bad credentials) counts as a failed attempt.

Ingest gate (``wait_for_ingest``)
    A broker acknowledges a QoS 1 PUBLISH even when no subscription matches, and
    Mosquitto (2.0.11 and 2.0.21 checked) does not restore *shared* subscriptions after
    its own restart. With the gate set, the client subscribes to the ingest group's
    heartbeat topic on every connect and publishes no outbox record until a live
    heartbeat arrives: proof that an ingest subscription exists on this broker
    incarnation (the Sparkplug B "primary host" rule). Birth, Last Will and health
    messages are not held. Records wait on disk meanwhile; nothing is dropped by the gate.

paho's own retransmission (the design decision)
    paho keeps every unacknowledged QoS>0 message in memory and, after a reconnect,
    re-sends it by itself (DUP flag) right after CONNACK. The outbox already is the
    durable copy; two re-senders would double the duplicates, and paho's copy dies with
    the process anyway. So the outbox is the *only* re-sender:

    1. Clean start: MQTT 5 ``clean_start=True`` with session expiry 0 (3.1.1:
       ``clean_session=True``). A gateway only publishes; a persistent session would
       carry no state the outbox does not already have.
    2. The ``on_connected`` hook calls ``client.drop_out_messages()``. paho runs its
       ``on_connect`` (and so the hook) before its re-send loop in the CONNACK handler, so
       its stale copies (and anything queued while disconnected) are discarded before
       they go out.
    3. ``max_inflight_messages_set(0)`` and ``max_queued_messages_set(0)``: paho sends at
       once and never holds messages in its own queue; the pump bounds the window.
    4. On disconnect the pump forgets all in-flight message ids (they are meaningless on
       a new connection) and strikes those records; after the reconnect it re-publishes
       them from the outbox once their backoff expires (``puback_retry_min_s``, 1 s by
       default, for a first strike), and drains the rest of the backlog in id order at
       the drain rate.

    No message is lost: it leaves the disk only after a PUBACK. Duplicates are bounded
    by (a) records in flight at a disconnect whose PUBACK was lost, at most
    ``max_inflight`` per disconnect, and (b) PUBACKs received but not yet committed when
    the process dies, at most ~50 ms of traffic. Both are harmless downstream (ingest
    writes are idempotent by series and timestamp); ``PublisherStats.resent_total``
    counts every re-publication (an upper bound on case a).

Health
    Every ``health_interval_s`` while connected, the pump publishes ``health()``
    directly (QoS 1, not retained, not via the outbox: a stale health sample is worthless).

Threads and errors
    paho's network thread only appends events (connect, disconnect, PUBACK) to a queue;
    the pump thread does everything else, so the outbox is used by exactly one publisher
    thread. If the pump fails (a database error, or an exception from ``birth()`` /
    ``health()``), it logs the traceback, publishes ``death`` retained, disconnects, and
    :meth:`Publisher.stop` re-raises the error as :class:`PublisherError`;
    ``PublisherStats.pump_error`` shows it meanwhile.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from renkei.core.errors import MqttError
from renkei.core.mqtt import MqttSession, Will
from renkei.core.mqtt.reasons import refusal_reason
from renkei.core.wire import (
    GatewayTopic,
    WireError,
    ack_topic,
    decode_ack_payload,
    host_heartbeat_topic,
    parse_topic,
)
from renkei.edge.transport.outbox import Outbox, OutboxRecord, OutboxSettings
from renkei.edge.transport.publisher_confirm import ConfirmTracking
from renkei.edge.transport.publisher_settings import MqttSettings
from renkei.edge.transport.publisher_state import (
    Confirm,
    Connected,
    ConnectFailed,
    Counters,
    Disconnected,
    Event,
    Flight,
    Heartbeat,
    Kind,
    Puback,
    PublisherStats,
)
from renkei.edge.transport.publisher_watch import BrokerWatch

__all__ = ["MqttSettings", "Publisher", "PublisherError", "PublisherStats"]

log = logging.getLogger(__name__)

#: Acks are committed to the outbox at least this often, seconds ...
_ACK_FLUSH_S: Final = 0.05
#: ... or when this many are pending.
_ACK_FLUSH_N: Final = 256
#: Longest the pump sleeps; also the live-data poll interval without notify(), seconds.
_IDLE_S: Final = 0.25
#: Records read from the outbox per query.
_PEEK_N: Final = 256
#: Window slots kept free for birth, health and state messages (not outbox records).
_RESERVED_SLOTS: Final = 4


class PublisherError(MqttError, RuntimeError):
    """The publisher was misused (started twice) or its pump thread failed."""


class Publisher(ConfirmTracking, BrokerWatch):
    """Publishes the outbox to an MQTT broker (see the module docstring).

    Args:
        settings: broker connection settings.
        outbox: the durable outbox to drain (the caller opens and closes it).
        outbox_settings: supplies ``drain_rate_msgs_per_s`` and ``max_inflight``.
        state_topic: ``renkei/v1/{firm}/{site}/_gw/{gateway}/state``; birth, Last Will
            and clean-stop state are published here, retained.
        birth: builds the birth payload (``GatewayState`` with ``online=True``); called
            on every connect, on the pump thread.
        death: the Last Will / clean-stop payload (``GatewayState`` ``online=False``).
        health: returns ``(topic, payload)`` of a health message, or ``None`` for none.
        health_interval_s: seconds between health messages while connected.

    Raises:
        ValueError: ``state_topic`` is not a gateway state topic of the v1 tree, or
            ``health_interval_s`` is not positive.
    """

    def __init__(
        self,
        *,
        settings: MqttSettings,
        outbox: Outbox,
        outbox_settings: OutboxSettings,
        state_topic: str,
        birth: Callable[[], bytes],
        death: bytes,
        health: Callable[[], tuple[str, bytes]] | None = None,
        health_interval_s: float = 30.0,
    ) -> None:
        try:
            parsed = parse_topic(state_topic)
        except WireError as exc:
            raise ValueError(f"state_topic: {exc}") from exc
        if not isinstance(parsed, GatewayTopic) or parsed.kind != "state":
            raise ValueError(f"state_topic {state_topic!r} must be .../_gw/{{gateway}}/state")
        if health_interval_s <= 0:
            raise ValueError(f"health_interval_s must be > 0, got {health_interval_s}")
        self._settings = settings
        self._outbox = outbox
        self._rate = outbox_settings.drain_rate_msgs_per_s
        self._max_inflight = outbox_settings.max_inflight
        self._state_topic = state_topic
        self._birth = birth
        self._death = bytes(death)
        self._health = health
        self._health_interval_s = health_interval_s
        self._client_id = settings.client_id or parsed.gateway

        # Shared between paho's thread / callers and the pump.
        self._events: collections.deque[Event] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_drain_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._crash: BaseException | None = None

        # Pump-thread state (read, never written, by stats()).
        self._c = Counters()
        self._stats_lock = threading.Lock()
        self._connected = False
        self._window = self._max_inflight
        self._inflight: dict[int, Flight] = {}
        self._inflight_ids: set[int] = set()
        self._backlog_inflight = 0
        self._watermark = -1
        self._heartbeat_topic = (
            None
            if settings.wait_for_ingest is None
            else host_heartbeat_topic(settings.wait_for_ingest)
        )
        self._ingest_seen = self._heartbeat_topic is None
        self._gate_logged_at = 0.0
        self._live_cursor = -1
        self._backlog_cursor = -1
        self._backlog_active = False
        self._tokens = 0.0
        self._last_refill = 0.0
        self._batch = max(1.0, self._rate * 0.05)
        self._burst = max(2.0 * self._batch, self._rate * 0.25)
        self._retry: dict[int, tuple[float, int]] = {}  # id -> (due, attempts)
        self._retry_heap: list[tuple[float, int]] = []
        self._reasons_logged: set[str] = set()
        self._solo_queue: collections.deque[int] = collections.deque()
        self._solo_inflight = False
        self._pending_acks: list[int] = []
        self._pending_since = 0.0
        self._next_health = 0.0
        # End-to-end acknowledgement (ack="ingest").
        self._e2e = settings.ack == "ingest"
        self._ack_topic = ack_topic(firm=parsed.firm, site=parsed.site, gateway=parsed.gateway)
        self._gateway = parsed.gateway
        self._awaiting: dict[int, tuple[float, int]] = {}  # id -> (due, rounds)
        self._await_heap: list[tuple[float, int]] = []
        self._confirmed_inflight: set[int] = set()
        self._full_logged = False
        self._last_heartbeat = 0.0
        self._bad_acks_logged = False
        self._republish_logged_at = -float("inf")
        # Broker outage reporting.
        self._outage_since: float | None = None
        self._outage_reason = ""
        self._outage_logged_at = 0.0
        self._outage_attempts = 0
        self._down_since: float | None = time.monotonic()
        # Clean start, no paho in-flight/queue limits (module docstring, "paho's own
        # retransmission", 1 and 3); the Last Will is the retained ``death``. Connects
        # and losses, failed connects and refusals are logged by the pump (with the
        # outbox backlog).
        self._session = MqttSession(
            settings,
            name=f"gateway {self._client_id}",
            client_id=self._client_id,
            will=Will(self._state_topic, self._death, qos=settings.qos, retain=True),
            reconnect_min_s=settings.reconnect_min_s,
            reconnect_max_s=settings.reconnect_max_s,
            unlimited_inflight=True,
            log_links=False,
            log_refusals=False,
            on_connected=self._on_connected,
            on_refused=self._on_refused,
            on_lost=self._on_lost,
            on_connect_failed=self._on_connect_failed,
            on_publish=self._on_publish,
            on_message=self._on_message,
        )
        self._client = self._session.client

    # ------------------------------------------------------------------ session hooks

    def _on_connected(self, session_present: bool, properties: Properties | None) -> None:
        client = self._client
        # Runs before paho's own re-send loop: discard its in-memory copies so that only
        # the outbox re-sends (module docstring, "paho's own retransmission").
        client.drop_out_messages()
        if self._heartbeat_topic is not None:
            client.subscribe(self._heartbeat_topic, qos=0)
        if self._e2e:
            client.subscribe(self._ack_topic, qos=1)
        receive_max = getattr(properties, "ReceiveMaximum", None)
        self._post(Connected(int(receive_max) if receive_max is not None else None))

    def _on_lost(self, reason: str) -> None:
        self._post(Disconnected(reason))

    def _on_publish(self, mid: int, reason_code: ReasonCode, properties: Properties | None) -> None:
        self._post(Puback(mid, reason_code))

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._heartbeat_topic and not msg.retain:
            self._post(Heartbeat())
        elif msg.topic == self._ack_topic:
            try:
                ack = decode_ack_payload(bytes(msg.payload))
            except WireError as exc:
                with self._stats_lock:
                    self._c.acks_ignored_total += 1
                if not self._bad_acks_logged:
                    self._bad_acks_logged = True
                    log.warning("ignoring an invalid ingest ack on %s: %s", msg.topic, exc)
                return
            if ack.gw != self._gateway:
                with self._stats_lock:
                    self._c.acks_ignored_total += 1
                return
            self._post(Confirm(ack.epoch, list(ack.ranges)))

    def _on_connect_failed(self, reason: str) -> None:
        self._post(ConnectFailed(reason))

    def _on_refused(self, reason: str) -> None:
        self._post(ConnectFailed(refusal_reason(reason)))

    def _post(self, event: Event) -> None:
        self._events.append(event)
        self._wake.set()

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Connect in the background and start publishing; returns at once.

        A broker that is down is retried with backoff (``reconnect_min_s`` ..
        ``reconnect_max_s``); messages stay in the outbox meanwhile.

        Raises:
            PublisherError: called twice.
        """
        if self._started:
            raise PublisherError("Publisher.start() called twice")
        self._started = True
        self._session.start(clean_start=True)
        self._thread = threading.Thread(target=self._run, name="renkei-publisher", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Wake the pump after an enqueue so the new (live) message goes out at once."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop cleanly: wait (up to half of ``timeout_s``) for in-flight PUBACKs, commit
        acks, publish ``death`` retained on the state topic, then disconnect.

        Unacknowledged records stay in the outbox for the next start. Idempotent.

        Args:
            timeout_s: upper bound for the whole stop, seconds.

        Raises:
            PublisherError: the pump thread had failed (the original error is chained).
        """
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        self._stop_drain_deadline = time.monotonic() + timeout_s / 2
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._crash is None:
            self._publish_death(deadline)
        self._session.stop()
        if self._crash is not None:
            raise PublisherError(f"publisher pump failed: {self._crash!r}") from self._crash

    @property
    def alive(self) -> bool:
        """Whether the publisher thread is running (started and not stopped or crashed)."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> PublisherStats:
        """A snapshot of the counters (safe to call from any thread)."""
        c = self._c
        with self._stats_lock:
            by_reason = dict(c.puback_failures_by_reason)
        return PublisherStats(
            connected=self._connected,
            connects_total=c.connects_total,
            disconnects_total=c.disconnects_total,
            acked_total=c.acked_total,
            puback_failures_total=c.puback_failures_total,
            puback_failures_by_reason=by_reason,
            resent_total=c.resent_total,
            inflight=len(self._inflight),
            retry_pending=len(self._retry),
            waiting_for_ingest=self._connected and not self._ingest_seen,
            backlog_draining=self._backlog_active,
            health_published_total=c.health_published_total,
            pump_error=None if self._crash is None else repr(self._crash),
            unconfirmed=len(self._awaiting),
            confirmed_total=c.confirmed_total,
            republished_unconfirmed_total=c.republished_unconfirmed_total,
            acks_ignored_total=c.acks_ignored_total,
            unconfirmed_full=self._e2e and self._unconfirmed_room() <= 0,
            broker_unreachable=self._outage_since is not None,
        )

    def _publish_death(self, deadline: float) -> None:
        if not self._client.is_connected():
            return
        info = self._client.publish(
            self._state_topic, self._death, qos=self._settings.qos, retain=True
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            # paho raises when the connection dropped meanwhile: same as not acknowledged
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        try:
            published = info.is_published()
        except (RuntimeError, ValueError):
            published = False
        if not published:
            log.warning(
                "clean stop: the offline state was not acknowledged in time; the broker "
                "keeps the previous state until the Last Will fires"
            )

    # ------------------------------------------------------------------ pump thread

    def _run(self) -> None:
        try:
            self._pump()
        except BaseException as exc:  # surfaced by stats() and re-raised by stop()
            self._crash = exc
            log.critical("publisher pump stopped; no more messages will be sent", exc_info=exc)
            self._publish_death(time.monotonic() + 2.0)
            self._client.disconnect()
            self._connected = False

    def _pump(self) -> None:
        while True:
            self._wake.clear()
            self._drain_events()
            now = time.monotonic()
            stopping = self._stopping.is_set()
            if stopping and (
                not self._connected or not self._inflight or now >= self._stop_drain_deadline
            ):
                self._flush_acks(now, force=True)
                return
            if self._connected and not stopping:
                if self._ingest_seen:
                    self._publish_retries(now)
                    self._publish_unconfirmed(now)
                    self._publish_live()
                    self._publish_backlog(now)
                else:
                    self._log_gate_wait(now)
                self._publish_health(now)
            elif not self._connected:
                self._remind_outage(now)
            self._flush_acks(now, force=False)
            self._wake.wait(self._sleep_for(time.monotonic()))

    def _drain_events(self) -> None:
        while self._events:
            ev = self._events.popleft()
            if isinstance(ev, Puback):
                self._handle_puback(ev)
            elif isinstance(ev, Connected):
                self._handle_connected(ev)
            elif isinstance(ev, Heartbeat):
                self._handle_heartbeat()
            elif isinstance(ev, Confirm):
                self._handle_confirm(ev)
            elif isinstance(ev, ConnectFailed):
                self._handle_connect_failed(ev)
            else:
                self._handle_disconnected(ev)

    def _handle_connected(self, ev: Connected) -> None:
        now = time.monotonic()
        self._forget_inflight()
        self._connected = True
        self._c.connects_total += 1
        window = self._max_inflight
        if ev.receive_max is not None:
            window = min(window, max(1, ev.receive_max - _RESERVED_SLOTS))
        self._window = window
        self._ingest_seen = self._heartbeat_topic is None
        self._gate_logged_at = now
        self._watermark = self._outbox.last_id()
        self._live_cursor = self._watermark
        self._backlog_cursor = -1
        self._backlog_active = True
        self._tokens = 0.0
        self._last_refill = now
        self._next_health = now
        # Records to retry keep their backoff across reconnects; in-flight ones had left
        # the heap, so rebuild it from the table.
        self._retry_heap = [(due, rid) for rid, (due, _) in self._retry.items()]
        heapq.heapify(self._retry_heap)
        self._solo_queue.clear()
        # Every unconfirmed record is backlog again (the drain above re-publishes it).
        self._awaiting.clear()
        self._await_heap.clear()
        self._confirmed_inflight.clear()
        self._last_heartbeat = now
        self._client.publish(self._state_topic, self._birth(), qos=self._settings.qos, retain=True)
        if self._outage_since is not None:
            log.info(
                "broker %s reachable again after an outage of %.1f s and %d failed connection "
                "attempts; the buffered messages are sent now",
                self._settings.address,
                now - (self._down_since if self._down_since is not None else self._outage_since),
                self._outage_attempts,
            )
        self._outage_since = None
        self._outage_attempts = 0
        self._down_since = None
        backlog = self._outbox.stats().backlog_msgs
        log.info(
            "connected to %s:%d as %s; %d buffered messages drain at <= %.0f msg/s",
            self._settings.host,
            self._settings.port,
            self._client_id,
            backlog,
            self._rate,
        )

    def _handle_disconnected(self, ev: Disconnected) -> None:
        if not self._connected:
            return
        self._connected = False
        self._down_since = time.monotonic()
        self._c.disconnects_total += 1
        n = len(self._inflight)
        self._forget_inflight()
        self._flush_acks(time.monotonic(), force=True)
        log.warning(
            "disconnected from %s:%d (%s); %d unacknowledged messages stay in the outbox "
            "and are re-sent after the reconnect",
            self._settings.host,
            self._settings.port,
            ev.reason,
            n,
        )

    def _forget_inflight(self) -> None:
        """The connection is gone: its message ids mean nothing any more. Every record that
        was in flight gets a strike and is retried with backoff, so that a message which
        makes the broker drop the connection cannot block the backlog behind it."""
        for rid in sorted(self._inflight_ids):
            self._strike(rid)
        self._inflight.clear()
        self._inflight_ids.clear()
        self._backlog_inflight = 0
        self._solo_inflight = False

    def _handle_puback(self, ev: Puback) -> None:
        flight = self._inflight.pop(ev.mid, None)
        if flight is None:
            return  # birth/health/state, or a message of a previous connection
        self._inflight_ids.discard(flight.record_id)
        if flight.kind == "backlog":
            self._backlog_inflight -= 1
        elif flight.kind == "solo":
            self._solo_inflight = False
        if ev.reason.is_failure:
            self._refused(flight.record_id, ev.reason)
            return
        self._retry.pop(flight.record_id, None)
        self._c.acked_total += 1
        rid = flight.record_id
        if not self._e2e:
            self._delete_later(rid)
        elif rid in self._confirmed_inflight:
            self._confirmed_inflight.discard(rid)  # the ingest confirmed it meanwhile
        else:
            rounds = flight.rounds + 1 if flight.kind == "confirm" else 0
            s = self._settings
            timeout = min(s.confirm_timeout_max_s, s.confirm_timeout_s * 2.0 ** min(rounds, 30))
            due = time.monotonic() + timeout
            self._awaiting[rid] = (due, rounds)
            heapq.heappush(self._await_heap, (due, rid))

    def _delete_later(self, record_id: int) -> None:
        """Queue a record for deletion from the outbox (committed in batches)."""
        if not self._pending_acks:
            self._pending_since = time.monotonic()
        self._pending_acks.append(record_id)

    def _refused(self, record_id: int, reason: ReasonCode) -> None:
        name = str(reason)
        self._c.puback_failures_total += 1
        with self._stats_lock:
            by = self._c.puback_failures_by_reason
            by[name] = by.get(name, 0) + 1
        self._strike(record_id)
        if name not in self._reasons_logged:
            self._reasons_logged.add(name)
            log.warning(
                "broker refused message seq %d with PUBACK reason %r (0x%02x); it stays in "
                "the outbox and is retried with backoff (logged once per reason)",
                record_id,
                name,
                reason.value,
            )

    def _strike(self, record_id: int) -> None:
        """Schedule a record for another attempt with exponential backoff."""
        s = self._settings
        attempts = self._retry.get(record_id, (0.0, 0))[1] + 1
        delay = min(s.puback_retry_max_s, s.puback_retry_min_s * 2.0 ** min(attempts - 1, 30))
        due = time.monotonic() + delay
        self._retry[record_id] = (due, attempts)
        heapq.heappush(self._retry_heap, (due, record_id))

    def _publish_record(self, rec: OutboxRecord, kind: Kind, *, rounds: int = 0) -> bool:
        info = self._client.publish(rec.topic, rec.payload, qos=rec.qos, retain=rec.retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False  # connection lost; a disconnect event follows
        self._inflight[info.mid] = Flight(rec.id, kind, rounds)
        self._inflight_ids.add(rec.id)
        if kind == "backlog":
            self._backlog_inflight += 1
        elif kind == "solo":
            self._solo_inflight = True
        if kind in ("retry", "solo"):
            self._c.resent_total += 1
        return True

    def _publish_live(self) -> None:
        while self._connected:
            room = self._room()
            if room <= 0:
                return
            want = min(room, _PEEK_N)
            recs = self._outbox.peek(self._live_cursor, want)
            for rec in recs:
                if (
                    rec.id in self._retry
                    or rec.id in self._inflight_ids
                    or rec.id in self._awaiting
                ):
                    self._live_cursor = rec.id
                    continue
                if not self._publish_record(rec, "live"):
                    return
                self._live_cursor = rec.id
            if len(recs) < want:
                return

    def _publish_backlog(self, now: float) -> None:
        if not self._backlog_active:
            return
        self._tokens = min(self._burst, self._tokens + (now - self._last_refill) * self._rate)
        self._last_refill = now
        n = min(int(self._tokens), self._backlog_room())
        if n <= 0:
            return
        recs = self._outbox.peek(self._backlog_cursor, n)
        for rec in recs:
            if rec.id > self._watermark:
                self._backlog_done()
                return
            if rec.id in self._retry or rec.id in self._inflight_ids or rec.id in self._awaiting:
                self._backlog_cursor = rec.id
                continue
            if not self._publish_record(rec, "backlog"):
                return
            self._tokens -= 1.0
            self._backlog_cursor = rec.id
        if len(recs) < n or self._backlog_cursor >= self._watermark:
            self._backlog_done()

    def _backlog_room(self) -> int:
        """Free in-flight slots for backlog records (at most 3/4 of the window)."""
        backlog_window = max(1, self._window - max(1, self._window // 4))
        return min(backlog_window - self._backlog_inflight, self._room())

    def _backlog_done(self) -> None:
        self._backlog_active = False
        log.info("backlog up to seq %d published", self._watermark)

    def _publish_retries(self, now: float) -> None:
        """Re-publish due records: those with one strike together, those with two or more
        one at a time (so a poison message cannot take innocent ones down with it)."""
        heap = self._retry_heap
        room = self._window - len(self._inflight)
        batch: list[int] = []
        while heap and heap[0][0] <= now and len(batch) < room:
            when, rid = heapq.heappop(heap)
            entry = self._retry.get(rid)
            if entry is None or entry[0] != when or rid in self._inflight_ids:
                continue  # stale heap entry (acked, re-scheduled, or in flight)
            if entry[1] >= 2:
                self._solo_queue.append(rid)
            else:
                batch.append(rid)
        if batch:
            found = {rec.id: rec for rec in self._outbox.get(batch)}
            for rid in batch:
                rec = found.get(rid)
                if rec is None:  # dropped by the full policy meanwhile
                    self._retry.pop(rid, None)
                elif not self._publish_record(rec, "retry"):
                    return  # connection lost; the heap is rebuilt at the next connect
        while self._solo_queue and not self._solo_inflight and room > len(batch):
            rid = self._solo_queue.popleft()
            if rid not in self._retry or rid in self._inflight_ids:
                continue
            recs = self._outbox.get([rid])
            if not recs:
                self._retry.pop(rid, None)
                continue
            if not self._publish_record(recs[0], "solo"):
                return

    def _publish_health(self, now: float) -> None:
        if self._health is None or now < self._next_health:
            return
        self._next_health = now + self._health_interval_s
        topic, payload = self._health()
        info = self._client.publish(topic, payload, qos=self._settings.qos)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._c.health_published_total += 1

    def _flush_acks(self, now: float, *, force: bool) -> None:
        if not self._pending_acks:
            return
        if (
            force
            or len(self._pending_acks) >= _ACK_FLUSH_N
            or now - self._pending_since >= _ACK_FLUSH_S
        ):
            ids, self._pending_acks = self._pending_acks, []
            self._outbox.ack(ids)

    def _sleep_for(self, now: float) -> float:
        t = _IDLE_S
        if self._pending_acks:
            t = min(t, self._pending_since + _ACK_FLUSH_S - now)
        if self._stopping.is_set():
            t = min(t, max(0.0, self._stop_drain_deadline - now))
        elif self._connected:
            if self._backlog_active and self._backlog_room() > 0:
                # (with no room, the next PUBACK wakes the pump)
                t = min(t, max(0.0, self._batch - self._tokens) / self._rate)
            if self._retry_heap and len(self._inflight) < self._window:
                t = min(t, self._retry_heap[0][0] - now)
            if self._health is not None:
                t = min(t, self._next_health - now)
        return max(t, 0.001)
