"""Driver of the ``sparkplug`` live source (see :mod:`renkei.edge.sources.live.base`).

One MQTT connection (a :class:`renkei.core.mqtt.MqttSession` whose paho network loop the
driver runs itself; MQTT 3.1.1, clean session, Sparkplug 3.0.0 §5.3 and §5.13 for Host
Applications) on the driver's own thread:
it subscribes with QoS 1 to the NBIRTH, NDATA,
NDEATH, DBIRTH, DDATA and DDEATH topics of the configured Edge Nodes only
(:func:`~renkei.edge.sources.live.sparkplug.topic.subscriptions`), hands every message to
:class:`~renkei.edge.sources.live.sparkplug.host.SparkplugHost`, and publishes the rebirth NCMDs
it asks for (QoS 0, not retained, §4.2.1.4). The network loop runs in 0.1 s slices, so a
stop is seen within about that.

Outages: a failed connect, a refused CONNACK or a lost connection is one ``source_down``
event (:meth:`LiveSink.link_down`); the driver reconnects with
:class:`~renkei.edge.sources.live.backoff.Backoff` and the same client, subscribes again, reports
``source_up`` once the SUBACK arrives, and asks every Edge Node that was online for a
rebirth (births and deaths published during the outage are lost with a clean session).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from renkei.core.mqtt import BrokerSettings, MqttSession
from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LiveSink, now_ms
from renkei.edge.sources.live.signals import SecretError, ShotsConfig, SignalMap
from renkei.edge.sources.live.source import LiveSourceError
from renkei.edge.sources.live.sparkplug.codec import encode_rebirth
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.sources.live.sparkplug.host import SparkplugHost
from renkei.edge.sources.live.sparkplug.topic import ncmd_topic, subscriptions

__all__ = ["SparkplugDriver", "make_driver"]

log = logging.getLogger(__name__)

#: Seconds of one network-loop slice (bounds the reaction time to ``stop``).
_SLICE_S = 0.1
#: Longest blocking TCP connect, s (see :meth:`SparkplugDriver.run`).
_CONNECT_TIMEOUT_CAP_S = 1.0
#: Topic filters per SUBSCRIBE packet.
_FILTERS_PER_SUBSCRIBE = 100


def make_driver(config: SparkplugSourceConfig) -> Driver:
    """The driver for ``config``.

    Raises:
        renkei.edge.sources.live.LiveSourceError: the password secret cannot be read, or a TLS
            file is missing.
    """
    return SparkplugDriver(config)


class SparkplugDriver:
    """Reads Sparkplug B Edge Nodes from an MQTT Server (module docstring).

    Raises:
        LiveSourceError: (constructor) unreadable password secret or TLS file.
    """

    def __init__(self, config: SparkplugSourceConfig) -> None:
        self.config = config
        self.signals: Sequence[SignalMap] = list(config.signals)
        self.shots: ShotsConfig | None = config.shots
        self.describe = (
            f"sparkplug mqtt://{config.host}:{config.port} spBv1.0/{config.group_id}"
            + (f"/{config.edge_node_id}" if config.edge_node_id else "")
        )
        self._password: str | None = None
        if config.password is not None:
            try:
                self._password = config.password.read()
            except SecretError as exc:
                raise LiveSourceError(f"{self.describe}: password: {exc}") from None
        if config.tls is not None:
            for key in ("ca", "cert", "key"):
                path = getattr(config.tls, key)
                if path is not None and not path.is_file():
                    raise LiveSourceError(f"{self.describe}: tls.{key} {path} is not a file")
        self.host: SparkplugHost | None = None
        """The Host Application state of the current :meth:`run` (tests read it)."""
        self.rebirths_sent = 0

    # ----------------------------------------------------------------- run

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Read until ``stop`` is set; reconnect by itself (see the module docstring)."""
        cfg = self.config
        state: dict[str, Any] = {"subscribed": False, "connects": 0, "failure": None}
        filters = subscriptions(cfg.group_id, cfg.edge_nodes)
        pending_mids: set[int] = set()

        def on_refused(reason: str) -> None:
            state["failure"] = f"MQTT server refused the connection: {reason}"

        def on_connected(_present: bool, _props: Properties | None) -> None:
            pending_mids.clear()
            for i in range(0, len(filters), _FILTERS_PER_SUBSCRIBE):
                chunk = filters[i : i + _FILTERS_PER_SUBSCRIBE]
                result, mid = client.subscribe([(f, 1) for f in chunk])
                if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                    pending_mids.add(mid)

        def on_subscribe(mid: int, codes: list[ReasonCode]) -> None:
            pending_mids.discard(mid)
            refused = [rc for rc in codes if rc.is_failure]
            if refused:
                state["failure"] = f"MQTT server refused a subscription: {refused[0]}"
                return
            if pending_mids or state["subscribed"]:
                return
            state["subscribed"] = True
            again = state["connects"] > 0
            state["connects"] += 1
            sink.link_up(f"mqtt://{cfg.host}:{cfg.port}, {len(filters)} topic filters")
            host.on_connected(again=again)

        def on_message(msg: mqtt.MQTTMessage) -> None:
            try:
                host.on_message(msg.topic, bytes(msg.payload))
            except Exception:  # a bug must not kill the network loop; report it
                log.exception("%s: message on %s not handled", self.describe, msg.topic)
                sink.event("message_failed", "alarm", f"message on {msg.topic} not handled")

        # The driver runs paho's loop and its reconnect backoff itself (module docstring);
        # the sink reports the link, the session only logs a refusal.
        session = MqttSession(
            self._broker(),
            name=self.describe,
            client_id=cfg.client_id,
            reconnect_on_failure=False,
            log_links=False,
            on_connected=on_connected,
            on_refused=on_refused,
            on_subscribe=on_subscribe,
            on_message=on_message,
        )
        client = session.client
        # The TCP connect blocks this thread: capped so that a stop is seen within ~1 s
        # even while the broker's host does not answer (the plant broker is local).
        client.connect_timeout = min(cfg.link.timeout_s, _CONNECT_TIMEOUT_CAP_S)
        client.max_queued_messages_set(1000)
        host = SparkplugHost(cfg, sink, lambda node: self._publish_rebirth(client, node))
        self.host = host
        backoff = Backoff(min_s=cfg.link.reconnect_min_s, max_s=cfg.link.reconnect_max_s)
        try:
            while not stop.is_set():
                reason = self._session(client, state, host, stop)
                if stop.is_set():
                    break
                if state["subscribed"]:
                    backoff.reset()  # the connection was up: start again from min_s
                sink.link_down(reason)
                if backoff.wait(stop):
                    break
        finally:
            try:
                client.disconnect()
            except Exception:  # closing a dead socket: nothing left to do
                log.debug("%s: disconnect failed", self.describe, exc_info=True)

    def _session(
        self, client: mqtt.Client, state: dict[str, Any], host: SparkplugHost, stop: threading.Event
    ) -> str:
        """Connect, then run the network loop until the connection fails or ``stop``;
        returns why the session ended."""
        cfg = self.config
        state["subscribed"] = False
        state["failure"] = None
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            return f"cannot connect to mqtt://{cfg.host}:{cfg.port}: {exc}"
        waited = 0.0
        while not stop.is_set():
            rc = client.loop(timeout=_SLICE_S)
            if state["failure"] is not None:
                client.disconnect()
                return str(state["failure"])
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return f"connection to mqtt://{cfg.host}:{cfg.port} lost ({mqtt.error_string(rc)})"
            if state["subscribed"]:
                waited = 0.0
                host.tick()
            else:
                waited += _SLICE_S
                if waited > cfg.link.timeout_s:
                    client.disconnect()
                    return f"no CONNACK/SUBACK within {cfg.link.timeout_s:g} s"
        return "stopped"

    # ----------------------------------------------------------------- helpers

    def _broker(self) -> BrokerSettings:
        """The source's keys as the core's broker settings (the one place they are mapped):
        MQTT 3.1.1, TLS with ``tls.ca`` (and ``tls.cert``/``tls.key``). The client id is
        given to :class:`renkei.core.mqtt.MqttSession` as written (a Sparkplug Host id may
        use characters the core's ``client_id`` rule does not allow)."""
        cfg = self.config
        tls = cfg.tls
        return BrokerSettings(
            host=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=None if self._password is None else SecretStr(self._password),
            tls_ca_file=None if tls is None else tls.ca,
            tls_cert_file=None if tls is None else tls.cert,
            tls_key_file=None if tls is None else tls.key,
            keepalive_s=cfg.keepalive_s,
            protocol="3.1.1",
        )

    def _publish_rebirth(self, client: mqtt.Client, edge_node: str) -> bool:
        if not client.is_connected():
            return False
        info = client.publish(
            ncmd_topic(self.config.group_id, edge_node),
            encode_rebirth(now_ms()),
            qos=0,
            retain=False,
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        self.rebirths_sent += 1
        return True
