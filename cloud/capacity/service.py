"""Spare capacity of registry machines (registry + calendars + bookings + telemetry).

:func:`spare_for` is what every endpoint and the takeover planner call to learn the spare
hours of given machines; it hides where the numbers come from. It reads the machines'
calendars and bookings from the registry on every call (one indexed query each, a few
milliseconds for a firm's machines, exact ``float64`` arithmetic of
:func:`renkei.cloud.capacity.compute_spare`) and takes measured availability from
:class:`AvailabilityCache`, which is where the expensive part (InfluxDB) is cached.

Partner search and regional aggregates over the whole registry use the in-memory
:mod:`renkei.cloud.capacity.index` instead, which applies the same formula to the same inputs.

Measured availability (``settings.influx`` of
:class:`~renkei.cloud.capacity.context.CapacitySettings` set): the ratio of each machine
comes from :func:`renkei.cloud.capacity.recent_availability` over the 28 complete
site-local days before today, with each machine's site calendar, from the ``features``
points whose ``machine`` tag is the registry machine id and whose ``firm`` tag is the
machine's firm (ingest writes the tags ``firm, site, area, line, machine``). Results are reused for
``settings.capacity_cache_s`` seconds and always dropped when the site-local day changes.
When InfluxDB is unreachable or refuses the query, the default ratio
(``settings.default_availability_ratio``) is used, a warning is logged, and the next try
is made after at most 60 s (never an error to the API client).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import StoreError
from renkei.cloud.capacity import (
    Booking,
    ShiftCalendar,
    SpareCapacity,
    compute_spare,
    recent_availability,
)
from renkei.cloud.registry import CapacityBooking, Line, Machine, Site

if TYPE_CHECKING:
    from renkei.cloud.capacity.context import CapacityContext, CapacitySettings

__all__ = ["AvailabilityCache", "spare_for"]

logger = logging.getLogger("renkei.cloud.capacity")

#: Longest wait before InfluxDB is asked again after a failure (seconds).
RETRY_AFTER_FAILURE_S = 60.0

FirmMachine = tuple[str, str]


class AvailabilityCache:
    """Measured availability ratios (0–1) per machine from InfluxDB, cached.

    Two kinds of entries, both keyed by the site-local date the window ends on:

    - per firm (:meth:`firm_ratios`): one query with ``where firm = <firm>``, used by
      :func:`spare_for`;
    - all firms at once (:meth:`all_ratios`): one query grouped by ``firm, machine``, used
      by the capacity index; while fresh it also answers :meth:`firm_ratios`.

    Entries live ``settings.capacity_cache_s`` seconds (failures at most
    :data:`RETRY_AFTER_FAILURE_S`). Thread-safe; two threads missing the same entry at
    once may both query (harmless).
    """

    def __init__(self, settings: CapacitySettings) -> None:
        self._ttl_s = settings.capacity_cache_s
        self._influx = settings.influx
        self._lock = threading.Lock()
        self._firms: dict[tuple[str, date], tuple[float, dict[str, float]]] = {}
        self._all: tuple[date, float, dict[str, dict[str, float]]] | None = None
        self.queries = 0
        """InfluxDB availability queries made so far (for tests and stats)."""

    @property
    def enabled(self) -> bool:
        """Whether an InfluxDB is configured (else every ratio is the default)."""
        return self._influx is not None

    def _query(
        self, calendars: Mapping[str, ShiftCalendar], *, now: datetime, **kw: Any
    ) -> dict[str, float] | None:
        assert self._influx is not None
        self.queries += 1
        try:
            return recent_availability(self._influx, calendars=calendars, until=now, **kw)
        except (StoreError, ValueError) as exc:
            logger.warning(
                "measured availability unavailable (%s); using the default ratio, next try "
                "in %.0f s",
                exc,
                min(self._ttl_s, RETRY_AFTER_FAILURE_S),
            )
            return None

    def _expiry(self, ok: bool) -> float:
        ttl = self._ttl_s if ok else min(self._ttl_s, RETRY_AFTER_FAILURE_S)
        return time.monotonic() + ttl

    def firm_ratios(
        self, firm_id: str, calendars: Mapping[str, ShiftCalendar], *, now: datetime
    ) -> dict[str, float]:
        """Machine id -> measured ratio for machines of ``firm_id`` that have data.

        Args:
            calendars: machine id -> the machine's shift calendar (its site's, or the
                default); machines absent here are not measured.
            now: the current instant (aware); the window ends at its site-local day.

        Returns:
            Ratios in [0, 1]; machines without data (or everything, when InfluxDB is not
            configured or unreachable) are absent, so the default applies.
        """
        if self._influx is None or not calendars:
            return {}
        day = _window_end(calendars, now)
        with self._lock:
            snap = self._all
            if snap is not None and snap[0] == day and snap[1] > time.monotonic():
                per = snap[2].get(firm_id, {})
                return {m: r for m, r in per.items() if m in calendars}
            hit = self._firms.get((firm_id, day))
            if hit is not None and hit[0] > time.monotonic():
                return {m: r for m, r in hit[1].items() if m in calendars}
        got = self._query(calendars, now=now, where={"firm": firm_id})
        with self._lock:
            self._firms[firm_id, day] = (self._expiry(got is not None), got or {})
            for key in [k for k in self._firms if k[1] != day]:
                del self._firms[key]
        return dict(got or {})

    def all_ratios(
        self, calendars: Mapping[FirmMachine, ShiftCalendar], *, now: datetime
    ) -> dict[FirmMachine, float]:
        """(firm id, machine id) -> measured ratio, for every machine with data.

        One InfluxDB query for all firms (grouped by the ``firm`` and ``machine`` tags), so
        a machine id reported under another firm's tag is never attributed to it.
        """
        if self._influx is None or not calendars:
            return {}
        day = _window_end(calendars, now)
        with self._lock:
            snap = self._all
            if snap is not None and snap[0] == day and snap[1] > time.monotonic():
                return {(f, m): r for f, per in snap[2].items() for m, r in per.items()}
        keyed = {f"{f}/{m}": cal for (f, m), cal in calendars.items()}
        got = self._query(keyed, now=now, key_tags=("firm", "machine"))
        nested: dict[str, dict[str, float]] = {}
        for key, ratio in (got or {}).items():
            firm, _, machine = key.partition("/")
            nested.setdefault(firm, {})[machine] = ratio
        with self._lock:
            self._all = (day, self._expiry(got is not None), nested)
        return {(f, m): r for f, per in nested.items() for m, r in per.items()}


def _window_end(calendars: Mapping[Any, ShiftCalendar], now: datetime) -> date:
    """The site-local date ending the window, taken from the first calendar's zone."""
    cal = next(iter(calendars.values()))
    return now.astimezone(cal.zone).date()


