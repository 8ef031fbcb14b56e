"""Property tests: for random calendars, bookings and ratios the invariants hold.

- 0 <= spare <= available for every machine and day, and spare = max(0, A*r - B);
- per class and week, 0 <= actualCapacity <= maximumCapacity, and weekly sums equal the
  daily sums over the days each week covers;
- the vectorised calendar matrix equals the scalar definition.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.cloud.capacity import (
    Booking,
    ShiftCalendar,
    available_hours,
    available_hours_matrix,
    compute_spare,
    rollup,
    to_catenax_json,
)

BASE = date(2026, 12, 1)
HOURS = st.floats(min_value=0, max_value=24, allow_nan=False)
DAY = st.integers(min_value=-10, max_value=60).map(lambda k: BASE + timedelta(k))


@st.composite
def calendars(draw: st.DrawFn) -> ShiftCalendar:
    weekly = draw(st.tuples(*[HOURS] * 7))
    holidays = draw(st.frozensets(DAY, max_size=6))
    exceptions = draw(st.dictionaries(DAY, HOURS, max_size=6))
    return ShiftCalendar(weekly_hours=weekly, holidays=holidays, exceptions=exceptions)


@st.composite
def bookings(draw: st.DrawFn, machines: int) -> Booking:
    start = draw(DAY)
    length = draw(st.integers(min_value=0, max_value=20))
    return Booking(
        machine_id=f"m{draw(st.integers(0, machines - 1))}",
        start=start,
        end=start + timedelta(length) if length else None,
        hours=draw(HOURS),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, ...]:
    n = draw(st.integers(min_value=1, max_value=6))
    cals = draw(st.lists(calendars(), min_size=1, max_size=3))
    calendar_of = {f"m{i}": cals[draw(st.integers(0, len(cals) - 1))] for i in range(n)}
    books = draw(st.lists(bookings(n), max_size=25))
    ratio = st.one_of(st.floats(-0.5, 1.5), st.just(math.nan))
    availability = draw(st.dictionaries(st.sampled_from(sorted(calendar_of)), ratio))
    start = BASE + timedelta(draw(st.integers(0, 13)))
    days = draw(st.integers(min_value=0, max_value=45))
    return calendar_of, books, availability, start, days


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_spare_bounds_and_weekly_rollup(scenario: tuple[object, ...]) -> None:
    calendar_of, books, availability, start, days = scenario
    assert isinstance(calendar_of, dict) and isinstance(books, list)
    assert isinstance(availability, dict) and isinstance(start, date) and isinstance(days, int)
    machines = sorted(calendar_of)
    sp = compute_spare(
        machines,
        start=start,
        calendars=calendar_of,
        bookings=books,
        availability=availability,
        days=days,
    )
    a, b, s = sp.available_h, sp.booked_h, sp.spare_h
    assert (s >= 0).all() and (s <= a).all()
    assert (sp.downtime_h >= 0).all() and (sp.downtime_h <= a).all()
    r = sp.availability_ratio[:, None]
    np.testing.assert_allclose(s, np.maximum(0.0, a * r - b), atol=1e-9)
    # Booked hours: scalar re-computation.
    for i, m in enumerate(machines):
        for j in range(days):
            d = start + timedelta(j)
            expected = sum(x.hours for x in books if x.machine_id == m and x.start <= d <= x.last)
            assert math.isclose(b[i, j], expected, abs_tol=1e-9)
    classes = {m: ("big" if k % 2 else "small") for k, m in enumerate(machines)}
    weekly = rollup(sp, classes)
    daily = rollup(sp, classes, granularity="day")
    for cls, series in weekly.items():
        by_day = {p.period_start: p for p in daily[cls].points}
        for p in series.points:
            assert 0 <= p.actual_h <= p.maximum_h
            assert p.period_start.weekday() == 0 and 1 <= p.days <= 7
            covered = [d for d in by_day if p.period_start <= d < p.period_start + timedelta(7)]
            assert len(covered) == p.days
            assert math.isclose(
                p.maximum_h, sum(by_day[d].maximum_h for d in covered), abs_tol=1e-6
            )
            assert math.isclose(p.actual_h, sum(by_day[d].actual_h for d in covered), abs_tol=1e-6)
        doc = to_catenax_json(series, supplier="BPNL000000000ABC", customer="BPNL000000000XYZ")
        assert all(0 <= c["actualCapacity"] <= c["maximumCapacity"] for c in doc["capacities"])


@settings(max_examples=100, deadline=None)
@given(st.lists(calendars(), min_size=1, max_size=4), st.integers(-15, 15), st.integers(0, 80))
def test_matrix_equals_scalar(cals: list[ShiftCalendar], offset: int, days: int) -> None:
    start = BASE + timedelta(offset)
    m = available_hours_matrix(cals + cals[:1], start, days)
    for i, cal in enumerate(cals + cals[:1]):
        assert m[i].tolist() == [available_hours(cal, start + timedelta(j)) for j in range(days)]
