"""``renkei cloud api``: the registry, sharing, capacity and takeover API (FastAPI).

Public surface: :func:`create_app` and :class:`ApiSettings`. Modules:

- :mod:`.access`: the role × endpoint access matrix; :mod:`.deps`: dependencies;
  :mod:`.errors`: the error shape; :mod:`.audit`: the read audit log;
  :mod:`.policy`: sharing-policy resolution; :mod:`.routers`: one router per resource;
  :mod:`.web`: the partner web page (ja/en).
"""

from renkei.cloud.api.app import API_PREFIX, api_routes, create_app
from renkei.cloud.api.settings import ApiSettings

__all__ = ["API_PREFIX", "ApiSettings", "api_routes", "create_app"]
