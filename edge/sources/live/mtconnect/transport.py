"""Bounded HTTP reads from an MTConnect agent (httpx), interruptible from another thread.

Every request has httpx timeouts (connect, each read, write) *and* a whole-response
deadline enforced by :class:`Guard`: a watcher thread that shuts the response's socket down
when the deadline passes (a slow-drip agent), when a stream stays silent past its heartbeat,
or as soon as the driver's ``stop`` is set, so a blocked read returns within ~0.1 s.
Response bodies are read incrementally and refused past ``max_bytes`` (:class:`TooLarge`);
``Accept-Encoding: identity`` asks for no compression (sizes are counted after decoding
anyway, so a compression bomb is bounded too).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from renkei.core.errors import DecodeError

__all__ = ["Guard", "TooLarge", "make_client", "open_stream", "read_document"]

_TICK_S: Final = 0.05


class TooLarge(DecodeError):
    """A response is larger than ``max_document_bytes``."""


class Guard:
    """Shuts down the socket of the current response on stop or when its deadline passes.

    Args:
        stop: the driver's stop event.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._deadline = float("inf")
        self._why = ""
        self.fired: str | None = None
        """Why the guard last cut a response (``None``: it did not)."""
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mtconnect-guard", daemon=True)
        self._thread.start()

    def arm(self, sock: socket.socket | None, timeout_s: float, why: str) -> None:
        """Watch ``sock``: cut it if nothing calls :meth:`extend` within ``timeout_s``."""
        with self._lock:
            self._sock = sock
            self._deadline = time.monotonic() + timeout_s
            self._why = why
            self.fired = None

    def extend(self, timeout_s: float) -> None:
        """Progress was made: the deadline is ``timeout_s`` from now."""
        with self._lock:
            self._deadline = time.monotonic() + timeout_s

    def disarm(self) -> None:
        """Stop watching (the response is closed)."""
        with self._lock:
            self._sock = None
            self._deadline = float("inf")

    def close(self) -> None:
        """End the watcher thread."""
        self._closed.set()
        self._thread.join(1.0)

    def _loop(self) -> None:
        while not self._closed.wait(_TICK_S):
            stopping = self._stop.is_set()
            with self._lock:
                sock = self._sock
                if sock is None or not (stopping or time.monotonic() > self._deadline):
                    continue
                self.fired = "stopping" if stopping else self._why
                self._sock = None
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def make_client(
    base_url: str, *, timeout_s: float, read_timeout_s: float, ca: ssl.SSLContext | None
) -> httpx.Client:
    """An httpx client for one agent: no proxies from the environment, no redirects, no
    compression, at most two connections."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, read=read_timeout_s),
        verify=ca if ca is not None else True,
        trust_env=False,
        follow_redirects=False,
        headers={"Accept": "application/xml, text/xml", "Accept-Encoding": "identity"},
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
    )


def _socket_of(resp: httpx.Response) -> socket.socket | None:
    stream = resp.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    return sock if isinstance(sock, socket.socket) else None


def _read_bounded(resp: httpx.Response, max_bytes: int, guard: Guard, what: str) -> bytes:
    length = resp.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"{what}: response of {length} bytes exceeds max_document_bytes={max_bytes}")
    buf = bytearray()
    for chunk in resp.iter_bytes():
        buf += chunk
        if len(buf) > max_bytes:
            raise TooLarge(f"{what}: response exceeds max_document_bytes={max_bytes}")
    return bytes(buf)


def read_document(
    client: httpx.Client,
    path: str,
    params: dict[str, str | int],
    *,
    guard: Guard,
    deadline_s: float,
    max_bytes: int,
) -> tuple[int, bytes]:
    """GET ``path``: (HTTP status, body), the body complete within ``deadline_s``.

    Raises:
        httpx.HTTPError: connect/read failure or timeout (also when the guard cut it).
        TooLarge: the body exceeds ``max_bytes``.
    """
    with client.stream("GET", path, params=params) as resp:
        guard.arm(_socket_of(resp), deadline_s, f"{path}: no complete answer in {deadline_s:g} s")
        try:
            return resp.status_code, _read_bounded(resp, max_bytes, guard, path)
        finally:
            guard.disarm()


@contextmanager
def open_stream(
    client: httpx.Client,
    path: str,
    params: dict[str, str | int],
    *,
    guard: Guard,
    silence_s: float,
    max_bytes: int,
) -> Iterator[tuple[httpx.Response, bytes | None]]:
    """GET a long-lived streaming response; yields ``(response, body)``: ``body`` is the
    whole (bounded) body when the agent did not answer with a multipart stream (an error
    document), else ``None`` and the caller iterates ``response.iter_bytes()``, calling
    ``guard.extend(silence_s)`` after each complete part.

    Raises:
        httpx.HTTPError, TooLarge: as :func:`read_document`.
    """
    with client.stream("GET", path, params=params) as resp:
        sock = _socket_of(resp)
        try:
            ctype = resp.headers.get("content-type", "")
            if resp.status_code != 200 or not ctype.lower().startswith("multipart/"):
                guard.arm(sock, silence_s, f"{path}: no complete answer in {silence_s:g} s")
                yield resp, _read_bounded(resp, max_bytes, guard, path)
                return
            guard.arm(sock, silence_s, f"{path}: no part or heartbeat for {silence_s:g} s")
            yield resp, None
        finally:
            guard.disarm()
