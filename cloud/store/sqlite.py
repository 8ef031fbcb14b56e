"""An embedded time-series store on SQLite, for ``renkei demo`` (no server needed).

It takes the same line protocol as InfluxDB (parsed by :mod:`renkei.core.influx.lineparse`) and
keeps InfluxDB's identity rules: a point is identified by (measurement, tag set, field,
timestamp) and writing it again replaces the value (``INSERT OR REPLACE``), so MQTT
redelivery creates no duplicates. Like InfluxDB, a field keeps the type of its first write
within a measurement; a write with another type is refused with InfluxDB's wording
(``field type conflict``). Unlike InfluxDB 1.x (which writes the valid points of a body
and answers "partial write"), a refused body writes nothing: one transaction per body.

Schema: ``series(id, measurement, tagkey, tags)`` (``tagkey`` is the canonical escaped tag
set), ``field_types(measurement, field, type)`` and
``points(series_id, field, time_ns, value)`` with primary key (series_id, field, time_ns).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import orjson

from renkei.cloud._exceptions import LineProtocolError, StoreRejected, StoreUnavailable
from renkei.cloud.store.base import FieldValue, Precision, Row
from renkei.core.influx.lineparse import LineParseError, ParsedPoint, parse_lines

__all__ = ["SqliteStore"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tagkey TEXT NOT NULL,
    tags TEXT NOT NULL,
    UNIQUE (measurement, tagkey)
);
CREATE TABLE IF NOT EXISTS field_types (
    measurement TEXT NOT NULL,
    field TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (measurement, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL,
    field TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value,
    PRIMARY KEY (series_id, field, time_ns)
) WITHOUT ROWID;
"""


