"""The disruption watcher: gateway birth / Last Will states from MQTT into the registry.

``renkei cloud watch`` runs one :class:`DisruptionWatcher`. It subscribes (MQTT 5, QoS 1,
persistent session: ``clean_start=False`` with a Session Expiry Interval, so states
published while it is down are queued by the broker) to
``renkei/v1/+/+/_gw/+/state`` and, for every message:

1. decodes it (:func:`renkei.core.wire.parse_topic`,
:func:`renkei.core.wire.decode_gateway_payload`);
   a malformed topic or payload, or a payload whose ``gw`` differs from the topic's
   gateway, is logged, counted (``WatchStats.malformed``) and acknowledged: it can never
   stop the watcher;
2. upserts the gateway's :class:`~renkei.cloud.registry.GatewayStatus`
   (:func:`renkei.cloud.disruption.store.apply_gateway_state`, which explains the ordering);
3. when a gateway went offline, checks its site and raises a suspected
   :class:`~renkei.cloud.registry.Disruption` if most of the site's gateways went offline
   together (:func:`renkei.cloud.disruption.store.check_site`);
4. acknowledges the message (PUBACK) only after the database transaction committed.

It also subscribes to every site broker's bridge state ``renkei/bridge/v1/+/+/state``
(:data:`~renkei.cloud.disruption.bridge.BRIDGE_FILTER`; ``WatchSettings.bridge_filter``):
a ``0`` counts as "all of that site's gateways are unreachable" and goes through the same
suspicion rule, a ``1`` clears that cause (the rule, and what happens to an open
suspicion, is in :mod:`renkei.cloud.disruption.bridge`). A malformed bridge state or one
for a firm/site the registry does not have is logged once per topic, counted and
acknowledged.

Threads: paho's network thread only queues messages; one worker thread does the database
work in arrival order, retrying with exponential backoff while the database is
unavailable (the message stays unacknowledged meanwhile). As in the ingest
(:mod:`renkei.cloud.ingest.session`), the connection is a
:class:`renkei.core.mqtt.MqttSession`: every message carries the connection generation
it arrived on, and it is acknowledged only on that same connection (packet ids are per
connection; after a reconnect the broker redelivers unacknowledged messages itself).

The subscription asks for retained messages only when it is new (MQTT 5 Retain Handling
1): the first start syncs every gateway's current state; reconnects to the persistent
session do not replay them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from renkei.cloud.broker import host_client_id
from renkei.cloud.disruption.bridge import (
    BRIDGE_FILTER,
    BridgeOutcome,
    OnceLog,
    decode_bridge_state,
)
from renkei.cloud.disruption.store import (
    StateOutcome,
    apply_bridge,
    apply_gateway_state,
    check_site,
    log_bridge_result,
)
from renkei.cloud.disruption.suspect import SuspectRules
from renkei.core.mqtt import BrokerSettings, MqttSession
from renkei.core.wire import (
    BRIDGE_PREFIX,
    GatewayState,
    GatewayTopic,
    WireError,
    decode_gateway_payload,
    parse_topic,
)

__all__ = ["STATE_FILTER", "DisruptionWatcher", "WatchSettings", "WatchStats"]

log = logging.getLogger("renkei.cloud.disruption")

#: The topic filter of every gateway's retained birth / Last Will state.
STATE_FILTER: Final = "renkei/v1/+/+/_gw/+/state"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WatchSettings(BaseModel):
    """Broker connection of the watcher (immutable).

    Attributes:
        broker: the broker connection (:class:`renkei.core.mqtt.BrokerSettings`: URL,
            credentials, TLS incl. mutual TLS, keep-alive; MQTT 5 only). Its
            ``client_id`` must be stable across restarts (the persistent session is
            keyed by it) and unique per watcher process; ``None`` =
            ``renkei-watch-<hostname>`` (:attr:`client_id`).
        topic_filter: what to watch (default :data:`STATE_FILTER`).
        bridge_filter: the site bridges' states to watch as well
            (default :data:`~renkei.cloud.disruption.bridge.BRIDGE_FILTER`); ``None`` = none.
        session_expiry_s: how long the broker keeps the session (and queues states)
            while the watcher is down, seconds.
        max_inflight: unacknowledged messages the broker may send at once (MQTT 5
            Receive Maximum); bounds the watcher's queue.
        retry_min_s, retry_max_s: backoff bounds while the database is unavailable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    topic_filter: str = STATE_FILTER
    bridge_filter: str | None = BRIDGE_FILTER
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=2**32 - 1)
    max_inflight: int = Field(default=1000, ge=1, le=65535)
    retry_min_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _mqtt5(self) -> WatchSettings:
        if self.broker.protocol != "5":
            # persistent session expiry, Receive Maximum and Retain Handling are MQTT 5
            raise ValueError("the watcher needs MQTT 5 (broker.protocol '5')")
        return self

    @property
    def client_id(self) -> str:
        """The MQTT client id: ``broker.client_id``, default ``renkei-watch-<hostname>``."""
        return self.broker.client_id or host_client_id("renkei-watch")

    @property
    def filters(self) -> tuple[str, ...]:
        """Every topic filter subscribed to."""
        return (self.topic_filter,) + ((self.bridge_filter,) if self.bridge_filter else ())


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchStats:
    """A snapshot of the watcher's counters (since it was created).

    Attributes:
        messages: state messages received.
        applied: messages that changed a gateway's stored state.
        stale: older, repeated or redundant states ignored.
        malformed: messages with a bad topic or payload (logged, acknowledged, dropped).
        suspicions: suspected disruptions raised.
        bridge_states: site bridge states that changed a stored bridge state.
        cleared: suspicions dismissed because the site's bridge came back.
        unknown_sites: bridge states for a firm/site the registry does not have (ignored).
        db_retries: database attempts that failed and were retried.
        errors: unexpected processing errors (logged; the message was acknowledged).
        connects: successful MQTT connections.
        connected, subscribed: the connection / subscription is up now.
        last_error: the most recent error text.
    """

    messages: int = 0
    applied: int = 0
    stale: int = 0
    malformed: int = 0
    suspicions: int = 0
    bridge_states: int = 0
    cleared: int = 0
    unknown_sites: int = 0
    db_retries: int = 0
    errors: int = 0
    connects: int = 0
    connected: bool = False
    subscribed: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Inbound:
    gen: int
    mid: int
    qos: int
    topic: str | None
    payload: bytes
    retained: bool
    received_at: datetime


