"""Recent machine availability measured from what gateways publish to InfluxDB.

Definition (per machine, over the last ``days`` complete site-local days, default 28):

- Time is cut into buckets of ``bucket_s`` seconds (default 60 s = 1 minute). A machine is
  **up** in a bucket when at least one point of ``measurement`` with that machine's tags
  has a timestamp in the bucket. Points from several gateways (``gw`` tag) or with
  different fields count once per bucket.
- Per site-local day *d*: ``up_h[d] = min(buckets up on d * bucket_s / 3600,
  scheduled_h[d])`` where ``scheduled_h`` comes from the machine's
  :class:`~renkei.cloud.capacity.calendar.ShiftCalendar`. Running outside the schedule (overtime,
  warm-up) therefore never raises availability above 1, and the whole-day clip is how the
  measurement is intersected with the calendar when shift start times are not known.
- The **observed span** starts at the first day in the window with any data (a machine
  connected to Renkei ten days ago is judged on ten days, not 28) and ends with the
  window.
- ``ratio = sum(up_h) / sum(scheduled_h)`` over the observed span. Machines with no data
  in the window, or with no scheduled hours in the observed span, get **no** ratio
  (unknown: Renkei cannot tell a machine without a gateway from a stopped one), and
  :func:`renkei.cloud.capacity.spare.compute_spare` then uses its default (0.9).

Which measurement: ``features`` by default. Every gateway publishes one ``features`` row
per tumbling window (10 s by default) in which the machine's signals produced samples, and
windows without samples are not emitted, so "a features row in the bucket" means "signals
flowed". Raw ``telemetry`` says the same but is sampled at 10 Hz by default (~100 times
the points) and can be switched off per machine (``publish_telemetry: false``); pass
``measurement="telemetry"`` to use it anyway.

Why data presence and not ``gateway_state.online = 0`` (the MQTT Last Will): gateways store
and forward (the outbox keeps QoS 1 messages on disk while the broker is unreachable), so
after a network outage the data of that period arrives late with its original timestamps;
a Last-Will-based rule would count such periods as downtime. A machine that is powered but
idle still produces data and counts as up: this is availability in the OEE sense (not
broken down), not utilisation. The most recent hours may still be in transit from gateways
with a backlog, which is why the window ends at the start of the current site-local day.

InfluxQL (InfluxDB v1 HTTP API; tested with InfluxDB 1.6), per site time zone:

1. ``SELECT count(*) FROM "features" WHERE <window> [AND <tags>]`` -> the fields that have
   data in the window (a ``count_<field>`` column each).
2. One nested statement: per-bucket counts of every field (``fill(0)``), summed into one
   number per bucket, buckets with a sum > 0 counted per site-local day::

       SELECT count("n") FROM (
         SELECT "count_f1" + "count_f2" + ... AS "n" FROM (
           SELECT count(*) FROM "features" WHERE <window> [AND <tags>]
           GROUP BY time(60s), "machine" fill(0)) WHERE <window>)
       WHERE <window> AND "n" > 0 GROUP BY time(1d), "machine" fill(none) tz('Asia/Tokyo')

   Only one row per machine and day travels back. With ``field=...`` (a field present in
   every row) the union is skipped: ``count(field)`` per bucket with ``fill(none)``.

Cost: InfluxDB 1.x spends its time per *bucket* (machine × minute), about 5–10 µs each on
a 2-core host, so 28 days × 16 h × 60 buckets × 100 machines take seconds to tens of
seconds. Past days do not change, so callers that refresh often should keep
:func:`daily_up_hours` per completed day (one day is 1/28 of the work) and combine the
cached days with :func:`availability_from_daily`; :func:`recent_availability` does both
steps in one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from renkei.cloud.capacity.calendar import (
    DEFAULT_TIMEZONE,
    ShiftCalendar,
    available_hours,
    day_start_utc,
)
from renkei.cloud.store import (
    InfluxSettings,
    InfluxStore,
    quote_ident,
    quote_literal,
    quote_tag,
    run_query,
)

__all__ = [
    "DEFAULT_MEASUREMENT",
    "DEFAULT_WINDOW_DAYS",
    "AvailabilityEstimate",
    "availability_from_daily",
    "daily_up_hours",
    "recent_availability",
    "recent_availability_details",
]

#: Default look-back window, days.
DEFAULT_WINDOW_DAYS: Final = 28
#: Default measurement whose rows mean "the machine's signals flowed".
DEFAULT_MEASUREMENT: Final = "features"


@dataclass(frozen=True, slots=True, kw_only=True)
class AvailabilityEstimate:
    """Measured availability of one machine (see the module docstring for the definition).

    Attributes:
        machine: the machine key (``key_tags`` values joined by ``/``).
        ratio: ``up_h / scheduled_h``, in [0, 1].
        up_h: hours up within the schedule over the observed span (h).
        scheduled_h: scheduled hours over the observed span (h), > 0.
        first_day: first site-local day with data (start of the observed span).
        window_end: first site-local day *after* the window (exclusive end).
    """

    machine: str
    ratio: float
    up_h: float
    scheduled_h: float
    first_day: date
    window_end: date


def _time_literal(instant: datetime) -> str:
    return quote_literal(instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _present_fields(settings: InfluxSettings, measurement: str, condition: str) -> list[str]:
    q = f"SELECT count(*) FROM {quote_ident(measurement)} WHERE {condition}"
    results = run_query(settings, q)
    fields: list[str] = []
    for series in results[0].get("series") or []:
        columns: list[str] = series.get("columns") or []
        values: list[list[Any]] = series.get("values") or []
        for col_i, name in enumerate(columns):
            if not name.startswith("count_") or name[len("count_") :] in fields:
                continue
            if any(row[col_i] for row in values):
                fields.append(name[len("count_") :])
    return fields


def _up_buckets_query(
    *,
    measurement: str,
    window: str,
    tag_filter: str,
    fields: Sequence[str],
    key_tags: Sequence[str],
    bucket_s: int,
    timezone: str,
) -> str:
    group_tags = ", ".join(quote_tag(t) for t in key_tags)
    source = quote_ident(measurement)
    if len(fields) == 1:
        inner = (
            f'SELECT count({quote_ident(fields[0])}) AS "n" FROM {source} '
            f"WHERE {window}{tag_filter} GROUP BY time({bucket_s}s), {group_tags} fill(none)"
        )
    else:
        total = " + ".join(quote_ident(f"count_{f}") for f in fields)
        counts = (
            f"SELECT count(*) FROM {source} WHERE {window}{tag_filter} "
            f"GROUP BY time({bucket_s}s), {group_tags} fill(0)"
        )
        # Tag filters apply in the innermost statement: outer levels see only key tags.
        inner = f'SELECT {total} AS "n" FROM ({counts}) WHERE {window}'
    return (
        f'SELECT count("n") FROM ({inner}) WHERE {window} AND "n" > 0 '
        f"GROUP BY time(1d), {group_tags} fill(none) tz({quote_literal(timezone)})"
    )


def _check_common(days: int, bucket_s: int, key_tags: Sequence[str]) -> None:
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if bucket_s < 1 or 86_400 % bucket_s:
        raise ValueError(f"bucket_s must divide 86400 s, got {bucket_s}")
    if not key_tags:
        raise ValueError("key_tags must name at least one tag")


def daily_up_hours(
    source: InfluxSettings | InfluxStore,
    *,
    first_day: date,
    days: int,
    timezone: str = DEFAULT_TIMEZONE,
    where: Mapping[str, str] | None = None,
    key_tags: Sequence[str] = ("machine",),
    measurement: str = DEFAULT_MEASUREMENT,
    field: str | None = None,
    bucket_s: int = 60,
) -> dict[str, dict[date, float]]:
    """Hours each machine was up on each site-local day (not yet clipped to a schedule).

    Args:
        source: InfluxDB connection settings, or an :class:`InfluxStore` (its settings are
            used; the store itself is not called).
        first_day: first site-local day.
        days: number of days (>= 1).
        timezone: IANA time zone defining the site-local days.
        where: tag filters, e.g. ``{"firm": "acme"}`` (tag = value, ANDed).
        key_tags: tags identifying a machine, joined by ``/`` into the result key.
            Default ``("machine",)``; use e.g. ``("firm", "site", "machine")`` when
            machine ids are only unique within a firm or site.
        measurement: measurement whose points mean "signals flowing" (``features``).
        field: a field present in every row of ``measurement``, for a cheaper query;
            ``None`` (default): a bucket is up when any field has a value.
        bucket_s: bucket length in seconds (divides 86,400; default 60).

    Returns:
        machine key -> {site-local day -> up hours (buckets with data × bucket_s / 3600)};
        days without data are absent.

    Raises:
        ValueError: bad ``days``, ``bucket_s`` or ``key_tags``.
        zoneinfo.ZoneInfoNotFoundError: unknown ``timezone``.
        StoreUnavailable: InfluxDB unreachable, failing, or the database is missing.
        StoreRejected: InfluxDB refused the query.
    """
    _check_common(days, bucket_s, key_tags)
    zone = ZoneInfo(timezone)
    settings = source.settings if isinstance(source, InfluxStore) else source
    window = (
        f"time >= {_time_literal(day_start_utc(timezone, first_day))} "
        f"AND time < {_time_literal(day_start_utc(timezone, first_day + timedelta(days)))}"
    )
    tag_filter = "".join(
        f" AND {quote_tag(k)} = {quote_literal(v)}" for k, v in sorted((where or {}).items())
    )
    fields = [field] if field else _present_fields(settings, measurement, window + tag_filter)
    if not fields:
        return {}
    q = _up_buckets_query(
        measurement=measurement,
        window=window,
        tag_filter=tag_filter,
        fields=fields,
        key_tags=key_tags,
        bucket_s=bucket_s,
        timezone=timezone,
    )
    out: dict[str, dict[date, float]] = {}
    for series in run_query(settings, q)[0].get("series") or []:
        tags: Mapping[str, str] = series.get("tags") or {}
        key = "/".join(str(tags.get(t, "")) for t in key_tags)
        per_day = out.setdefault(key, {})
        for t_ms, count in series.get("values") or []:
            if count:
                day = datetime.fromtimestamp(int(t_ms) / 1000, tz=zone).date()
                per_day[day] = per_day.get(day, 0.0) + int(count) * bucket_s / 3600.0
    return out


def availability_from_daily(
    up_hours: Mapping[str, Mapping[date, float]],
    *,
    window_end: date,
    days: int = DEFAULT_WINDOW_DAYS,
    calendars: Mapping[str, ShiftCalendar] | None = None,
    default_calendar: ShiftCalendar | None = None,
) -> dict[str, AvailabilityEstimate]:
    """Availability per machine from daily up hours (pure; see the module docstring).

    Args:
        up_hours: machine key -> {site-local day -> up hours}, e.g. from
            :func:`daily_up_hours` (possibly cached day by day). Days outside the window
            are ignored.
        window_end: first site-local day after the window (exclusive end).
        days: window length in days (>= 1).
        calendars: machine key -> shift calendar.
        default_calendar: calendar of machines not in ``calendars``; ``None`` leaves them
            out.

    Returns:
        machine key -> :class:`AvailabilityEstimate` for machines with a calendar, data in
        the window and scheduled hours in their observed span.

    Raises:
        ValueError: ``days < 1``.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    window_start = window_end - timedelta(days=days)
    cal_map = calendars or {}
    result: dict[str, AvailabilityEstimate] = {}
    for machine, per_day in up_hours.items():
        calendar = cal_map.get(machine, default_calendar)
        if calendar is None:
            continue
        seen = [d for d, h in per_day.items() if h > 0 and window_start <= d < window_end]
        if not seen:
            continue
        first = min(seen)
        up_h = 0.0
        scheduled_h = 0.0
        day = first
        while day < window_end:
            hours = available_hours(calendar, day)
            scheduled_h += hours
            up_h += min(max(per_day.get(day, 0.0), 0.0), hours)
            day += timedelta(days=1)
        if scheduled_h > 0.0:
            result[machine] = AvailabilityEstimate(
                machine=machine,
                ratio=min(1.0, up_h / scheduled_h),
                up_h=up_h,
                scheduled_h=scheduled_h,
                first_day=first,
                window_end=window_end,
            )
    return result


