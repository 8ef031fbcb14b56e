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
generation* it arrived on; the generation changes (under :attr:`IngestSession.lock`) on
every disconnect and connect, and an acknowledgement is only sent, under the same lock,
when the message's generation is current. Messages of an old generation are dropped
unacknowledged (the broker already redelivers them). The connection, its generation and
the acknowledgement rule are the core's :class:`renkei.core.mqtt.MqttSession`; this
module supplies what the ingest subscribes to and does with what arrives.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from renkei.cloud.ingest.binding import (
    BIRTH_FILTER,
    BIRTH_SUBSCRIPTION_ID,
    GatewayBindings,
    learn_from_birth,
)
from renkei.cloud.ingest.settings import IngestSettings
from renkei.cloud.ingest.stats import Counters
from renkei.cloud.ingest.work import Inbound, StopControl, Work
from renkei.core.mqtt import MqttSession

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
        mqtt: the connection (:class:`renkei.core.mqtt.MqttSession`).
        client: the paho client.
        inbound: messages received and not yet taken by the writer (unbounded queue;
            bounded by the in-flight window, see the module docs).
        lock: guards :attr:`gen`, :attr:`connected`, :attr:`max_packet` and the refused
            dead letters; held while acknowledging.
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
        self._counters = counters
        self._stats_lock = counters.lock
        self._counts = counters.counts
        self._stop = stop
        self._bindings = bindings
        self.inbound: queue.Queue[Inbound] = queue.Queue()
        self.max_packet = settings.deadletter_max_bytes
        self.subscribed = threading.Event()
        self.unsubscribed = threading.Event()
        self._dl_refused: dict[int, str] = {}
        self._birth_mid: int | None = None
        # Reconnect quickly: with Mosquitto 2.0 a broker restart forgets *shared*
        # subscriptions of sessions (plain ones are restored), so messages published
        # between the restart and this worker's re-subscription reach no one.
        self.mqtt = MqttSession(
            settings.broker,
            name=f"ingest {self._client_id}",
            client_id=self._client_id,
            persistent_session=True,
            manual_ack=True,
            reconnect_min_s=1,
            reconnect_max_s=2,
            on_connected=self._on_connected,
            on_refused=self._on_refused,
            on_lost=self._on_lost,
            on_message=self._on_message,
            on_publish=self._on_publish,
            on_subscribe=self._on_subscribe,
            on_unsubscribe=self._on_unsubscribe,
        )
        self.client: mqtt.Client = self.mqtt.client
        self.lock = self.mqtt.lock

    @property
    def gen(self) -> int:
        """The connection generation (see the module docs)."""
        return self.mqtt.gen

    @property
    def connected(self) -> bool:
        """Whether the connection is up."""
        return self.mqtt.connected

    # ------------------------------------------------------------------ the writer's calls

    def connect(self) -> None:
        """Start connecting (persistent session) and paho's network thread."""
        s = self.settings
        self.mqtt.start(
            clean_start=False,
            session_expiry_s=s.session_expiry_s,
            receive_maximum=s.max_buffered_messages,
        )

    def disconnect(self, *, end_session: bool) -> None:
        """Disconnect and stop the network thread; ``end_session``: MQTT 5 Session Expiry
        0 on the DISCONNECT, so the broker drops the session (retire)."""
        self.mqtt.stop(end_session=end_session)

    def unsubscribe(self) -> None:
        """Send the UNSUBSCRIBE of the main subscription (retire); see :attr:`unsubscribed`."""
        self.client.unsubscribe(self.settings.subscription)

    def current(self, item: Inbound) -> bool:
        """Whether ``item`` arrived on the connection that is up now."""
        return self.mqtt.is_current(item.gen)

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
        return self.mqtt.ack(w.msg for w in works)

    # ------------------------------------------------------------------ session hooks

    def _note(self, text: str) -> None:
        """Keep ``text`` as the worker's last error (the session logged it)."""
        with self._stats_lock:
            self._counters.last_error = text

    def _on_refused(self, reason: str) -> None:
        self._note(f"broker refused the connection: {reason}")

    def _on_connected(self, session_present: bool, properties: Properties | None) -> None:
        max_packet = getattr(properties, "MaximumPacketSize", None) if properties else None
        with self.lock:
            self._dl_refused.clear()
            if isinstance(max_packet, int) and max_packet > 0:
                self.max_packet = max_packet
        with self._stats_lock:
            self._counts["connects"] += 1
        client = self.client
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

    def _on_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        failed = [rc for rc in reasons if rc.is_failure]
        if mid == self._birth_mid:
            if failed:
                self._counters.error(f"broker refused subscription {BIRTH_FILTER}: {failed[0]}")
            return
        if failed:
            self._counters.error(
                f"broker refused subscription {self.settings.subscription}: {failed[0]}"
            )
            return
        log.info("ingest %s subscribed to %s", self._client_id, self.settings.subscription)
        self.subscribed.set()

    def _on_unsubscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        log.info("ingest %s unsubscribed (%s)", self._client_id, reasons)
        self.unsubscribed.set()

    def _on_lost(self, reason: str) -> None:
        self.subscribed.clear()
        if not self._stop.is_set() and not self.mqtt.stopping:
            self._note(f"disconnected from broker: {reason}")

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
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
            gen=self.mqtt.gen,  # written by the network thread's callbacks and stop()
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

    def _on_publish(self, mid: int, reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            with self.lock:
                self._dl_refused[mid] = str(reason)
