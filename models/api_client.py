"""A small JSON client for the Renkei API (standard library only), used by the
``renkei models`` registry and rollout commands.

The base URL comes from ``--api`` / ``RENKEI_API_URL`` and the key from ``--api-key`` /
``RENKEI_API_KEY`` (sent as ``Authorization: Bearer``).
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

import orjson

from renkei.core.errors import TransportError

__all__ = ["ApiClient", "ApiClientError"]

_TIMEOUT_S: Final = 60.0


class ApiClientError(TransportError):
    """The API answered with an error (``status`` >= 400) or could not be reached
    (``status`` 0). ``code``/``message``/``detail`` come from the API's error body."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class ApiClient:
    """JSON over HTTP(S) with an API key.

    Args:
        base_url: ``http(s)://host:port`` (``/api/v1`` is appended to request paths).
        api_key: ``rk_...`` key, or ``None`` for anonymous calls.
        ca_file: PEM CA bundle for a private CA.
    """

    def __init__(self, base_url: str, api_key: str | None, *, ca_file: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._ctx = (
            ssl.create_default_context(cafile=ca_file) if base_url.startswith("https") else None
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send ``method /api/v1{path}`` with a JSON ``body``; return the decoded JSON
        (``None`` for 204).

        Raises:
            ApiClientError: an HTTP error status (with the API's error code and message) or
                a network failure (status 0).
        """
        url = f"{self.base_url}/api/v1{path}"
        data = None if body is None else orjson.dumps(body)
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT_S, context=self._ctx) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw_err = exc.read()
            try:
                err = orjson.loads(raw_err)["error"]
                raise ApiClientError(
                    exc.code, str(err.get("code")), str(err.get("message")), err.get("detail")
                ) from None
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise ApiClientError(
                    exc.code, "http_error", raw_err.decode("utf-8", "replace")[:500]
                ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiClientError(0, "unreachable", f"cannot reach {url}: {reason}") from None
        return orjson.loads(raw) if raw else None

    def get(self, path: str, **query: Any) -> Any:
        """``GET`` with query parameters (``None`` values are left out)."""
        params = {k: v for k, v in query.items() if v is not None}
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        return self.request("GET", path)
