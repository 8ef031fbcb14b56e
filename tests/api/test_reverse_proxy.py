"""The shipped nginx reverse proxy (deploy/nginx/) in front of a real ``renkei cloud api``.

nginx runs from the Debian package with the shipped template rendered with short
timeouts (header and body 1 s, ``limit_conn`` 6 per address, 64 KiB bodies); the API is
uvicorn trusting ``X-Forwarded-For`` from 127.0.0.1 (the proxy) only. Clients connect
from 127.0.0.2, so the address the API logs tells whether the proxy forwarded it.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.wait import wait_for
from renkei.cloud.registry import Role, import_document, issue_key, make_engine, session_scope
from tests.proxy_services import ApiServer, Nginx, render_template

CLIENT_IP = "127.0.0.2"
TIMEOUT_S = 1.0
PER_IP = 6
LIMIT = 65_536


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nginx, ApiServer]]:
    api = ApiServer(
        workdir=tmp_path_factory.mktemp("api"),
        env={
            "RENKEI_API_MAX_BODY_BYTES": str(LIMIT),
            "RENKEI_API_FORWARDED_ALLOW_IPS": "127.0.0.1",
        },
    )
    api.start()
    engine = make_engine(api.env["RENKEI_API_DATABASE_URL"])
    with session_scope(engine) as s:
        import_document(s, {"firms": [{"id": "acme", "name": "Acme", "region": "kansai"}]})
        api.key = issue_key(s, firm_id="acme", role=Role.OPERATOR)
    engine.dispose()
    nginx = Nginx(
        workdir=tmp_path_factory.mktemp("nginx"),
        upstream_port=api.port,
        NGINX_CLIENT_HEADER_TIMEOUT=f"{TIMEOUT_S:g}s",
        NGINX_CLIENT_BODY_TIMEOUT=f"{TIMEOUT_S:g}s",
        NGINX_SEND_TIMEOUT="2s",
        NGINX_KEEPALIVE_TIMEOUT="2s",
        NGINX_LIMIT_CONN_PER_IP=str(PER_IP),
        NGINX_CLIENT_MAX_BODY_SIZE="64k",
    )
    nginx.start()
    try:
        yield nginx, api
    finally:
        nginx.stop()
        api.stop()


def _client() -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=CLIENT_IP)
    return httpx.Client(transport=transport, timeout=10)


def _open(port: int, payload: bytes) -> socket.socket:
    sock = socket.socket()
    sock.bind((CLIENT_IP, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(payload)
    return sock


def _seconds_until_closed(socks: list[socket.socket], limit_s: float) -> list[float]:
    """Per socket, seconds until the peer closed it (data before the close is ignored);
    ``inf`` for sockets still open after ``limit_s``."""
    started = time.monotonic()
    closed = [float("inf")] * len(socks)
    with selectors.DefaultSelector() as sel:
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        while sel.get_map() and time.monotonic() - started < limit_s:
            for key, _ in sel.select(timeout=0.1):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                if not data:
                    closed[key.data] = time.monotonic() - started
                    sel.unregister(key.fileobj)
    for s in socks:
        s.close()
    return closed


def test_the_template_renders_every_placeholder_from_the_shipped_defaults() -> None:
    text = render_template()
    assert "${" not in text
    assert "client_max_body_size 10m;" in text  # = RENKEI_API_MAX_BODY_BYTES default
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text


def test_requests_pass_with_the_client_address_forwarded(
    proxy: tuple[Nginx, ApiServer],
) -> None:
    nginx, api = proxy
    with _client() as c:
        r = c.get(
            f"http://127.0.0.1:{nginx.port}/api/v1/me",
            headers={"Authorization": f"Bearer {api.key}", "X-Forwarded-For": "203.0.113.9"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["firm_id"] == "acme"
        doc = {"firms": [{"id": "acme", "name": "Acme Renamed", "region": "kansai"}]}
        r = c.put(
            f"http://127.0.0.1:{nginx.port}/api/v1/firms/acme/registry",
            json=doc,
            headers={"Authorization": f"Bearer {api.key}"},
        )
        assert r.status_code == 200 and r.json()["firms"] == 1, r.text
    wait_for(
        lambda: '"PUT /api/v1/firms/acme/registry' in api.log(), 10, "the PUT in the API's log"
    )
    lines = [ln for ln in api.log().splitlines() if "/api/v1/me" in ln or "/registry" in ln]
    assert len(lines) == 2, api.log()[-2000:]
    # The proxy's address (127.0.0.1) and the spoofed header are both replaced by the client's.
    assert all(f"{CLIENT_IP}:" in ln for ln in lines), lines
    assert "203.0.113.9" not in api.log()


def test_partial_headers_and_bodies_are_closed_within_the_timeouts(
    proxy: tuple[Nginx, ApiServer],
) -> None:
    nginx, api = proxy
    before = api.log().count("slowloris")
    header = [
        _open(nginx.port, b"GET /api/v1/me?slowloris HTTP/1.1\r\nHost: x\r\nX-a: b\r\n")
        for _ in range(100)
    ]
    body = [
        _open(
            nginx.port,
            b"PUT /api/v1/firms/acme/registry?slowloris HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        for _ in range(PER_IP)
    ]
    # While the partial bodies hold the address's requests in progress, it gets 429.
    with _client() as c:
        r = c.get(f"http://127.0.0.1:{nginx.port}/api/v1/me")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_connections"
    closed = _seconds_until_closed(header + body, limit_s=TIMEOUT_S + 4)
    assert max(closed) <= TIMEOUT_S + 3, sorted(closed)[-5:]
    assert min(closed) >= TIMEOUT_S * 0.8, sorted(closed)[:5]
    # Nothing of them reached the API (nginx buffers whole requests), and it serves again.
    assert api.log().count("slowloris") == before
    with _client() as c:
        assert c.get(f"http://127.0.0.1:{nginx.port}/api/v1/me").status_code == 401


def test_oversized_bodies_get_413_from_the_proxy(proxy: tuple[Nginx, ApiServer]) -> None:
    nginx, api = proxy
    url = f"http://127.0.0.1:{nginx.port}/api/v1/firms/acme/registry?oversized"
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    with _client() as c:
        r = c.put(url, content=b" " * (LIMIT + 1), headers=headers)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        assert r.json()["error"]["detail"] == {"limit": "64k"}

        def chunks() -> Iterator[bytes]:
            for _ in range(6):
                yield b" " * 16_384

        r = c.put(url, content=chunks(), headers=headers)  # chunked: no Content-Length
        assert r.status_code == 413
        ok = c.put(url, content=b"{" + b" " * (LIMIT - 100) + b"}", headers=headers)
        assert ok.status_code == 200, ok.text
    assert api.log().count("?oversized") == 1  # only the body within the limit got through
