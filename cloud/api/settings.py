"""Settings of ``renkei cloud api``, parsed once from the environment (``RENKEI_API_*``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from renkei.cloud.capacity import DEFAULT_TIMEZONE, ShiftCalendar
from renkei.cloud.capacity.context import CapacitySettings
from renkei.cloud.store.influx import InfluxSettings

__all__ = ["ApiSettings"]

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
            changes invalidate it at once).
        max_body_bytes: largest request body accepted (bytes, default 10 MiB); larger ones
            get 413 before they are read in full (``Content-Length`` checked first, chunked
            bodies counted as they arrive). The reverse proxy's ``client_max_body_size``
            matches it (deploy/nginx/).
        max_import_rows: most rows in one registry import (``PUT /firms/{id}/registry``,
            all tables together; default 50,000); more is a 422 naming the limit.
        timeout_keep_alive_s: uvicorn closes an idle keep-alive connection after this many
            seconds (``renkei cloud api``).
        limit_concurrency: uvicorn answers 503 beyond this many concurrent connections and
            tasks (``renkei cloud api``; protects the process when it runs without proxy).
        forwarded_allow_ips: addresses or networks (comma-separated) whose
            ``X-Forwarded-For`` / ``X-Forwarded-Proto`` uvicorn trusts: the reverse proxy's
            only (``renkei cloud api``; default loopback).
    """

    model_config = SettingsConfigDict(env_prefix="RENKEI_API_", frozen=True, extra="forbid")

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
