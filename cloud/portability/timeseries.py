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
"""

from __future__ import annotations

import functools
import json
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
from renkei.cloud.store import (
    InfluxSettings,
    TimeSeriesStore,
    http_client,
    quote_ident,
    quote_literal,
    quote_tag,
)
from renkei.cloud.store.errors import check_status, query_results, transport_errors
from renkei.core.influx.lineproto import escape_key, escape_measurement, quote_string

__all__ = [
    "FIELD_TYPES",
    "InfluxReader",
    "MeasurementStats",
    "export_measurement",
    "write_member",
]

log = logging.getLogger(__name__)

#: InfluxDB field types and the InfluxQL cast selecting exactly that type.
FIELD_TYPES: Final = ("float", "integer", "unsigned", "string", "boolean")
_MIN_NS: Final = -9_223_372_036_854_775_806
_MAX_NS: Final = 9_223_372_036_854_775_806
_FIRST_WIDTH_NS: Final = 3_600 * 10**9  # first slice: one hour


# --------------------------------------------------------------------------- reading


class InfluxReader:
    """InfluxQL over the v1 ``/query`` endpoint, answers in epoch nanoseconds.

    Same settings (URL, database, retention policy, token or Basic auth, timeout, TLS;
    ``gzip`` asks for compressed answers, worth it over slow links only) and
    the readers' error mapping of :mod:`renkei.cloud.store.errors`: connection errors,
    timeouts, 5xx/401/403/404/408/429 and ``database not found`` raise
    :class:`StoreUnavailable`; other 4xx and statement errors :class:`StoreRejected`.
    """

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        # Uncompressed answers unless the settings ask for gzip: compressing costs
        # InfluxDB about as much CPU as the query itself (measured with 1.6 on loopback).
        self._client = http_client(
            settings,
            user_agent="renkei-portability",
            headers={"Accept-Encoding": "gzip" if settings.gzip else "identity"},
        )

    def close(self) -> None:
        self._client.close()

    def _params(self, q: str, **extra: str) -> dict[str, str]:
        params = {"q": q, "db": self.settings.database, "epoch": "ns", **extra}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        return params

    def query(self, q: str) -> list[dict[str, Any]]:
        """Run ``q`` (``;``-separated statements); one result dict per statement."""
        with transport_errors("/query"):
            response = self._client.post("/query", data=self._params(q))
        check_status(response, "query")
        return query_results(response.content, response.status_code)

    def stream(self, q: str, *, chunk_points: int) -> Iterator[dict[str, Any]]:
        """The series of a one-statement ``q``, chunk by chunk (``chunked=true``).

        Each yielded dict is one chunk of one series (``name``, ``tags``, ``columns``,
        ``values`` of at most ``chunk_points`` rows); only one chunk is in memory.
        """
        params = self._params(q, chunked="true", chunk_size=str(chunk_points))
        with (
            transport_errors("/query"),
            self._client.stream("POST", "/query", data=params) as response,
        ):
            if not 200 <= response.status_code < 300:
                response.read()
                check_status(response, "query")
            pending: list[bytes] = []  # the current chunk's blocks (one JSON line)
            for block in response.iter_bytes():
                if b"\n" not in block:
                    pending.append(block)
                    continue
                *lines, rest = block.split(b"\n")
                lines[0] = b"".join([*pending, lines[0]])
                pending = [rest]
                for line in lines:
                    yield from self._chunk_series(line, response.status_code)
            last = b"".join(pending)
            if last.strip():
                yield from self._chunk_series(last, response.status_code)

    def _chunk_series(self, line: bytes, status: int) -> Iterator[dict[str, Any]]:
        if not line.strip():
            return
        loads: Callable[[bytes], Any] = orjson.loads
        if b"-0," in line or b"-0]" in line:
            # InfluxDB writes the float -0.0 as ``-0``, which orjson reads as the int 0:
            # the sign would be lost. The stdlib parser with this hook keeps it.
            loads = functools.partial(json.loads, parse_int=_parse_int)
        for result in query_results(line, status, loads=loads):
            yield from result.get("series") or []

    # ------------------------------------------------------------------ statements

    def measurements(self, firm_id: str) -> list[str]:
        """Measurements with at least one series tagged ``firm=<firm_id>``, sorted."""
        q = f"SHOW MEASUREMENTS WHERE {quote_tag('firm')} = {quote_literal(firm_id)}"
        names: set[str] = set()
        for result in self.query(q):
            for s in result.get("series") or []:
                names.update(str(v[0]) for v in s.get("values") or [])
        return sorted(names)

    def field_types(self, measurement: str) -> dict[str, list[str]]:
        """Field key -> type(s) of a measurement (``SHOW FIELD KEYS``), sorted."""
        out: dict[str, list[str]] = {}
        for result in self.query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}"):
            for s in result.get("series") or []:
                for key, typ in s.get("values") or []:
                    out.setdefault(str(key), []).append(str(typ))
        return {k: sorted(set(v), key=_type_order) for k, v in sorted(out.items())}

    def time_bounds(self, measurement: str, firm_id: str, select: str) -> tuple[int, int] | None:
        """The firm's first and last timestamp in ``measurement`` (``None``: no points)."""
        base = f"SELECT {select} FROM {quote_ident(measurement)} WHERE {_firm_where(firm_id)}"
        results = self.query(f"{base} ORDER BY time ASC LIMIT 1;{base} ORDER BY time DESC LIMIT 1")
        ends: list[int] = []
        for result in results:
            for s in result.get("series") or []:
                for row in s.get("values") or []:
                    ends.append(int(row[0]))
        return (min(ends), max(ends)) if ends else None

    def value_counts(self, measurement: str, firm_id: str) -> dict[str, int]:
        """Non-null values per field of the firm in ``measurement`` (``count(*)``)."""
        q = f"SELECT count(*) FROM {quote_ident(measurement)} WHERE {_firm_where(firm_id)}"
        out: dict[str, int] = {}
        for result in self.query(q):
            for s in result.get("series") or []:
                columns = s.get("columns") or []
                for row in s.get("values") or []:
                    for name, value in zip(columns[1:], row[1:], strict=False):
                        out[str(name).removeprefix("count_")] = int(value or 0)
        return out

    def drop_firm(self, measurement: str, firm_id: str) -> None:
        """``DROP SERIES`` of the firm in ``measurement`` (all its points)."""
        self.query(f"DROP SERIES FROM {quote_ident(measurement)} WHERE {_firm_where(firm_id)}")


