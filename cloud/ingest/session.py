"""The ingest worker's MQTT side: client, subscriptions, the inbound queue, acknowledgements.

The session runs on paho's network thread (``loop_start``), which reads packets, sends
PUBACKs and keepalives. Its ``on_message`` only appends the message to :attr:`IngestSession.
inbound`, so keepalives go on during long store outages; the worker's writer thread takes
messages from there.

Memory is bounded by the broker's in-flight window, which bounds the queue between the
two threads: with MQTT 5 the worker announces ``Receive Maximum`` =
``max_buffered_messages`` and the broker sends no more unacknowledged messages than that;
with MQTT 3.1.1 the broker's own limit applies (Mosquitto ``max_inflight_messages``). The
network thread never blocks on the queue, so it can always read PUBACKs and keepalives.

Packet identifiers are per connection: after a reconnect the broker redelivers the
unacknowledged messages with (possibly) new ids, and an id from the old connection may
belong to a different message. Every message therefore carries the *connection
generation* it arrived on; the generation changes (under :attr:`IngestSession.lock`) in
``on_disconnect`` and ``on_connect``, and an acknowledgement is only sent, under the same
lock, when the message's generation is current. Messages of an old generation are
dropped unacknowledged (the broker already redelivers them).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from renkei.cloud.broker import client_for
from renkei.cloud.ingest.binding import (
    BIRTH_FILTER,
    BIRTH_SUBSCRIPTION_ID,
    GatewayBindings,
    learn_from_birth,
)
from renkei.cloud.ingest.settings import IngestSettings
from renkei.cloud.ingest.stats import Counters
from renkei.cloud.ingest.work import Inbound, StopControl, Work
from renkei.core.mqtt import connect_async

__all__ = ["IngestSession"]

log = logging.getLogger("renkei.cloud.ingest")


class IngestSession:
    """The worker's MQTT session (persistent, QoS 1, manual acknowledgements).

    Args:
        settings: worker settings (broker, subscription, session expiry, receive maximum).
        counters: the worker's counters (``messages``, ``connects``, errors).
        stop: the worker's stop request (a disconnect while stopping is not an error).
        bindings: machine -> gateway bindings learnt from births, or ``None``.

    Attributes:
        client: the paho client.
        inbound: messages received and not yet taken by the writer (unbounded queue;
            bounded by the in-flight window, see the module docs).
        lock: guards :attr:`gen`, :attr:`connected`, :attr:`max_packet` and the refused
            dead letters; held while acknowledging.
        gen: the connection generation (written only under :attr:`lock`).
        connected: whether the connection is up.
        max_packet: largest packet the broker accepts (its MQTT 5 Maximum Packet Size,
            else ``settings.deadletter_max_bytes``).
        subscribed, unsubscribed: the broker granted the subscription on this connection /
            acknowledged the retiring UNSUBSCRIBE.

    Raises:
        ConfigError: the TLS files cannot be loaded.
    """

    def __init__(
        self,
        *,
        settings: IngestSettings,
        counters: Counters,
        stop: StopControl,
        bindings: GatewayBindings | None,
    ) -> None:
        self.settings = settings
        self._client_id = settings.client_id
        self._stats_lock = counters.lock
        self._counts = counters.counts
        self._error = counters.error
        self._stop = stop
        self._bindings = bindings
        self.inbound: queue.Queue[Inbound] = queue.Queue()
        self.lock = threading.Lock()
        self.gen = 0
        self.connected = False
        self.max_packet = settings.deadletter_max_bytes
        self.subscribed = threading.Event()
        self.unsubscribed = threading.Event()
        self._dl_refused: dict[int, str] = {}
        self._birth_mid: int | None = None
        self.client = self._make_client()

    # ------------------------------------------------------------------ the writer's calls

    def connect(self) -> None:
        """Start connecting (persistent session) and paho's network thread."""
        s = self.settings
        connect_async(
            self.client,
            s.broker,
            clean_start=False,
            session_expiry_s=s.session_expiry_s,
            receive_maximum=s.max_buffered_messages,
        )
        self.client.loop_start()

    def disconnect(self, *, end_session: bool) -> None:
        """Disconnect and stop the network thread; ``end_session``: MQTT 5 Session Expiry
        0 on the DISCONNECT, so the broker drops the session (retire)."""
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0  # end the session now
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        self.client.loop_stop()
        with self.lock:
            self.connected = False
            self.gen += 1

    def unsubscribe(self) -> None:
        """Send the UNSUBSCRIBE of the main subscription (retire); see :attr:`unsubscribed`."""
        self.client.unsubscribe(self.settings.subscription)

    def current(self, item: Inbound) -> bool:
        """Whether ``item`` arrived on the connection that is up now."""
        return item.gen == self.gen and self.connected

    def refused(self, mid: int) -> str | None:
        """The reason code with which the broker refused publish ``mid``, if it did."""
        with self.lock:
            return self._dl_refused.pop(mid, None)

    def ack(self, works: list[Work]) -> tuple[int, int]:
        """PUBACK every message of ``works`` still on the current connection.

        Returns:
            (acknowledged, stale): messages acknowledged (or QoS 0), and messages of an
            ended connection (not acknowledged; the broker redelivers them).
        """
        acked = stale = 0
        with self.lock:
            for w in works:
                m = w.msg
                if m.gen != self.gen or not self.connected:
                    stale += 1
                    continue
                if m.qos > 0:
                    self.client.ack(m.mid, m.qos)
                acked += 1
        return acked, stale

    # ------------------------------------------------------------------ paho callbacks

    def _make_client(self) -> mqtt.Client:
        # Reconnect quickly: with Mosquitto 2.0 a broker restart forgets *shared*
        # subscriptions of sessions (plain ones are restored), so messages published
        # between the restart and this worker's re-subscription reach no one.
        client = client_for(
            self.settings.broker,
            client_id=self._client_id,
            persistent_session=True,
            manual_ack=True,
            reconnect_min_s=1,
            reconnect_max_s=2,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        return client

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
        with self.lock:
            self.gen += 1
            self.connected = True
            self._dl_refused.clear()
            if isinstance(max_packet, int) and max_packet > 0:
                self.max_packet = max_packet
        with self._stats_lock:
            self._counts["connects"] += 1
        log.info(
            "ingest %s connected (session present: %s)",
            self._client_id,
            flags.session_present,
        )
        if self.settings.broker.protocol == "5":
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
        log.info("ingest %s subscribed to %s", self._client_id, self.settings.subscription)
        self.subscribed.set()

    def _on_unsubscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        log.info("ingest %s unsubscribed (%s)", self._client_id, reasons)
        self.unsubscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self.lock:
            self.connected = False
            self.gen += 1
        self.subscribed.clear()
        if not self._stop.is_set():
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
        item = Inbound(
            gen=self.gen,  # written only by this (network) thread's callbacks
            mid=message.mid,
            qos=message.qos,
            topic=topic,
            raw_topic=bytes(message._topic),  # raw bytes, for undecodable topics
            payload=bytes(message.payload),
            received_ms=time.time_ns() // 1_000_000,
        )
        with self._stats_lock:
            self._counts["messages"] += 1
        self.inbound.put(item)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            with self.lock:
                self._dl_refused[mid] = str(reason)
