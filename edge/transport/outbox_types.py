"""The outbox's settings, records, statistics, incidents and errors (plain data).

Split from :mod:`renkei.edge.transport.outbox` (which re-exports every name) so that the
gateway config can embed :class:`OutboxLimits` without importing the SQLite store, and so
that the store module holds only the store. "The module docstring" below means
:mod:`renkei.edge.transport.outbox`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from renkei.core.errors import RenkeiError

__all__ = [
    "MAX_INFLIGHT",
    "IncidentKind",
    "OutboxError",
    "OutboxFullError",
    "OutboxIncident",
    "OutboxItem",
    "OutboxLimits",
    "OutboxRecord",
    "OutboxSettings",
    "OutboxStats",
]

#: Most outbox messages in flight at once. A QoS 1 PUBLISH is tracked by its 16-bit MQTT
#: packet identifier (MQTT 5 §2.2.1: 1..65535), and paho hands them out round-robin without
#: checking which are still in use; the publisher's birth, health and state messages and
#: its SUBSCRIBE packets draw from the same 65,535, so the outbox window stops 535 short
#: of it (a reused identifier would let one PUBACK acknowledge the wrong record).
MAX_INFLIGHT: Final = 65_000

IncidentKind = Literal["quarantined", "lost", "gap", "disk_full"]


class OutboxError(RenkeiError, RuntimeError):
    """The outbox database cannot be opened, read or written.

    The message names the file and the fix (for example: move a corrupt file aside).
    """


class OutboxFullError(OutboxError):
    """``when_full="reject_new"`` refused messages because the outbox is full.

    Attributes:
        accepted: seqs of the messages of the same call that *were* stored (a batch is
            accepted in order up to the first message that does not fit).
        rejected: seqs consumed by the refused messages (counted in ``dropped_total``).
    """

    def __init__(self, message: str, *, accepted: list[int], rejected: list[int]) -> None:
        super().__init__(message)
        self.accepted = accepted
        self.rejected = rejected


class OutboxLimits(BaseModel):
    """The outbox limits a deployment tunes (frozen): declared once here, embedded by the
    gateway config's ``outbox:`` section (:class:`renkei.edge.config.OutboxConfig`) and by
    :class:`OutboxSettings`, so a value the config accepts is a value the outbox accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: Annotated[int, Field(ge=4096)] = 256 * 1024 * 1024
    """Largest backlog, bytes of payload + topic (see the module docstring)."""
    when_full: Literal["drop_oldest", "reject_new"] = "drop_oldest"
    """``drop_oldest``: delete the oldest messages until the new one fits (live data beats
    stale backlog). ``reject_new``: refuse the new message with :class:`OutboxFullError`."""
    drain_rate_msgs_per_s: Annotated[float, Field(gt=0)] = 200.0
    """Rate, messages/s, at which the publisher drains a backlog after an outage."""
    max_inflight: Annotated[int, Field(ge=1, le=MAX_INFLIGHT)] = 100
    """Most outbox messages published but not yet acknowledged (PUBACK) at once
    (1..65000; see :data:`MAX_INFLIGHT`)."""


class OutboxSettings(OutboxLimits):
    """Configuration of the on-disk outbox (frozen): the :class:`OutboxLimits` plus where the
    file is and how SQLite is driven."""

    path: Path
    """SQLite file; its directory is created if missing. Keep it on persistent storage."""
    busy_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long a write waits for the other thread's write lock before failing."""
    journal_size_limit_bytes: Annotated[int, Field(ge=0)] = 16 * 1024 * 1024
    """Size the WAL file is truncated to after a checkpoint."""
    disk_reserve_bytes: Annotated[int, Field(ge=0)] = 8 * 1024 * 1024
    """Preallocated file given back when the filesystem is full, so the WAL can still take
    deletions (acks, drops); ``0`` disables it (see "Disk full" in the module docstring)."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One buffered message. ``id`` is its per-gateway sequence number (``seq``)."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool

    @property
    def seq(self) -> int:
        """The message's sequence number (same as :attr:`id`)."""
        return self.id


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters of the outbox, all persisted in the database file."""

    backlog_msgs: int
    """Messages on disk not yet acknowledged."""
    backlog_bytes: int
    """Payload + topic bytes of those messages."""
    dropped_total: int
    """Messages deleted or refused by the full policy since the file was created."""
    enqueued_total: int
    """Messages accepted into the outbox since the file was created."""
    dropped_bytes_total: int = 0
    """Payload + topic bytes of the dropped messages."""
    next_seq: int = 0
    """The seq the next accepted message will get."""
    epoch: int = 0
    """Boot epoch of this open (>= 1; see :attr:`Outbox.epoch`)."""
    lost_total: int = 0
    """Committed, unacknowledged-or-unknown messages gone with damaged storage (a torn WAL
    tail, a quarantined database's backlog); persisted in the guard file."""
    gap_total: int = 0
    """Seqs skipped after a possible power loss whose use could not be verified (an
    upper bound on further loss); persisted in the guard file."""
    quarantined_total: int = 0
    """Damaged databases moved aside."""
    disk_full: bool = False
    """The filesystem is full now (the reserve is given back)."""


@dataclass(frozen=True, slots=True)
class OutboxIncident:
    """Storage damage or a full disk, as reported by :meth:`Outbox.take_incidents`."""

    kind: IncidentKind
    count: int
    """Messages concerned (lost, skipped, or in a quarantined backlog); 0 if unknown."""
    message: str
    """What happened, the seqs and the file, for logs and events."""


class OutboxItem(NamedTuple):
    """One message for :meth:`Outbox.enqueue_many`."""

    topic: str
    make_payload: Callable[[int], bytes]
    qos: int = 1
    retain: bool = False
