"""One MQTT session: a paho client, its connection life cycle, and its callbacks as hooks.

Every long-running Renkei MQTT connection -- the gateway publisher, the gateway's model
rollout link, the ingest worker, the disruption watcher and the rollout controller -- is an
:class:`MqttSession`. The session does what they all did the same way:

- builds the paho client from :class:`~renkei.core.mqtt.BrokerSettings`
  (:func:`~renkei.core.mqtt.make_client`: TLS, credentials, Last Will, reconnect bounds,
  manual acknowledgements);
- connects in the background (:meth:`MqttSession.start`: MQTT 5 Clean Start, Session
  Expiry Interval and Receive Maximum, :func:`~renkei.core.mqtt.connect_async`) and
  disconnects (:meth:`MqttSession.stop`, optionally ending the broker's session);
- keeps the *connection generation* and the ``connected`` flag under one lock, so that
  a received QoS 1 message is acknowledged only on the connection it arrived on
  (:meth:`MqttSession.ack`; packet ids are per connection, and after a reconnect the
  broker redelivers unacknowledged messages by itself);
- reports refused and lost connections the same way in every process (a WARNING naming
  the broker and the reason; each refusal reason once until a connection succeeds);
- turns paho's callbacks (callback API version 2) into a few typed hooks the owner
  supplies: ``on_connected(session_present, properties)``, ``on_refused(reason)``,
  ``on_lost(reason)``, ``on_connect_failed(reason)``, ``on_message(msg)``,
  ``on_publish(mid, reason_code, properties)``, ``on_subscribe(mid, reason_codes)`` and
  ``on_unsubscribe(mid, reason_codes)``. Hooks run on paho's network thread; a hook that
  is not supplied installs no paho callback (no work per message).

What to subscribe to, what to publish, when to acknowledge and how to react stays with
the owner. Protocol reference: MQTT Version 5.0 (OASIS Standard, 2019), §3.1 CONNECT,
§3.2 CONNACK, §3.14 DISCONNECT, §4.4 message delivery retry.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from renkei.core.mqtt.client import Will, connect_async, make_client
from renkei.core.mqtt.reasons import connect_error_reason, refusal_reason
from renkei.core.mqtt.settings import BrokerSettings

__all__ = ["Delivery", "MqttSession"]

log = logging.getLogger(__name__)

#: ``on_connected(session_present, properties)``: the CONNACK succeeded; ``properties``
#: are the CONNACK's MQTT 5 properties (Receive Maximum, Maximum Packet Size, ...).
OnConnected = Callable[[bool, Properties | None], None]
#: ``on_refused(reason)`` / ``on_lost(reason)`` / ``on_connect_failed(reason)``.
OnReason = Callable[[str], None]
#: ``on_message(msg)``.
OnMessage = Callable[[mqtt.MQTTMessage], None]
#: ``on_publish(mid, reason_code, properties)``: the PUBACK of publish ``mid``.
OnPublish = Callable[[int, ReasonCode, Properties | None], None]
#: ``on_subscribe(mid, reason_codes)`` / ``on_unsubscribe(mid, reason_codes)``.
OnSubscribe = Callable[[int, list[ReasonCode]], None]


class Delivery(Protocol):
    """A received message as an owner queues it: the connection generation it arrived on
    (:attr:`MqttSession.gen` read in ``on_message``), its packet id and its QoS."""

    @property
    def gen(self) -> int: ...

    @property
    def mid(self) -> int: ...

    @property
    def qos(self) -> int: ...


class MqttSession:
    """One broker connection with its life cycle (see the module docstring).

    Args:
        settings: the broker connection.
        name: who the session belongs to, for log lines (``"watch renkei-watch-h1"``).
        client_id: the MQTT client id (default ``settings.client_id``).
        persistent_session: MQTT 3.1.1 ``clean_session=False`` (MQTT 5: :meth:`start`'s
            ``clean_start`` and ``session_expiry_s``).
        manual_ack: received QoS 1 messages are acknowledged only by :meth:`ack`.
        will: the Last Will, or ``None``.
        reconnect_min_s, reconnect_max_s: paho's reconnect delay bounds, seconds.
        unlimited_inflight: no paho in-flight limit (an owner that paces publishing).
        reconnect_on_failure: paho's own retries; ``False`` for an owner that runs the
            network loop and its reconnect backoff itself (it then connects and loops
            with :attr:`client` instead of :meth:`start`).
        log_links: log connects (INFO) and lost connections (WARNING) here; ``False`` for
            an owner that reports them itself with context the session lacks (the
            gateway publisher: its outbox backlog).
        log_refusals: log refused CONNACKs here (WARNING, each reason once until a
            connection succeeds); ``False`` for an owner that reports them itself (the
            gateway publisher, through ``on_refused``).
        on_connected, on_refused, on_lost, on_connect_failed, on_message, on_publish,
            on_subscribe, on_unsubscribe: the owner's hooks (module docstring). ``on_lost``
            is called only for a connection that was up (not for the close that follows
            a refused CONNACK), also for the one :meth:`stop` ends (see :attr:`stopping`).
            ``on_connect_failed`` gets the socket error of a failed TCP/TLS connect.

    Attributes:
        client: the paho client (publish, subscribe and ack through it).
        lock: guards :attr:`gen` and :attr:`connected`; held by :meth:`ack`.
        gen: the connection generation: changes on every connect and disconnect.

    Raises:
        BrokerSettingsError: the TLS files cannot be loaded (a ``ConfigError``).
        ValueError: neither ``client_id`` nor ``settings.client_id`` is given.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        name: str,
        client_id: str | None = None,
        persistent_session: bool = False,
        manual_ack: bool = False,
        will: Will | None = None,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        unlimited_inflight: bool = False,
        reconnect_on_failure: bool = True,
        log_links: bool = True,
        log_refusals: bool = True,
        on_connected: OnConnected | None = None,
        on_refused: OnReason | None = None,
        on_lost: OnReason | None = None,
        on_connect_failed: OnReason | None = None,
        on_message: OnMessage | None = None,
        on_publish: OnPublish | None = None,
        on_subscribe: OnSubscribe | None = None,
        on_unsubscribe: OnSubscribe | None = None,
    ) -> None:
        cid = client_id or settings.client_id
        if not cid:
            raise ValueError(f"{name}: an MQTT client id is needed")
        self.settings = settings
        self.name = name
        self.client_id = cid
        self.lock = threading.Lock()
        self.gen = 0
        self._connected = False
        self._stopping = False
        self._log_links = log_links
        self._log_refusals = log_refusals
        self._refusals_logged: set[str] = set()
        self._connected_hook = on_connected
        self._refused_hook = on_refused
        self._lost_hook = on_lost
        self._connect_failed_hook = on_connect_failed
        client = make_client(
            settings,
            client_id=cid,
            persistent_session=persistent_session,
            manual_ack=manual_ack,
            will=will,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            unlimited_inflight=unlimited_inflight,
            reconnect_on_failure=reconnect_on_failure,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        if on_connect_failed is not None:
            client.on_connect_fail = self._on_connect_fail
        # The per-message callbacks call the hook directly (one call, no lookups).
        if on_message is not None:
            client.on_message = lambda _c, _u, msg: on_message(msg)
        if on_publish is not None:
            client.on_publish = lambda _c, _u, mid, rc, props: on_publish(mid, rc, props)
        if on_subscribe is not None:
            client.on_subscribe = lambda _c, _u, mid, rcs, _p: on_subscribe(mid, rcs)
        if on_unsubscribe is not None:
            client.on_unsubscribe = lambda _c, _u, mid, rcs, _p: on_unsubscribe(mid, rcs)
        self.client = client

    # ------------------------------------------------------------------ life cycle

    def start(
        self,
        *,
        clean_start: bool,
        session_expiry_s: int | None = None,
        receive_maximum: int | None = None,
    ) -> None:
        """Start connecting and paho's network thread; returns at once (paho reconnects
        by itself within the reconnect bounds).

        Args:
            clean_start: MQTT 5 Clean Start (``False`` resumes the broker's session).
            session_expiry_s: MQTT 5 Session Expiry Interval, seconds (``None``: not
                sent, the session ends with the connection).
            receive_maximum: MQTT 5 Receive Maximum (1..65535).
        """
        self._stopping = False
        connect_async(
            self.client,
            self.settings,
            clean_start=clean_start,
            session_expiry_s=session_expiry_s,
            receive_maximum=receive_maximum,
        )
        self.client.loop_start()

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect and stop the network thread. Idempotent.

        Args:
            end_session: MQTT 5 only: Session Expiry Interval 0 on the DISCONNECT, so the
                broker drops the persistent session now.
        """
        self._stopping = True
        if end_session and self.settings.protocol == "5":
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0  # end the session now
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        self.client.loop_stop()
        with self.lock:
            self._connected = False
            self.gen += 1

    @property
    def connected(self) -> bool:
        """Whether the connection is up (CONNACK received, no disconnect since)."""
        return self._connected

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (a disconnect now is not a loss)."""
        return self._stopping

    # ------------------------------------------------------------------ acknowledgements

    def is_current(self, gen: int) -> bool:
        """Whether generation ``gen`` is the connection that is up now."""
        return gen == self.gen and self._connected

    def ack(self, deliveries: Iterable[Delivery]) -> tuple[int, int]:
        """PUBACK every delivery that arrived on the current connection (manual acks).

        Returns:
            (acknowledged, stale): deliveries acknowledged (or QoS 0, nothing to send),
            and deliveries of an ended connection (not acknowledged; the broker
            redelivers them).
        """
        acked = stale = 0
        with self.lock:
            for d in deliveries:
                if d.gen != self.gen or not self._connected:
                    stale += 1
                    continue
                if d.qos > 0:
                    self.client.ack(d.mid, d.qos)
                acked += 1
        return acked, stale

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            reason = str(reason_code)
            if self._log_refusals and reason not in self._refusals_logged:
                self._refusals_logged.add(reason)
                log.warning(
                    "%s: broker %s refused the connection: %s (will retry)",
                    self.name,
                    self.settings.address,
                    refusal_reason(reason),
                )
            if self._refused_hook is not None:
                self._refused_hook(reason)
            return
        self._refusals_logged.clear()
        with self.lock:
            self.gen += 1
            self._connected = True
        if self._log_links:
            log.info(
                "%s connected to %s (session present: %s)",
                self.name,
                self.settings.url,
                flags.session_present,
            )
        if self._connected_hook is not None:
            self._connected_hook(flags.session_present, properties)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self.lock:
            was_up = self._connected
            self._connected = False
            self.gen += 1
        if not was_up:
            return  # the close after a refused CONNACK (reported there)
        reason = str(reason_code)
        if self._log_links and not self._stopping:
            log.warning(
                "%s: disconnected from broker %s: %s (reconnecting)",
                self.name,
                self.settings.address,
                reason,
            )
        if self._lost_hook is not None:
            self._lost_hook(reason)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` block: the exception is the reason.
        reason = connect_error_reason(sys.exc_info()[1])
        assert self._connect_failed_hook is not None  # installed only with the hook
        self._connect_failed_hook(reason)
