"""Roll spare capacity up per capability class, per day or per ISO week.

Mapping to Catena-X CX-0128 (Demand and Capacity Management), aspect model
``WeekBasedCapacityGroup``: one capability class (:mod:`renkei.cloud.capacity.classes`) is one
*capacity group*, and each point carries, in hours (``unitOfMeasure`` =
``unit:hourUnitOfTime``):

=====================  =====================================================================
DCM term               Renkei value (sum over the class's machines and the period's days)
=====================  =====================================================================
``pointInTime``        the date (day granularity) or the ISO week's Monday (week granularity)
``maximumCapacity``    available (scheduled) hours: the most the class could work
``actualCapacity``     spare hours = max(0, available - booked - expected downtime) per
                       machine and day: what can realistically be offered to partners
``agreedCapacity``     hours reserved for partners by agreement (an input; default 0). As in
                       CX-0128 it is not a legal obligation to deliver.
=====================  =====================================================================

So ``0 <= actualCapacity <= maximumCapacity`` holds for every point. DCM's
``demandCategory`` belongs to linked customer demand series, which Renkei does not use.

Weeks: ISO 8601 weeks (Monday–Sunday). When the horizon does not start on a Monday, the
first week covers only its days from the start date on ("rest of this week": earlier
days are past); a trailing week that the horizon does not cover up to its Sunday is left
out, so no future week is under-reported. ``CapacityPoint.days`` says how many days a
point covers. Day granularity exists for sharing policies that allow it; week is what
CX-0128 exchanges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from renkei.cloud.capacity.classes import CapabilityClass
from renkei.cloud.capacity.spare import SpareCapacity
from renkei.cloud.capacity.weeks import iso_week_monday

__all__ = ["CapacityPoint", "CapacitySeries", "Granularity", "rollup"]

Granularity = Literal["day", "week"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPoint:
    """Capacity of one class in one period (hours).

    Attributes:
        period_start: the day, or the Monday of the ISO week.
        days: days of the horizon inside the period (1 for a day; 1–7 for a week).
        maximum_h: available hours (DCM ``maximumCapacity``).
        actual_h: spare hours (DCM ``actualCapacity``), 0 <= actual_h <= maximum_h.
        agreed_h: hours reserved for partners by agreement (DCM ``agreedCapacity``).
    """

    period_start: date
    days: int
    maximum_h: float
    actual_h: float
    agreed_h: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySeries:
    """The capacity time series of one capability class (one DCM capacity group).

    Attributes:
        capability_class: class id, e.g. ``injection_molding:1000-2000kN``.
        granularity: ``"day"`` or ``"week"``.
        machines: machine ids aggregated in the class (internal: do not publish).
        points: one point per period, in date order.
    """

    capability_class: str
    granularity: Granularity
    machines: tuple[str, ...]
    points: tuple[CapacityPoint, ...]


def _periods(start: date, days: int, granularity: Granularity) -> tuple[list[int], int]:
    """Column offsets where periods begin, and how many leading periods to report."""
    if granularity == "day":
        return list(range(days)), days
    if days == 0:
        return [], 0
    offsets = [0] + [j for j in range(1, days) if (start + timedelta(j)).weekday() == 0]
    last_day = start + timedelta(days - 1)
    keep = len(offsets) if last_day.weekday() == 6 else len(offsets) - 1
    return offsets, keep


def rollup(
    spare: SpareCapacity,
    classes: Mapping[str, str | CapabilityClass],
    *,
    granularity: Granularity = "week",
    agreed: Mapping[tuple[str, date], float] | None = None,
) -> dict[str, CapacitySeries]:
    """Sum available and spare hours per capability class and period.

    Args:
        spare: per machine × day result of :func:`renkei.cloud.capacity.spare.compute_spare`.
        classes: machine id -> capability class (id string or :class:`CapabilityClass`).
            Machines of ``spare`` missing here are not rolled up (not shared); entries for
            machines not in ``spare`` are ignored.
        granularity: ``"week"`` (ISO weeks, default) or ``"day"``.
        agreed: (class id, period start) -> agreed hours for partners, >= 0; the period
            start is the date (day) or the ISO week's Monday (week). Missing -> 0.

    Returns:
        class id -> :class:`CapacitySeries`, sorted by class id.

    Raises:
        ValueError: unknown granularity, negative or non-finite agreed hours, or (week
            granularity) an agreed key whose date is not a Monday.
    """
    if granularity not in ("day", "week"):
        raise ValueError(f"granularity must be 'day' or 'week', got {granularity!r}")
    agreed = agreed or {}
    for (cls, period), hours in agreed.items():
        if not (math.isfinite(hours) and hours >= 0):
            raise ValueError(f"agreed hours for {cls} {period} must be finite and >= 0")
        if granularity == "week" and period.weekday() != 0:
            raise ValueError(f"agreed week {period} for {cls} is not a Monday (ISO week start)")
    rows: list[int] = []
    labels: list[str] = []
    for machine, cls_value in classes.items():
        row = spare.machine_index.get(machine)
        if row is not None:
            rows.append(row)
            labels.append(str(cls_value))
    if not rows:
        return {}
    days = spare.days
    uniq, inverse = np.unique(np.asarray(labels), return_inverse=True)
    n_cls = len(uniq)
    flat = (inverse[:, None] * days + np.arange(days)).ravel()
    row_idx = np.asarray(rows, dtype=np.intp)

    def per_class(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        sums = np.bincount(flat, weights=values[row_idx].ravel(), minlength=n_cls * days)
        return sums.astype(np.float64, copy=False).reshape(n_cls, days)

    maximum = per_class(spare.available_h)
    actual = per_class(spare.spare_h)
    offsets, keep = _periods(spare.start, days, granularity)
    if offsets:
        maximum = np.add.reduceat(maximum, offsets, axis=1)[:, :keep]
        actual = np.add.reduceat(actual, offsets, axis=1)[:, :keep]
    else:
        maximum = actual = np.zeros((n_cls, 0))
    # Per machine and day spare <= available; summing both in the same order keeps it so.
    # The clamp only guards the invariant 0 <= actual <= maximum against any rounding.
    actual = np.clip(actual, 0.0, maximum)
    period_starts = [spare.start + timedelta(o) for o in offsets[:keep]]
    if granularity == "week":
        period_starts = [iso_week_monday(d) for d in period_starts]
    bounds = offsets[:keep] + [offsets[keep] if keep < len(offsets) else days]
    lengths = [b - a for a, b in itertools.pairwise(bounds)]
    members: dict[str, list[str]] = {str(c): [] for c in uniq}
    for machine, label in zip((spare.machines[r] for r in rows), labels, strict=True):
        members[label].append(machine)
    result: dict[str, CapacitySeries] = {}
    for c, cls_id in enumerate(uniq.tolist()):
        points = tuple(
            CapacityPoint(
                period_start=period_starts[p],
                days=lengths[p],
                maximum_h=float(maximum[c, p]),
                actual_h=float(actual[c, p]),
                agreed_h=float(agreed.get((cls_id, period_starts[p]), 0.0)),
            )
            for p in range(len(period_starts))
        )
        result[cls_id] = CapacitySeries(
            capability_class=cls_id,
            granularity=granularity,
            machines=tuple(members[cls_id]),
            points=points,
        )
    return result
