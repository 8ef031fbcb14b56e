"""The ingest worker: MQTT (QoS 1, persistent session) -> validation -> time-series store.

Delivery guarantee: **at least once, without duplicates in the store**. A message is
acknowledged to the broker (PUBACK) only after

- its points were accepted by the store (HTTP 204 from InfluxDB), or
- it was invalid and its dead letter was acknowledged by the broker (PUBACK of the
  publish to ``renkei/dlq/v1/{reason}``) and the dead-letter counter point was written.

Anything not acknowledged is redelivered by the broker (persistent session: MQTT 5
``clean_start=False`` + Session Expiry Interval, or MQTT 3.1.1 ``clean_session=False``),
and redelivery rewrites the same points (same series and timestamp), so a crash, a broker
restart or a store outage loses nothing and duplicates nothing.

Threads:

- paho's network thread (``loop_start``) reads packets, sends PUBACKs and keepalives. Its
  ``on_message`` only appends the message to a queue, so keepalives go on during long
  store outages (:mod:`.session`).
- the thread calling :meth:`IngestWorker.run` (the *writer*) validates and encodes
  messages, writes batches (up to ``batch_max_lines`` lines or ``batch_max_delay_s``),
  retries with exponential backoff while the store is unavailable, bisects batches the
  store rejects, publishes dead letters and acknowledges in receive order.

The parts, one module each: :mod:`.session` (the MQTT side: client, subscriptions, the
inbound queue, connection generations and PUBACKs), :mod:`.writer` (batched store writes,
retries, bisection), :mod:`.deadletters` (building, publishing and awaiting dead
letters), :mod:`.route` (one message's line protocol or dead-letter reason),
:mod:`.acks` (end-to-end acks to the gateways); this module composes them and owns the
writer thread's loop. Memory bounds and the connection-generation rule that keeps a
PUBACK on the connection its message came from are explained in :mod:`.session`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from paho.mqtt.enums import MQTTErrorCode

from renkei.cloud._exceptions import IngestError, StoreUnavailable
from renkei.cloud.ingest.acks import AckTracker
from renkei.cloud.ingest.binding import GatewayBindings
from renkei.cloud.ingest.deadletters import DeadLetters
from renkei.cloud.ingest.heartbeat import Heartbeat
from renkei.cloud.ingest.lineproto import Encoded
from renkei.cloud.ingest.route import REASON_STORE_REJECTED, Rejected, route_message
from renkei.cloud.ingest.session import IngestSession
from renkei.cloud.ingest.settings import IngestSettings
from renkei.cloud.ingest.stats import Counters, IngestStats
from renkei.cloud.ingest.work import Abandon, Inbound, StopControl, Work
from renkei.cloud.ingest.writer import StoreWriter
from renkei.cloud.store import TimeSeriesStore

__all__ = [
    "IngestSettings",
    "IngestStats",
    "IngestWorker",
    "Rejected",
    "route_message",
]

log = logging.getLogger("renkei.cloud.ingest")


class IngestWorker:
    """Consumes ``renkei/v1/#`` from MQTT and writes it to a :class:`TimeSeriesStore`.

    Args:
        settings: worker settings.
        store: where points go; the worker calls ``ensure_database()`` and
            ``write_lines()`` from the thread running :meth:`run` only. The worker does
            not close the store.

    Raises:
        ConfigError: the broker's TLS files cannot be loaded.

    Usage::

        worker = IngestWorker(settings=IngestSettings(...), store=InfluxStore(...))
        threading.Thread(target=worker.run).start()   # or call run() in the main thread
        ...
        worker.stop()   # thread- and signal-handler-safe; run() returns after flushing
    """

    def __init__(self, *, settings: IngestSettings, store: TimeSeriesStore) -> None:
        self.settings = settings
        self.store = store
        self._client_id = settings.client_id
        self._counters = Counters()
        self._stopping = StopControl()
        self._retire = False
        self._started = False
        self._stopped = threading.Event()
        self._bindings = GatewayBindings() if settings.bind_gateways else None
        self._session = IngestSession(
            settings=settings, counters=self._counters, stop=self._stopping, bindings=self._bindings
        )
        # Bounded by the broker's in-flight window (Receive Maximum), see .session.
        self._queue: queue.Queue[Inbound] = self._session.inbound
        self._writer = StoreWriter(
            settings=settings,
            store=store,
            counters=self._counters,
            stop=self._stopping,
            session=self._session,
        )
        self._deadletters = DeadLetters(
            settings=settings, session=self._session, counters=self._counters, stop=self._stopping
        )
        self._acks = AckTracker(
            publish=self._publish_ack,
            enabled=settings.e2e_acks,
            bound=None if self._bindings is None else self._is_bound,
        )

    # ------------------------------------------------------------------ public API

    def run(self) -> None:
        """Connect, consume and write until :meth:`stop`; then flush, ack, disconnect.

        Blocks. Connection failures are retried forever (paho reconnects with backoff),
        store outages are retried with backoff; neither raises.

        Raises:
            IngestError: ``run()`` was already called on this worker.
        """
        if self._started:
            raise IngestError("IngestWorker.run() may only be called once")
        self._started = True
        s = self.settings
        log.info(
            "ingest %s: connecting to %s, subscribing %s",
            self._client_id,
            s.broker.url,
            s.subscription,
        )
        heartbeat = Heartbeat(
            client=self._session.client,
            group=s.heartbeat_group or s.share_group or "renkei-ingest",
            client_id=self._client_id,
            interval_s=s.heartbeat_interval_s,
            active=lambda: self._session.subscribed.is_set() and not self._stopping.is_set(),
        )
        try:
            try:
                self._writer.ensure_database()
            except StoreUnavailable as exc:
                self._counters.error(
                    f"store unavailable at start ({exc}); will retry before writing"
                )
            self._session.connect()
            heartbeat.start()
            while not self._stopping.is_set():
                batch = self._collect(limit=None)
                if batch:
                    self._process(batch)
            if self._retire:
                self._drain_and_unsubscribe()
            else:
                # Clean stop: flush what was received before the stop, within the timeout.
                pending = self._queue.qsize()
                while pending > 0 and time.monotonic() < self._stopping.deadline:
                    batch = self._collect(limit=pending)
                    if not batch:
                        break
                    pending -= len(batch)
                    self._process(batch)
        finally:
            heartbeat.stop()
            self._session.disconnect(
                end_session=self._retire
                and s.broker.protocol == "5"
                and self._session.unsubscribed.is_set()
            )
            self._stopped.set()
            log.info("ingest %s stopped: %s", self._client_id, self.stats())

    def stop(self, *, retire: bool = False) -> None:
        """Ask :meth:`run` to return: flush within ``stop_timeout_s``, ack, disconnect.

        The broker keeps the session (and queues messages for it) until this client id
        connects again. With ``retire=True`` (scale-in: this client id will not come
        back), the worker instead unsubscribes, drains what the broker had already
        routed to its session (within ``retire_timeout_s``) and ends the session (MQTT 5
        Session Expiry 0). This matters with shared subscriptions on Mosquitto, which
        keeps routing a share of the stream to the offline sessions of a group.

        Returns immediately; safe from any thread and from signal handlers.
        """
        if not self._stopping.is_set():
            s = self.settings
            self._retire = retire
            timeout = s.stop_timeout_s + (s.retire_timeout_s if retire else 0.0)
            self._stopping.request(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until connected and subscribed (messages published from now on are
        delivered to this worker's session); ``False`` on timeout."""
        return self._session.subscribed.wait(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`run` has returned; ``False`` on timeout."""
        return self._stopped.wait(timeout)

    def stats(self) -> IngestStats:
        """A consistent snapshot of the counters (cheap; call it from any thread)."""
        counters = self._counters
        with counters.lock:
            c = counters.counts
            return IngestStats(
                messages=c["messages"],
                points=c["points"],
                field_values=c["values"],
                acked=c["acked"],
                dead_letters=dict(counters.dead),
                store_writes=c["store_writes"],
                store_retries=c["store_retries"],
                stale_dropped=c["stale"],
                connects=c["connects"],
                connected=self._session.connected,
                subscribed=self._session.subscribed.is_set(),
                buffered=self._queue.qsize(),
                last_error=counters.last_error,
                e2e_acks=self._acks.acks_published,
                gateways=self._acks.snapshot(),
            )

    # ------------------------------------------------------------------ writer thread

    def _collect(self, *, limit: int | None) -> list[Work]:
        """Take messages from the queue, encoded, up to the batch limits."""
        s = self.settings
        try:
            first = self._queue.get(timeout=0.1) if limit is None else self._queue.get_nowait()
        except queue.Empty:
            return []
        works: list[Work] = []
        lines = nbytes = taken = 0
        max_msgs = max(1, s.max_buffered_messages // 2)
        deadline = time.monotonic() + s.batch_max_delay_s
        item: Inbound | None = first
        while item is not None:
            taken += 1
            if self._session.current(item):
                work = self._prepare(item)
                works.append(work)
                lines += work.points
                nbytes += len(work.body)
            else:
                self._counters.count(stale=1)
            if limit is not None and taken >= limit:
                break
            if lines >= s.batch_max_lines or nbytes >= s.batch_max_bytes or len(works) >= max_msgs:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or limit is not None or self._stopping.is_set():
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
        return works

    def _prepare(self, item: Inbound) -> Work:
        result = route_message(
            item.topic,
            item.payload,
            now_ms=item.received_ms,
            window=self.settings.window,
            bindings=self._bindings,
        )
        if isinstance(result, Encoded):
            return Work(msg=item, body=result.body, points=result.points, values=result.values)
        work = Work(msg=item)
        self._deadletters.mark(work, result.reason, result.detail)
        return work

    def _process(self, works: list[Work]) -> None:
        """Write, dead-letter and acknowledge one batch; drop it if it cannot complete."""
        if not works:
            return
        self._writer.batch_gen = max(w.msg.gen for w in works)
        try:
            for w in works:
                if w.reason is not None:
                    self._deadletters.publish(w)
            rejected = []
            for w in self._writer.write(works):
                if w.reason is not None:  # only its dead-letter counter point was refused
                    self._counters.error(
                        f"store rejected the dead-letter counter point: {w.detail}"
                    )
                    continue
                log.warning("store rejected message on %s: %s", w.msg.topic, w.detail)
                self._deadletters.mark(w, REASON_STORE_REJECTED, w.detail)
                self._deadletters.publish(w)
                rejected.append(w)
            if rejected and self.settings.deadletter_points:
                for w in self._writer.write(rejected):
                    self._counters.error(
                        f"store rejected the dead-letter counter point: {w.detail}"
                    )
            self._deadletters.await_acks(works)
        except Abandon as exc:
            log.info("batch of %d messages abandoned (%s); redelivered later", len(works), exc)
            return
        # Durably handled: confirm to the gateways end to end, then PUBACK to the broker.
        self._acks.handled((w.msg.topic, w.msg.payload, w.reason) for w in works)
        acked, stale = self._session.ack(works)
        self._counters.count(acked=acked, stale=stale)

    def _is_bound(self, firm: str, site: str, path: str, gw: str) -> bool:
        """May ``gw`` be confirmed end to end for machine ``path`` of ``firm/site``?"""
        assert self._bindings is not None
        return gw in self._bindings.bound(firm, site, path)

    def _publish_ack(self, topic: str, payload: bytes) -> bool:
        """Publish one end-to-end ack (QoS 1, not awaited; see :mod:`renkei.cloud.ingest.acks`)."""
        info = self._session.client.publish(topic, payload, qos=1)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _drain_and_unsubscribe(self) -> None:
        """Retire: unsubscribe, then process until the session has been idle for 1 s."""
        session = self._session
        if not session.connected:
            self._counters.error("cannot retire: not connected to the broker")
            return
        session.unsubscribe()
        while not session.unsubscribed.wait(0.1):
            if time.monotonic() > self._stopping.deadline or not session.connected:
                self._counters.error("no UNSUBACK from the broker; session kept")
                return
            batch = self._collect(limit=self._queue.qsize())
            self._process(batch)
        idle_since = time.monotonic()
        while time.monotonic() < self._stopping.deadline:
            batch = self._collect(limit=None)
            if batch:
                self._process(batch)
                idle_since = time.monotonic()
            elif self._queue.empty() and time.monotonic() - idle_since >= 1.0:
                log.info("ingest %s drained; ending its session", self._client_id)
                return
        self._counters.error("retire timeout: messages may remain in the session")
