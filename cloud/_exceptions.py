"""The exception tree of the ``cloud`` package.

Third-party errors (``httpx``, ``sqlite3``, ``paho``) are caught where the cloud code
calls those libraries and re-raised as one of these, so callers only ever handle
``cloud`` exceptions::

    CloudError
    ├── ConfigError                 bad settings (also a ValueError)
    ├── StoreError                  a time-series store call failed
    │   ├── StoreUnavailable        retryable: refused, timeout, 5xx, 429, auth, missing db
    │   └── StoreRejected           not retryable: the store refused *this data* (4xx)
    │       └── LineProtocolError   the body is not valid line protocol (also a ValueError)
    └── IngestError                 the ingest worker cannot run (e.g. already running)

The split between :class:`StoreUnavailable` and :class:`StoreRejected` is what the ingest
worker relies on: the first means "hold the batch and retry later, nothing is wrong with
the data"; the second means "this data will never be accepted, isolate the offending
message and dead-letter it".
"""

from __future__ import annotations

__all__ = [
    "CloudError",
    "ConfigError",
    "IngestError",
    "LineProtocolError",
    "StoreError",
    "StoreRejected",
    "StoreUnavailable",
]


class CloudError(Exception):
    """Base class of every exception raised on purpose by the ``cloud`` package."""


class ConfigError(CloudError, ValueError):
    """Invalid settings (a URL with an unsupported scheme, conflicting auth options...)."""


class IngestError(CloudError):
    """The ingest worker cannot do what was asked (e.g. ``run()`` called twice)."""


class StoreError(CloudError):
    """A call to a time-series store failed.

    Attributes:
        status: the HTTP status code when the store answered over HTTP, else ``None``.
        detail: the store's own error text (e.g. InfluxDB's ``{"error": ...}``), verbatim.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class StoreUnavailable(StoreError):
    """The store cannot take the request now; retrying the same request later may succeed.

    Raised for connection refused/reset, timeouts, HTTP 5xx, 429 (rate limited),
    401/403 (credentials: an operator must fix them, the data is fine) and 404
    (database missing). ``retry_after_s`` carries the server's ``Retry-After`` if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after_s = retry_after_s


class StoreRejected(StoreError):
    """The store refused the data itself (HTTP 400/413/422...); retrying is pointless.

    InfluxDB 1.x answers 400 with ``partial write: field type conflict ...`` or
    ``unable to parse ...`` and may have written the valid points of the body.
    """


class LineProtocolError(StoreRejected, ValueError):
    """A body is not valid InfluxDB line protocol (raised by the embedded parser).

    Attributes:
        line_no: 1-based line number of the offending line within the body.
    """

    def __init__(self, message: str, *, line_no: int = 0) -> None:
        super().__init__(message, status=400, detail=message)
        self.line_no = line_no
