"""Incremental reader of an MTConnect streaming response (``multipart/x-mixed-replace``).

An agent asked for ``/sample?interval=...`` keeps the HTTP response open and writes one
MTConnectStreams document per part (MTConnect Part 1, "HTTP long poll"; RFC 2046 §5.1
multipart syntax)::

    --BOUNDARY\\r\\n
    Content-type: text/xml\\r\\n
    Content-length: 1234\\r\\n
    \\r\\n
    <?xml ...?><MTConnectStreams>...</MTConnectStreams>\\r\\n

:class:`PartReader` takes the body bytes as they arrive and yields complete part bodies.
Memory is bounded: a part longer than ``max_part`` bytes (announced by ``Content-length``
or found while scanning for the next boundary) and header blocks over 8 KiB raise
:class:`PartTooLarge`/:class:`MultipartError` instead of buffering on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from renkei.core.errors import DecodeError

__all__ = ["MultipartError", "PartReader", "PartTooLarge", "boundary_of"]

_MAX_HEADERS: Final = 8192


class MultipartError(DecodeError):
    """The stream does not follow the multipart syntax."""


class PartTooLarge(MultipartError):
    """A part is larger than the configured maximum."""


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a ``multipart/x-mixed-replace`` Content-Type.

    Raises:
        MultipartError: not a multipart type, or no usable boundary.
    """
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        raise MultipartError(f"expected a multipart response, got Content-Type {kind!r}")
    for p in params.split(";"):
        key, _, value = p.strip().partition("=")
        if key.strip().lower() == "boundary":
            b = value.strip().strip('"')
            if 0 < len(b) <= 200:
                return b
    raise MultipartError(f"multipart Content-Type without a usable boundary: {content_type!r}")


class PartReader:
    """Splits a multipart body into parts (module docstring).

    Args:
        boundary: the boundary (without the leading ``--``).
        max_part: largest part body accepted, bytes.
    """

    def __init__(self, boundary: str, *, max_part: int) -> None:
        self._delim = b"--" + boundary.encode("latin-1")
        self._max = max_part
        self._buf = bytearray()
        self._need: int | None = None  # body length of the current part, if announced
        self._in_part = False  # headers read, collecting body

    @property
    def buffered(self) -> int:
        """Bytes held now (bounded by ``max_part`` + headers + one chunk)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Add received bytes; yield every part body completed by them.

        Raises:
            PartTooLarge: a part exceeds ``max_part``.
            MultipartError: malformed headers.
        """
        self._buf += chunk
        while True:
            if not self._in_part and not self._headers():
                return
            body = self._body()
            if body is None:
                return
            yield body

    def _headers(self) -> bool:
        start = self._buf.find(self._delim)
        if start < 0:
            # keep only a tail that could be the start of a delimiter
            keep = len(self._delim) - 1
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            return False
        end = self._buf.find(b"\r\n\r\n", start)
        sep = 4
        lf_end = self._buf.find(b"\n\n", start)
        if lf_end >= 0 and (end < 0 or lf_end < end):
            end, sep = lf_end, 2
        if end < 0:
            if len(self._buf) - start > _MAX_HEADERS:
                raise MultipartError("multipart part headers longer than 8 KiB")
            return False
        block = bytes(self._buf[start + len(self._delim) : end])
        del self._buf[: end + sep]
        if block.startswith(b"--"):
            raise MultipartError("stream ended (closing boundary)")
        self._need = None
        for line in block.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                try:
                    n = int(value.strip())
                except ValueError:
                    raise MultipartError(f"bad part Content-length {value.strip()!r}") from None
                if n < 0:
                    raise MultipartError(f"bad part Content-length {n}")
                if n > self._max:
                    raise PartTooLarge(
                        f"stream part of {n} bytes exceeds max_document_bytes={self._max}"
                    )
                self._need = n
        self._in_part = True
        return True

    def _body(self) -> bytes | None:
        if self._need is not None:
            if len(self._buf) < self._need:
                return None
            body = bytes(self._buf[: self._need])
            del self._buf[: self._need]
        else:
            end = self._buf.find(self._delim)
            if end < 0:
                if len(self._buf) > self._max + len(self._delim):
                    raise PartTooLarge(
                        f"stream part exceeds max_document_bytes={self._max} "
                        "(no Content-length, no boundary)"
                    )
                return None
            body = bytes(self._buf[:end]).rstrip(b"\r\n")
            del self._buf[:end]
        self._in_part = False
        self._need = None
        return body
