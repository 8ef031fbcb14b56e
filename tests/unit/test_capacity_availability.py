"""Availability from daily up hours (the pure half of the InfluxDB reader)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from renkei.cloud.capacity import ShiftCalendar, availability_from_daily

CAL = ShiftCalendar(weekly_hours=(8, 8, 8, 8, 8, 0, 0), holidays=frozenset({date(2026, 1, 7)}))
MON = date(2026, 1, 5)
END = MON + timedelta(7)


def _days(*hours: float) -> dict[date, float]:
    return {MON + timedelta(k): h for k, h in enumerate(hours)}


def test_clip_to_schedule_and_observed_span() -> None:
    up = {
        # Overtime (10 h) and weekend work are clipped; the holiday (Wed) is not scheduled.
        "full": _days(10, 8, 5, 8, 8, 6, 3),
        # Connected on Thursday: judged on Thu..Sun only (16 scheduled hours).
        "late": _days(0, 0, 0, 4, 8),
        "half": _days(4, 4, 4, 4, 4),
    }
    est = availability_from_daily(up, window_end=END, days=7, default_calendar=CAL)
    assert est["full"].ratio == 1.0 and est["full"].scheduled_h == 32.0
    assert (est["late"].ratio, est["late"].first_day, est["late"].scheduled_h) == (
        0.75,
        MON + timedelta(3),
        16.0,
    )
    assert est["half"].ratio == 0.5
    assert est["half"].up_h == 16.0  # the holiday's 4 h do not count
    assert all(e.window_end == END for e in est.values())


def test_unknown_machines() -> None:
    up = {
        "weekend_only": {MON + timedelta(5): 8.0},  # no scheduled hours in its span
        "before_window": {MON - timedelta(1): 8.0},
        "zero": _days(0, 0),
        "no_calendar": _days(8),
    }
    cals = {k: CAL for k in ("weekend_only", "before_window", "zero")}
    assert availability_from_daily(up, window_end=END, days=7, calendars=cals) == {}
    with pytest.raises(ValueError, match="days"):
        availability_from_daily(up, window_end=END, days=0)


def test_per_machine_calendar_beats_default() -> None:
    night = ShiftCalendar(weekly_hours=(16,) * 7)
    up = {"a": _days(8, 8, 8, 8, 8, 8, 8), "b": _days(8, 8, 8, 8, 8, 8, 8)}
    est = availability_from_daily(
        up, window_end=END, days=7, calendars={"a": night}, default_calendar=CAL
    )
    assert est["a"].ratio == 0.5 and est["b"].ratio == 1.0
