"""Spare capacity per machine per day over a planning horizon (default 12 weeks = 84 days).

Definition (per machine *m*, site-local date *d*, all in hours)::

    available_h[m, d] = scheduled hours of m's shift calendar on d      (calendar.py)
    booked_h[m, d]    = sum of the hours of m's bookings covering d     (uploaded plans)
    downtime_h[m, d]  = available_h[m, d] * (1 - r[m])                  (expected downtime)
    spare_h[m, d]     = max(0, available_h - booked_h - downtime_h)

``r[m]`` is the machine's availability ratio (share of scheduled time it actually runs;
the *availability* factor of OEE), measured from telemetry by
:func:`renkei.cloud.capacity.availability.recent_availability`. Unknown ratios (no telemetry, or
NaN) default to :data:`DEFAULT_AVAILABILITY_RATIO` (0.9); known ones are clamped to [0, 1].
``booked_h`` is kept as uploaded (it may exceed ``available_h``: an overbooked day);
``spare_h`` is clamped at 0, so 0 <= spare_h <= available_h always holds.

A :class:`Booking` books the same number of hours on every date of its (inclusive) date
range; a plan with uneven load uses one booking per date. Bookings are in site-local dates.

Everything is vectorised over machines × days with numpy: calendars are evaluated once per
distinct calendar object and bookings are expanded and summed with ``np.bincount``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from renkei.cloud.capacity.calendar import ShiftCalendar, available_hours_matrix

__all__ = [
    "DEFAULT_AVAILABILITY_RATIO",
    "HORIZON_DAYS",
    "Booking",
    "SpareCapacity",
    "compute_spare",
]

#: Availability ratio assumed for machines without measured availability (no telemetry).
DEFAULT_AVAILABILITY_RATIO: Final = 0.9
#: Default horizon: 12 weeks.
HORIZON_DAYS: Final = 84

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    """Hours of a machine already planned (booked) on a date or an inclusive date range.

    Attributes:
        machine_id: the machine the hours are booked on.
        start: first site-local date booked.
        end: last site-local date booked (inclusive); ``None`` = ``start`` (one day).
        hours: booked hours **on each date** of the range (0–24 h).

    Raises:
        ValueError: ``hours`` not finite or outside 0–24, or ``end`` before ``start``.
    """

    machine_id: str
    start: date
    end: date | None = None
    hours: float

    def __post_init__(self) -> None:
        if not (isinstance(self.hours, int | float) and math.isfinite(self.hours)):
            raise ValueError(f"booking hours must be a finite number, got {self.hours!r}")
        if not 0.0 <= self.hours <= 24.0:
            raise ValueError(f"booking hours per day must be within 0..24 h, got {self.hours}")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"booking end {self.end} is before its start {self.start}")

    @property
    def last(self) -> date:
        """Last date booked (inclusive)."""
        return self.start if self.end is None else self.end


@dataclass(frozen=True, eq=False, kw_only=True)
class SpareCapacity:
    """Result of :func:`compute_spare`: per machine × day arrays (read-only ``float64``).

    Attributes:
        machines: machine ids, one per row, in the order given.
        start: the site-local date of column 0; column ``j`` is ``start + j`` days.
        available_h: scheduled hours, shape ``(machines, days)``.
        booked_h: booked hours (may exceed ``available_h``).
        downtime_h: expected downtime ``available_h * (1 - ratio)``.
        spare_h: ``max(0, available_h - booked_h - downtime_h)``.
        availability_ratio: ratio used per machine, shape ``(machines,)``, in [0, 1].
        ratio_measured: ``True`` where the ratio came from measurements, ``False`` where
            the default was used.
        machine_index: machine id -> row.
    """

    machines: tuple[str, ...]
    start: date
    available_h: FloatArray
    booked_h: FloatArray
    downtime_h: FloatArray
    spare_h: FloatArray
    availability_ratio: FloatArray
    ratio_measured: npt.NDArray[np.bool_]
    machine_index: Mapping[str, int] = field(repr=False)

    @property
    def days(self) -> int:
        """Number of days (columns) in the horizon."""
        return int(self.spare_h.shape[1])

    @property
    def dates(self) -> list[date]:
        """The site-local date of each column."""
        return [self.start + timedelta(days=j) for j in range(self.days)]


def _ratios(
    machines: Sequence[str], availability: Mapping[str, float] | None, default_ratio: float
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    n = len(machines)
    ratio = np.full(n, default_ratio, dtype=np.float64)
    measured = np.zeros(n, dtype=np.bool_)
    if availability:
        for i, machine in enumerate(machines):
            value = availability.get(machine)
            if value is not None and math.isfinite(value):
                ratio[i] = value
                measured[i] = True
    np.clip(ratio, 0.0, 1.0, out=ratio)
    return ratio, measured


def _booked(
    bookings: Iterable[Booking],
    index: Mapping[str, int],
    start: date,
    days: int,
    unknown_machines: Literal["error", "ignore"],
) -> FloatArray:
    n = len(index)
    items = list(bookings)
    rows_all = np.fromiter((index.get(b.machine_id, -1) for b in items), np.int64, len(items))
    unknown = rows_all < 0
    if unknown_machines == "error" and unknown.any():
        names = sorted({items[i].machine_id for i in np.flatnonzero(unknown)[:1000]})
        raise ValueError(
            f"{int(unknown.sum())} booking(s) name machines not in the machine list, e.g. "
            f"{names[:5]}; pass unknown_machines='ignore' to skip them"
        )
    if not items or days == 0:
        return np.zeros((n, days), dtype=np.float64)
    origin = start.toordinal()
    first = np.fromiter((b.start.toordinal() for b in items), np.int64, len(items)) - origin
    last = np.fromiter((b.last.toordinal() for b in items), np.int64, len(items)) - origin
    hours = np.fromiter((b.hours for b in items), np.float64, len(items))
    # Clip ranges to the horizon; drop unknown machines, empty ranges and zero hours.
    s = np.clip(first, 0, None)
    e = np.clip(last, None, days - 1)
    keep = ~unknown & (s <= e) & (hours > 0)
    r, s, e, h = rows_all[keep], s[keep], e[keep], hours[keep]
    lengths = e - s + 1
    total = int(lengths.sum())
    if total == 0:
        return np.zeros((n, days), dtype=np.float64)
    # Expand each booking [s, e] into one (row, day) cell per day, then sum per cell.
    ends = np.cumsum(lengths)
    day = (
        np.arange(total, dtype=np.int64)
        - np.repeat(ends - lengths, lengths)
        + np.repeat(s, lengths)
    )
    flat = np.repeat(r, lengths) * days + day
    booked = np.bincount(flat, weights=np.repeat(h, lengths), minlength=n * days)
    return booked.astype(np.float64, copy=False).reshape(n, days)


def compute_spare(
    machines: Sequence[str],
    *,
    start: date,
    calendars: Mapping[str, ShiftCalendar] | None = None,
    default_calendar: ShiftCalendar | None = None,
    bookings: Iterable[Booking] = (),
    availability: Mapping[str, float] | None = None,
    default_ratio: float = DEFAULT_AVAILABILITY_RATIO,
    days: int = HORIZON_DAYS,
    unknown_machines: Literal["error", "ignore"] = "error",
) -> SpareCapacity:
    """Spare hours per machine per day for ``days`` days from ``start`` (see module doc).

    Args:
        machines: machine ids (unique), one row each.
        start: first site-local date of the horizon (usually today at the site).
        calendars: machine id -> shift calendar.
        default_calendar: calendar of machines missing from ``calendars``.
        bookings: booked hours; ranges are clipped to the horizon.
        availability: machine id -> measured availability ratio (clamped to [0, 1]);
            missing or NaN -> ``default_ratio``.
        default_ratio: ratio for machines without a measurement (default 0.9).
        days: horizon length in days (default 84 = 12 weeks), >= 0.
        unknown_machines: what to do with bookings for machines not in ``machines``:
            ``"error"`` (default) raises, ``"ignore"`` skips them.

    Returns:
        A :class:`SpareCapacity` with read-only arrays of shape ``(len(machines), days)``.

    Raises:
        ValueError: duplicate machine ids, ``days < 0``, ``default_ratio`` outside [0, 1],
            a machine without calendar and no ``default_calendar``, or (with
            ``unknown_machines="error"``) bookings for unknown machines.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if not (math.isfinite(default_ratio) and 0.0 <= default_ratio <= 1.0):
        raise ValueError(f"default_ratio must be within [0, 1], got {default_ratio}")
    index = {m: i for i, m in enumerate(machines)}
    if len(index) != len(machines):
        raise ValueError("machine ids must be unique")
    cal_map = calendars or {}
    per_machine: list[ShiftCalendar] = []
    missing: list[str] = []
    for m in machines:
        cal = cal_map.get(m, default_calendar)
        if cal is None:
            missing.append(m)
        else:
            per_machine.append(cal)
    if missing:
        raise ValueError(
            f"{len(missing)} machine(s) have no calendar and no default_calendar was given, "
            f"e.g. {missing[:5]}"
        )
    available = available_hours_matrix(per_machine, start, days)
    booked = _booked(bookings, index, start, days, unknown_machines)
    ratio, measured = _ratios(machines, availability, default_ratio)
    downtime = available * (1.0 - ratio)[:, None]
    spare = available - booked
    spare -= downtime
    np.maximum(spare, 0.0, out=spare)
    for array in (available, booked, downtime, spare, ratio, measured):
        array.flags.writeable = False
    return SpareCapacity(
        machines=tuple(machines),
        start=start,
        available_h=available,
        booked_h=booked,
        downtime_h=downtime,
        spare_h=spare,
        availability_ratio=ratio,
        ratio_measured=measured,
        machine_index=index,
    )
