"""Settings of ``renkei cloud api``, parsed once from the environment (``RENKEI_API_*``).

Commands read them with :func:`load_api_settings`, which turns a bad value into one
:class:`~renkei.core.errors.ConfigError` line per variable (name, value, what was
expected) instead of pydantic's report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from renkei.cloud.capacity import DEFAULT_TIMEZONE, ShiftCalendar
from renkei.cloud.capacity.context import CapacitySettings
from renkei.cloud.store.influx import InfluxSettings
from renkei.core.errors import ConfigError

__all__ = ["ENV_PREFIX", "ApiSettings", "load_api_settings"]

ENV_PREFIX = "RENKEI_API_"

DayHours = Annotated[float, Field(ge=0, le=24)]


class ApiSettings(BaseSettings):
    """Configuration of the API service.

    Every field can be set as an environment variable ``RENKEI_API_<FIELD>`` (e.g.
    ``RENKEI_API_DATABASE_URL``). A bad value stops start-up with the variable named.

    Attributes:
        database_url: SQLAlchemy URL of the registry (SQLite embedded, PostgreSQL in
            production: ``postgresql+psycopg://user:pass@host/db``).
        influx_url, influx_database, influx_token, influx_username, influx_password:
            InfluxDB (v1 HTTP API) holding the gateways' telemetry, for measured machine
            availability and the firm export. ``None`` = no telemetry (availability then
            uses ``default_availability_ratio``).
        supporter_min_firms: k of the k-anonymity rule: a regional aggregate is shown only
            when at least k firms contribute to it (default 3).
        horizon_days: spare-capacity horizon (default 84 = 12 weeks).
        default_weekly_hours: scheduled hours Monday..Sunday of sites without a calendar.
        timezone: IANA zone of sites without a calendar.
        default_availability_ratio: expected availability when telemetry says nothing.
        zone_radius_km: default radius of a disrupted zone around a site.
        suspect_window_s: gateways going offline within this many seconds count together.
        suspect_offline_fraction: share of a site's gateways that must be offline to raise
            a suspected disruption (strictly more than this fraction, default 0.5 = "most").
        suspect_min_gateways: sites with fewer gateways never raise a suspicion.
        capacity_cache_s: how long computed spare capacity is reused (registry and booking
            changes through this process invalidate it at once, those through other
            processes on PostgreSQL within a second by LISTEN/NOTIFY; on SQLite other
            processes' changes are seen after this many seconds).
        max_body_bytes: largest request body accepted (bytes, default 10 MiB); larger ones
            get 413 before they are read in full (``Content-Length`` checked first, chunked
            bodies counted as they arrive). The reverse proxy's ``client_max_body_size``
            matches it (deploy/nginx/).
        max_import_rows: most rows in one registry import (``PUT /firms/{id}/registry``,
            all tables together; default 50,000); more is a 422 naming the limit.
        timeout_keep_alive_s: uvicorn closes an idle keep-alive connection after this many
            seconds (``renkei cloud api``).
        dynsec_broker, dynsec_username, dynsec_password, dynsec_tls_ca_file: the broker
            whose dynamic-security plugin gets the gateways' MQTT users when a gateway
            redeems its enrolment token (``POST /gateways/enrol``); ``mqtt://host[:port]``
            or ``mqtts://...``. ``None`` = gateways cannot enrol through the API (503).
        gateway_broker_url: the broker address told to an enrolling gateway (the one it
            reaches, e.g. ``mqtts://broker.example.jp:8883``); default ``dynsec_broker``.
        enrol_failures_per_minute: failed token redemptions accepted per client address
            and minute before ``POST /gateways/enrol`` answers 429 (guessing protection).
        gateway_credential_days: life of the MQTT credentials a gateway gets (days, > 0,
            <= 3660; ``null`` = no expiry); rotate before (``renkei cloud gateways rotate``).
        limit_concurrency: uvicorn answers 503 beyond this many concurrent connections and
            tasks (``renkei cloud api``; protects the process when it runs without proxy).
        forwarded_allow_ips: addresses or networks (comma-separated) whose
            ``X-Forwarded-For`` / ``X-Forwarded-Proto`` uvicorn trusts: the reverse proxy's
            only (``renkei cloud api``; default loopback).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    database_url: str = "sqlite:///renkei-registry.sqlite3"
    influx_url: str | None = None
    influx_database: str = "renkei"
    influx_token: SecretStr | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    supporter_min_firms: Annotated[int, Field(ge=2)] = 3
    horizon_days: Annotated[int, Field(ge=7, le=366)] = 84
    default_weekly_hours: tuple[
        DayHours, DayHours, DayHours, DayHours, DayHours, DayHours, DayHours
    ] = (16.0, 16.0, 16.0, 16.0, 16.0, 0.0, 0.0)
    timezone: str = DEFAULT_TIMEZONE
    default_availability_ratio: Annotated[float, Field(gt=0, le=1)] = 0.9
    zone_radius_km: Annotated[float, Field(ge=0, le=1000)] = 30.0
    suspect_window_s: Annotated[float, Field(gt=0)] = 300.0
    suspect_offline_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.5
    suspect_min_gateways: Annotated[int, Field(ge=1)] = 2
    capacity_cache_s: Annotated[float, Field(ge=0)] = 300.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    max_import_rows: Annotated[int, Field(ge=1)] = 50_000
    timeout_keep_alive_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    limit_concurrency: Annotated[int, Field(ge=1)] = 256
    forwarded_allow_ips: str = "127.0.0.1"
    dynsec_broker: str | None = None
    dynsec_username: str = "renkei-dynsec-admin"
    dynsec_password: SecretStr | None = None
    dynsec_tls_ca_file: str | None = None
    gateway_broker_url: str | None = None
    enrol_failures_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 10
    gateway_credential_days: Annotated[float | None, Field(gt=0, le=3660)] = 90.0

    def default_calendar(self) -> ShiftCalendar:
        """The calendar of sites that have none of their own."""
        return ShiftCalendar(weekly_hours=self.default_weekly_hours, timezone=self.timezone)

    def capacity(self) -> CapacitySettings:
        """What the capacity services read of these settings (horizon, defaults, cache
        lifetime, and the InfluxDB of the measured availability when ``influx_url`` is set).
        """
        influx = (
            None
            if self.influx_url is None
            else InfluxSettings(
                url=self.influx_url,
                database=self.influx_database,
                token=self.influx_token,
                username=self.influx_username,
                password=self.influx_password,
            )
        )
        return CapacitySettings(
            horizon_days=self.horizon_days,
            default_weekly_hours=self.default_weekly_hours,
            timezone=self.timezone,
            default_availability_ratio=self.default_availability_ratio,
            capacity_cache_s=self.capacity_cache_s,
            influx=influx,
        )


#: What a field expects, where pydantic's own words would not say it in one line.
_EXPECTED = {
    "default_weekly_hours": "a JSON array of 7 numbers 0..24 (scheduled hours Monday..Sunday), "
    "e.g. [16,16,16,16,16,0,0]",
}
_SECRET_FIELDS = frozenset({"influx_token", "influx_password", "dynsec_password"})
_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "([a-z_]+)"')


def load_api_settings(**overrides: Any) -> ApiSettings:
    """:class:`ApiSettings` from the environment, ``overrides`` (field values given by the
    caller, e.g. command-line options) taking precedence.

    Raises:
        ConfigError: a bad value; the message has one line per bad variable:
            ``RENKEI_API_HORIZON_DAYS='3': expected greater than or equal to 7``
            (secret values are never quoted).
    """
    environ = os.environ
    try:
        return ApiSettings(**overrides)
    except ValidationError as exc:
        by_field: dict[str, list[str]] = {}
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            expected = (
                str(error["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
            )
            if error["type"] == "missing":
                expected = "more values"
            by_field.setdefault(field, [])
            if expected not in by_field[field]:
                by_field[field].append(expected)
        lines = [
            _line(field, environ, overrides, _EXPECTED.get(field) or "; ".join(expected))
            for field, expected in by_field.items()
        ]
        raise ConfigError("\n".join(lines)) from None
    except SettingsError as exc:  # a list/tuple field whose value is not JSON
        match = _FIELD_IN_SETTINGS_ERROR.search(str(exc))
        field = match.group(1) if match else ""
        raise ConfigError(
            _line(field, environ, overrides, _EXPECTED.get(field, "valid JSON"))
        ) from None


def _line(field: str, env: Mapping[str, str], overrides: Mapping[str, Any], expected: str) -> str:
    """``NAME=value: expected ...`` of one bad field (the value masked if secret)."""
    name = ENV_PREFIX + field.upper()
    if field in overrides:
        name, value = field, overrides[field]
    else:
        value = env.get(name, "")
    shown = "<hidden>" if field in _SECRET_FIELDS else repr(value)
    return f"{name}={shown}: expected {expected}"