class DisruptionWatcher:
    """Watches gateway states and raises suspected disruptions (see the module docs).

    Args:
        settings: broker connection.
        engine: the registry database.
        rules: suspicion thresholds (from ``ApiSettings``: ``suspect_*``,
            ``zone_radius_km``).
        clock: current UTC time (receipt time of messages).

    Raises:
        ConfigError: the broker's TLS files cannot be loaded.

    Usage::

        watcher = DisruptionWatcher(settings=WatchSettings(...), engine=engine, rules=rules)
        watcher.start()          # returns at once; connects and retries in the background
        ...
        watcher.stop()           # unprocessed messages stay unacknowledged (redelivered)
    """

    def __init__(
        self,
        *,
        settings: WatchSettings,
        engine: Engine,
        rules: SuspectRules,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self._clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._queue: queue.Queue[_Inbound] = queue.Queue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._counts: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._last_error: str | None = None
        self._once = OnceLog(log)
        self._thread: threading.Thread | None = None
        self._client_id = settings.client_id
        self._mqtt = MqttSession(
            settings.broker,
            name=f"watch {self._client_id}",
            client_id=self._client_id,
            persistent_session=True,
            manual_ack=True,
            reconnect_min_s=1,
            reconnect_max_s=10,
            on_connected=self._on_connected,
            on_refused=self._on_refused,
            on_lost=self._on_lost,
            on_subscribe=self._on_subscribe,
            on_message=self._on_message,
        )

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Connect in the background and start processing; returns at once.

        Raises:
            RuntimeError: called twice.
        """
        if self._thread is not None:
            raise RuntimeError("DisruptionWatcher.start() called twice")
        s = self.settings
        log.info(
            "watch %s: connecting to %s, subscribing %s",
            self._client_id,
            s.broker.url,
            ", ".join(s.filters),
        )
        self._mqtt.start(
            clean_start=False,
            session_expiry_s=s.session_expiry_s,
            receive_maximum=s.max_inflight,
        )
        self._thread = threading.Thread(target=self._work, name="renkei-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop processing and disconnect (the broker keeps the session). Idempotent.

        Args:
            timeout_s: how long to wait for the message being processed to finish.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._mqtt.stop()
        self._subscribed.clear()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until connected and subscribed; ``False`` on timeout."""
        return self._subscribed.wait(timeout)

    def stats(self) -> WatchStats:
        """A consistent snapshot of the counters (any thread)."""
        with self._stats_lock:
            c = self._counts
            return WatchStats(
                messages=c["messages"],
                applied=c["applied"],
                stale=c["stale"],
                malformed=c["malformed"],
                suspicions=c["suspicions"],
                bridge_states=c["bridge_states"],
                cleared=c["cleared"],
                unknown_sites=c["unknown_sites"],
                db_retries=c["db_retries"],
                errors=c["errors"],
                connects=c["connects"],
                connected=self._mqtt.connected,
                subscribed=self._subscribed.is_set(),
                last_error=self._last_error,
            )

    def handle(
        self, topic: str | None, payload: bytes, *, retained: bool, received_at: datetime
    ) -> StateOutcome | BridgeOutcome | None:
        """Process one state message in its own transaction (what the worker thread does).

        Returns:
            The state change (:class:`BridgeOutcome` for a site bridge state), or ``None``
            for a malformed message (logged and counted).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database failed (the caller retries).
        """
        if topic is not None and topic.startswith(f"{BRIDGE_PREFIX}/"):
            return self._handle_bridge(topic, payload, received_at=received_at)
        parsed = self._decode(topic, payload)
        if parsed is None:
            return None
        where, state = parsed
        with self._sessions() as session:
            try:
                outcome = apply_gateway_state(
                    session,
                    firm_id=where.firm,
                    site_id=where.site,
                    gateway_id=where.gateway,
                    state=state,
                    received_at=received_at,
                    retained=retained,
                )
                raised = None
                if outcome.offline:
                    raised = check_site(
                        session, firm_id=where.firm, site_id=where.site, rules=self.rules
                    )
                session.commit()
            except BaseException:
                session.rollback()
                raise
        self._count("stale" if outcome is StateOutcome.STALE else "applied")
        if raised is not None:
            self._count("suspicions")
            log.warning(
                "suspected disruption %d at %s/%s: %d of %d gateways offline since %s",
                raised.id,
                where.firm,
                where.site,
                len(raised.detail.get("offline", [])),
                raised.detail.get("gateways_total", 0),
                raised.start.isoformat(),
            )
        return outcome

    # ------------------------------------------------------------------ internals

    def _handle_bridge(
        self, topic: str, payload: bytes, *, received_at: datetime
    ) -> BridgeOutcome | None:
        try:
            state = decode_bridge_state(topic, payload)
        except WireError as exc:
            self._count("malformed")
            self._once.warning(topic, "ignoring malformed bridge state on %r: %s", topic, exc)
            return None
        with self._sessions() as session:
            try:
                result = apply_bridge(
                    session, state=state, received_at=received_at, rules=self.rules
                )
                session.commit()
            except BaseException:
                session.rollback()
                raise
        for name, n in log_bridge_result(state, result, received_at=received_at, once=self._once):
            self._count(name, n)
        return result.outcome

    def _decode(
        self, topic: str | None, payload: bytes
    ) -> tuple[GatewayTopic, GatewayState] | None:
        try:
            if topic is None:
                raise WireError("bad_topic", "topic is not valid UTF-8")
            where = parse_topic(topic)
            if not isinstance(where, GatewayTopic) or where.kind != "state":
                raise WireError("bad_topic", f"{topic!r} is not a gateway state topic")
            state = decode_gateway_payload(payload, "state")
            if not isinstance(state, GatewayState):  # pragma: no cover - kind="state"
                raise WireError("invalid_payload", "not a gateway state")
            if state.gw != where.gateway:
                raise WireError(
                    "invalid_payload",
                    f"payload gw {state.gw!r} differs from the topic's gateway {where.gateway!r}",
                )
        except WireError as exc:
            self._count("malformed")
            log.warning("ignoring malformed gateway state on %r: %s", topic, exc)
            return None
        return where, state

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self._counts[name] += n

    def _error(self, text: str, *, logged: bool = False) -> None:
        """Keep ``text`` as the last error; log it unless ``logged`` (the session did)."""
        with self._stats_lock:
            self._last_error = text
        if not logged:
            log.warning("watch %s: %s", self._client_id, text)

    def _work(self) -> None:
        s = self.settings
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            delay = s.retry_min_s
            while True:
                try:
                    self.handle(
                        item.topic,
                        item.payload,
                        retained=item.retained,
                        received_at=item.received_at,
                    )
                    break
                except SQLAlchemyError as exc:
                    self._count("db_retries")
                    self._error(f"database error, retrying in {delay:.1f} s: {exc}")
                    if self._stopping.wait(delay):
                        return  # unacknowledged: the broker redelivers it
                    delay = min(s.retry_max_s, delay * 2)
                except Exception as exc:  # a bug must not stall the stream
                    self._count("errors")
                    log.exception("watch: failed on a message on %r; skipping it", item.topic)
                    self._error(f"{type(exc).__name__}: {exc}")
                    break
            self._ack(item)

    def _ack(self, item: _Inbound) -> None:
        if item.qos == 0:
            return
        self._mqtt.ack((item,))

    # ------------------------------------------------------------------ session hooks

    def _on_refused(self, reason: str) -> None:
        self._error(f"broker refused the connection: {reason}", logged=True)

    def _on_connected(self, session_present: bool, properties: Properties | None) -> None:
        self._count("connects")
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        self._mqtt.client.subscribe([(f, options) for f in self.settings.filters])

    def _on_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        refused = {f: rc for f, rc in zip(self.settings.filters, reasons) if rc.is_failure}
        if self.settings.topic_filter in refused or len(reasons) < len(self.settings.filters):
            self._error(f"broker refused subscription {self.settings.filters}: {reasons}")
            return
        for f, rc in refused.items():  # the bridge filter: gateway states still work
            self._error(f"broker refused subscription {f} ({rc}): site bridges are not watched")
        log.info("watch %s subscribed to %s", self._client_id, ", ".join(self.settings.filters))
        self._subscribed.set()

    def _on_lost(self, reason: str) -> None:
        self._subscribed.clear()
        if not self._stopping.is_set():
            self._error(f"disconnected from broker: {reason}", logged=True)

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        self._count("messages")
        self._queue.put(
            _Inbound(
                gen=self._mqtt.gen,  # written by the network thread's callbacks and stop()
                mid=message.mid,
                qos=message.qos,
                topic=topic,
                payload=bytes(message.payload),
                retained=bool(message.retain),
                received_at=self._clock(),
            )
        )
