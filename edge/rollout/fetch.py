"""Download a model release from the Renkei API (standard library only: gateways have no
HTTP client dependency).

Two requests, each with ``Authorization: Bearer <key>``:

- ``GET {api_url}/api/v1/models/{name}/{version}``: JSON with ``manifest_b64`` (the exact
  ``manifest.json`` bytes);
- ``GET {api_url}/api/v1/models/{name}/{version}/artifact``: the ONNX bytes.

Nothing here is trusted: the caller checks both digests against the signed desired state.
"""

from __future__ import annotations

import base64
import binascii
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Final

import orjson

from renkei.core.errors import TransportError

__all__ = ["FetchError", "fetch_release"]

_TIMEOUT_S: Final = 30.0


class FetchError(TransportError):
    """The release could not be downloaded (network, HTTP status, size, bad response)."""


def _get(url: str, *, api_key: str | None, ctx: ssl.SSLContext | None, max_bytes: int) -> bytes:
    req = urllib.request.Request(url, method="GET")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S, context=ctx) as resp:
            body: bytes = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        raise FetchError(f"HTTP {exc.code} from {url}: {detail}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach {url}: {reason}") from None
    if len(body) > max_bytes:
        raise FetchError(f"{url} returned more than {max_bytes} bytes")
    return body


def fetch_release(
    *,
    api_url: str,
    name: str,
    version: str,
    api_key: str | None,
    max_bytes: int,
    tls_ca_file: Path | None = None,
) -> tuple[bytes, bytes]:
    """Download ``(manifest_bytes, onnx_bytes)`` of release ``name@version``.

    Raises:
        FetchError: unreachable API, non-2xx status (the body is quoted), a response larger
            than ``max_bytes``, or a metadata response without valid ``manifest_b64``.
    """
    ctx = None
    if api_url.startswith("https://"):
        ctx = ssl.create_default_context(cafile=None if tls_ca_file is None else str(tls_ca_file))
    base = (
        f"{api_url.rstrip('/')}/api/v1/models/"
        f"{urllib.parse.quote(name, safe='')}/{urllib.parse.quote(version, safe='')}"
    )
    meta_raw = _get(base, api_key=api_key, ctx=ctx, max_bytes=8 * 1_048_576)
    try:
        meta = orjson.loads(meta_raw)
        manifest = base64.b64decode(meta["manifest_b64"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error, ValueError):
        raise FetchError(f"{base} did not return a release with manifest_b64") from None
    onnx = _get(f"{base}/artifact", api_key=api_key, ctx=ctx, max_bytes=max_bytes)
    return manifest, onnx
