"""The time-series store interface shared by the ingest worker and the demo's live view.

Two implementations exist: :class:`renkei.cloud.store.influx.InfluxStore` (any server speaking the
InfluxDB v1 HTTP API: InfluxDB 1.x, 2.x through its v1 compatibility API, 3.x) and
:class:`renkei.cloud.store.sqlite.SqliteStore` (embedded, for ``renkei demo``).

Both follow InfluxDB's data model: a *series* is a measurement plus its tag set, a point is
identified by (series, timestamp), and writing a field of an existing point overwrites it.
That overwrite is what makes at-least-once MQTT delivery duplicate-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from renkei.cloud._exceptions import StoreError, StoreRejected, StoreUnavailable
from renkei.core.influx.lineproto import FieldValue

__all__ = [
    "FieldValue",
    "Precision",
    "Row",
    "StoreError",
    "StoreRejected",
    "StoreUnavailable",
    "TimeSeriesStore",
]

#: Timestamp precision of a line-protocol body, as in InfluxDB's ``/write?precision=``.
Precision = Literal["ns", "u", "us", "ms", "s", "m", "h"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """The latest values of one group of series (see :meth:`TimeSeriesStore.last`).

    Attributes:
        tags: the ``group_by`` tag values of the group (``""`` where a series lacks the tag).
        time_ms: UTC epoch milliseconds of the most recent value among ``values``.
        values: field name -> latest non-null value of that field in the group; fields
            without any value are absent.
    """

    tags: Mapping[str, str]
    time_ms: int
    values: Mapping[str, FieldValue] = field(default_factory=dict)


@runtime_checkable
class TimeSeriesStore(Protocol):
    """What the ingest worker and the live view need from a time-series database.

    Every method raises :class:`StoreUnavailable` when the store cannot be reached or
    is temporarily failing (retry later) and :class:`StoreRejected` when the request or
    data is refused for good. Implementations are safe to call from several threads.
    """

    def ensure_database(self) -> None:
        """Create the configured database if it does not exist (idempotent)."""
        ...

    def write_lines(self, body: bytes, *, precision: Precision = "ms") -> None:
        """Write an InfluxDB line-protocol body (UTF-8, ``\\n``-separated points).

        Writing a point whose series, field and timestamp already exist overwrites the
        value, so writing the same body twice stores nothing twice.

        Raises:
            StoreUnavailable: retryable failure; nothing or only part was written.
            StoreRejected: the body (or some points in it) will never be accepted, e.g.
                a field type conflict; the store's error text is in ``detail``.
        """
        ...

    def count(self, measurement: str, field: str, *, where: Mapping[str, str] | None = None) -> int:
        """Number of points of ``measurement`` that have ``field`` set, over all time.

        ``where`` restricts to series whose tags equal the given values (a missing tag
        counts as ``""``, as in InfluxQL).
        """
        ...

    def last(
        self, measurement: str, fields: Sequence[str], *, group_by: Sequence[str] = ()
    ) -> list[Row]:
        """Latest non-null value of each field, per group of ``group_by`` tag values.

        Returns one :class:`Row` per group, sorted by the group's tag values; fields
        with no value in a group are left out of its ``values``.
        """
        ...

    def close(self) -> None:
        """Release connections and files. The store must not be used afterwards."""
        ...
