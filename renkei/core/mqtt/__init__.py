"""One MQTT session for every Renkei process: broker settings, TLS, the paho client factory.

Every process that talks to the broker -- the gateway publisher and its model rollout,
the Sparkplug B source, the ingest workers, the disruption watcher and the rollout
controller -- declares its broker connection with :class:`BrokerSettings` (embedded in
its own settings, never copied) and holds its connection as one :class:`MqttSession`
(which builds the paho client with :func:`make_client` and connects with
:func:`connect_async`). So TLS (server-verified or mutual), credentials, keep-alive
bounds, the MQTT version, the reconnect pacing, the connection generation behind manual
acknowledgements and the reporting of refused and lost connections are written once.

Public API::

    BrokerSettings      host, port, client id, credentials, TLS files, keep-alive, version
    Will                a Last Will (topic, payload, QoS, retain)
    make_client(...)    a paho ``Client`` (callback API v2) configured from the settings
    connect_async(...)  start connecting (MQTT 5 clean start / session expiry / receive max)
    MqttSession         one connection: start/stop, ``connected``, generation-checked
                        acks, paho's callbacks as typed hooks
    Delivery            what MqttSession.ack acknowledges (gen, mid, qos)
    BrokerSettingsError bad broker settings or TLS files (a ``ValueError``)

Protocol reference: MQTT Version 5.0 (OASIS Standard, 2019), §3.1 CONNECT (Clean Start,
Session Expiry Interval, Receive Maximum, Will), and MQTT 3.1.1 (OASIS, 2014) §3.1.
"""

from renkei.core.mqtt.client import Will, connect_async, make_client
from renkei.core.mqtt.session import Delivery, MqttSession
from renkei.core.mqtt.settings import BrokerSettings, BrokerSettingsError

__all__ = [
    "BrokerSettings",
    "BrokerSettingsError",
    "Delivery",
    "MqttSession",
    "Will",
    "connect_async",
    "make_client",
]
