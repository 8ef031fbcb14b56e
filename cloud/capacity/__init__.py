"""Spare production capacity: shift calendars, availability, spare hours, weekly roll-ups.

Pipeline (all hours; dates are site-local, default time zone Asia/Tokyo)::

    ShiftCalendar ──► available_h ─┐
    Booking (uploaded plans) ──────┼─► compute_spare ──► rollup ──► to_catenax_json
    recent_availability (InfluxDB) ┘   (machine × day)   (class ×    (CX-0128
                                                          day/week)  WeekBasedCapacityGroup)

- :mod:`~renkei.cloud.capacity.calendar`: weekly shift pattern, holidays, exceptions.
- :mod:`~renkei.cloud.capacity.availability`: share of scheduled time a machine ran (telemetry).
- :mod:`~renkei.cloud.capacity.spare`: ``spare = max(0, available - booked - expected downtime)``.
- :mod:`~renkei.cloud.capacity.classes`: capability classes (process + size band).
- :mod:`~renkei.cloud.capacity.rollup`: per class, per day or ISO week (DCM mapping documented).
- :mod:`~renkei.cloud.capacity.catenax`: Catena-X CX-0128 JSON export and its pydantic model.

Services on the registry (imported by the API, the takeover planner and the producer; they
never import the API):

- :mod:`~renkei.cloud.capacity.context`: :class:`CapacityContext` (settings, sessions,
  clock, caches) that every service below is given.
- :mod:`~renkei.cloud.capacity.service`: ``spare_for`` (spare hours of given machines).
- :mod:`~renkei.cloud.capacity.index`: the in-memory index of every machine (search).
- :mod:`~renkei.cloud.capacity.policy`, :mod:`~renkei.cloud.capacity.views`,
  :mod:`~renkei.cloud.capacity.search`: sharing rules, cached views, partner search.
- :mod:`~renkei.cloud.capacity.regions`: k-anonymous regional aggregates.
- :mod:`~renkei.cloud.capacity.publish`: the ``capacity`` measurement for the dashboard.
"""

from renkei.cloud.capacity.availability import (
    DEFAULT_MEASUREMENT,
    DEFAULT_WINDOW_DAYS,
    AvailabilityEstimate,
    availability_from_daily,
    daily_up_hours,
    recent_availability,
    recent_availability_details,
)
from renkei.cloud.capacity.calendar import (
    DEFAULT_TIMEZONE,
    ShiftCalendar,
    available_hours,
    available_hours_matrix,
    day_start_utc,
    local_date,
)
from renkei.cloud.capacity.catenax import (
    UNIT_HOUR,
    DcmCapacity,
    WeekBasedCapacityGroup,
    capacity_group_id,
    to_catenax_json,
)
from renkei.cloud.capacity.classes import (
    FORCE_BANDS_KN,
    KN_PER_TONF,
    CapabilityClass,
    capability_class,
    parse_capability_class,
)
from renkei.cloud.capacity.rollup import CapacityPoint, CapacitySeries, Granularity, rollup
from renkei.cloud.capacity.spare import (
    DEFAULT_AVAILABILITY_RATIO,
    HORIZON_DAYS,
    Booking,
    SpareCapacity,
    compute_spare,
)
from renkei.cloud.capacity.weeks import iso_week_label, iso_week_monday

__all__ = [
    "DEFAULT_AVAILABILITY_RATIO",
    "DEFAULT_MEASUREMENT",
    "DEFAULT_TIMEZONE",
    "DEFAULT_WINDOW_DAYS",
    "FORCE_BANDS_KN",
    "HORIZON_DAYS",
    "KN_PER_TONF",
    "UNIT_HOUR",
    "AvailabilityEstimate",
    "Booking",
    "CapabilityClass",
    "CapacityPoint",
    "CapacitySeries",
    "DcmCapacity",
    "Granularity",
    "ShiftCalendar",
    "SpareCapacity",
    "WeekBasedCapacityGroup",
    "availability_from_daily",
    "available_hours",
    "available_hours_matrix",
    "capability_class",
    "capacity_group_id",
    "compute_spare",
    "daily_up_hours",
    "day_start_utc",
    "iso_week_label",
    "iso_week_monday",
    "local_date",
    "parse_capability_class",
    "recent_availability",
    "recent_availability_details",
    "rollup",
    "to_catenax_json",
]
