"""InfluxStore: HTTP status -> exception mapping, request shape, settings validation.

These use httpx's in-process transport to produce answers a real InfluxDB 1.6 cannot be
made to give on demand (503, 429 + Retry-After, 401). The behaviour against a real server
is proven in ``tests/integration/test_ingest_influx_store.py``.
"""

from __future__ import annotations

import gzip

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.store.base import TimeSeriesStore
from renkei.cloud.store.influx import InfluxSettings, InfluxStore, quote_ident, quote_literal


def store_answering(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, **settings: object
) -> tuple[InfluxStore, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers)

    s = InfluxSettings(url="http://influx.test:8086", database="d b", **settings)
    return InfluxStore(settings=s, transport=httpx.MockTransport(handler)), seen


def test_write_request_shape_with_token_and_gzip() -> None:
    store, seen = store_answering(204, token=SecretStr("s3cret"), gzip=True, retention_policy="rp1")
    assert isinstance(store, TimeSeriesStore)
    store.write_lines(b"m f=1 1")
    [req] = seen
    assert req.method == "POST"
    assert req.url.path == "/write"
    assert dict(req.url.params) == {"db": "d b", "precision": "ms", "rp": "rp1"}
    assert req.headers["Authorization"] == "Token s3cret"
    assert req.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(req.content) == b"m f=1 1"


def test_basic_auth() -> None:
    store, seen = store_answering(204, username="u", password=SecretStr("p"))
    store.write_lines(b"m f=1")
    assert seen[0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize("status", [500, 502, 503, 429, 401, 403, 404, 408])
def test_retryable_statuses(status: int) -> None:
    store, _ = store_answering(status, b'{"error":"busy"}', {"Retry-After": "7"})
    with pytest.raises(StoreUnavailable) as info:
        store.write_lines(b"m f=1")
    assert info.value.status == status
    assert info.value.detail == "busy"
    assert info.value.retry_after_s == 7.0


@pytest.mark.parametrize("status", [400, 413, 422])
def test_rejected_statuses(status: int) -> None:
    store, _ = store_answering(status, b'{"code":"invalid","message":"field type conflict"}')
    with pytest.raises(StoreRejected) as info:
        store.write_lines(b"m f=1")
    assert not isinstance(info.value, StoreUnavailable)
    assert info.value.detail == "field type conflict"


def test_connection_refused_and_closed_client_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    store = InfluxStore(settings=InfluxSettings(), transport=httpx.MockTransport(refuse))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.write_lines(b"m f=1")
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.write_lines(b"m f=1")


def test_query_error_in_results_is_rejected() -> None:
    answer = b'{"results":[{"statement_id":0,"error":"database not found"}]}'
    store, _ = store_answering(200, answer)
    with pytest.raises(StoreRejected, match="database not found"):
        store.count("m", "f")


def test_invalid_settings() -> None:
    with pytest.raises(ValidationError):
        InfluxSettings(url="ftp://x")
    with pytest.raises(ValidationError):
        InfluxSettings(token=SecretStr("t"), username="u", password=SecretStr("p"))
    with pytest.raises(ValidationError):
        InfluxSettings(username="u")
    s = InfluxSettings()
    with pytest.raises(ValidationError):
        s.database = "x"  # type: ignore[misc]
    assert "s3cret" not in repr(InfluxSettings(token=SecretStr("s3cret")))


def test_influxql_quoting() -> None:
    assert quote_ident('a"b\\c') == '"a\\"b\\\\c"'
    assert quote_literal("it's") == "'it\\'s'"
