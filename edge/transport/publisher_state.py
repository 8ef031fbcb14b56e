"""The publisher's data: its statistics snapshot, the events paho's thread hands to the pump,
the pump's in-flight records and counters (see :mod:`renkei.edge.transport.publisher`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "GATE_LOG_EVERY_S",
    "Confirm",
    "ConnectFailed",
    "Connected",
    "Counters",
    "Disconnected",
    "Event",
    "Flight",
    "Heartbeat",
    "Kind",
    "Puback",
    "PublisherStats",
]

#: While the ingest gate is closed, warn this often, seconds (also the most often the
#: re-publication of unconfirmed messages is logged).
GATE_LOG_EVERY_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """A snapshot of the publisher's counters (since :meth:`Publisher.start`)."""

    connected: bool
    connects_total: int
    disconnects_total: int
    acked_total: int
    """Outbox records acknowledged by the broker (PUBACK success)."""
    puback_failures_total: int
    """PUBACKs with a failure reason code (records kept and retried)."""
    puback_failures_by_reason: dict[str, int]
    resent_total: int
    """Records published again after a refusal or an interrupted attempt (see the module
    docstring: the upper bound on duplicates)."""
    inflight: int
    """Outbox records published and not yet acknowledged."""
    retry_pending: int
    """Records refused by the broker, waiting for their backoff to re-publish."""
    waiting_for_ingest: bool
    """Connected, but holding records until the ingest group's heartbeat arrives."""
    backlog_draining: bool
    """True while records older than the last connect are being drained."""
    health_published_total: int
    pump_error: str | None
    """``repr`` of the exception that stopped the pump thread, else ``None``."""
    unconfirmed: int = 0
    """``ack=ingest``: records PUBACKed and awaiting the ingest's confirmation."""
    confirmed_total: int = 0
    """Records deleted from the outbox on the ingest's confirmation."""
    republished_unconfirmed_total: int = 0
    """Records re-published because their confirmation timed out."""
    acks_ignored_total: int = 0
    """Ingest acks ignored (invalid, another gateway or another boot epoch)."""
    unconfirmed_full: bool = False
    """Publishing paused: ``max_unconfirmed`` records await confirmation."""
    broker_unreachable: bool = False
    """The broker could not be reached at the last attempt (and not since)."""


@dataclass(frozen=True, slots=True)
class Connected:
    receive_max: int | None


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Puback:
    mid: int
    reason: ReasonCode


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A live heartbeat of the ingest group arrived."""


@dataclass(frozen=True, slots=True)
class Confirm:
    """An ingest ack for this gateway arrived."""

    epoch: int
    ranges: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    reason: str


Event = Connected | Disconnected | Puback | Heartbeat | Confirm | ConnectFailed


Kind = Literal["live", "backlog", "retry", "solo", "confirm"]


@dataclass(slots=True)
class Flight:
    record_id: int
    kind: Kind
    rounds: int = 0
    """Confirmation rounds already timed out (``kind == "confirm"``)."""


@dataclass(slots=True)
class Counters:
    connects_total: int = 0
    disconnects_total: int = 0
    acked_total: int = 0
    puback_failures_total: int = 0
    puback_failures_by_reason: dict[str, int] = field(default_factory=dict)
    resent_total: int = 0
    health_published_total: int = 0
    confirmed_total: int = 0
    republished_unconfirmed_total: int = 0
    acks_ignored_total: int = 0
