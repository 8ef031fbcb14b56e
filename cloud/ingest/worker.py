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
  store outages.
- the thread calling :meth:`IngestWorker.run` (the *writer*) validates and encodes
  messages, writes batches (up to ``batch_max_lines`` lines or ``batch_max_delay_s``),
  retries with exponential backoff while the store is unavailable, bisects batches the
  store rejects, publishes dead letters and acknowledges in receive order.

Memory is bounded by the broker's in-flight window, which bounds the queue between the
two threads: with MQTT 5 the worker announces ``Receive Maximum`` =
``max_buffered_messages`` and the broker sends no more unacknowledged messages than that;
with MQTT 3.1.1 the broker's own limit applies (Mosquitto ``max_inflight_messages``). The
network thread never blocks on the queue, so it can always read PUBACKs and keepalives.

Packet identifiers are per connection: after a reconnect the broker redelivers the
unacknowledged messages with (possibly) new ids, and an id from the old connection may
belong to a different message. Every message therefore carries the *connection
generation* it arrived on; the generation changes (under ``_conn_lock``) in
``on_disconnect`` and ``on_connect``, and an acknowledgement is only sent, under the same
lock, when the message's generation is current. Messages of an old generation are
dropped unacknowledged (the broker already redelivers them).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from renkei.cloud._exceptions import ConfigError, IngestError, StoreRejected, StoreUnavailable
from renkei.cloud.ingest.acks import AckTracker, GatewaySeqStats
from renkei.cloud.ingest.binding import (
    BIRTH_FILTER,
    BIRTH_SUBSCRIPTION_ID,
    GatewayBindings,
    learn_from_birth,
)
from renkei.cloud.ingest.heartbeat import Heartbeat
from renkei.cloud.ingest.lineproto import (
    Encoded,
    TimeWindow,
    encode_deadletter_point,
    encode_message,
)
from renkei.cloud.store import TimeSeriesStore
from renkei.core.errors import RenkeiError
from renkei.core.wire import DeadLetter, WireError, deadletter_topic

__all__ = [
    "IngestSettings",
    "IngestStats",
    "IngestWorker",
    "Rejected",
    "route_message",
]

log = logging.getLogger("renkei.cloud.ingest")

_LEVEL_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
#: Dead-letter reason for a message that made the encoder fail unexpectedly (a bug).
REASON_INGEST_ERROR: Final = "ingest_error"
#: Dead-letter reason for a message whose points the store refused (HTTP 4xx).
REASON_STORE_REJECTED: Final = "store_rejected"


def _default_client_id() -> str:
    host = "".join(ch if ch in _LEVEL_CHARS else "-" for ch in socket.gethostname())
    return f"renkei-ingest-{host}"[:64]


