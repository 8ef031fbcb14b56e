"""Spare capacity of registry machines (registry + calendars + bookings [+ telemetry]).

:func:`spare_for` is what every endpoint and the takeover planner call to learn the spare
hours of machines; it hides where the numbers come from (and any caching).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import AppState
from cloud.capacity import Booking, ShiftCalendar, SpareCapacity, compute_spare
from cloud.registry import CapacityBooking, Line, Machine, Site

__all__ = ["spare_for"]


def spare_for(
    state: AppState,
    session: Session,
    *,
    machine_ids: Sequence[str],
    start: date,
    days: int,
) -> SpareCapacity:
    """Spare hours per machine and site-local day for ``days`` days from ``start``.

    Args:
        machine_ids: registry machine ids (unknown ids are dropped from the result).
        start: first day; days: horizon length (>= 0).

    Returns:
        :class:`cloud.capacity.SpareCapacity` with one row per known machine, in the
        order given.
    """
    rows = session.execute(
        select(Machine.id, Site.calendar)
        .join(Line, Machine.line_id == Line.id)
        .join(Site, Line.site_id == Site.id)
        .where(Machine.id.in_(machine_ids))
    ).all()
    calendar_of = {mid: cal for mid, cal in rows}
    known = [m for m in dict.fromkeys(machine_ids) if m in calendar_of]
    calendars = {
        mid: ShiftCalendar.model_validate(cal) for mid, cal in calendar_of.items() if cal
    }
    bookings = [
        Booking(machine_id=b.machine_id, start=b.start, end=b.end, hours=b.hours_per_day)
        for b in session.scalars(
            select(CapacityBooking).where(CapacityBooking.machine_id.in_(known))
        )
    ]
    return compute_spare(
        known,
        start=start,
        calendars=calendars,
        default_calendar=state.settings.default_calendar(),
        bookings=bookings,
        default_ratio=state.settings.default_availability_ratio,
        days=days,
    )