def spare_for(
    ctx: CapacityContext,
    session: Session,
    *,
    machine_ids: Sequence[str],
    start: date,
    days: int,
) -> SpareCapacity:
    """Spare hours per machine and site-local day for ``days`` days from ``start``.

    ``spare_h = max(0, available_h - booked_h - available_h * (1 - ratio))`` per machine and
    day (hours), with the site's shift calendar (or the default calendar), the firm's bookings,
    and the measured availability ratio (or ``settings.default_availability_ratio``).

    Args:
        ctx: settings, clock and the availability cache (:class:`CapacityContext`).
        session: an open registry session (read only).
        machine_ids: registry machine ids (unknown ids are dropped from the result).
        start: first site-local day; days: horizon length in days (>= 0).

    Returns:
        :class:`renkei.cloud.capacity.SpareCapacity` with one row per known machine, in the
        order given (``ratio_measured`` tells which ratios came from telemetry).

    Raises:
        ValueError: ``days < 0``.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    rows = session.execute(
        select(Machine.id, Machine.firm_id, Site.calendar)
        .join(Line, Machine.line_id == Line.id)
        .join(Site, Line.site_id == Site.id)
        .where(Machine.id.in_(list(machine_ids)))
    ).all()
    firm_of = {mid: firm for mid, firm, _ in rows}
    known = [m for m in dict.fromkeys(machine_ids) if m in firm_of]
    default = ctx.settings.default_calendar()
    parsed: dict[str, ShiftCalendar] = {}
    calendars: dict[str, ShiftCalendar] = {}
    for mid, _, cal in rows:
        if cal:
            key = repr(sorted(cal.items()))
            if key not in parsed:
                parsed[key] = ShiftCalendar.model_validate(cal)
            calendars[mid] = parsed[key]
    end = start + timedelta(days=days)
    bookings = [
        Booking(machine_id=m, start=s, end=e, hours=h)
        for m, s, e, h in session.execute(
            select(
                CapacityBooking.machine_id,
                CapacityBooking.start,
                CapacityBooking.end,
                CapacityBooking.hours_per_day,
            )
            .where(CapacityBooking.machine_id.in_(known))
            .where(CapacityBooking.end >= start)
            .where(CapacityBooking.start < end)
        )
    ]
    availability: dict[str, float] = {}
    cache = ctx.availability
    if cache.enabled and known:
        now = ctx.clock()
        by_firm: dict[str, dict[str, ShiftCalendar]] = {}
        for mid in known:
            by_firm.setdefault(firm_of[mid], {})[mid] = calendars.get(mid, default)
        for firm, cals in by_firm.items():
            availability.update(cache.firm_ratios(firm, cals, now=now))
    return compute_spare(
        known,
        start=start,
        calendars=calendars,
        default_calendar=default,
        bookings=bookings,
        availability=availability,
        default_ratio=ctx.settings.default_availability_ratio,
        days=days,
    )
