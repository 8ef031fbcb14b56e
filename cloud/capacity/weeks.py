"""ISO 8601 week helpers (weeks start on Monday; week 1 contains the year's first Thursday).

Catena-X CX-0128 (Demand and Capacity Management) identifies a week by the date of its
Monday (``pointInTime``), so the Monday date is the key used throughout this package. The
ISO week-numbering year can differ from the calendar year near 1 January: 2026-12-28 is
Monday of week 53 of 2026, and 2027-01-03 (a Sunday) still belongs to 2026-W53.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = ["iso_week_label", "iso_week_monday"]


def iso_week_monday(day: date) -> date:
    """The Monday of the ISO 8601 week containing ``day``."""
    return day - timedelta(days=day.weekday())


def iso_week_label(day: date) -> str:
    """ISO 8601 week label of ``day``, e.g. ``2026-W53`` (week-numbering year, 2-digit week)."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"
