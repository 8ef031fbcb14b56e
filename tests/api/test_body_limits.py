"""Request size limits of the API itself: body bytes (413, streamed), import rows (422),
and uvicorn's idle keep-alive timeout, against the app and a real ``renkei cloud api``."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.cloud.registry import Role, import_document, issue_key, make_engine, session_scope
from tests.api.rig import ApiRig, imm
from tests.proxy_services import ApiServer

API = "/api/v1"
LIMIT = 65_536


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(
        workdir=tmp_path_factory.mktemp("api"),
        env={"RENKEI_API_MAX_BODY_BYTES": str(LIMIT), "RENKEI_API_TIMEOUT_KEEP_ALIVE_S": "1"},
    )
    api.start()
    engine = make_engine(api.env["RENKEI_API_DATABASE_URL"])
    with session_scope(engine) as s:
        import_document(s, {"firms": [{"id": "acme", "name": "Acme", "region": "kansai"}]})
        api.key = issue_key(s, firm_id="acme", role=Role.OPERATOR)
    engine.dispose()
    try:
        yield api
    finally:
        api.stop()


def _read_response(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Bytes until the peer closes or a complete JSON error body has arrived."""
    sock.settimeout(timeout_s)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                return data


def test_content_length_over_the_limit_is_413_naming_it(tmp_path: Path) -> None:
    rig = ApiRig(tmp_path, max_body_bytes=2048)
    try:
        rig.seed_firm("acme")
        c = rig.client("acme")
        r = c.put(f"{API}/firms/acme/registry", content=b"{" + b" " * 3000 + b"}")
        assert r.status_code == 413
        assert r.json()["error"] == {
            "code": "payload_too_large",
            "message": "request body larger than the limit of 2048 bytes",
            "detail": {"limit_bytes": 2048},
        }
        ok = c.put(f"{API}/firms/acme/registry", content=b"{" + b" " * 2000 + b"}")
        assert ok.status_code == 200, ok.text
    finally:
        rig.close()


def test_import_over_the_row_limit_is_422_naming_it(tmp_path: Path) -> None:
    rig = ApiRig(tmp_path, max_import_rows=3)
    try:
        rig.seed_firm("acme")
        c = rig.client("acme")
        machines = [{"firm_id": "acme", "line_id": "acme-l1"} | imm(f"m{i}") for i in range(4)]
        r = c.put(f"{API}/firms/acme/registry", json={"machines": machines})
        assert r.status_code == 422
        assert r.json()["error"]["detail"] == [
            {"loc": "body", "msg": "4 rows; the limit is 3 rows per import (max_import_rows)"}
        ]
        assert c.get(f"{API}/firms/acme/machines").json() == []
        r = c.put(f"{API}/firms/acme/registry", json={"machines": machines[:3]})
        assert r.status_code == 200 and r.json()["machines"] == 3
    finally:
        rig.close()


def test_chunked_body_is_refused_once_it_passes_the_limit(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /api/v1/firms/acme/registry HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n" % server.key.encode()
        )
        chunk = b"x" * 16_384
        sent = 0
        for _ in range(5):  # 80 KiB, never terminated: the server must not wait for the end
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        response = _read_response(sock)
    assert sent > LIMIT
    status, _, rest = response.partition(b"\r\n")
    assert status == b"HTTP/1.1 413 Request Entity Too Large", response[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["detail"] == {"limit_bytes": LIMIT}


def test_declared_length_over_the_limit_is_refused_before_the_body(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /api/v1/firms/acme/registry HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 50000000\r\nContent-Type: application/json\r\n\r\n{"
        )
        response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 413 "), response[:300]
    assert b'"limit_bytes":65536' in response


def test_idle_keep_alive_connections_are_closed(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 401 ")
        started = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(1) == b""  # closed by uvicorn (timeout_keep_alive_s = 1)
        assert time.monotonic() - started < 5
