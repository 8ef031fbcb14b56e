"""Ingest worker settings (:class:`IngestSettings`, immutable)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from renkei.cloud.broker import host_client_id
from renkei.cloud.ingest.lineproto import TimeWindow
from renkei.core.mqtt import BrokerSettings

__all__ = ["IngestSettings"]


class IngestSettings(BaseModel):
    """Ingest worker settings (immutable).

    Attributes:
        broker: the broker connection (:class:`renkei.core.mqtt.BrokerSettings`: URL,
            credentials, TLS incl. mutual TLS, keep-alive, ``protocol`` ``"5"`` or
            ``"3.1.1"``). Its ``client_id`` must be **stable across restarts** (the
            persistent session is keyed by it) and unique per worker process; ``None``
            = ``renkei-ingest-<hostname>`` (:attr:`client_id`).
        share_group: shared-subscription group: workers in one group split the stream
            (``$share/{group}/{topic_filter}``). ``None`` = plain subscription (MQTT
            3.1.1 brokers without shared subscriptions, e.g. the demo's amqtt).
        topic_filter: what to ingest.
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

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    share_group: str | None = "renkei-ingest"
    topic_filter: str = "renkei/v1/#"
    heartbeat_group: str | None = None
    """Group named in the liveness heartbeat gateways wait for (``mqtt.wait_for_ingest``);
    default: ``share_group``, or ``"renkei-ingest"`` for a plain subscription."""
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
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
    max_past_s: float | None = Field(default=14 * 86_400.0, gt=0)
    max_future_s: float = Field(default=300.0, ge=0, le=86_400)
    bind_gateways: bool = True

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
        if (self.broker.password is not None) and self.broker.username is None:
            raise ValueError("password given without username")
        return self

    @property
    def client_id(self) -> str:
        """The MQTT client id: ``broker.client_id``, default ``renkei-ingest-<hostname>``."""
        return self.broker.client_id or host_client_id("renkei-ingest")

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
        return self.bind_gateways and self.broker.protocol == "5" and self.share_group is not None

    @property
    def subscription(self) -> str:
        """The topic filter actually subscribed (with ``$share/{group}/`` if shared)."""
        if self.share_group is None:
            return self.topic_filter
        return f"$share/{self.share_group}/{self.topic_filter}"
