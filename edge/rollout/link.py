"""The model rollout's MQTT connection: desired state in, retained report out.

:class:`RolloutLink` is the transport half of :class:`renkei.edge.rollout.ModelRollout`
(which keeps the verify/apply/state half). It owns a second MQTT connection of the gateway
(``{client_id}-rollout``, clean start, a :class:`renkei.core.mqtt.MqttSession`; the data
publisher and its outbox are untouched). With ``mqtt.username`` set it logs in as
``{username}-rollout`` with the same password, because Renkei's broker makes the client id
the user name (see :mod:`renkei.cloud.broker_acl`). On every connect it subscribes (QoS 1)
to the gateway's retained desired state and publishes the current report, retained
(:mod:`renkei.core.wire`, "Model rollout"); paho reconnects by itself (1 .. 30 s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from renkei.core.mqtt import MqttSession
from renkei.core.wire import (
    ModelDesired,
    ModelReport,
    WireError,
    decode_rollout_payload,
    encode,
    rollout_topic,
)
from renkei.edge.config import GatewayConfig

__all__ = ["RolloutLink"]


log = logging.getLogger(__name__)


class RolloutLink:
    """The rollout's MQTT client (see the module docstring).

    Args:
        config: the gateway config (``mqtt`` section, gateway id, firm, site).
        password: MQTT password (as for the data publisher).
        on_desired: called on paho's network thread with every valid desired state of
            this gateway.
        report: builds the report to publish (called on connect and by
            :meth:`publish_report`).

    Raises:
        renkei.core.mqtt.BrokerSettingsError: the TLS files cannot be loaded.
    """

    def __init__(
        self,
        *,
        config: GatewayConfig,
        password: str | None,
        on_desired: Callable[[ModelDesired], None],
        report: Callable[[], ModelReport],
    ) -> None:
        self.config = config
        self._password = password
        self._on_desired = on_desired
        self._report = report
        self.desired_topic = rollout_topic(
            firm=config.firm, site=config.site, gateway=config.gateway_id, kind="desired"
        )
        self.report_topic = rollout_topic(
            firm=config.firm, site=config.site, gateway=config.gateway_id, kind="report"
        )
        self._session = self.make_session()

    def make_client(self) -> mqtt.Client:
        """A new paho client of the rollout's identity (client id, user, TLS; not connected).

        Its hooks act for the link's own session: use it to check the identity only."""
        return self.make_session().client

    def make_session(self) -> MqttSession:
        """A new session of the rollout's identity, hooks set (not connected).

        Raises:
            renkei.core.mqtt.BrokerSettingsError: the TLS files cannot be loaded.
        """
        mq = self.config.mqtt
        broker = mq.broker(password=self._password)
        if mq.username is not None:
            # A user of its own: the broker binds client ids to users
            # (use_username_as_clientid), so sharing the data connection's user would make
            # the two connections take over each other's session.
            broker = broker.model_copy(update={"username": f"{mq.username}-rollout"})
        client_id = f"{mq.client_id or self.config.gateway_id}-rollout"
        return MqttSession(
            broker,
            name=f"rollout {client_id}",
            client_id=client_id,
            reconnect_min_s=1,
            reconnect_max_s=30,
            on_connected=self._on_connected,
            on_message=self._on_message,
        )

    def start(self) -> None:
        """Start connecting in the background (paho's network thread); returns at once."""
        self._session.start(clean_start=True)

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._session.stop()

    def _on_connected(self, session_present: bool, properties: Properties | None) -> None:
        self._session.client.subscribe(self.desired_topic, qos=1)
        self.publish_report()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self.desired_topic:
            return
        try:
            desired = decode_rollout_payload(bytes(msg.payload), "desired")
        except WireError as exc:
            log.warning("ignoring malformed desired state: %s", exc)
            return
        if not isinstance(desired, ModelDesired) or desired.gw != self.config.gateway_id:
            log.warning("ignoring a desired state for another gateway on %s", msg.topic)
            return
        self._on_desired(desired)

    def publish_report(self) -> None:
        """Publish the report retained (QoS 1); a no-op while disconnected (every connect
        publishes the latest one)."""
        client = self._session.client
        if not client.is_connected():
            return
        client.publish(self.report_topic, encode(self._report()), qos=1, retain=True)
