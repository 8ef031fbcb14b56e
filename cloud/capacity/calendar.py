"""Shift calendars: how many hours a machine (or a whole site) is scheduled to work per day.

A :class:`ShiftCalendar` has three layers, applied in this order of precedence:

1. ``exceptions``: date -> hours, for that one date (a Saturday shift, a short day before
   the New Year holidays, a planned maintenance day with ``0``). Highest precedence, so an
   exception on a holiday makes the holiday a working day.
2. ``holidays``: dates with 0 hours (national holidays, company holidays such as Obon or
   the New Year break). Renkei does not compute Japanese national holidays itself; firms
   list the dates they close.
3. ``weekly_hours``: hours per weekday, Monday first (ISO 8601 weekday order), e.g.
   Mon–Fri two 8 h shifts = 16 h, Saturday one 8 h shift, Sunday 0 h.

Days are **site-local calendar dates** in the calendar's IANA ``timezone`` (default
``Asia/Tokyo``, resolved with :mod:`zoneinfo`). Hours per date are nominal scheduled hours
(0–24 h); they do not depend on the time zone. The zone matters only where instants are
turned into dates (:func:`local_date`) or dates into instants (:func:`day_start_utc`), as
the InfluxDB availability reader does. Japan has not observed daylight saving time since
1951, so in Asia/Tokyo every local day is exactly 24 h long (UTC+09:00); in zones with DST
a local day can be 23 or 25 h, which these functions handle correctly.

Units: hours (h). Weekday numbering follows :meth:`datetime.date.weekday` (Monday = 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_TIMEZONE",
    "WEEKDAYS",
    "ShiftCalendar",
    "available_hours",
    "available_hours_matrix",
    "day_start_utc",
    "local_date",
]

#: Default site time zone (IANA name).
DEFAULT_TIMEZONE: Final = "Asia/Tokyo"
#: Weekday names accepted by :meth:`ShiftCalendar.from_shifts`, Monday = 0.
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Scheduled hours on one date: 0 <= h <= 24, finite.
DayHours = Annotated[float, Field(ge=0.0, le=24.0, allow_inf_nan=False)]


class ShiftCalendar(BaseModel):
    """A weekly shift pattern with holidays and per-date exceptions (immutable).

    Attributes:
        weekly_hours: scheduled hours for Monday .. Sunday (7 values, each 0–24 h).
        holidays: site-local dates with 0 scheduled hours (unless in ``exceptions``).
        exceptions: site-local date -> scheduled hours on that date (0–24 h); overrides
            both the weekly pattern and ``holidays``.
        timezone: IANA time zone of the site, e.g. ``Asia/Tokyo`` (the default).

    Raises:
        pydantic.ValidationError: (a ``ValueError``) for hours outside 0–24, NaN/inf, a
            ``weekly_hours`` that does not have 7 values, or an unknown time zone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weekly_hours: tuple[DayHours, DayHours, DayHours, DayHours, DayHours, DayHours, DayHours] = (
        Field(
            description="Scheduled hours for Monday .. Sunday (7 values, each 0-24 h).",
            examples=[[16, 16, 16, 16, 16, 8, 0]],
        )
    )
    holidays: frozenset[date] = Field(
        default=frozenset(),
        description="Site-local dates (YYYY-MM-DD) with 0 scheduled hours, unless listed in "
        "`exceptions`.",
        examples=[["2027-01-01", "2027-01-02"]],
    )
    exceptions: Mapping[date, DayHours] = Field(
        default_factory=dict,
        description="Site-local date -> scheduled hours on that date (0-24 h); overrides both "
        "`weekly_hours` and `holidays`.",
        examples=[{"2026-12-26": 8}],
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="IANA time zone of the site, in which dates are local (default `Asia/Tokyo`).",
        examples=["Asia/Tokyo"],
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @classmethod
    def from_shifts(
        cls,
        shifts: Mapping[int | str, Sequence[float]],
        *,
        holidays: Iterable[date] = (),
        exceptions: Mapping[date, float] | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> ShiftCalendar:
        """Build a calendar from shift lengths per weekday.

        Args:
            shifts: weekday (``0``–``6`` or ``"mon"``–``"sun"``) -> lengths of its shifts in
                hours, e.g. ``{"mon": [8, 8], ..., "sat": [8]}``. Weekdays not given have
                no shifts.
            holidays, exceptions, timezone: as in the class attributes.

        Raises:
            ValueError: unknown weekday, negative shift length, or more than 24 h of
                shifts on one weekday (also via pydantic validation).
        """
        weekly = [0.0] * 7
        for key, lengths in shifts.items():
            if isinstance(key, str):
                if key.lower() not in WEEKDAYS:
                    raise ValueError(f"unknown weekday {key!r}; use one of {WEEKDAYS}")
                index = WEEKDAYS.index(key.lower())
            elif isinstance(key, int) and 0 <= key <= 6:
                index = key
            else:
                raise ValueError(f"weekday must be 0..6 or a name in {WEEKDAYS}, got {key!r}")
            if any(not math.isfinite(h) or h < 0 for h in lengths):
                raise ValueError(f"shift lengths must be finite and >= 0 h, got {list(lengths)}")
            weekly[index] += float(sum(lengths))
        return cls(
            weekly_hours=(
                weekly[0],
                weekly[1],
                weekly[2],
                weekly[3],
                weekly[4],
                weekly[5],
                weekly[6],
            ),
            holidays=frozenset(holidays),
            exceptions=dict(exceptions or {}),
            timezone=timezone,
        )

    @property
    def zone(self) -> ZoneInfo:
        """The :class:`zoneinfo.ZoneInfo` of :attr:`timezone`."""
        return ZoneInfo(self.timezone)


def available_hours(calendar: ShiftCalendar, day: date) -> float:
    """Scheduled hours of ``calendar`` on the site-local date ``day`` (h, 0–24).

    Precedence: ``exceptions[day]`` > ``0`` if ``day`` is a holiday > ``weekly_hours``.
    """
    if day in calendar.exceptions:
        return float(calendar.exceptions[day])
    if day in calendar.holidays:
        return 0.0
    return float(calendar.weekly_hours[day.weekday()])


def available_hours_matrix(
    calendars: Sequence[ShiftCalendar], start: date, days: int
) -> npt.NDArray[np.float64]:
    """Scheduled hours for each calendar on ``days`` consecutive dates from ``start``.

    Vectorised: each distinct calendar object is evaluated once (weekly pattern by numpy
    indexing, then holidays and exceptions inside the horizon), and rows are shared by
    index, so 100,000 machines on a few site calendars cost about as much as a few rows.

    Args:
        calendars: one calendar per output row (the same object may repeat).
        start: first site-local date (column 0).
        days: number of dates (columns), >= 0.

    Returns:
        ``float64`` array of shape ``(len(calendars), days)``, hours.

    Raises:
        ValueError: ``days < 0``.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    unique: dict[int, int] = {}
    owners: list[ShiftCalendar] = []
    row_of = np.empty(len(calendars), dtype=np.intp)
    for i, cal in enumerate(calendars):
        j = unique.get(id(cal))
        if j is None:
            j = unique[id(cal)] = len(owners)
            owners.append(cal)
        row_of[i] = j
    weekdays = (start.weekday() + np.arange(days)) % 7
    weekly = np.array([c.weekly_hours for c in owners], dtype=np.float64).reshape(-1, 7)
    table = weekly[:, weekdays]
    end = start + timedelta(days=days)
    for j, cal in enumerate(owners):
        for d in cal.holidays:
            if start <= d < end:
                table[j, (d - start).days] = 0.0
        for d, hours in cal.exceptions.items():
            if start <= d < end:
                table[j, (d - start).days] = float(hours)
    result: npt.NDArray[np.float64] = table[row_of]
    return result


def local_date(calendar: ShiftCalendar, instant: datetime) -> date:
    """The site-local date of an aware ``instant`` in the calendar's time zone.

    Raises:
        ValueError: ``instant`` is naive (no ``tzinfo``).
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware (e.g. datetime.now(UTC))")
    return instant.astimezone(calendar.zone).date()


def day_start_utc(calendar: ShiftCalendar | str, day: date) -> datetime:
    """The UTC instant at which the site-local date ``day`` begins (local 00:00).

    Args:
        calendar: a calendar, or an IANA time zone name.
        day: the site-local date.

    In Asia/Tokyo this is always ``day - 1`` at 15:00 UTC; in zones with daylight saving
    time the offset follows the zone rules of that date.

    Raises:
        zoneinfo.ZoneInfoNotFoundError: unknown time zone name.
    """
    zone = calendar.zone if isinstance(calendar, ShiftCalendar) else ZoneInfo(calendar)
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return local_midnight.astimezone(UTC)
