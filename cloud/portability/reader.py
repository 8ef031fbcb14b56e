"""The InfluxQL client of the firm export and import: queries over InfluxDB's v1
``/query`` endpoint with answers in epoch nanoseconds, streamed in chunks
(:mod:`renkei.cloud.portability.timeseries` exports and imports with it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from renkei.cloud.store import (
    InfluxSettings,
    http_client,
    quote_ident,
    quote_literal,
    quote_tag,
)
from renkei.cloud.store.errors import check_status, query_results, transport_errors

__all__ = ["FIELD_TYPES", "InfluxReader"]

#: InfluxDB field types and the InfluxQL cast selecting exactly that type.
FIELD_TYPES: Final = ("float", "integer", "unsigned", "string", "boolean")


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
