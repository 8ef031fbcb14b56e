"""The ingest worker's store side: batched writes, retries with backoff, bisection.

A batch's line protocol is written in requests of at most ``batch_max_bytes``; while the
store is unavailable (:class:`StoreUnavailable`) the write is retried with exponential
backoff (``retry_min_s`` doubling to ``retry_max_s``, or the store's ``Retry-After``), and
given up (:class:`Abandon`) once the batch's MQTT connection ended or the stop deadline
passed: its messages stay unacknowledged and are redelivered. A batch the store rejects
(:class:`StoreRejected`, HTTP 4xx) is bisected down to the messages it rejects, which the
worker dead-letters.
"""

from __future__ import annotations

import logging
import time

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.ingest.session import IngestSession
from renkei.cloud.ingest.settings import IngestSettings
from renkei.cloud.ingest.stats import Counters
from renkei.cloud.ingest.work import Abandon, StopControl, Work
from renkei.cloud.store.base import TimeSeriesStore

__all__ = ["StoreWriter"]

log = logging.getLogger("renkei.cloud.ingest")


class StoreWriter:
    """Writes batches to a :class:`TimeSeriesStore` (from the worker's writer thread only).

    Args:
        settings: worker settings (``batch_max_bytes``, ``retry_min_s``, ``retry_max_s``).
        store: where points go; ``ensure_database()`` and ``write_lines()`` are called.
        counters: the worker's counters (``points``, ``values``, ``store_writes``,
            ``store_retries``, errors).
        stop: the worker's stop request.
        session: the MQTT session (a batch is abandoned once its connection ended).

    Attributes:
        batch_gen: the connection generation of the batch being written (set by the
            worker before writing it).
    """

    def __init__(
        self,
        *,
        settings: IngestSettings,
        store: TimeSeriesStore,
        counters: Counters,
        stop: StopControl,
        session: IngestSession,
    ) -> None:
        self.settings = settings
        self.store = store
        self._counters = counters
        self._stop = stop
        self._session = session
        self._db_ready = False
        self.batch_gen = 0

    def write(self, works: list[Work]) -> list[Work]:
        """Write the works' bodies; return the works whose bodies the store rejects.

        Raises:
            Abandon: see :meth:`_write_retrying`.
        """
        todo = [w for w in works if w.body]
        if not todo:
            return []
        try:
            self._write_bodies([w.body for w in todo])
        except StoreRejected as exc:
            if len(todo) == 1:
                todo[0].detail = exc.detail or str(exc)
                return todo
            half = len(todo) // 2
            return self.write(todo[:half]) + self.write(todo[half:])
        points = sum(w.points for w in todo if w.reason is None)
        values = sum(w.values for w in todo if w.reason is None)
        self._counters.count(points=points, values=values)
        return []

    def _write_bodies(self, bodies: list[bytes]) -> None:
        limit = self.settings.batch_max_bytes
        chunk: list[bytes] = []
        size = 0
        for body in bodies:
            for part in _split_body(body, limit):
                if chunk and size + len(part) > limit:
                    self._write_retrying(b"".join(chunk))
                    chunk, size = [], 0
                chunk.append(part)
                size += len(part)
        if chunk:
            self._write_retrying(b"".join(chunk))

    def _write_retrying(self, body: bytes) -> None:
        """One store write, retried with exponential backoff while the store is down.

        Raises:
            StoreRejected: from the store (the caller bisects).
            Abandon: stop deadline passed or the MQTT connection of the batch ended.
        """
        s = self.settings
        delay = s.retry_min_s
        while True:
            try:
                if not self._db_ready:
                    self.ensure_database()
                self.store.write_lines(body, precision="ms")
                self._counters.count(store_writes=1)
                return
            except StoreUnavailable as exc:
                self._counters.count(store_retries=1)
                self._counters.error(f"store unavailable, retrying in {delay:.1f} s: {exc}")
                if exc.status == 404:
                    self._db_ready = False
                wait = min(max(delay, exc.retry_after_s or 0.0), s.retry_max_s)
                delay = min(delay * 2, s.retry_max_s)
            self._pause(wait)

    def ensure_database(self) -> None:
        """Create the database if missing (a store refusing that is logged, not raised).

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        try:
            self.store.ensure_database()
        except StoreRejected as exc:
            # e.g. InfluxDB 2.x/3.x without CREATE DATABASE rights: the database is
            # provisioned out of band; writing will tell if it is missing.
            log.warning("could not create the database (%s); writing anyway", exc)
        self._db_ready = True

    def _pause(self, seconds: float) -> None:
        """Sleep between retries; raise :class:`Abandon` once waiting is pointless."""
        if not self._stop.is_set():
            self._stop.event.wait(seconds)
        if self._session.gen != self.batch_gen:
            raise Abandon("the MQTT connection of the batch ended during store retries")
        if self._stop.is_set():
            remaining = self._stop.deadline - time.monotonic()
            if remaining <= 0:
                raise Abandon("stop timeout reached while the store was unavailable")
            time.sleep(min(seconds, remaining))


def _split_body(body: bytes, limit: int) -> list[bytes]:
    """Split a body at line ends into parts of at most ``limit`` bytes where possible.

    Only bodies without string fields are split (a quoted string may contain ``\\n``);
    a single line longer than ``limit`` stays whole.
    """
    if len(body) <= limit or b'"' in body:
        return [body]
    parts: list[bytes] = []
    start = 0
    n = len(body)
    while start < n:
        end = start + limit
        if end >= n:
            parts.append(body[start:])
            break
        cut = body.rfind(b"\n", start, end)
        if cut < start:
            cut = body.find(b"\n", end)
            if cut < 0:
                parts.append(body[start:])
                break
        parts.append(body[start : cut + 1])
        start = cut + 1
    return parts
