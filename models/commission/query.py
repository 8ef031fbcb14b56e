"""Read one machine's feature rows from InfluxDB, as the cloud ingest stored them.

The ingest (:mod:`renkei.cloud.ingest.lineproto`) writes one point per gateway row into the
measurement named after the row kind (:mod:`renkei.core.influx.contract`): ``features``
for the gateway's feature windows (slow ``{f}_mean/_min/_max/_slope_per_s`` and vibration
features of the same window end, merged; a live source's signals arrive the same way) and
``shot`` for per-shot rows. Tags ``firm``, ``site``, ``area``, ``line``, ``machine``,
``gw``; fields are the row's non-null values; time = the row's time (ms).

This module reads the numeric fields of one machine (tags ``firm``, ``site``, ``machine``,
optionally ``area``/``line``) for a time range with the store's InfluxQL reader
(:func:`renkei.cloud.store.run_query`, one client and error mapping for every reader), in
pages of :data:`PAGE_ROWS` rows (``time > last`` paging, bounded by :data:`MAX_ROWS`), with a
rich progress bar. Points of several series at the same time (e.g. a gateway replaced
mid-period) are merged into one row, first value wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.store import (
    InfluxSettings,
    StoreRejected,
    quote_ident,
    quote_literal,
    quote_tag,
    run_query,
)
from renkei.core.errors import RenkeiError
from renkei.core.influx.contract import FEATURES, SHOT

__all__ = [
    "MAX_ROWS",
    "PAGE_ROWS",
    "FeatureTable",
    "MachineRef",
    "RowKind",
    "fetch_rows",
    "measurement_of",
    "parse_utc",
]

PAGE_ROWS: Final = 10_000
MAX_ROWS: Final = 2_000_000
"""Most rows one commissioning reads (at 1 s windows: 23 days)."""

RowKind = Literal["window", "shot"]

_NUMERIC: Final = frozenset({"float", "integer"})


class QueryError(RenkeiError, ValueError):
    """Bad query input (time range, row kind) or no usable rows; the message says which."""


@dataclass(frozen=True, slots=True)
class MachineRef:
    """One machine as the store keys it (tags of :class:`renkei.core.influx.contract.MachineTags`).

    Attributes:
        firm, site, machine: required tag values.
        area, line: optional tag filters (``None`` = any).
    """

    firm: str
    site: str
    machine: str
    area: str | None = None
    line: str | None = None

    def tags(self) -> dict[str, str]:
        """Tag -> value of the given tags."""
        out = {"firm": self.firm, "site": self.site, "machine": self.machine}
        if self.area is not None:
            out["area"] = self.area
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        return f"{self.firm}/{self.site}/{self.machine}"


@dataclass(frozen=True, slots=True)
class FeatureTable:
    """A machine's rows, oldest first.

    Attributes:
        t_ms: (n,) int64 row times, UTC epoch ms, strictly increasing.
        names: c numeric field names, in column order (sorted).
        x: (n, c) float64 values, NaN where a row lacks the field.
    """

    t_ms: NDArray[np.int64]
    names: tuple[str, ...]
    x: NDArray[np.float64]

    @property
    def t_s(self) -> NDArray[np.float64]:
        """(n,) row times, epoch seconds."""
        return self.t_ms.astype(np.float64) / 1000.0

    def __len__(self) -> int:
        return int(self.t_ms.size)

    def take(self, rows: slice | NDArray[np.bool_] | NDArray[np.intp]) -> FeatureTable:
        """A table of the selected rows."""
        return FeatureTable(self.t_ms[rows], self.names, self.x[rows])

    def columns(self, names: tuple[str, ...]) -> FeatureTable:
        """A table of the named columns, in the given order.

        Raises:
            KeyError: a name that is not a column.
        """
        idx = [self.names.index(n) for n in names]
        return FeatureTable(self.t_ms, names, self.x[:, idx])

    def spacing_s(self) -> float:
        """Median spacing of consecutive rows, s (NaN with fewer than two rows)."""
        if len(self) < 2:
            return float("nan")
        return float(np.median(np.diff(self.t_ms))) / 1000.0


def measurement_of(kind: RowKind) -> str:
    """The measurement holding rows of ``kind``: ``features`` (window) or ``shot``."""
    return FEATURES if kind == "window" else SHOT


def parse_utc(text: str, option: str) -> int:
    """An ISO 8601 time as UTC epoch ms; a time without offset is read as UTC.

    Raises:
        QueryError: not ISO 8601 (the option is named).
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(
            f"{option}: {text!r} is not an ISO 8601 time (e.g. 2026-03-09T10:34:33Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def iso_utc(t_ms: int) -> str:
    """UTC epoch ms as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return str(np.datetime64(int(t_ms), "ms")) + "Z"


def _numeric_fields(settings: InfluxSettings, measurement: str) -> list[str]:
    results = run_query(settings, f"SHOW FIELD KEYS FROM {quote_ident(measurement)}")
    series = results[0].get("series") or [] if results else []
    names = set()
    for s in series:
        for name, kind in s.get("values") or []:
            if kind in _NUMERIC:
                names.add(str(name))
    return sorted(names)


def _where(machine: MachineRef, start_ms: int, end_ms: int) -> str:
    parts = [f"{quote_tag(k)} = {quote_literal(v)}" for k, v in machine.tags().items()]
    parts.append(f"time >= {int(start_ms)}ms AND time < {int(end_ms)}ms")
    return " AND ".join(parts)


def fetch_rows(
    settings: InfluxSettings,
    machine: MachineRef,
    *,
    kind: RowKind,
    start_ms: int,
    end_ms: int,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureTable:
    """The machine's numeric rows of ``kind`` in ``[start_ms, end_ms)``.

    Args:
        settings: where InfluxDB is.
        machine: which machine.
        kind: ``"window"`` (measurement ``features``) or ``"shot"`` (``shot``).
        start_ms, end_ms: UTC epoch ms, ``start_ms < end_ms``.
        progress: called with (ms of the range read so far, ms of the whole range) after
            each page.

    Returns:
        The :class:`FeatureTable`; fields the machine never carries in the range are left
        out.

    Raises:
        QueryError: empty range, no numeric field, no row, or more than :data:`MAX_ROWS`.
        StoreUnavailable, StoreRejected: InfluxDB unreachable or refusing the query.
    """
    if end_ms <= start_ms:
        raise QueryError(f"empty time range: end {iso_utc(end_ms)} <= start {iso_utc(start_ms)}")
    measurement = measurement_of(kind)
    fields = _numeric_fields(settings, measurement)
    if not fields:
        raise QueryError(
            f"InfluxDB database {settings.database!r} has no numeric fields in "
            f"measurement {measurement!r}"
        )
    select = ", ".join(quote_ident(f) for f in fields)
    rows: dict[int, list[float]] = {}
    cursor = start_ms
    for _page in range(MAX_ROWS // PAGE_ROWS + 1):
        q = (
            f"SELECT {select} FROM {quote_ident(measurement)} "
            f"WHERE {_where(machine, cursor, end_ms)} ORDER BY time ASC LIMIT {PAGE_ROWS}"
        )
        try:
            results = run_query(settings, q)
        except StoreRejected as exc:
            raise StoreRejected(f"query of {machine} failed: {exc}") from exc
        series = results[0].get("series") or [] if results else []
        got = 0
        last = cursor
        for s in series:
            columns = s["columns"]
            pos = [columns.index(f) for f in fields]
            for values in s.get("values") or []:
                t = int(values[0])
                row = [np.nan if values[p] is None else float(values[p]) for p in pos]
                old = rows.get(t)
                if old is None:
                    rows[t] = row
                else:
                    rows[t] = [o if o == o else r for o, r in zip(old, row, strict=True)]
                last = max(last, t)
                got += 1
        if progress is not None:
            progress(min(last, end_ms) - start_ms, end_ms - start_ms)
        if len(rows) > MAX_ROWS:
            raise QueryError(
                f"{machine}: more than {MAX_ROWS} {kind} rows in the range; commission on a "
                "shorter period"
            )
        if got < PAGE_ROWS:
            break
        cursor = last + 1
    if not rows:
        raise QueryError(
            f"no {kind} rows of machine {machine} in {measurement!r} between "
            f"{iso_utc(start_ms)} and {iso_utc(end_ms)} (database {settings.database!r})"
        )
    t_ms = np.array(sorted(rows), dtype=np.int64)
    x = np.array([rows[int(t)] for t in t_ms], dtype=np.float64).reshape(len(t_ms), len(fields))
    present: NDArray[np.bool_] = np.asarray(np.isfinite(x).any(axis=0))
    names = tuple(f for f, p in zip(fields, present.tolist(), strict=True) if p)
    return FeatureTable(t_ms, names, x[:, present])
