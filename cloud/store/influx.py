"""InfluxDB through the v1-compatible HTTP API.

Only two endpoints are used, which InfluxDB 1.x serves natively and InfluxDB 2.x (v1
compatibility API, with a DBRP mapping) and InfluxDB 3.x also serve:

- ``POST /write?db=&rp=&precision=ms`` with a line-protocol body
  (https://docs.influxdata.com/influxdb/v1/tools/api/#write-http-endpoint); success is
  ``204 No Content``.
- ``GET|POST /query?db=&q=&epoch=ms`` with InfluxQL
  (https://docs.influxdata.com/influxdb/v1/tools/api/#query-http-endpoint).

Authentication: ``Authorization: Token <token>`` (2.x/3.x tokens) or HTTP Basic with
username/password (1.x users; 2.x accepts a token as the password).

Error mapping (the boundary: no ``httpx`` exception leaves this module): that of
:mod:`renkei.cloud.store.errors`::

    connection refused/reset, timeout, protocol error  -> StoreUnavailable
    5xx, 429, 401, 403, 404 (database not found)      -> StoreUnavailable (retryable)
    other 4xx (400 type conflict / parse error, 413)  -> StoreRejected (with the server text)
    any statement error of a query                    -> StoreRejected
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from renkei.cloud._exceptions import ConfigError, StoreUnavailable
from renkei.cloud.store.base import FieldValue, Precision, Row
from renkei.cloud.store.errors import check_status, query_results, transport_errors

__all__ = [
    "INFLUX_OPTIONS",
    "InfluxSettings",
    "InfluxStore",
    "http_client",
    "influx_settings_from_options",
    "quote_ident",
    "quote_literal",
    "quote_tag",
]


class InfluxSettings(BaseModel):
    """Where and how to reach InfluxDB (immutable).

    Attributes:
        url: base URL, e.g. ``http://influxdb:8086`` (http or https).
        database: database (1.x) or DBRP-mapped database name (2.x) or database (3.x).
        token: API token, sent as ``Authorization: Token ...``. Exclusive with username.
        username, password: HTTP Basic credentials (1.x users).
        retention_policy: ``rp=`` for writes and queries; ``None`` = the default policy.
        timeout_s: per-request timeout, seconds (connect timeout is at most 5 s).
        gzip: compress write bodies (``Content-Encoding: gzip``): less network, more CPU.
        create_database: whether :meth:`InfluxStore.ensure_database` issues
            ``CREATE DATABASE`` (1.x); turn off for 2.x/3.x where databases are
            provisioned otherwise.
        verify_tls: verify the server certificate for https URLs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="renkei", min_length=1)
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    retention_policy: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    gzip: bool = False
    create_database: bool = True
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"InfluxDB url must be http(s)://host[:port], got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_auth(self) -> InfluxSettings:
        if self.token is not None and self.username is not None:
            raise ValueError("give either token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


#: The command-line options and environment variables naming an InfluxDB target, shared by
#: ``renkei cloud ingest``, ``renkei cloud rollout`` and ``renkei cloud capacity-publish``
#: (field of :class:`InfluxSettings` -> how an operator sets it).
INFLUX_OPTIONS: Final[Mapping[str, str]] = {
    "url": "--influx / RENKEI_INFLUX_URL",
    "database": "--database / RENKEI_INFLUX_DATABASE",
    "token": "--token / RENKEI_INFLUX_TOKEN",
    "username": "--username / RENKEI_INFLUX_USERNAME",
    "password": "--password / RENKEI_INFLUX_PASSWORD",
    "gzip": "--gzip / RENKEI_INFLUX_GZIP",
}


def influx_settings_from_options(
    *,
    url: str,
    database: str = "renkei",
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    gzip: bool = False,
) -> InfluxSettings:
    """:class:`InfluxSettings` from the ``RENKEI_INFLUX_*`` options (:data:`INFLUX_OPTIONS`).

    Raises:
        ConfigError: a value is invalid; the message names the option and variable, e.g.
            ``--influx / RENKEI_INFLUX_URL: InfluxDB url must be http(s)://host[:port]``.
    """
    try:
        return InfluxSettings(
            url=url,
            database=database,
            token=None if token is None else SecretStr(token),
            username=username,
            password=None if password is None else SecretStr(password),
            gzip=gzip,
        )
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = str(error["loc"][0]) if error["loc"] else ""
            where = INFLUX_OPTIONS.get(loc, "InfluxDB credentials (--token, --username/--password)")
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("invalid InfluxDB settings: " + "; ".join(problems)) from None


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (``"`` and ``\\`` escaped)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_tag(name: str) -> str:
    """A tag reference ``"name"::tag``: InfluxQL otherwise resolves a name that is also a
    field key to the *field* in WHERE clauses (issue 11: a field ``firm`` blanked every
    ``WHERE "firm" = '...'``). Use it wherever a query filters or groups on a tag."""
    return quote_ident(name) + "::tag"


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes (``'`` and ``\\`` escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def http_client(
    settings: InfluxSettings,
    *,
    user_agent: str,
    headers: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` for the InfluxDB v1 HTTP API of ``settings``.

    Token auth (``Authorization: Token ...``, InfluxDB 2.x/3.x) wins over Basic auth
    (user/password, 1.x); the timeout and TLS verification come from ``settings``.

    Args:
        user_agent: the ``User-Agent`` naming the Renkei component.
        headers: further request headers (e.g. ``Accept-Encoding``).
        transport: an httpx transport (tests).
    """
    all_headers = {"User-Agent": user_agent, **(headers or {})}
    auth: httpx.BasicAuth | None = None
    if settings.token is not None:
        all_headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
    elif settings.username is not None and settings.password is not None:
        auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    return httpx.Client(
        base_url=settings.url,
        headers=all_headers,
        auth=auth,
        timeout=httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 5.0)),
        verify=settings.verify_tls,
        transport=transport,
    )


class InfluxStore:
    """:class:`~renkei.cloud.store.base.TimeSeriesStore` backed by InfluxDB's v1 HTTP API.

    Args:
        settings: connection settings.
        transport: an ``httpx`` transport to use instead of the network (tests of error
            mapping); ``None`` for the real network.

    Raises:
        ConfigError: invalid settings.

    One ``httpx.Client`` with keep-alive is shared by all calls; it is thread-safe.
    """

    def __init__(
        self, *, settings: InfluxSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        if not isinstance(settings, InfluxSettings):
            raise ConfigError("settings must be an InfluxSettings")
        self.settings = settings
        self._client = http_client(settings, user_agent="renkei-cloud", transport=transport)
        self._closed = threading.Event()

    # ------------------------------------------------------------------ protocol

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxDB 1.x) unless disabled in settings.

        Raises:
            StoreUnavailable: server unreachable or failing.
            StoreRejected: the server refuses the statement (e.g. 2.x without
                permission); set ``create_database=False`` for such servers.
        """
        if not self.settings.create_database:
            return
        self._query(f"CREATE DATABASE {quote_ident(self.settings.database)}", post=True)

    def write_lines(self, body: bytes, *, precision: Precision = "ms") -> None:
        """``POST /write`` a line-protocol body. See :class:`TimeSeriesStore`.

        Raises:
            StoreUnavailable: connection error, timeout, 5xx/429/401/403/404.
            StoreRejected: other 4xx, e.g. ``partial write: field type conflict`` (1.x
                then has written the body's other points).
        """
        if not body:
            return
        params = {"db": self.settings.database, "precision": precision}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        content = body
        if self.settings.gzip:
            content = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = self._send("POST", "/write", params=params, content=content, headers=headers)
        check_status(response, "write")

    def count(self, measurement: str, field: str, *, where: Mapping[str, str] | None = None) -> int:
        """``SELECT count("field") FROM "measurement" [WHERE tag = 'v' AND ...]``."""
        q = f"SELECT count({quote_ident(field)}) FROM {quote_ident(measurement)}"
        if where:
            q += " WHERE " + " AND ".join(
                f"{quote_tag(k)} = {quote_literal(v)}" for k, v in where.items()
            )
        results = self._query(q)
        series = results[0].get("series") or []
        return sum(int(s["values"][0][1] or 0) for s in series)

    def last(
        self, measurement: str, fields: Sequence[str], *, group_by: Sequence[str] = ()
    ) -> list[Row]:
        """One ``SELECT last(f) ... GROUP BY tags`` statement per field, in one request.

        (A single statement with several ``last()`` would report time 0, so each field
        gets its own statement and the row time is the newest of them.)
        """
        if not fields:
            return []
        group = ""
        if group_by:
            group = " GROUP BY " + ",".join(quote_tag(t) for t in group_by)
        statements = [
            f"SELECT last({quote_ident(f)}) FROM {quote_ident(measurement)}{group}" for f in fields
        ]
        results = self._query(";".join(statements))
        latest: dict[tuple[str, ...], dict[str, tuple[int, FieldValue]]] = {}
        for name, result in zip(fields, results, strict=False):
            for s in result.get("series") or []:
                tags = s.get("tags") or {}
                key = tuple(str(tags.get(t, "")) for t in group_by)
                for t_ms, value in s.get("values") or []:
                    if value is not None:
                        latest.setdefault(key, {})[name] = (int(t_ms), value)
        return [
            Row(
                tags=dict(zip(group_by, key, strict=True)),
                time_ms=max(t for t, _ in latest[key].values()),
                values={f: latest[key][f][1] for f in fields if f in latest[key]},
            )
            for key in sorted(latest)
        ]

    def close(self) -> None:
        """Close the HTTP connection pool (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self._client.close()

    # ------------------------------------------------------------------ internals

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._closed.is_set():
            raise StoreUnavailable("InfluxStore is closed")
        try:
            with transport_errors(path):
                return self._client.request(method, path, **kwargs)
        except RuntimeError as exc:  # httpx: "Cannot send a request, as the client has been closed"
            raise StoreUnavailable(f"InfluxDB client unusable: {exc}") from exc

    def _query(self, q: str, *, post: bool = False) -> list[dict[str, Any]]:
        params = {"q": q, "db": self.settings.database, "epoch": "ms"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        if post:
            response = self._send("POST", "/query", data=params)
        else:
            response = self._send("GET", "/query", params=params)
        check_status(response, "query")
        return query_results(
            response.content, response.status_code, missing_database_retryable=False
        )
