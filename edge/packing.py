"""Packing rows into wire messages: many readings per MQTT message, column-wise.

A :class:`RowBuffer` collects rows of one machine and one kind and turns them into
:class:`renkei.wire.MachinePayload` objects of at most ``max_rows`` rows. Rows with
different field sets are allowed (a missing field is ``null`` in that row).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import orjson

from renkei.wire import SCHEMA_VERSION, MachineKind

__all__ = ["RowBuffer"]


class RowBuffer:
    """Pending rows of one (machine, kind), flushed into packed payloads.

    Not thread-safe: owned by the agent's pipeline thread.
    """

    def __init__(self, *, kind: MachineKind, gateway_id: str, tags: Mapping[str, str]) -> None:
        self.kind = kind
        self.gateway_id = gateway_id
        self.tags = dict(tags)
        self._ts: list[int] = []
        self._cols: dict[str, list[float | None]] = {}

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, t_ms: int, values: Mapping[str, float]) -> None:
        """Append one row at ``t_ms`` (UTC epoch ms). NaN/inf become ``null``."""
        n = len(self._ts)
        if self._ts and t_ms <= self._ts[-1]:
            # Rows must be increasing in time within a series; a row at the same ms would
            # overwrite the previous point in the store, so it is nudged by 1 ms.
            t_ms = self._ts[-1] + 1
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
            :meth:`edge.outbox.Outbox.enqueue_many`.
        """
        if not self._ts:
            return []
        ts, cols = self._ts, self._cols
        self._ts, self._cols = [], {}
        builders: list[Callable[[int], bytes]] = []
        for start in range(0, len(ts), max_rows):
            end = start + max_rows
            part_ts = ts[start:end]
            part_cols = {k: v[start:end] for k, v in cols.items()}
            builders.append(self._builder(part_ts, part_cols))
        return builders

    def _builder(
        self, ts: list[int], cols: dict[str, list[float | None]]
    ) -> Callable[[int], bytes]:
        gw, kind, tags = self.gateway_id, self.kind.value, self.tags

        def build(seq: int) -> bytes:
            # Built directly (not via pydantic) on the gateway hot path; the shape is the
            # v1 MachinePayload, which tests check by decoding with renkei.wire.
            return orjson.dumps(
                {
                    "v": SCHEMA_VERSION,
                    "gw": gw,
                    "seq": seq,
                    "sent_ms": _now_ms(),
                    "kind": kind,
                    "ts_ms": ts,
                    "fields": cols,
                    "tags": tags,
                }
            )

        return build


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000