def _type_of(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def _tagkey(tags: tuple[tuple[str, str], ...]) -> str:
    # Canonical and unambiguous: JSON of the sorted pairs.
    return orjson.dumps(tags).decode()


class SqliteStore:
    """:class:`~renkei.cloud.store.base.TimeSeriesStore` on one SQLite file (or ``":memory:"``).

    Args:
        path: database file (created with its directory if missing) or ``":memory:"``.
        timeout_s: how long to wait for SQLite's file lock before raising
            :class:`StoreUnavailable`.

    Thread-safe: one connection guarded by a lock; the file uses WAL journaling so other
    processes can read while the demo writes.
    """

    def __init__(self, *, path: str | Path = ":memory:", timeout_s: float = 5.0) -> None:
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self._path, timeout=timeout_s, check_same_thread=False, isolation_level=None
            )
            if self._path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self._path}: {exc}") from exc
        self._series: dict[tuple[str, str], int] = {}
        self._types: dict[tuple[str, str], str] = {}
        self._closed = False
        self.ensure_database()

    # ------------------------------------------------------------------ protocol

    def ensure_database(self) -> None:
        """Create the tables if missing (idempotent). Raises :class:`StoreUnavailable`."""
        with self._lock:
            self._require_open()
            try:
                self._db.executescript(_SCHEMA)
                self._types = {
                    (m, f): t
                    for m, f, t in self._db.execute(
                        "SELECT measurement, field, type FROM field_types"
                    )
                }
                self._series = {
                    (m, k): i
                    for i, m, k in self._db.execute("SELECT id, measurement, tagkey FROM series")
                }
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc

    def write_lines(self, body: bytes, *, precision: Precision = "ms") -> None:
        """Parse and store a line-protocol body in one transaction.

        Points without a timestamp get the current time. Re-writing a point replaces it.

        Raises:
            LineProtocolError: the body is not line protocol (nothing written).
            StoreRejected: field type conflict (nothing written).
            StoreUnavailable: the database file is locked or unwritable.
        """
        try:
            points = parse_lines(body, precision=precision)
        except LineParseError as exc:
            raise LineProtocolError(str(exc), line_no=exc.line_no) from None
        if not points:
            return
        now_ns = time.time_ns()
        with self._lock:
            self._require_open()
            types = dict(self._types)
            new_types: list[tuple[str, str, str]] = []
            for p in points:
                for name, value in p.fields.items():
                    kind = _type_of(value)
                    known = types.get((p.measurement, name))
                    if known is None:
                        types[(p.measurement, name)] = kind
                        new_types.append((p.measurement, name, kind))
                    elif known != kind:
                        raise StoreRejected(
                            f"field type conflict: input field {name!r} on measurement "
                            f"{p.measurement!r} is type {kind}, already exists as type {known}",
                            status=400,
                        )
            try:
                self._db.execute("BEGIN")
                try:
                    rows = self._rows(points, now_ns)
                    self._db.executemany(
                        "INSERT INTO field_types(measurement, field, type) VALUES (?, ?, ?)",
                        new_types,
                    )
                    self._db.executemany(
                        "INSERT OR REPLACE INTO points(series_id, field, time_ns, value) "
                        "VALUES (?, ?, ?, ?)",
                        rows,
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._reload_series()
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
            self._types = types

    def count(self, measurement: str, field: str, *, where: Mapping[str, str] | None = None) -> int:
        """Points of ``measurement`` with ``field`` set (all time), optionally by tags."""
        with self._lock:
            self._require_open()
            ids = self._series_ids(measurement, where or {})
            if not ids:
                return 0
            try:
                total = 0
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    (n,) = self._db.execute(
                        f"SELECT count(*) FROM points WHERE field = ? AND series_id IN ({marks})",
                        (field, *chunk),
                    ).fetchone()
                    total += int(n)
                return total
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc

    def last(
        self, measurement: str, fields: Sequence[str], *, group_by: Sequence[str] = ()
    ) -> list[Row]:
        """Latest value of each field per ``group_by`` group (see the Protocol)."""
        if not fields:
            return []
        with self._lock:
            self._require_open()
            tags_by_id = self._series_tags(measurement)
            if not tags_by_id:
                return []
            field_types = {f: self._types.get((measurement, f)) for f in fields}
            fmarks = ",".join("?" * len(fields))
            latest: dict[tuple[str, ...], dict[str, tuple[int, FieldValue]]] = {}
            try:
                for chunk in _chunks(list(tags_by_id), 500):
                    marks = ",".join("?" * len(chunk))
                    cur = self._db.execute(
                        "SELECT series_id, field, max(time_ns), value FROM points "
                        f"WHERE series_id IN ({marks}) AND field IN ({fmarks}) "
                        "GROUP BY series_id, field",
                        (*chunk, *fields),
                    )
                    for sid, fname, t_ns, value in cur:
                        tags = tags_by_id[sid]
                        group = tuple(tags.get(k, "") for k in group_by)
                        slot = latest.setdefault(group, {})
                        if fname not in slot or t_ns > slot[fname][0]:
                            if field_types.get(fname) == "boolean":
                                value = bool(value)
                            slot[fname] = (int(t_ns), value)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc
        rows = []
        for group in sorted(latest):
            slot = latest[group]
            rows.append(
                Row(
                    tags=dict(zip(group_by, group, strict=True)),
                    time_ms=max(t for t, _ in slot.values()) // 1_000_000,
                    values={f: slot[f][1] for f in fields if f in slot},
                )
            )
        return rows

    def close(self) -> None:
        """Close the SQLite connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    # ------------------------------------------------------------------ internals

    def _require_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("SQLite store is closed")

    def _reload_series(self) -> None:
        self._series = {
            (m, k): i for i, m, k in self._db.execute("SELECT id, measurement, tagkey FROM series")
        }

    def _rows(
        self, points: list[ParsedPoint], now_ns: int
    ) -> list[tuple[int, str, int, FieldValue]]:
        rows: list[tuple[int, str, int, FieldValue]] = []
        for p in points:
            key = (p.measurement, _tagkey(p.tags))
            sid = self._series.get(key)
            if sid is None:
                cur = self._db.execute(
                    "INSERT INTO series(measurement, tagkey, tags) VALUES (?, ?, ?)",
                    (p.measurement, key[1], orjson.dumps(dict(p.tags)).decode()),
                )
                sid = int(cur.lastrowid or 0)
                self._series[key] = sid
            t = now_ns if p.time_ns is None else p.time_ns
            for name, value in p.fields.items():
                rows.append((sid, name, t, value))
        return rows

    def _series_tags(self, measurement: str) -> dict[int, dict[str, str]]:
        try:
            return {
                int(sid): orjson.loads(tags)
                for sid, tags in self._db.execute(
                    "SELECT id, tags FROM series WHERE measurement = ?", (measurement,)
                )
            }
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    def _series_ids(self, measurement: str, where: Mapping[str, str]) -> list[int]:
        return [
            sid
            for sid, tags in self._series_tags(measurement).items()
            if all(tags.get(k, "") == v for k, v in where.items())
        ]


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
