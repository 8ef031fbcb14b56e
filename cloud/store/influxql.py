"""A minimal read-only InfluxQL client over the InfluxDB v1 HTTP API (``POST /query``).

:class:`renkei.cloud.store.influx.InfluxStore` exposes only ``count``/``last``; the availability
reader needs arbitrary ``SELECT`` statements (subqueries), so it talks to the same endpoint
with the same :class:`~renkei.cloud.store.influx.InfluxSettings` (URL, database, retention
policy, token or Basic auth, timeout, TLS verification) and the same error mapping:

- connection error, timeout, HTTP 5xx/401/403/404/408/429, ``database not found``
  -> :class:`StoreUnavailable`
- other HTTP 4xx, or another ``"error"`` in a statement result -> :class:`StoreRejected`

Queries are sent as a form body (``POST``) so long statements do not hit URL limits;
InfluxDB 1.x accepts ``SELECT``/``SHOW`` by POST
(https://docs.influxdata.com/influxdb/v1/tools/api/#query-http-endpoint).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.store.influx import InfluxSettings, http_client

__all__ = ["run_query"]

_RETRYABLE_4XX = frozenset({401, 403, 404, 408, 429})


def _client(settings: InfluxSettings) -> httpx.Client:
    return http_client(settings, user_agent="renkei-cloud-capacity")


def run_query(settings: InfluxSettings, q: str) -> list[dict[str, Any]]:
    """Run InfluxQL ``q`` (one or more ``;``-separated statements) and return ``results``.

    Returns:
        One dict per statement, each possibly with a ``series`` list (InfluxDB v1 JSON,
        timestamps as epoch milliseconds).

    Raises:
        StoreUnavailable: unreachable, timeout, 5xx/401/403/404/408/429, missing database,
            or an answer that is not InfluxQL JSON.
        StoreRejected: other 4xx, or a statement error (e.g. an InfluxQL syntax error).
    """
    params = {"q": q, "db": settings.database, "epoch": "ms"}
    if settings.retention_policy:
        params["rp"] = settings.retention_policy
    try:
        with _client(settings) as client:
            response = client.post("/query", data=params)
    except httpx.TimeoutException as exc:
        raise StoreUnavailable(f"InfluxDB /query timed out: {exc!r}") from exc
    except httpx.RequestError as exc:
        raise StoreUnavailable(f"InfluxDB /query unreachable: {exc!r}") from exc
    status = response.status_code
    if not 200 <= status < 300:
        detail = response.text.strip()[:2000]
        message = f"InfluxDB query failed: HTTP {status}: {detail}"
        if status >= 500 or status in _RETRYABLE_4XX:
            raise StoreUnavailable(message, status=status, detail=detail)
        raise StoreRejected(message, status=status, detail=detail)
    try:
        body = orjson.loads(response.content)
        results: list[dict[str, Any]] = body["results"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreUnavailable(
            f"InfluxDB query answer is not InfluxQL JSON: {response.text[:200]!r}"
        ) from exc
    for result in results:
        if "error" in result:
            if str(result["error"]).startswith("database not found"):
                # 1.x answers 200 + error; 2.x answers 404. Both: retryable, as in InfluxStore.
                raise StoreUnavailable(
                    f"InfluxQL error: {result['error']}", status=status, detail=str(result["error"])
                )
            raise StoreRejected(
                f"InfluxQL error: {result['error']}", status=status, detail=str(result["error"])
            )
    return results
