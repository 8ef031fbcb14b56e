"""A minimal read-only InfluxQL client over the InfluxDB v1 HTTP API (``POST /query``).

:class:`renkei.cloud.store.influx.InfluxStore` exposes only ``count``/``last``; the availability
reader needs arbitrary ``SELECT`` statements (subqueries), so it talks to the same endpoint
with the same :class:`~renkei.cloud.store.influx.InfluxSettings` (URL, database, retention
policy, token or Basic auth, timeout, TLS verification) and the error mapping of
:mod:`renkei.cloud.store.errors`:

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

from renkei.cloud.store.errors import check_status, query_results, transport_errors
from renkei.cloud.store.influx import InfluxSettings, http_client

__all__ = ["run_query"]


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
    with transport_errors("/query"), _client(settings) as client:
        response = client.post("/query", data=params)
    check_status(response, "query")
    # 1.x answers 200 + "database not found"; 2.x answers 404. Both: retryable.
    return query_results(response.content, response.status_code)
