"""The ingest worker's counters: :class:`IngestStats` snapshots and the shared
:class:`Counters` its parts (session, writer, dead letters) count into."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from renkei.cloud.ingest.acks import GatewaySeqStats

__all__ = ["Counters", "IngestStats"]

log = logging.getLogger("renkei.cloud.ingest")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestStats:
    """A snapshot of the worker's counters (since it was created).

    Attributes:
        messages: messages received from the broker.
        points: points written to the store (data, not dead-letter counters).
        field_values: field values written to the store.
        acked: messages acknowledged to the broker.
        dead_letters: dead letters published, by reason.
        store_writes: successful store write requests.
        store_retries: store write attempts that failed retryably (and were retried).
        stale_dropped: messages dropped because their connection had ended (the broker
            redelivers them).
        connects: successful MQTT connections.
        connected: whether the MQTT connection is up now.
        subscribed: whether the broker granted the subscription on this connection.
        buffered: messages received and not yet processed.
        last_error: the most recent error text, if any.
        e2e_acks: end-to-end acks published (:mod:`renkei.cloud.ingest.acks`).
        gateways: per-gateway sequence accounting, by ``"{gw}@{epoch}"``.
    """

    messages: int = 0
    points: int = 0
    field_values: int = 0
    acked: int = 0
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    store_writes: int = 0
    store_retries: int = 0
    stale_dropped: int = 0
    connects: int = 0
    connected: bool = False
    subscribed: bool = False
    buffered: int = 0
    last_error: str | None = None
    e2e_acks: int = 0
    gateways: Mapping[str, GatewaySeqStats] = field(default_factory=dict)

    @property
    def dead_letters_total(self) -> int:
        """All dead letters, any reason."""
        return sum(self.dead_letters.values())


class Counters:
    """The worker's counters, written by the network and writer threads under ``lock``.

    Attributes:
        lock: guards every attribute below.
        counts: by name (``messages``, ``points``, ``values``, ``acked``, ``stale``,
            ``store_writes``, ``store_retries``, ``connects``).
        dead: dead letters published, by reason.
        last_error: the most recent error text.
    """

    __slots__ = ("counts", "dead", "last_error", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.dead: Counter[str] = Counter()
        self.last_error: str | None = None

    def count(self, **deltas: int) -> None:
        """Add ``deltas`` (zeros are skipped)."""
        with self.lock:
            for key, n in deltas.items():
                if n:
                    self.counts[key] += n

    def error(self, text: str) -> None:
        """Log ``text`` as a warning and keep it as :attr:`last_error`."""
        log.warning("%s", text)
        with self.lock:
            self.last_error = text
