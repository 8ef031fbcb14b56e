"""What the capacity services share: settings, registry sessions, clock and caches.

:class:`CapacityContext` is the one object :func:`~renkei.cloud.capacity.service.spare_for`,
the :class:`~renkei.cloud.capacity.index.CapacityIndexService`, the takeover planner
(:mod:`renkei.cloud.takeover.service`) and the capacity producer
(:mod:`renkei.cloud.capacity.publish`) are given. The API keeps one per app
(``AppState.capacity``, built from its ``RENKEI_API_*`` settings by ``ApiSettings.capacity()``);
the producer builds its own (:func:`renkei.cloud.capacity.publish.publisher_state`). Nothing
here knows about HTTP.

:class:`CapacitySettings` holds only what capacity reads: the horizon, the defaults for
sites without a calendar and machines without telemetry, the cache lifetime and the
InfluxDB of the measured availability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from renkei.cloud.capacity.calendar import ShiftCalendar
from renkei.cloud.capacity.index.service import CapacityIndexService
from renkei.cloud.capacity.service import AvailabilityCache
from renkei.cloud.capacity.views import ViewCache
from renkei.cloud.store.influx import InfluxSettings

__all__ = ["VIEWS_MAX_AGE_S", "CapacityContext", "CapacitySettings", "Clock"]

Clock = Callable[[], datetime]
"""Returns the current instant (aware UTC)."""

#: Longest reuse of a viewer's sharing views (seconds; bounds how long a grant revoked
#: through another process still applies here).
VIEWS_MAX_AGE_S = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySettings:
    """The settings capacity reads (the API's are ``RENKEI_API_*``, see ``ApiSettings``).

    Attributes:
        horizon_days: spare-capacity horizon, days (the API's default is 84 = 12 weeks).
        default_weekly_hours: scheduled hours Monday..Sunday of sites without a calendar.
        timezone: IANA zone of sites without a calendar, and of "today".
        default_availability_ratio: expected availability (0–1] when telemetry says nothing.
        capacity_cache_s: how long measured availability and a full index build are reused,
            seconds (registry and booking changes invalidate at once).
        influx: the InfluxDB of the gateways' telemetry (measured availability); ``None`` =
            every ratio is ``default_availability_ratio``.
    """

    horizon_days: int
    default_weekly_hours: tuple[float, float, float, float, float, float, float]
    timezone: str
    default_availability_ratio: float
    capacity_cache_s: float
    influx: InfluxSettings | None = None

    def default_calendar(self) -> ShiftCalendar:
        """The calendar of sites that have none of their own.

        Raises:
            pydantic.ValidationError: ``timezone`` or ``default_weekly_hours`` is invalid.
        """
        return ShiftCalendar(weekly_hours=self.default_weekly_hours, timezone=self.timezone)


@dataclass(frozen=True, eq=False, kw_only=True)
class CapacityContext:
    """Settings, registry, clock and the long-lived caches of the capacity services.

    The caches are made with the context (cheap: nothing is read until first use) and live
    as long as it: :attr:`availability` (measured availability from InfluxDB),
    :attr:`index` (the in-memory capacity index behind search and regional aggregates) and
    :attr:`views` (sharing views per viewer, for search). Thread-safe as its parts are.

    Attributes:
        settings: what capacity reads (:class:`CapacitySettings`).
        engine: the registry engine (its change log feeds the index).
        sessions: registry sessions (``expire_on_commit=False``).
        clock: current instant (tests pass a fixed one).
    """

    settings: CapacitySettings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = _utcnow
    availability: AvailabilityCache = field(init=False, repr=False)
    index: CapacityIndexService = field(init=False, repr=False)
    views: ViewCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # frozen: the caches are set once here, never replaced (use fresh() for new ones)
        object.__setattr__(self, "availability", AvailabilityCache(self.settings))
        object.__setattr__(self, "index", CapacityIndexService(self))
        max_age = min(self.settings.capacity_cache_s, VIEWS_MAX_AGE_S)
        object.__setattr__(self, "views", ViewCache(max_age_s=max_age))

    @classmethod
    def create(
        cls, settings: CapacitySettings, *, engine: Engine, clock: Clock | None = None
    ) -> CapacityContext:
        """A context on ``engine`` with its own session factory.

        Args:
            settings: what capacity reads.
            engine: the registry engine.
            clock: current instant (default: the system clock, UTC).
        """
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessionmaker(engine, expire_on_commit=False),
            clock=clock or _utcnow,
        )

    def fresh(self, *, clock: Clock | None = None) -> CapacityContext:
        """The same settings, registry and (unless given) clock with new, empty caches."""
        return CapacityContext(
            settings=self.settings,
            engine=self.engine,
            sessions=self.sessions,
            clock=clock or self.clock,
        )
