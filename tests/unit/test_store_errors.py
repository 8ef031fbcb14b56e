"""The one InfluxDB error mapping (cloud/store/errors.py) that the store and both readers use."""

from __future__ import annotations

import httpx
import pytest

from harness.services import free_port
from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.store import InfluxSettings, run_query
from renkei.cloud.store.errors import check_status, error_text, query_results, transport_errors


@pytest.mark.parametrize("status", [500, 503, 401, 403, 404, 408, 429])
def test_retryable_statuses_carry_retry_after(status: int) -> None:
    answer = httpx.Response(status, content=b'{"error":"busy"}', headers={"Retry-After": "3"})
    with pytest.raises(StoreUnavailable) as info:
        check_status(answer, "query")
    assert (info.value.status, info.value.detail, info.value.retry_after_s) == (status, "busy", 3.0)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_other_4xx_are_rejected_with_the_server_text(status: int) -> None:
    answer = httpx.Response(status, content=b'{"code":"invalid","message":"bad"}')
    with pytest.raises(StoreRejected) as info:
        check_status(answer, "write")
    assert not isinstance(info.value, StoreUnavailable)
    assert str(info.value) == f"InfluxDB write failed: HTTP {status}: bad"
    check_status(httpx.Response(204), "write")


def test_error_text_falls_back_to_the_body() -> None:
    assert error_text("  plain text \n") == "plain text"
    assert error_text('{"other": 1}') == '{"other": 1}'
    assert len(error_text("x" * 5000)) == 2000


def test_transport_errors_are_unavailable() -> None:
    request = httpx.Request("POST", "http://influx.test/query")
    with (
        pytest.raises(StoreUnavailable, match="InfluxDB /query timed out"),
        transport_errors("/query"),
    ):
        raise httpx.ReadTimeout("slow", request=request)
    with (
        pytest.raises(StoreUnavailable, match="InfluxDB /write unreachable"),
        transport_errors("/write"),
    ):
        raise httpx.ConnectError("refused", request=request)


def test_statement_errors() -> None:
    missing = b'{"results":[{"statement_id":0,"error":"database not found: d"}]}'
    with pytest.raises(StoreUnavailable, match="database not found"):
        query_results(missing, 200)
    with pytest.raises(StoreRejected, match="database not found") as info:
        query_results(missing, 200, missing_database_retryable=False)
    assert not isinstance(info.value, StoreUnavailable)
    with pytest.raises(StoreRejected, match="syntax"):
        query_results(b'{"results":[{"statement_id":0,"error":"syntax error"}]}', 200)
    with pytest.raises(StoreUnavailable, match="not InfluxQL JSON"):
        query_results(b"<html>proxy</html>", 200)
    assert query_results(b'{"results":[{"statement_id":0}]}', 200) == [{"statement_id": 0}]


def test_run_query_uses_the_mapping() -> None:
    settings = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        run_query(settings, "SHOW DATABASES")
