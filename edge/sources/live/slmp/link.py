"""One TCP connection to a MELSEC CPU: send a 3E request, read its response, bounded.

Every wait is cut into slices of at most :data:`SLICE_S` so that a stop request is honoured
within a fraction of a second, and every read is bounded by the largest response the
request can legitimately get (a hostile length field is refused before the body is read).
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from typing import Final

from renkei.core.errors import RenkeiError, TransportError
from renkei.edge.sources.live.slmp.frames import HEADER_LEN, Route, parse_response_header

__all__ = ["SLICE_S", "Link", "RequestTimeout", "Stopped"]

#: Longest single blocking wait, s (bounds the stop latency).
SLICE_S: Final = 0.2
#: Most stale bytes discarded before a request after a timeout.
_DRAIN_MAX: Final = 64 * 1024


class RequestTimeout(TransportError):
    """No (complete) response within the timeout."""


class Stopped(RenkeiError):
    """The stop event was set while waiting."""


class Link:
    """A connected TCP socket to the PLC.

    Args:
        host, port: the PLC's SLMP port.
        timeout_s: timeout of the connect and of each request, s.
        stop: set to abandon any wait (raises :class:`Stopped`).

    Raises:
        OSError: the connection could not be made (refused, unreachable, timed out).
        Stopped: ``stop`` was set while connecting.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float, stop: threading.Event) -> None:
        self._stop = stop
        self._timeout_s = timeout_s
        self.stale = False
        """Set after a timeout: a late response may still arrive and is drained first."""
        deadline = time.monotonic() + timeout_s
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")
            while True:
                if stop.is_set():
                    raise Stopped
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"connect to {host}:{port} timed out")
                _, w, x = select.select([], [sock], [sock], min(SLICE_S, left))
                if w or x:
                    break
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {host}:{port}: {errno.errorcode.get(err, err)}")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.settimeout(timeout_s)  # bounds sendall; reads wait in select slices
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self._sock.close()

    def _drain(self) -> None:
        """Discard bytes a timed-out request's late response left in the socket."""
        got = 0
        while got < _DRAIN_MAX:
            r, _, _ = select.select([self._sock], [], [], 0)
            if not r:
                break
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("connection closed by the PLC")
            got += len(chunk)
        self.stale = False

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        have = 0
        while have < n:
            if self._stop.is_set():
                raise Stopped
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout
            r, _, _ = select.select([self._sock], [], [], min(SLICE_S, left))
            if not r:
                continue
            got = self._sock.recv_into(view[have:], n - have)
            if got == 0:
                raise ConnectionResetError("connection closed by the PLC")
            have += got
        return bytes(buf)

    def request(self, frame: bytes, route: Route, *, max_len: int) -> bytes:
        """Send ``frame`` and return the response body (end code + data).

        Raises:
            RequestTimeout: no complete response within ``timeout_s``.
            renkei.edge.sources.live.slmp.frames.FrameError: not a valid response header.
            OSError: the connection failed.
            Stopped: the stop event was set.
        """
        if self.stale:
            self._drain()
        deadline = time.monotonic() + self._timeout_s
        self._sock.sendall(frame)
        try:
            header = self._recv_exact(HEADER_LEN, deadline)
            length = parse_response_header(header, route, max_len=max_len)
            return self._recv_exact(length, deadline)
        except RequestTimeout:
            self.stale = True
            raise
