"""The one paho client factory: every Renkei MQTT connection is built here.

paho-mqtt 2.x, callback API version 2 (https://eclipse.dev/paho/files/paho.mqtt.python/html/).
Owners use it through :class:`renkei.core.mqtt.MqttSession` (which adds the connection
life cycle and turns the callbacks into hooks); this module only does what every owner
did the same way: protocol version, session semantics, credentials, TLS, Last Will,
reconnect pacing, and the MQTT 5 CONNECT properties.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from renkei.core.mqtt.settings import BrokerSettings, BrokerSettingsError


@dataclass(frozen=True, slots=True)
class Will:
    """A Last Will: published by the broker when the connection ends without DISCONNECT
    (MQTT 5 §3.1.2.5). ``qos`` 0..2; ``retain`` keeps it as the topic's retained state."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def make_client(
    settings: BrokerSettings,
    *,
    client_id: str,
    persistent_session: bool,
    manual_ack: bool = False,
    will: Will | None = None,
    reconnect_min_s: float = 1.0,
    reconnect_max_s: float = 30.0,
    unlimited_inflight: bool = False,
    reconnect_on_failure: bool = True,
) -> mqtt.Client:
    """A paho client configured from ``settings`` (not yet connected).

    Args:
        settings: the broker connection.
        client_id: the MQTT client id (``settings.client_id`` is the usual source; owners
            that derive one, e.g. ``{gateway}-rollout``, pass it here).
        persistent_session: MQTT 3.1.1 only: ``clean_session=False`` keeps the broker
            session across reconnects; with MQTT 5 the session is chosen at connect
            time (:func:`connect_async`'s ``clean_start`` and session expiry).
        manual_ack: acknowledge received QoS 1 messages only when the owner calls
            ``client.ack(mid, qos)`` (after the message is safely handled).
        will: the Last Will, or ``None``.
        reconnect_min_s, reconnect_max_s: paho's automatic reconnect delay bounds,
            seconds (doubling from min to max).
        unlimited_inflight: disable paho's own in-flight and queue limits, for an owner
            that paces publishing itself (the gateway publisher).
        reconnect_on_failure: paho's own retries (reconnect in ``loop_forever``, protocol
            downgrade after a refused CONNACK); ``False`` for an owner that runs the network
            loop and its reconnect backoff itself (the Sparkplug B source).

    Raises:
        BrokerSettingsError: the TLS files cannot be loaded (missing, unreadable, bad PEM).
    """
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else not persistent_session,
        manual_ack=manual_ack,
        reconnect_on_failure=reconnect_on_failure,
    )
    if unlimited_inflight:
        client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    # paho computes the delays in float seconds; its annotation says int.
    client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)  # type: ignore[arg-type]
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    if settings.username is not None:
        password = settings.password
        client.username_pw_set(
            settings.username, None if password is None else password.get_secret_value()
        )
    if settings.uses_tls:
        try:
            client.tls_set(
                ca_certs=None if settings.tls_ca_file is None else str(settings.tls_ca_file),
                certfile=None if settings.tls_cert_file is None else str(settings.tls_cert_file),
                keyfile=None if settings.tls_key_file is None else str(settings.tls_key_file),
            )
        except (OSError, ValueError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError
            raise BrokerSettingsError(f"cannot set up TLS for {settings.url}: {exc}") from exc
        if settings.tls_insecure:
            client.tls_insecure_set(True)
    return client


def connect_async(
    client: mqtt.Client,
    settings: BrokerSettings,
    *,
    clean_start: bool,
    session_expiry_s: int | None = None,
    receive_maximum: int | None = None,
) -> None:
    """Start connecting ``client`` (paho's network loop must be started by the owner).

    Args:
        clean_start: MQTT 5 Clean Start (``False`` resumes the broker's session).
        session_expiry_s: MQTT 5 Session Expiry Interval, seconds (``None``: not sent,
            i.e. the session ends with the connection).
        receive_maximum: MQTT 5 Receive Maximum: QoS 1/2 messages the broker may have
            unacknowledged towards this client (1..65535).
    The three are ignored with MQTT 3.1.1 (the session is chosen by
    :func:`make_client`'s ``persistent_session``).
    """
    if settings.protocol != "5":
        client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        return
    props: Properties | None = None
    if session_expiry_s is not None or receive_maximum is not None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s is not None:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
    client.connect_async(
        settings.host,
        settings.port,
        keepalive=settings.keepalive_s,
        clean_start=clean_start,
        properties=props,
    )


__all__ = ["BrokerSettingsError", "Will", "connect_async", "make_client"]
