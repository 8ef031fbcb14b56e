"""InfluxDB answers -> store exceptions, written once (the ``httpx`` boundary).

:class:`renkei.cloud.store.influx.InfluxStore`, the InfluxQL reader
(:func:`renkei.cloud.store.influxql.run_query`) and the portability reader
(:class:`renkei.cloud.portability.timeseries.InfluxReader`) all classify with these
functions, so no ``httpx`` exception leaves them and a status means the same everywhere::

    connection refused/reset, timeout, protocol error  -> StoreUnavailable
    5xx, 401, 403, 404 (database not found), 408, 429  -> StoreUnavailable (retryable,
                                                          with the server's Retry-After)
    other 4xx (400 type conflict / parse error, 413)   -> StoreRejected (with the server text)
    an answer that is not InfluxQL JSON                -> StoreUnavailable
    a statement error in a 200 answer                  -> StoreRejected; ``database not
                                                          found`` -> StoreUnavailable for
                                                          readers (1.x answers 200 + error
                                                          where 2.x answers 404)

Endpoints and status codes: https://docs.influxdata.com/influxdb/v1/tools/api/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx
import orjson

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable

__all__ = [
    "RETRYABLE_4XX",
    "check_status",
    "error_text",
    "query_results",
    "transport_errors",
]

#: 4xx answers that say "not now" rather than "not this data": credentials (an operator
#: fixes them, the data is fine), a missing database, a timeout, rate limiting.
RETRYABLE_4XX: Final = frozenset({401, 403, 404, 408, 429})

_MAX_DETAIL: Final = 2000


@contextmanager
def transport_errors(path: str) -> Iterator[None]:
    """Map ``httpx`` transport errors raised in the block to :class:`StoreUnavailable`.

    Args:
        path: the endpoint named in the message (``/write``, ``/query``).

    Raises:
        StoreUnavailable: ``InfluxDB {path} timed out: ...`` for a timeout,
            ``InfluxDB {path} unreachable: ...`` for any other request error (refused,
            reset, DNS, protocol error).
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise StoreUnavailable(f"InfluxDB {path} timed out: {exc!r}") from exc
    except httpx.RequestError as exc:
        raise StoreUnavailable(f"InfluxDB {path} unreachable: {exc!r}") from exc


def error_text(text: str) -> str:
    """The server's error text of an error answer (at most 2000 characters).

    InfluxDB 1.x answers ``{"error": "..."}``, 2.x/3.x ``{"code": ..., "message": "..."}``;
    the message is taken from those keys, else the body is returned stripped.
    """
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.strip()[:_MAX_DETAIL]
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:_MAX_DETAIL]
    return text.strip()[:_MAX_DETAIL]


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


def check_status(response: httpx.Response, what: str) -> None:
    """Raise for a non-2xx answer (the body must have been read: ``response.read()``).

    Args:
        response: InfluxDB's answer.
        what: the request named in the message (``write``, ``query``).

    Raises:
        StoreUnavailable: 5xx or :data:`RETRYABLE_4XX`; ``retry_after_s`` from the
            ``Retry-After`` header (seconds) if any.
        StoreRejected: any other non-2xx status; ``detail`` is the server's text.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = error_text(response.text)
    message = f"InfluxDB {what} failed: HTTP {status}: {detail}"
    if status >= 500 or status in RETRYABLE_4XX:
        raise StoreUnavailable(
            message, status=status, detail=detail, retry_after_s=_retry_after(response)
        )
    raise StoreRejected(message, status=status, detail=detail)


def query_results(
    content: bytes | str,
    status: int,
    *,
    loads: Callable[[Any], Any] = orjson.loads,
    missing_database_retryable: bool = True,
) -> list[dict[str, Any]]:
    """The ``results`` of an InfluxQL JSON answer (or one chunk of a chunked answer).

    Args:
        content: the answer's body.
        status: its HTTP status (put into the exceptions).
        loads: the JSON parser (a reader may need one that keeps ``-0``).
        missing_database_retryable: whether a ``database not found`` statement error is
            :class:`StoreUnavailable` (the readers) or, like any statement error,
            :class:`StoreRejected` (:class:`~renkei.cloud.store.influx.InfluxStore`,
            whose ingest creates the database first).

    Returns:
        One dict per statement, each possibly with a ``series`` list.

    Raises:
        StoreUnavailable: the body is not InfluxQL JSON; ``database not found`` (see above).
        StoreRejected: a statement error (e.g. an InfluxQL syntax error).
    """
    try:
        body = loads(content)
        results: list[dict[str, Any]] = body["results"]
    except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        head = content[:200]
        preview = head if isinstance(head, str) else head.decode("utf-8", "replace")
        raise StoreUnavailable(f"InfluxDB query answer is not InfluxQL JSON: {preview!r}") from exc
    for result in results:
        if "error" in result:
            error = str(result["error"])
            retryable = missing_database_retryable and error.startswith("database not found")
            cls = StoreUnavailable if retryable else StoreRejected
            raise cls(f"InfluxQL error: {error}", status=status, detail=error)
    return results