class IngestSettings(BaseModel):
    """Ingest worker settings (immutable).

    Attributes:
        broker_url: ``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (TLS).
        client_id: MQTT client id; must be **stable across restarts** (the persistent
            session is keyed by it) and unique per worker process.
        username, password: MQTT credentials.
        share_group: shared-subscription group: workers in one group split the stream
            (``$share/{group}/{topic_filter}``). ``None`` = plain subscription (MQTT
            3.1.1 brokers without shared subscriptions, e.g. the demo's amqtt).
        protocol: ``"5"`` or ``"3.1.1"``.
        topic_filter: what to ingest.
        keepalive_s: MQTT keepalive, seconds.
        session_expiry_s: MQTT 5 Session Expiry Interval, seconds: how long the broker
            keeps the session (and queues messages) while the worker is down.
        batch_max_lines: flush a batch at this many lines (InfluxDB recommends ~5000).
        batch_max_bytes: split writes so no request body exceeds this many bytes.
        batch_max_delay_s: flush a batch at most this long after its first message.
        retry_min_s, retry_max_s: exponential backoff bounds while the store is down.
        max_buffered_messages: unacknowledged messages the worker holds at most (MQTT 5
            Receive Maximum, 1..65535); bounds memory.
        stop_timeout_s: on stop, how long to keep trying to flush before giving up (the
            unflushed messages stay unacknowledged and are redelivered later).
        retire_timeout_s: on ``stop(retire=True)``, how long draining may take.
        deadletter_max_bytes: largest dead-letter packet to publish when the broker does
            not announce its Maximum Packet Size; bigger originals are truncated in the
            dead letter (with their size and SHA-256 in ``detail``).
        deadletter_points: also write one ``ingest_deadletters`` point per dead letter.
        tls_ca_file: CA bundle for ``mqtts://`` (default: system CAs).
        tls_insecure: skip broker certificate hostname verification (testing only).
        max_past_s: admission window: a message with a point (or ``sent_ms``) older than
            this many seconds before the ingest clock is dead-lettered
            ``out_of_range_time`` (kept, nothing lost), so one message cannot make
            InfluxDB create a shard per week of a years-wide time range. Default 14 days:
            above what a gateway's outbox holds through an outage (``outbox.max_bytes``
            256 MB at a few kB/s is one to a few days). ``None``: no bound (backfilling
            recorded data with ``timestamps: keep``).
        max_future_s: how far ahead of the ingest clock a point may lie (gateway clock
            skew), seconds; default 5 min.
        bind_gateways: check a machine message's payload ``gw`` against the machines the
            gateways' births claim (:mod:`renkei.cloud.ingest.binding`); with MQTT 5 and a shared
            subscription the worker also subscribes :data:`~renkei.cloud.ingest.binding.
            BIRTH_FILTER` (plain, QoS 0) to get the retained births after every connect.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker_url: str = "mqtt://127.0.0.1:1883"
    client_id: str = Field(default_factory=_default_client_id)
    username: str | None = None
    password: SecretStr | None = None
    share_group: str | None = "renkei-ingest"
    protocol: Literal["5", "3.1.1"] = "5"
    topic_filter: str = "renkei/v1/#"
    heartbeat_group: str | None = None
    """Group named in the liveness heartbeat gateways wait for (``mqtt.wait_for_ingest``);
    default: ``share_group``, or ``"renkei-ingest"`` for a plain subscription."""
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=2**32 - 1)
    batch_max_lines: int = Field(default=5000, ge=1)
    batch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    batch_max_delay_s: float = Field(default=0.2, ge=0)
    retry_min_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    max_buffered_messages: int = Field(default=1000, ge=1, le=65535)
    stop_timeout_s: float = Field(default=10.0, ge=0)
    retire_timeout_s: float = Field(default=120.0, ge=0)
    deadletter_max_bytes: int = Field(default=4 * 1024 * 1024, ge=4096)
    deadletter_points: bool = True
    e2e_acks: bool = True
    """Publish end-to-end acks on ``renkei/ack/v1/...`` after each written batch
    (:mod:`renkei.cloud.ingest.acks`); gateways with ``mqtt.ack: ingest`` need them."""
    tls_ca_file: str | None = None
    tls_insecure: bool = False
    max_past_s: float | None = Field(default=14 * 86_400.0, gt=0)
    max_future_s: float = Field(default=300.0, ge=0, le=86_400)
    bind_gateways: bool = True

    @field_validator("broker_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker_url must be mqtt://host[:port] or mqtts://..., got {value!r}")
        _ = parts.port  # raises ValueError on a bad port
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        if not value or len(value) > 64 or not set(value) <= _LEVEL_CHARS:
            raise ValueError("client_id must be 1-64 characters of [A-Za-z0-9_.-]")
        return value

    @field_validator("share_group")
    @classmethod
    def _check_group(cls, value: str | None) -> str | None:
        if value is not None and (not value or set(value) & set("/+#")):
            raise ValueError("share_group must be non-empty without '/', '+', '#'")
        return value

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        if (self.password is not None) and self.username is None:
            raise ValueError("password given without username")
        return self

    @property
    def host(self) -> str:
        """Broker host name from ``broker_url``."""
        return urlsplit(self.broker_url).hostname or ""

    @property
    def port(self) -> int:
        """Broker port from ``broker_url`` (default 1883, or 8883 for ``mqtts``)."""
        parts = urlsplit(self.broker_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """Whether ``broker_url`` asks for TLS (``mqtts://``)."""
        return urlsplit(self.broker_url).scheme == "mqtts"

    @property
    def window(self) -> TimeWindow:
        """The admission window of ``max_past_s``/``max_future_s``, in ms."""
        past = None if self.max_past_s is None else round(self.max_past_s * 1000)
        return TimeWindow(past, round(self.max_future_s * 1000))

    @property
    def birth_subscription(self) -> bool:
        """Whether the worker subscribes :data:`~renkei.cloud.ingest.binding.BIRTH_FILTER` too
        (MQTT 5 Subscription Identifiers tell its copies apart; a plain main subscription
        gets the retained births itself)."""
        return self.bind_gateways and self.protocol == "5" and self.share_group is not None

    @property
    def subscription(self) -> str:
        """The topic filter actually subscribed (with ``$share/{group}/`` if shared)."""
        if self.share_group is None:
            return self.topic_filter
        return f"$share/{self.share_group}/{self.topic_filter}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestStats:
    """A snapshot of the worker's counters (since it was created).

    Attributes:
        messages: messages received from the broker.
        points: points written to the store (data, not dead-letter counters).
        field_values: field values written to the store.
        acked: messages acknowledged to the broker.
        dead_letters: dead letters published, by reason.
        store_writes: successful store write requests.
        store_retries: store write attempts that failed retryably (and were retried).
        stale_dropped: messages dropped because their connection had ended (the broker
            redelivers them).
        connects: successful MQTT connections.
        connected: whether the MQTT connection is up now.
        subscribed: whether the broker granted the subscription on this connection.
        buffered: messages received and not yet processed.
        last_error: the most recent error text, if any.
        e2e_acks: end-to-end acks published (:mod:`renkei.cloud.ingest.acks`).
        gateways: per-gateway sequence accounting, by ``"{gw}@{epoch}"``.
    """

    messages: int = 0
    points: int = 0
    field_values: int = 0
    acked: int = 0
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    store_writes: int = 0
    store_retries: int = 0
    stale_dropped: int = 0
    connects: int = 0
    connected: bool = False
    subscribed: bool = False
    buffered: int = 0
    last_error: str | None = None
    e2e_acks: int = 0
    gateways: Mapping[str, GatewaySeqStats] = field(default_factory=dict)

    @property
    def dead_letters_total(self) -> int:
        """All dead letters, any reason."""
        return sum(self.dead_letters.values())


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message is dead-lettered (``reason`` is the dead-letter topic level)."""

    reason: str
    detail: str


def route_message(
    topic: str | None,
    payload: bytes,
    *,
    now_ms: int,
    window: TimeWindow | None = None,
    bindings: GatewayBindings | None = None,
) -> Encoded | Rejected:
    """Decide what happens to one message: its line protocol, or why it is rejected.

    Never raises for any input: contract violations become ``Rejected(reason=WireError
    reason)``; an unexpected encoder failure (a bug) becomes ``Rejected("ingest_error")``
    and is logged with its traceback, so one poison message cannot stall the stream.

    Args:
        topic: the MQTT topic, or ``None`` when it was not valid UTF-8.
        payload: the MQTT payload.
        now_ms: current UTC epoch ms (future-timestamp check).
        window: admission window of point times (``out_of_range_time``), or ``None``.
        bindings: machine -> gateway bindings (``gateway_mismatch``), or ``None``.
    """
    if topic is None:
        return Rejected("bad_topic", "topic is not valid UTF-8")
    try:
        return encode_message(topic, payload, now_ms=now_ms, window=window, bindings=bindings)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail)
    except Exception as exc:  # a bug must dead-letter the message, not stall the stream
        log.exception("encoder failed on a message on %r; dead-lettering it", topic)
        return Rejected(REASON_INGEST_ERROR, f"{type(exc).__name__}: {exc}"[:1000])


# --------------------------------------------------------------------------- internals


@dataclass(slots=True)
class _Inbound:
    gen: int
    mid: int
    qos: int
    topic: str | None
    raw_topic: bytes
    payload: bytes
    received_ms: int


@dataclass(slots=True)
class _Work:
    msg: _Inbound
    body: bytes = b""
    points: int = 0
    values: int = 0
    reason: str | None = None
    detail: str = ""
    dl_info: mqtt.MQTTMessageInfo | None = None


class _Abandon(RenkeiError):
    """The current batch cannot complete (stop deadline passed or connection lost)."""


class IngestWorker:
    """Consumes ``renkei/v1/#`` from MQTT and writes it to a :class:`TimeSeriesStore`.

    Args:
        settings: worker settings.
        store: where points go; the worker calls ``ensure_database()`` and
            ``write_lines()`` from the thread running :meth:`run` only. The worker does
            not close the store.

    Usage::

        worker = IngestWorker(settings=IngestSettings(...), store=InfluxStore(...))
        threading.Thread(target=worker.run).start()   # or call run() in the main thread
        ...
        worker.stop()   # thread- and signal-handler-safe; run() returns after flushing
    """

    def __init__(self, *, settings: IngestSettings, store: TimeSeriesStore) -> None:
        self.settings = settings
        self.store = store
        # Bounded by the broker's in-flight window (Receive Maximum), see the module doc.
        self._queue: queue.Queue[_Inbound] = queue.Queue()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._subscribed = threading.Event()
        self._unsubscribed = threading.Event()
        self._retire = False
        self._started = False
        self._deadline = float("inf")
        self._conn_lock = threading.Lock()
        self._gen = 0
        self._batch_gen = 0
        self._connected = False
        self._max_packet = settings.deadletter_max_bytes
        self._dl_refused: dict[int, str] = {}
        self._db_ready = False
        self._last_dl_ms = 0
        self._stats_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dead: Counter[str] = Counter()
        self._last_error: str | None = None
        self._bindings = GatewayBindings() if settings.bind_gateways else None
        self._birth_mid: int | None = None
        self._client = self._make_client()
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
            "ingest %s: connecting to %s, subscribing %s", s.client_id, s.broker_url, s.subscription
        )
        heartbeat = Heartbeat(
            client=self._client,
            group=s.heartbeat_group or s.share_group or "renkei-ingest",
            client_id=s.client_id,
            interval_s=s.heartbeat_interval_s,
            active=lambda: self._subscribed.is_set() and not self._stopping.is_set(),
        )
        try:
            try:
                self._ensure_database()
            except StoreUnavailable as exc:
                self._error(f"store unavailable at start ({exc}); will retry before writing")
            self._connect()
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
                while pending > 0 and time.monotonic() < self._deadline:
                    batch = self._collect(limit=pending)
                    if not batch:
                        break
                    pending -= len(batch)
                    self._process(batch)
        finally:
            heartbeat.stop()
            self._disconnect()
            self._stopped.set()
            log.info("ingest %s stopped: %s", s.client_id, self.stats())

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
            self._deadline = time.monotonic() + timeout
            self._stopping.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until connected and subscribed (messages published from now on are
        delivered to this worker's session); ``False`` on timeout."""
        return self._subscribed.wait(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`run` has returned; ``False`` on timeout."""
        return self._stopped.wait(timeout)

    def stats(self) -> IngestStats:
        """A consistent snapshot of the counters (cheap; call it from any thread)."""
        with self._stats_lock:
            c = self._counts
            return IngestStats(
                messages=c["messages"],
                points=c["points"],
                field_values=c["values"],
                acked=c["acked"],
                dead_letters=dict(self._dead),
                store_writes=c["store_writes"],
                store_retries=c["store_retries"],
                stale_dropped=c["stale"],
                connects=c["connects"],
                connected=self._connected,
                subscribed=self._subscribed.is_set(),
                buffered=self._queue.qsize(),
                last_error=self._last_error,
                e2e_acks=self._acks.acks_published,
                gateways=self._acks.snapshot(),
            )

    # ------------------------------------------------------------------ MQTT side

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        client.max_queued_messages_set(0)
        # Reconnect quickly: with Mosquitto 2.0 a broker restart forgets *shared*
        # subscriptions of sessions (plain ones are restored), so messages published
        # between the restart and this worker's re-subscription reach no one.
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        if s.username is not None:
            client.username_pw_set(
                s.username, s.password.get_secret_value() if s.password is not None else None
            )
        if s.tls:
            try:
                client.tls_set(ca_certs=s.tls_ca_file)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"cannot set up TLS for {s.broker_url}: {exc}") from exc
            if s.tls_insecure:
                client.tls_insecure_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        return client

    def _connect(self) -> None:
        s = self.settings
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.max_buffered_messages
            self._client.connect_async(
                s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    def _disconnect(self) -> None:
        if self._retire and self.settings.protocol == "5" and self._unsubscribed.is_set():
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0  # end the session now
            self._client.disconnect(properties=props)
        else:
            self._client.disconnect()
        self._client.loop_stop()
        with self._conn_lock:
            self._connected = False
            self._gen += 1

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._error(f"broker refused the connection: {reason}")
            return
        max_packet = getattr(properties, "MaximumPacketSize", None) if properties else None
        with self._conn_lock:
            self._gen += 1
            self._connected = True
            self._dl_refused.clear()
            if isinstance(max_packet, int) and max_packet > 0:
                self._max_packet = max_packet
        with self._stats_lock:
            self._counts["connects"] += 1
        log.info(
            "ingest %s connected (session present: %s)",
            self.settings.client_id,
            flags.session_present,
        )
        if self.settings.protocol == "5":
            client.subscribe(self.settings.subscription, options=SubscribeOptions(qos=1))
            if self.settings.birth_subscription:
                props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
                props.SubscriptionIdentifier = BIRTH_SUBSCRIPTION_ID
                _, self._birth_mid = client.subscribe(
                    BIRTH_FILTER, options=SubscribeOptions(qos=0), properties=props
                )
        else:
            client.subscribe(self.settings.subscription, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [rc for rc in reasons if rc.is_failure]
        if mid == self._birth_mid:
            if failed:
                self._error(f"broker refused subscription {BIRTH_FILTER}: {failed[0]}")
            return
        if failed:
            self._error(f"broker refused subscription {self.settings.subscription}: {failed[0]}")
            return
        log.info("ingest %s subscribed to %s", self.settings.client_id, self.settings.subscription)
        self._subscribed.set()

    def _on_unsubscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        log.info("ingest %s unsubscribed (%s)", self.settings.client_id, reasons)
        self._unsubscribed.set()

    def _drain_and_unsubscribe(self) -> None:
        """Retire: unsubscribe, then process until the session has been idle for 1 s."""
        s = self.settings
        if not self._connected:
            self._error("cannot retire: not connected to the broker")
            return
        self._client.unsubscribe(s.subscription)
        while not self._unsubscribed.wait(0.1):
            if time.monotonic() > self._deadline or not self._connected:
                self._error("no UNSUBACK from the broker; session kept")
                return
            batch = self._collect(limit=self._queue.qsize())
            self._process(batch)
        idle_since = time.monotonic()
        while time.monotonic() < self._deadline:
            batch = self._collect(limit=None)
            if batch:
                self._process(batch)
                idle_since = time.monotonic()
            elif self._queue.empty() and time.monotonic() - idle_since >= 1.0:
                log.info("ingest %s drained; ending its session", s.client_id)
                return
        self._error("retire timeout: messages may remain in the session")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._conn_lock:
            self._connected = False
            self._gen += 1
        self._subscribed.clear()
        if not self._stopping.is_set():
            self._error(f"disconnected from broker: {reason}")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        props = getattr(message, "properties", None)
        sub_ids = getattr(props, "SubscriptionIdentifier", None) or ()
        if BIRTH_SUBSCRIPTION_ID in sub_ids and self._bindings is not None:
            if topic is not None:  # learn only; the shared subscription's copy is written
                learn_from_birth(self._bindings, topic, bytes(message.payload))
            return
        item = _Inbound(
            gen=self._gen,  # written only by this (network) thread's callbacks
            mid=message.mid,
            qos=message.qos,
            topic=topic,
            raw_topic=bytes(message._topic),  # raw bytes, for undecodable topics
            payload=bytes(message.payload),
            received_ms=time.time_ns() // 1_000_000,
        )
        with self._stats_lock:
            self._counts["messages"] += 1
        self._queue.put(item)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            with self._conn_lock:
                self._dl_refused[mid] = str(reason)

    # ------------------------------------------------------------------ writer side

    def _current(self, item: _Inbound) -> bool:
        return item.gen == self._gen and self._connected

    def _collect(self, *, limit: int | None) -> list[_Work]:
        """Take messages from the queue, encoded, up to the batch limits."""
        s = self.settings
        try:
            first = self._queue.get(timeout=0.1) if limit is None else self._queue.get_nowait()
        except queue.Empty:
            return []
        works: list[_Work] = []
        lines = nbytes = taken = 0
        max_msgs = max(1, s.max_buffered_messages // 2)
        deadline = time.monotonic() + s.batch_max_delay_s
        item: _Inbound | None = first
        while item is not None:
            taken += 1
            if self._current(item):
                work = self._prepare(item)
                works.append(work)
                lines += work.points
                nbytes += len(work.body)
            else:
                self._count(stale=1)
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

    def _prepare(self, item: _Inbound) -> _Work:
        result = route_message(
            item.topic,
            item.payload,
            now_ms=item.received_ms,
            window=self.settings.window,
            bindings=self._bindings,
        )
        if isinstance(result, Encoded):
            return _Work(msg=item, body=result.body, points=result.points, values=result.values)
        work = _Work(msg=item)
        self._mark_dead(work, result.reason, result.detail)
        return work

    def _mark_dead(self, work: _Work, reason: str, detail: str) -> None:
        work.reason, work.detail, work.points, work.values = reason, detail, 0, 0
        work.body = b""
        if self.settings.deadletter_points:
            self._last_dl_ms = max(work.msg.received_ms, self._last_dl_ms + 1)
            work.body = encode_deadletter_point(
                reason=reason,
                worker=self.settings.client_id,
                topic=self._topic_text(work.msg),
                detail=detail,
                time_ms=self._last_dl_ms,
            )

    @staticmethod
    def _topic_text(msg: _Inbound) -> str:
        if msg.topic is not None:
            return msg.topic
        return msg.raw_topic.decode("utf-8", "backslashreplace")

    def _process(self, works: list[_Work]) -> None:
        """Write, dead-letter and acknowledge one batch; drop it if it cannot complete."""
        if not works:
            return
        self._batch_gen = max(w.msg.gen for w in works)
        try:
            for w in works:
                if w.reason is not None:
                    self._publish_deadletter(w)
            rejected = []
            for w in self._write(works):
                if w.reason is not None:  # only its dead-letter counter point was refused
                    self._error(f"store rejected the dead-letter counter point: {w.detail}")
                    continue
                log.warning("store rejected message on %s: %s", w.msg.topic, w.detail)
                self._mark_dead(w, REASON_STORE_REJECTED, w.detail)
                self._publish_deadletter(w)
                rejected.append(w)
            if rejected and self.settings.deadletter_points:
                for w in self._write(rejected):
                    self._error(f"store rejected the dead-letter counter point: {w.detail}")
            self._await_deadletters(works)
        except _Abandon as exc:
            log.info("batch of %d messages abandoned (%s); redelivered later", len(works), exc)
            return
        # Durably handled: confirm to the gateways end to end, then PUBACK to the broker.
        self._acks.handled((w.msg.topic, w.msg.payload, w.reason) for w in works)
        self._ack(works)

    def _is_bound(self, firm: str, site: str, path: str, gw: str) -> bool:
        """May ``gw`` be confirmed end to end for machine ``path`` of ``firm/site``?"""
        assert self._bindings is not None
        return gw in self._bindings.bound(firm, site, path)

    def _publish_ack(self, topic: str, payload: bytes) -> bool:
        """Publish one end-to-end ack (QoS 1, not awaited; see :mod:`renkei.cloud.ingest.acks`)."""
        info = self._client.publish(topic, payload, qos=1)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _write(self, works: list[_Work]) -> list[_Work]:
        """Write the works' bodies; return the works whose bodies the store rejects."""
        todo = [w for w in works if w.body]
        if not todo:
            return []
        try:
            self._write_bodies([w.body for w in todo])
        except StoreRejected as exc:
            if len(todo) == 1:
                todo[0].detail = exc.detail or str(exc)
                return todo
            half = len(todo) // 2
            return self._write(todo[:half]) + self._write(todo[half:])
        points = sum(w.points for w in todo if w.reason is None)
        values = sum(w.values for w in todo if w.reason is None)
        self._count(points=points, values=values)
        return []

    def _write_bodies(self, bodies: list[bytes]) -> None:
        limit = self.settings.batch_max_bytes
        chunk: list[bytes] = []
        size = 0
        for body in bodies:
            for part in _split_body(body, limit):
                if chunk and size + len(part) > limit:
                    self._write_retrying(b"".join(chunk))
                    chunk, size = [], 0
                chunk.append(part)
                size += len(part)
        if chunk:
            self._write_retrying(b"".join(chunk))

    def _write_retrying(self, body: bytes) -> None:
        """One store write, retried with exponential backoff while the store is down.

        Raises:
            StoreRejected: from the store (the caller bisects).
            _Abandon: stop deadline passed or the MQTT connection of the batch ended.
        """
        s = self.settings
        delay = s.retry_min_s
        while True:
            try:
                if not self._db_ready:
                    self._ensure_database()
                self.store.write_lines(body, precision="ms")
                self._count(store_writes=1)
                return
            except StoreUnavailable as exc:
                self._count(store_retries=1)
                self._error(f"store unavailable, retrying in {delay:.1f} s: {exc}")
                if exc.status == 404:
                    self._db_ready = False
                wait = min(max(delay, exc.retry_after_s or 0.0), s.retry_max_s)
                delay = min(delay * 2, s.retry_max_s)
            self._pause(wait)

    def _ensure_database(self) -> None:
        try:
            self.store.ensure_database()
        except StoreRejected as exc:
            # e.g. InfluxDB 2.x/3.x without CREATE DATABASE rights: the database is
            # provisioned out of band; writing will tell if it is missing.
            log.warning("could not create the database (%s); writing anyway", exc)
        self._db_ready = True

    def _pause(self, seconds: float) -> None:
        """Sleep between retries; raise :class:`_Abandon` once waiting is pointless."""
        if not self._stopping.is_set():
            self._stopping.wait(seconds)
        if self._gen != self._batch_gen:
            raise _Abandon("the MQTT connection of the batch ended during store retries")
        if self._stopping.is_set():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise _Abandon("stop timeout reached while the store was unavailable")
            time.sleep(min(seconds, remaining))

    def _publish_deadletter(self, work: _Work) -> None:
        msg = work.msg
        assert work.reason is not None
        envelope = self._envelope(msg, work.reason, work.detail)
        info = self._client.publish(deadletter_topic(work.reason), envelope, qos=1)
        work.dl_info = info
        with self._stats_lock:
            self._dead[work.reason] += 1

    def _envelope(self, msg: _Inbound, reason: str, detail: str) -> bytes:
        """The dead letter's JSON, never larger than the broker's Maximum Packet Size
        (a bigger publish would make an MQTT 5 broker drop the connection, and the
        original would come back forever)."""
        topic = _clip(self._topic_text(msg), 1024)
        detail = _clip(detail, 2048)
        payload = msg.payload
        # JSON escaping may turn one character into six bytes (\u00XX).
        overhead = 512 + 6 * (len(topic.encode()) + len(detail.encode())) + len(reason)
        room = self._max_packet - overhead
        if len(payload) * 4 // 3 + 4 > room:
            keep = max(0, room * 3 // 4 - 4)
            digest = hashlib.sha256(payload).hexdigest()
            detail = (
                f"{detail} [payload truncated to its first {keep} of {len(payload)} bytes; "
                f"sha256 of the original: {digest}]"
            )
            payload = payload[:keep]
        dl = DeadLetter(
            reason=reason,
            detail=detail,
            topic=topic,
            received_ms=msg.received_ms,
            payload_b64=base64.b64encode(payload).decode("ascii"),
        )
        return dl.model_dump_json().encode()

    def _await_deadletters(self, works: list[_Work]) -> None:
        """Wait for the broker's PUBACK of every dead letter of the batch."""
        for w in works:
            info = w.dl_info
            if info is None:
                continue
            while True:
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not self._current(w.msg):
                    raise _Abandon("connection lost before the dead letter was acknowledged")
                if info.is_published():
                    break
                if self._stopping.is_set() and time.monotonic() > self._deadline:
                    raise _Abandon("stop timeout reached waiting for dead-letter PUBACKs")
                info.wait_for_publish(0.05)
            with self._conn_lock:
                refused = self._dl_refused.pop(info.mid, None)
            if refused is not None:
                # The broker answered the dead letter with an error reason code (e.g. no
                # ACL for renkei/dlq/#). The original is invalid either way; it is acked
                # so it does not block the stream, and its counter point is written.
                self._error(f"broker refused the dead letter on {w.msg.topic}: {refused}")

    def _ack(self, works: list[_Work]) -> None:
        acked = stale = 0
        with self._conn_lock:
            for w in works:
                m = w.msg
                if m.gen != self._gen or not self._connected:
                    stale += 1
                    continue
                if m.qos > 0:
                    self._client.ack(m.mid, m.qos)
                acked += 1
        self._count(acked=acked, stale=stale)

    # ------------------------------------------------------------------ bookkeeping

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for key, n in deltas.items():
                if n:
                    self._counts[key] += n

    def _error(self, text: str) -> None:
        log.warning("%s", text)
        with self._stats_lock:
            self._last_error = text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_body(body: bytes, limit: int) -> list[bytes]:
    """Split a body at line ends into parts of at most ``limit`` bytes where possible.

    Only bodies without string fields are split (a quoted string may contain ``\\n``);
    a single line longer than ``limit`` stays whole.
    """
    if len(body) <= limit or b'"' in body:
        return [body]
    parts: list[bytes] = []
    start = 0
    n = len(body)
    while start < n:
        end = start + limit
        if end >= n:
            parts.append(body[start:])
            break
        cut = body.rfind(b"\n", start, end)
        if cut < start:
            cut = body.find(b"\n", end)
            if cut < 0:
                parts.append(body[start:])
                break
        parts.append(body[start : cut + 1])
        start = cut + 1
    return parts
