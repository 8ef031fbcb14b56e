"""A firm's time series out of and back into InfluxDB, as line protocol, in bounded memory.

Export (:func:`export_measurement`), per measurement with points tagged ``firm=<id>``:

1. ``SHOW FIELD KEYS`` gives every field's type; the select list names each field with an
   explicit cast (``"f"::float``, ``"f"::integer``, ...), so a value's type never depends
   on how the JSON answer spells it (InfluxDB writes the float 5.0 as ``5``).
2. The firm's first and last timestamp (``ORDER BY time ASC|DESC LIMIT 1``) bound the
   scan, which proceeds in **time slices** ``time >= lo AND time <= hi``. A slice's width
   adapts to the points the previous slice returned (aiming at ``slice_points``), so each
   query covers a bounded amount of server work whatever the data's density.
3. Each slice is queried with ``epoch=ns``, ``GROUP BY *`` (tags once per series) and
   ``chunked=true&chunk_size=chunk_points``: InfluxDB streams the answer as one JSON
   object per chunk of at most ``chunk_points`` rows of one series, and the client parses
   and formats one chunk at a time.

**Memory bound** (export): one chunk, i.e. ``chunk_points`` rows of one series as JSON
text plus the parsed rows and their formatted lines (a few hundred bytes per row with the
ingest's measurements: ~5-10 MB at the default 10 000), plus 256 KiB of gzip input
buffer; independent of the size of the database.

Line protocol written (one record per point, tags sorted by key, nanosecond timestamp):
floats as Python ``repr`` (shortest string that round-trips exactly: ``0.1``, ``5.0``,
``1e+16``), integers with ``i``, unsigned integers with ``u``, booleans ``true``/``false``,
strings double-quoted with ``"`` and ``\\`` escaped (a string may contain newlines, as
line protocol allows). Names are escaped with :mod:`renkei.core.influx.lineproto`; a measurement,
tag or field name containing a newline or backslash cannot be carried by line protocol
(the ingest never writes one) and stops the export with the series named.

Import (:func:`write_member`): the member's records are posted to ``/write?precision=ns``
in batches of at most ``batch_points`` points and ``batch_bytes`` bytes (memory bound: one
batch), each checked to be of the member's measurement and tagged ``firm=<id>``. A batch
the server cannot take now (:class:`StoreUnavailable`) is retried with back-off; writing a
point twice is harmless (same series and time: overwritten).
The InfluxQL client both use: :class:`~renkei.cloud.portability.reader.InfluxReader`
(re-exported here).
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

import orjson

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.portability.errors import PortabilityError
from renkei.cloud.portability.reader import FIELD_TYPES, InfluxReader, _firm_where
from renkei.cloud.store import (
    TimeSeriesStore,
    quote_ident,
)
from renkei.core.influx.lineproto import escape_key, escape_measurement, quote_string

__all__ = [
    "FIELD_TYPES",
    "InfluxReader",
    "MeasurementStats",
    "export_measurement",
    "write_member",
]

log = logging.getLogger(__name__)

_MIN_NS: Final = -9_223_372_036_854_775_806
_MAX_NS: Final = 9_223_372_036_854_775_806
_FIRST_WIDTH_NS: Final = 3_600 * 10**9  # first slice: one hour


# --------------------------------------------------------------------------- formatting


def _fmt_float(v: Any) -> str:
    return repr(float(v))


def _fmt_int(v: Any) -> str:
    return f"{int(v)}i"


def _fmt_uint(v: Any) -> str:
    return f"{int(v)}u"


def _fmt_bool(v: Any) -> str:
    return "true" if v else "false"


def _fmt_str(v: Any) -> str:
    return quote_string(str(v))


_FORMATTERS: Final[dict[str, Callable[[Any], str]]] = {
    "float": _fmt_float,
    "integer": _fmt_int,
    "unsigned": _fmt_uint,
    "string": _fmt_str,
    "boolean": _fmt_bool,
}


_SUFFIX: Final = {"integer": b"i", "unsigned": b"u"}


def _format_rows(
    head: str,
    values: list[list[Any]],
    prefixes: list[str],
    formatters: list[Callable[[Any], str]],
) -> bytes:
    """Line protocol of one chunk, row by row (any field types)."""
    lines = []
    for row in values:
        fields = ",".join(
            [
                p + f(v)
                for p, f, v in zip(prefixes, formatters, islice(row, 1, None))
                if v is not None
            ]
        )
        if fields:  # a row without any value is no point (InfluxDB never sends one)
            lines.append(f"{head} {fields} {row[0]}\n")
    return "".join(lines).encode()


def _format_columns(
    head: bytes, cols: list[tuple[Any, ...]], seps: list[bytes], suffixes: list[bytes]
) -> bytes | None:
    """Line protocol of one chunk without string fields, column by column (``None``: use
    :func:`_format_rows`).

    Each column is serialised by one ``orjson.dumps`` (floats in their shortest round-trip
    spelling, e.g. ``0.1``, ``5.0``, ``1e16``; a float InfluxDB sent as an integer, like
    ``5``, stays ``5``, which line protocol reads as the float 5.0), turned into per-row
    ``,key=value`` tokens by ``bytes.replace``/``split`` (nulls removed) and interleaved
    with strided slice assignment; the leading comma after the tags is removed at the end.
    Per-value work happens in C, as in :func:`renkei.cloud.ingest.lineproto.encode_machine`.
    """
    n = len(cols[0])
    stride = len(seps) + 2
    flat: list[bytes] = [b""] * (n * stride)
    flat[0::stride] = [head + b" "] * n
    for j, (col, sep, suffix) in enumerate(zip(cols[1:], seps, suffixes, strict=True)):
        try:
            inner = orjson.dumps(col)[1:-1]
        except TypeError:  # an integer beyond 64 bits (a huge float spelled in digits)
            return None
        if suffix:
            inner = inner.replace(b",", suffix + b",") + suffix
        tokens = (sep + inner.replace(b",", b"\x00" + sep)).replace(sep + b"null" + suffix, b"")
        flat[1 + j :: stride] = tokens.split(b"\x00")
    times = orjson.dumps(cols[0])[1:-1]
    flat[stride - 1 :: stride] = (b" " + times.replace(b",", b"\n\x00 ") + b"\n").split(b"\x00")
    body = b"".join(flat)
    if b"  " in body:  # a row without values, or a tag value ending in an escaped space
        return None
    return body.replace(b" ,", b" ")


@dataclass(slots=True)
class MeasurementStats:
    """What :func:`export_measurement` wrote for one measurement."""

    measurement: str
    fields: dict[str, list[str]]
    points: int = 0
    values: dict[str, int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None
    slices: int = 0
    chunks: int = 0


def export_measurement(
    reader: InfluxReader,
    firm_id: str,
    measurement: str,
    sink: Callable[[bytes], None],
    *,
    chunk_points: int = 10_000,
    slice_points: int = 200_000,
    on_points: Callable[[int], None] | None = None,
) -> MeasurementStats:
    """Write every point of ``measurement`` tagged ``firm=<firm_id>`` to ``sink``.

    See the module docstring for the queries and the memory bound. ``on_points(n)`` is
    called after each chunk of ``n`` points went to ``sink`` (progress).

    Raises:
        StoreUnavailable, StoreRejected: InfluxDB errors.
        PortabilityError: a name line protocol cannot carry (newline, backslash).
    """
    types = reader.field_types(measurement)
    stats = MeasurementStats(measurement, types)
    columns: list[tuple[str, str]] = [(k, t) for k, ts in types.items() for t in ts]
    if not columns:
        return stats
    select = ",".join(f"{quote_ident(k)}::{t}" for k, t in columns)
    try:
        m_escaped = escape_measurement(measurement)
        prefixes = [escape_key(k) + "=" for k, _ in columns]
    except ValueError as exc:
        raise PortabilityError(f"measurement {measurement!r}: {exc}") from None
    formatters = [_FORMATTERS[t] for _, t in columns]
    # Without string fields, whole columns are formatted at once (see _format_columns).
    fast = all(t != "string" for _, t in columns)
    fast_seps = [b"," + p.encode() for p in prefixes]
    fast_suffixes = [_SUFFIX.get(t, b"") for _, t in columns]
    counts = [0] * len(columns)
    bounds = reader.time_bounds(measurement, firm_id, select)
    if bounds is None:
        return stats
    lo, last = bounds
    width = _FIRST_WIDTH_NS
    where_firm = _firm_where(firm_id)
    base = f"SELECT {select} FROM {quote_ident(measurement)} WHERE {where_firm}"
    first_ns: int | None = None
    last_ns: int | None = None
    while lo <= last:
        hi = min(last, lo + width - 1)
        q = f"{base} AND time >= {lo} AND time <= {hi} GROUP BY *"
        n_slice = 0
        for series in reader.stream(q, chunk_points=chunk_points):
            values = series.get("values") or []
            if not values:
                continue
            tags = series.get("tags") or {}
            if tags.get("firm") != firm_id:  # the WHERE clause makes this impossible
                raise PortabilityError(f"{measurement}: InfluxDB returned a series {tags}")
            try:
                head = m_escaped + "".join(
                    f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v
                )
            except ValueError as exc:
                raise PortabilityError(f"measurement {measurement!r}, tags {tags}: {exc}") from None
            cols = list(zip(*values, strict=True))
            for j, col in enumerate(cols[1:]):
                counts[j] += len(col) - col.count(None)
            body = None
            if fast:
                body = _format_columns(head.encode(), cols, fast_seps, fast_suffixes)
            if body is None:
                body = _format_rows(head, values, prefixes, formatters)
            sink(body)
            t0, t1 = int(values[0][0]), int(values[-1][0])
            first_ns = t0 if first_ns is None else min(first_ns, t0)
            last_ns = t1 if last_ns is None else max(last_ns, t1)
            n_slice += len(values)
            stats.chunks += 1
            if on_points is not None:
                on_points(len(values))
        stats.points += n_slice
        stats.slices += 1
        if hi >= last:
            break
        lo = hi + 1
        factor = 8.0 if n_slice == 0 else min(8.0, max(0.25, slice_points / n_slice))
        width = max(1, min(_MAX_NS - _MIN_NS, int(width * factor)))
    stats.first_ns, stats.last_ns = first_ns, last_ns
    for (key, _), n in zip(columns, counts, strict=True):
        stats.values[key] = stats.values.get(key, 0) + n
    log.info(
        "%s: %d points, %d slices, %d chunks", measurement, stats.points, stats.slices, stats.chunks
    )
    return stats


# --------------------------------------------------------------------------- writing


def write_member(
    store: TimeSeriesStore,
    records: Iterator[bytes],
    *,
    measurement: str,
    firm_id: str,
    batch_points: int = 10_000,
    batch_bytes: int = 4 << 20,
    retries: int = 5,
    concurrency: int = 2,
    on_points: Callable[[int], None] | None = None,
) -> int:
    """Post ``records`` (line protocol, ns) in batches; returns the number of points.
    ``on_points(n)`` is called after each batch of ``n`` points was written (progress).

    Every record must be of ``measurement`` and carry the tag ``firm=<firm_id>``. Up to
    ``concurrency`` batches are in flight at once (the next batch is prepared while
    InfluxDB parses the previous ones), so at most ``concurrency + 1`` batches are in
    memory.

    Raises:
        PortabilityError: a record of another measurement or firm, or a batch InfluxDB
            refuses (the server's message included).
        StoreUnavailable: still unavailable after ``retries`` attempts.
    """
    try:
        prefix = escape_measurement(measurement).encode()
        firm_tag = b"firm=" + escape_key(firm_id).encode()
    except ValueError as exc:
        raise PortabilityError(f"measurement {measurement!r}, firm {firm_id!r}: {exc}") from None
    checks = (prefix + b",", b"," + firm_tag + b",", b"," + firm_tag)
    batch: list[bytes] = []
    size = 0
    written = 0
    in_flight: deque[tuple[Future[None], int]] = deque()

    def settle() -> None:
        future, n = in_flight.popleft()
        future.result()
        if on_points is not None:
            on_points(n)

    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="renkei-import") as pool:
        try:
            for rec in records:
                _check_record(rec, prefix, firm_tag, checks, measurement, firm_id)
                batch.append(rec)
                size += len(rec) + 1
                if len(batch) >= batch_points or size >= batch_bytes:
                    while len(in_flight) >= max(1, concurrency):
                        settle()
                    future = pool.submit(_post, store, batch, measurement, retries)
                    in_flight.append((future, len(batch)))
                    written += len(batch)
                    batch, size = [], 0
            if batch:
                future = pool.submit(_post, store, batch, measurement, retries)
                in_flight.append((future, len(batch)))
                written += len(batch)
            while in_flight:
                settle()
        finally:
            for future, _ in in_flight:
                future.cancel()
    return written


def _key_end(rec: bytes) -> int:
    """Index of the space ending the measurement-and-tags part of a record."""
    i = rec.find(b" ")
    while i > 0 and rec[i - 1] == 0x5C:  # an escaped space belongs to a name
        i = rec.find(b" ", i + 1)
    return i


_KEY_TOKEN: Final = re.compile(rb"(?:[^,\\]|\\.)+", re.S)


def _check_record(
    rec: bytes,
    prefix: bytes,
    firm_tag: bytes,
    checks: tuple[bytes, bytes, bytes],
    measurement: str,
    firm: str,
) -> None:
    """Refuse a record not of ``measurement`` or not tagged ``firm=<firm>``."""
    end = rec.find(b" ")
    key = rec if end < 0 else rec[:end]
    if b"\\" not in key:  # no escapes (all the ingest writes): plain substring tests
        starts, inner, last = checks
        if not (key.startswith(starts) or key == prefix):
            raise PortabilityError(f"a record of member {measurement!r} is of another measurement")
        if inner not in key and not key.endswith(last):
            raise PortabilityError(
                f"a record of measurement {measurement!r} is not tagged firm={firm}"
            )
        return
    end = _key_end(rec)
    key = rec if end < 0 else rec[:end]
    # Names never hold a raw backslash (escape_key refuses them), so every backslash is an
    # escape and unescaped commas separate the measurement and the tags exactly.
    tokens = _KEY_TOKEN.findall(key) if b"\\" in key else key.split(b",")
    if not tokens or tokens[0] != prefix:
        raise PortabilityError(f"a record of member {measurement!r} is of another measurement")
    if firm_tag not in tokens[1:]:
        raise PortabilityError(f"a record of measurement {measurement!r} is not tagged firm={firm}")


def _post(store: TimeSeriesStore, batch: list[bytes], measurement: str, retries: int) -> None:
    body = b"\n".join(batch) + b"\n"
    delay = 0.5
    for attempt in range(1, retries + 1):
        try:
            store.write_lines(body, precision="ns")
            return
        except StoreUnavailable as exc:
            if attempt == retries:
                raise
            log.warning(
                "write of %s failed (%s); retry %d in %.1fs", measurement, exc, attempt, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        except StoreRejected as exc:
            raise PortabilityError(
                f"InfluxDB refused points of measurement {measurement!r}: {exc.detail or exc}"
            ) from None
