"""``renkei cloud api``: uvicorn serving :func:`renkei.cloud.api.create_app` with Renkei's settings.

uvicorn's own protections, for runs without the reverse proxy (``deploy/nginx/`` is the
production front: header/body timeouts, per-IP connection limits, body size):

- ``timeout_keep_alive``: idle keep-alive connections close after
  ``ApiSettings.timeout_keep_alive_s`` seconds;
- ``limit_concurrency``: beyond ``ApiSettings.limit_concurrency`` concurrent connections
  and tasks uvicorn answers 503 instead of queueing without bound;
- ``proxy_headers`` with ``forwarded_allow_ips`` = ``ApiSettings.forwarded_allow_ips``:
  ``X-Forwarded-For`` / ``-Proto`` are believed only from the proxy's addresses;
- the request body limit is the app's (:mod:`renkei.cloud.api.limits`, 413).
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Final

from renkei.cloud.api.settings import ApiSettings

__all__ = ["SWITCH_INTERVAL_S", "serve", "uvicorn_options"]

#: The interpreter's thread switch interval in the API process (default 5 ms). A bulk
#: import's worker thread holds the GIL between its chunks; a shorter interval hands it
#: sooner to the threads serving light requests, whose every step (event loop, sync
#: dependency, endpoint) waits for it once (bench/bench_api_import.py).
SWITCH_INTERVAL_S: Final = 0.001


def uvicorn_options(settings: ApiSettings) -> dict[str, Any]:
    """The keyword arguments of :func:`uvicorn.run` that come from ``settings``."""
    return {
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "limit_concurrency": settings.limit_concurrency,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "server_header": False,
    }


def serve(settings: ApiSettings, *, host: str, port: int, log_level: str) -> None:
    """Build the app (migrating the registry) and serve it until stopped.

    Raises:
        pydantic.ValidationError: never here (``settings`` is parsed by the caller).
    """
    import uvicorn

    from renkei.cloud.api.app import create_app

    application = create_app(settings)
    # The long-lived objects of start-up (index, ORM, routes) leave the GC's generations,
    # so full collections stop walking them: capacity-search p99 113 -> 46 ms
    # (bench/RESULTS.md).
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    uvicorn.run(
        application, host=host, port=port, log_level=log_level.lower(), **uvicorn_options(settings)
    )