def recent_availability_details(
    source: InfluxSettings | InfluxStore,
    *,
    calendars: Mapping[str, ShiftCalendar] | None = None,
    default_calendar: ShiftCalendar | None = None,
    where: Mapping[str, str] | None = None,
    key_tags: Sequence[str] = ("machine",),
    measurement: str = DEFAULT_MEASUREMENT,
    field: str | None = None,
    days: int = DEFAULT_WINDOW_DAYS,
    bucket_s: int = 60,
    until: datetime | None = None,
) -> dict[str, AvailabilityEstimate]:
    """Measured availability per machine over the last ``days`` days, with its numbers.

    :func:`daily_up_hours` + :func:`availability_from_daily`, once per distinct time zone
    among the calendars. The window is the ``days`` complete site-local days before the
    site-local day of ``until``.

    Args:
        source, where, key_tags, measurement, field, bucket_s: as in
            :func:`daily_up_hours`.
        calendars, default_calendar: as in :func:`availability_from_daily`; each
            calendar's time zone defines its machine's days.
        days: window length in days (default 28, >= 1).
        until: aware instant whose site-local day ends the window (exclusive); default
            now.

    Returns:
        machine key -> :class:`AvailabilityEstimate`.

    Raises:
        ValueError: bad ``days``, ``bucket_s``, ``key_tags`` or naive ``until``.
        StoreUnavailable: InfluxDB unreachable, failing, or the database is missing.
        StoreRejected: InfluxDB refused the query.
    """
    _check_common(days, bucket_s, key_tags)
    now = until if until is not None else datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("until must be timezone-aware")
    cal_map = calendars or {}
    zones = {c.timezone for c in cal_map.values()}
    if default_calendar is not None:
        zones.add(default_calendar.timezone)
    result: dict[str, AvailabilityEstimate] = {}
    for zone in sorted(zones):
        window_end = now.astimezone(ZoneInfo(zone)).date()
        up = daily_up_hours(
            source,
            first_day=window_end - timedelta(days=days),
            days=days,
            timezone=zone,
            where=where,
            key_tags=key_tags,
            measurement=measurement,
            field=field,
            bucket_s=bucket_s,
        )
        in_zone = {m: c for m, c in cal_map.items() if c.timezone == zone}
        default = (
            default_calendar if default_calendar and default_calendar.timezone == zone else None
        )
        # A machine whose own calendar is in another zone is not judged by the default.
        up = {m: d for m, d in up.items() if m in in_zone or m not in cal_map}
        result.update(
            availability_from_daily(
                up, window_end=window_end, days=days, calendars=in_zone, default_calendar=default
            )
        )
    return result


def recent_availability(
    source: InfluxSettings | InfluxStore,
    *,
    calendars: Mapping[str, ShiftCalendar] | None = None,
    default_calendar: ShiftCalendar | None = None,
    where: Mapping[str, str] | None = None,
    key_tags: Sequence[str] = ("machine",),
    measurement: str = DEFAULT_MEASUREMENT,
    field: str | None = None,
    days: int = DEFAULT_WINDOW_DAYS,
    bucket_s: int = 60,
    until: datetime | None = None,
) -> dict[str, float]:
    """Machine key -> availability ratio in [0, 1] (see :func:`recent_availability_details`).

    The result plugs into :func:`renkei.cloud.capacity.spare.compute_spare` as ``availability``;
    machines absent from it get the default ratio there.

    Raises:
        ValueError, StoreUnavailable, StoreRejected: as
            :func:`recent_availability_details`.
    """
    details = recent_availability_details(
        source,
        calendars=calendars,
        default_calendar=default_calendar,
        where=where,
        key_tags=key_tags,
        measurement=measurement,
        field=field,
        days=days,
        bucket_s=bucket_s,
        until=until,
    )
    return {machine: d.ratio for machine, d in details.items()}
