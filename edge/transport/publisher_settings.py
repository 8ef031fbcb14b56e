"""The publisher's settings: the core broker connection plus how it delivers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from renkei.core.mqtt import BrokerSettings

__all__ = ["MqttSettings"]


class MqttSettings(BrokerSettings):
    """Publisher settings (frozen): the broker connection
    (:class:`renkei.core.mqtt.BrokerSettings`: host, port, client id, credentials, TLS,
    keep-alive, protocol; ``client_id`` ``None`` = the gateway id from the state topic)
    plus how the publisher delivers."""

    qos: Literal[1, 2] = 1
    """QoS of birth, Last Will, clean-stop state and health messages. Outbox records
    keep the QoS they were enqueued with (default 1). QoS 0 is not offered here: it has
    no PUBACK, so delivery could not be confirmed."""
    reconnect_min_s: Annotated[float, Field(gt=0)] = 1.0
    """First reconnect delay after a lost connection, seconds (doubles per failure)."""
    reconnect_max_s: Annotated[float, Field(gt=0)] = 60.0
    """Longest reconnect delay, seconds."""
    puback_retry_min_s: Annotated[float, Field(gt=0)] = 1.0
    """First re-publish delay after a PUBACK with a failure reason code, seconds."""
    puback_retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    """Longest re-publish delay for a record the broker keeps refusing, seconds."""
    wait_for_ingest: str | None = None
    """Ingest group whose heartbeat (``renkei/host/v1/{group}/heartbeat``) must arrive
    after every (re)connect before outbox records are published; ``None`` = no gate.
    See "Ingest gate" in the module docstring."""
    ack: Literal["ingest", "broker"] = "ingest"
    """When a record leaves the outbox: ``ingest`` = when the ingest confirms it is in the
    store (end to end); ``broker`` = on PUBACK. See the module docstring."""
    confirm_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    """``ack=ingest``: re-publish a PUBACKed record not confirmed after this, seconds."""
    confirm_timeout_max_s: Annotated[float, Field(gt=0)] = 300.0
    """Longest confirmation timeout (it doubles per re-publication), seconds."""
    max_unconfirmed: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """``ack=ingest``: most records awaiting confirmation or in flight (bounds memory);
    when reached, no new record is published until confirmations arrive."""
    ingest_gap_s: Annotated[float, Field(gt=0)] = 5.0
    """``ack=ingest`` with ``wait_for_ingest``: a heartbeat after a silence this long
    means the ingest restarted: all unconfirmed records are re-published."""
    outage_log_interval_s: Annotated[float, Field(gt=0)] = 60.0
    """While the broker stays unreachable, repeat the warning this often, seconds."""

    @model_validator(mode="after")
    def _ranges(self) -> MqttSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must be <= reconnect_max_s")
        if self.puback_retry_min_s > self.puback_retry_max_s:
            raise ValueError("puback_retry_min_s must be <= puback_retry_max_s")
        if self.confirm_timeout_s > self.confirm_timeout_max_s:
            raise ValueError("confirm_timeout_s must be <= confirm_timeout_max_s")
        return self
