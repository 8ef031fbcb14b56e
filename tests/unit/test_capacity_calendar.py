"""Shift calendars: weekly pattern, holidays, exceptions, site-local days (Asia/Tokyo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from renkei.cloud.capacity import (
    ShiftCalendar,
    available_hours,
    available_hours_matrix,
    day_start_utc,
    local_date,
)

# Mon–Fri two 8 h shifts, Saturday one 8 h shift, Sunday closed.
TWO_SHIFT = ShiftCalendar.from_shifts(
    {"mon": [8, 8], "tue": [8, 8], "wed": [8, 8], "thu": [8, 8], "fri": [8, 8], "sat": [8]},
    holidays=[date(2026, 1, 12), date(2026, 1, 1)],  # Coming-of-Age Day (Mon), New Year
    exceptions={date(2026, 1, 12): 8.0, date(2026, 1, 14): 0.0, date(2026, 1, 18): 4.0},
)


def test_weekly_pattern() -> None:
    assert TWO_SHIFT.weekly_hours == (16, 16, 16, 16, 16, 8, 0)
    assert TWO_SHIFT.timezone == "Asia/Tokyo"
    assert available_hours(TWO_SHIFT, date(2026, 1, 5)) == 16.0  # Monday
    assert available_hours(TWO_SHIFT, date(2026, 1, 10)) == 8.0  # Saturday
    assert available_hours(TWO_SHIFT, date(2026, 1, 11)) == 0.0  # Sunday


def test_holidays_and_exceptions_precedence() -> None:
    assert available_hours(TWO_SHIFT, date(2026, 1, 1)) == 0.0  # holiday on a Thursday
    assert available_hours(TWO_SHIFT, date(2026, 1, 12)) == 8.0  # exception beats holiday
    assert available_hours(TWO_SHIFT, date(2026, 1, 14)) == 0.0  # maintenance day
    assert available_hours(TWO_SHIFT, date(2026, 1, 18)) == 4.0  # Sunday overtime


def test_from_shifts_keys_and_validation() -> None:
    cal = ShiftCalendar.from_shifts({0: [7.5], "FRI": [4, 4], "fri": [2]})
    assert cal.weekly_hours == (7.5, 0, 0, 0, 10, 0, 0)
    with pytest.raises(ValueError, match="unknown weekday"):
        ShiftCalendar.from_shifts({"monday": [8]})
    with pytest.raises(ValueError, match="weekday must be"):
        ShiftCalendar.from_shifts({7: [8]})
    with pytest.raises(ValueError, match="finite"):
        ShiftCalendar.from_shifts({0: [-1]})
    with pytest.raises(ValueError, match="finite"):
        ShiftCalendar.from_shifts({0: [float("nan")]})
    with pytest.raises(ValidationError):  # 3 x 9 h > 24 h
        ShiftCalendar.from_shifts({0: [9, 9, 9]})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekly_hours": (8, 8, 8, 8, 8, 0)},
        {"weekly_hours": (8, 8, 8, 8, 8, 0, 25)},
        {"weekly_hours": (8, 8, 8, 8, 8, 0, float("inf"))},
        {"weekly_hours": (8,) * 7, "exceptions": {date(2026, 1, 1): -1}},
        {"weekly_hours": (8,) * 7, "timezone": "Mars/Olympus"},
        {"weekly_hours": (8,) * 7, "shifts": 2},
    ],
)
def test_invalid_calendars_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ShiftCalendar.model_validate(kwargs)


def test_calendar_is_frozen_and_json_round_trips() -> None:
    with pytest.raises(ValidationError):
        TWO_SHIFT.timezone = "UTC"  # type: ignore[misc]
    again = ShiftCalendar.model_validate_json(TWO_SHIFT.model_dump_json())
    assert again == TWO_SHIFT


def test_matrix_matches_scalar_and_ignores_dates_outside_horizon() -> None:
    other = ShiftCalendar(weekly_hours=(24,) * 7, holidays=frozenset({date(2025, 12, 31)}))
    cals = [TWO_SHIFT, other, TWO_SHIFT]
    start = date(2026, 1, 2)
    m = available_hours_matrix(cals, start, 20)
    assert m.shape == (3, 20)
    expected = [[available_hours(c, start + timedelta(j)) for j in range(20)] for c in cals]
    np.testing.assert_array_equal(m, np.array(expected))
    assert available_hours_matrix(cals, start, 0).shape == (3, 0)
    assert available_hours_matrix([], start, 5).shape == (0, 5)
    with pytest.raises(ValueError, match="days"):
        available_hours_matrix(cals, start, -1)


def test_tokyo_days_are_24_hours_all_year_no_dst() -> None:
    day = date(2026, 1, 1)
    while day.year == 2026:
        begin = day_start_utc(TWO_SHIFT, day)
        assert begin == datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=9)
        assert day_start_utc(TWO_SHIFT, day + timedelta(1)) - begin == timedelta(hours=24)
        day += timedelta(1)
    # Zones with DST do have 23 h days (Europe/Berlin, last Sunday of March 2026).
    assert day_start_utc("Europe/Berlin", date(2026, 3, 30)) - day_start_utc(
        "Europe/Berlin", date(2026, 3, 29)
    ) == timedelta(hours=23)


def test_local_date_uses_site_time_zone() -> None:
    # 15:00 UTC is already the next day in Tokyo, also on the US/EU DST switch dates.
    assert local_date(TWO_SHIFT, datetime(2026, 3, 8, 15, 0, tzinfo=UTC)) == date(2026, 3, 9)
    assert local_date(TWO_SHIFT, datetime(2026, 3, 8, 14, 59, tzinfo=UTC)) == date(2026, 3, 8)
    est = timezone(timedelta(hours=-5))
    assert local_date(TWO_SHIFT, datetime(2026, 12, 31, 10, 0, tzinfo=est)) == date(2027, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(TWO_SHIFT, datetime(2026, 1, 1, 12, 0))
