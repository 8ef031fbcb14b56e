"""Packing rows into wire messages: many readings per MQTT message, column-wise.

A :class:`RowBuffer` collects rows of one machine and one kind and turns them into
:class:`renkei.core.wire.MachinePayload` objects of at most ``max_rows`` rows. Rows with
different field sets are allowed (a missing field is ``null`` in that row). Each payload
carries the outbox's boot ``epoch`` read when the outbox assigns its ``seq``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from renkei.core.wire import MAX_FIELDS, MAX_PAYLOAD_BYTES, SCHEMA_VERSION, MachineKind

__all__ = ["RowBuffer", "event_message"]


class RowBuffer:
    """Pending rows of one (machine, kind), flushed into packed payloads.

    Not thread-safe: owned by the agent's pipeline thread.
    """

    def __init__(
        self,
        *,
        kind: MachineKind,
        gateway_id: str,
        tags: Mapping[str, str],
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        """``epoch`` returns the outbox's boot epoch (``0`` = unknown), read per message."""
        self.kind = kind
        self.epoch = epoch
        self.gateway_id = gateway_id
        self.tags = dict(tags)
        self._ts: list[int] = []
        self._cols: dict[str, list[float | None]] = {}
        self._last_ts: int | None = None  # survives drain(): the series goes on

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, t_ms: int, values: Mapping[str, float]) -> None:
        """Append one row at ``t_ms`` (UTC epoch ms). NaN/inf become ``null``."""
        n = len(self._ts)
        if self._last_ts is not None and t_ms <= self._last_ts:
            # Rows must be increasing in time within a series; a row at the same ms would
            # overwrite the previous point in the store, so it is nudged by 1 ms.
            t_ms = self._last_ts + 1
        self._last_ts = int(t_ms)
        self._ts.append(int(t_ms))
        for name, value in values.items():
            col = self._cols.get(name)
            if col is None:
                col = self._cols[name] = [None] * n
            col.append(float(value) if math.isfinite(value) else None)
        for col in self._cols.values():
            if len(col) == n:
                col.append(None)

    def drain(self, max_rows: int) -> list[Callable[[int], bytes]]:
        """Empty the buffer into payload builders; each takes the sequence number.

        Returns:
            one callable per message (at most ``max_rows`` rows each), for
            :meth:`renkei.edge.transport.outbox.Outbox.enqueue_many`.
        """
        if not self._ts:
            return []
        ts, cols = self._ts, self._cols
        self._ts, self._cols = [], {}
        names = list(cols)
        # Fields of one point may travel in several messages (the store merges them).
        groups = [names[i : i + MAX_FIELDS] for i in range(0, len(names), MAX_FIELDS)] or [[]]
        builders: list[Callable[[int], bytes]] = []
        for start in range(0, len(ts), max_rows):
            end = start + max_rows
            for group in groups:
                self._split(ts[start:end], {k: cols[k][start:end] for k in group}, builders)
        return builders

    def _split(
        self,
        ts: list[int],
        cols: dict[str, list[float | None]],
        out: list[Callable[[int], bytes]],
    ) -> None:
        """Halve the rows until the payload (with the widest seq and sent_ms) fits."""
        big = 2**63 - 1
        if len(ts) > 1 and len(self._dump(ts, cols, big, big, big)) > MAX_PAYLOAD_BYTES:
            mid = len(ts) // 2
            self._split(ts[:mid], {k: v[:mid] for k, v in cols.items()}, out)
            self._split(ts[mid:], {k: v[mid:] for k, v in cols.items()}, out)
        else:
            out.append(self._builder(ts, cols))

    def _dump(
        self,
        ts: list[int],
        cols: dict[str, list[float | None]],
        seq: int,
        sent_ms: int,
        epoch: int,
    ) -> bytes:
        return orjson.dumps(
            {
                "v": SCHEMA_VERSION,
                "gw": self.gateway_id,
                "seq": seq,
                "epoch": epoch,
                "sent_ms": sent_ms,
                "kind": self.kind.value,
                "ts_ms": ts,
                "fields": cols,
                "tags": self.tags,
            }
        )

    def _builder(
        self, ts: list[int], cols: dict[str, list[float | None]]
    ) -> Callable[[int], bytes]:
        def build(seq: int) -> bytes:
            # Built directly (not via pydantic) on the gateway hot path; the shape is the
            # v1 MachinePayload, which tests check by decoding with renkei.core.wire.
            return self._dump(ts, cols, seq, _now_ms(), self.epoch())

        return build


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def event_message(
    gateway_id: str, epoch: Callable[[], int], events: Sequence[Mapping[str, Any]]
) -> Callable[[int], bytes]:
    """A builder of one v1 ``event`` message holding ``events`` (each ``t_ms`` UTC epoch ms,
    ``code``, ``severity``, ``message``); called with the outbox sequence number when sent."""

    def build(seq: int) -> bytes:
        return orjson.dumps(
            {
                "v": SCHEMA_VERSION,
                "gw": gateway_id,
                "seq": seq,
                "epoch": epoch(),
                "sent_ms": _now_ms(),
                "kind": MachineKind.EVENT.value,
                "events": list(events),
            }
        )

    return build