def _parse_int(text: str) -> int | float:
    return -0.0 if text == "-0" else int(text)


def _firm_where(firm_id: str) -> str:
    return f"{quote_tag('firm')} = {quote_literal(firm_id)}"


def _type_order(typ: str) -> int:
    return FIELD_TYPES.index(typ) if typ in FIELD_TYPES else len(FIELD_TYPES)


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
) -> MeasurementStats:
    """Write every point of ``measurement`` tagged ``firm=<firm_id>`` to ``sink``.

    See the module docstring for the queries and the memory bound.

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
) -> int:
    """Post ``records`` (line protocol, ns) in batches; returns the number of points.

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
    in_flight: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="renkei-import") as pool:
        try:
            for rec in records:
                _check_record(rec, prefix, firm_tag, checks, measurement, firm_id)
                batch.append(rec)
                size += len(rec) + 1
                if len(batch) >= batch_points or size >= batch_bytes:
                    while len(in_flight) >= max(1, concurrency):
                        in_flight.popleft().result()
                    in_flight.append(pool.submit(_post, store, batch, measurement, retries))
                    written += len(batch)
                    batch, size = [], 0
            if batch:
                in_flight.append(pool.submit(_post, store, batch, measurement, retries))
                written += len(batch)
            while in_flight:
                in_flight.popleft().result()
        finally:
            for future in in_flight:
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
