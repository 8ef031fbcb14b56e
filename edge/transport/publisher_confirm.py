"""End-to-end acknowledgement: records awaiting the ingest's confirmation.

:class:`ConfirmTracking` is the part of :class:`renkei.edge.transport.publisher.Publisher`
that implements ``ack="ingest"`` (its module docstring, "End-to-end acknowledgement"): an
ingest ack deletes the seqs it names from the outbox; a PUBACKed record waits for it with a
timeout that doubles per round, and is re-published (QoS 1) when it runs out; at most
``max_unconfirmed`` records await confirmation or are in flight. A mixin: the methods run on
the publisher's pump thread and use its state, declared below.
"""

from __future__ import annotations

import heapq
import logging
import threading
from typing import Final

from renkei.edge.transport.outbox import Outbox, OutboxRecord
from renkei.edge.transport.publisher_settings import MqttSettings
from renkei.edge.transport.publisher_state import GATE_LOG_EVERY_S, Confirm, Counters, Flight, Kind

__all__ = ["ConfirmTracking"]

# The publisher's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("renkei.edge.transport.publisher")

#: Most seqs one ingest ack may make the pump delete (real acks name <= a batch).
_MAX_ACK_SPAN: Final = 65_536


class ConfirmTracking:
    """The ``ack="ingest"`` methods of the publisher (module docstring)."""

    # Publisher state used here (set by Publisher.__init__, pump thread only).
    _settings: MqttSettings
    _outbox: Outbox
    _c: Counters
    _stats_lock: threading.Lock
    _e2e: bool
    _window: int
    _inflight: dict[int, Flight]
    _inflight_ids: set[int]
    _retry: dict[int, tuple[float, int]]
    _awaiting: dict[int, tuple[float, int]]
    _await_heap: list[tuple[float, int]]
    _confirmed_inflight: set[int]
    _full_logged: bool
    _republish_logged_at: float
    _watermark: int
    _live_cursor: int
    _backlog_cursor: int
    _backlog_active: bool

    def _publish_record(self, rec: OutboxRecord, kind: Kind, *, rounds: int = 0) -> bool:
        raise NotImplementedError  # the publisher's

    def _delete_later(self, record_id: int) -> None:
        raise NotImplementedError  # the publisher's

    def _handle_confirm(self, ev: Confirm) -> None:
        """The ingest handled these seqs: delete them from the outbox."""
        # Seqs are never reused by one outbox (renkei.edge.transport.outbox's guard file), so an ack
        # of an earlier boot epoch still names exactly this outbox's records (messages enqueued
        # before a restart carry the epoch they were built in). An ack from a *later*
        # epoch than ours cannot be for this outbox (its guard file was lost and numbering
        # restarted): ignore it rather than delete unrelated records.
        if ev.epoch > self._outbox.epoch:
            with self._stats_lock:
                self._c.acks_ignored_total += 1
            return
        last = self._outbox_last_id()
        span = 0
        for lo, hi in ev.ranges:
            lo, hi = max(lo, 0), min(hi, last)
            if lo > hi:
                continue
            span += hi - lo + 1
            if span > _MAX_ACK_SPAN:
                with self._stats_lock:
                    self._c.acks_ignored_total += 1
                log.warning("ignoring the rest of an ingest ack covering > %d seqs", span)
                return
            for rid in range(lo, hi + 1):
                self._confirm_one(rid)

    def _confirm_one(self, rid: int) -> None:
        if rid in self._inflight_ids:
            self._confirmed_inflight.add(rid)
        self._awaiting.pop(rid, None)
        self._retry.pop(rid, None)
        self._delete_later(rid)
        self._c.confirmed_total += 1

    def _outbox_last_id(self) -> int:
        return self._outbox.last_id()

    def _unconfirmed_room(self) -> int:
        """Records that may still be published before ``max_unconfirmed`` is reached."""
        if not self._e2e:
            return 1 << 30
        return self._settings.max_unconfirmed - len(self._awaiting) - len(self._inflight)

    def _room(self) -> int:
        """Free in-flight slots for new records (window and ``max_unconfirmed``)."""
        room = min(self._window - len(self._inflight), self._unconfirmed_room())
        if self._e2e and room <= 0 and self._unconfirmed_room() <= 0:
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "%d messages await the ingest's confirmation (max_unconfirmed); new "
                    "messages wait in the outbox until confirmations arrive",
                    len(self._awaiting),
                )
        elif room > 0:
            self._full_logged = False
        return room

    def _publish_unconfirmed(self, now: float) -> None:
        """Re-publish records whose confirmation timed out (QoS 1, duplicates harmless)."""
        heap = self._await_heap
        room = self._window - len(self._inflight)
        due: list[tuple[int, int]] = []
        while heap and heap[0][0] <= now and len(due) < room:
            when, rid = heapq.heappop(heap)
            entry = self._awaiting.get(rid)
            if entry is None or entry[0] != when or rid in self._inflight_ids:
                continue  # confirmed, or a stale heap entry
            due.append((rid, entry[1]))
        if not due:
            return
        found = {rec.id: rec for rec in self._outbox.get([rid for rid, _ in due])}
        for rid, rounds in due:
            rec = found.get(rid)
            self._awaiting.pop(rid, None)
            if rec is None:  # dropped by the full policy or confirmed meanwhile
                continue
            if not self._publish_record(rec, "confirm", rounds=rounds):
                return  # connection lost; the records are backlog again after it
            self._c.republished_unconfirmed_total += 1
        if now - self._republish_logged_at >= GATE_LOG_EVERY_S:
            self._republish_logged_at = now
            log.info(
                "re-published %d messages the ingest had not confirmed in time "
                "(confirm_timeout_s=%.0f, doubling per round); %d re-published so far",
                len(due),
                self._settings.confirm_timeout_s,
                self._c.republished_unconfirmed_total,
            )

    def _redrain(self) -> None:
        """Make every unconfirmed record backlog again (re-published at the drain rate)."""
        self._awaiting.clear()
        self._await_heap.clear()
        self._watermark = max(self._watermark, self._outbox.last_id())
        self._live_cursor = max(self._live_cursor, self._watermark)
        self._backlog_cursor = -1
        self._backlog_active = True
