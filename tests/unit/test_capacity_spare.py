"""Spare hours per machine per day: calendar - bookings - expected downtime, clamped at 0."""

from __future__ import annotations

import math
import time
from datetime import date, timedelta

import numpy as np
import pytest

from renkei.cloud.capacity import (
    DEFAULT_AVAILABILITY_RATIO,
    HORIZON_DAYS,
    Booking,
    ShiftCalendar,
    compute_spare,
)

MON = date(2026, 1, 5)
CAL = ShiftCalendar(weekly_hours=(16, 16, 16, 16, 16, 8, 0))


def test_formula_with_measured_and_default_ratio() -> None:
    sp = compute_spare(
        ["a", "b"],
        start=MON,
        default_calendar=CAL,
        bookings=[Booking(machine_id="a", start=MON, hours=6)],
        availability={"a": 0.75},
    )
    assert sp.days == HORIZON_DAYS and sp.spare_h.shape == (2, 84)
    assert sp.dates[0] == MON and sp.dates[-1] == MON + timedelta(83)
    # a, Monday: 16 available, 6 booked, 16 * 0.25 = 4 expected downtime -> 6 spare.
    assert sp.available_h[0, 0] == 16.0
    assert sp.booked_h[0, 0] == 6.0
    assert sp.downtime_h[0, 0] == 4.0
    assert sp.spare_h[0, 0] == 6.0
    # b has no measurement: default 0.9 -> 16 * 0.9 = 14.4 spare on Monday, 7.2 Saturday.
    assert sp.availability_ratio.tolist() == [0.75, DEFAULT_AVAILABILITY_RATIO]
    assert sp.ratio_measured.tolist() == [True, False]
    assert sp.spare_h[1, 0] == pytest.approx(14.4)
    assert sp.spare_h[1, 5] == pytest.approx(7.2)
    assert sp.spare_h[1, 6] == 0.0
    assert sp.machine_index == {"a": 0, "b": 1}


def test_bookings_over_availability_clamp_to_zero() -> None:
    sp = compute_spare(
        ["a"],
        start=MON,
        default_calendar=CAL,
        bookings=[
            Booking(machine_id="a", start=MON, hours=12),
            Booking(machine_id="a", start=MON, end=MON + timedelta(6), hours=10),
        ],
        availability={"a": 1.0},
        days=7,
    )
    assert sp.booked_h[0].tolist() == [22, 10, 10, 10, 10, 10, 10]  # kept as uploaded
    assert sp.spare_h[0].tolist() == [0, 6, 6, 6, 6, 0, 0]
    assert (sp.spare_h >= 0).all()


def test_ranges_are_clipped_to_the_horizon() -> None:
    sp = compute_spare(
        ["a"],
        start=MON,
        default_calendar=CAL,
        bookings=[
            Booking(machine_id="a", start=MON - timedelta(10), end=MON + timedelta(1), hours=1),
            Booking(machine_id="a", start=MON + timedelta(5), end=MON + timedelta(100), hours=2),
            Booking(machine_id="a", start=MON - timedelta(3), hours=5),  # before: ignored
            Booking(machine_id="a", start=MON + timedelta(7), hours=0),  # nothing booked
        ],
        days=7,
    )
    assert sp.booked_h[0].tolist() == [1, 1, 0, 0, 0, 2, 2]


def test_ratio_clamping_and_nan() -> None:
    sp = compute_spare(
        ["hi", "lo", "nan", "missing"],
        start=MON,
        default_calendar=CAL,
        availability={"hi": 1.5, "lo": -0.2, "nan": math.nan},
        default_ratio=0.5,
        days=1,
    )
    assert sp.availability_ratio.tolist() == [1.0, 0.0, 0.5, 0.5]
    assert sp.ratio_measured.tolist() == [True, True, False, False]
    assert sp.spare_h[:, 0].tolist() == [16.0, 0.0, 8.0, 8.0]
    assert sp.downtime_h[:, 0].tolist() == [0.0, 16.0, 8.0, 8.0]


def test_per_machine_calendars_and_errors() -> None:
    night = ShiftCalendar(weekly_hours=(24,) * 7)
    sp = compute_spare(["a", "b"], start=MON, calendars={"a": night}, default_calendar=CAL, days=1)
    assert sp.available_h[:, 0].tolist() == [24.0, 16.0]
    with pytest.raises(ValueError, match="no calendar"):
        compute_spare(["a", "b"], start=MON, calendars={"a": night})
    with pytest.raises(ValueError, match="unique"):
        compute_spare(["a", "a"], start=MON, default_calendar=CAL)
    with pytest.raises(ValueError, match="days"):
        compute_spare(["a"], start=MON, default_calendar=CAL, days=-1)
    with pytest.raises(ValueError, match="default_ratio"):
        compute_spare(["a"], start=MON, default_calendar=CAL, default_ratio=1.1)


def test_unknown_machines_in_bookings() -> None:
    stray = [
        Booking(machine_id="zz", start=MON, hours=3),
        Booking(machine_id="a", start=MON, hours=1),
    ]
    with pytest.raises(ValueError, match=r"1 booking\(s\).*'zz'"):
        compute_spare(["a"], start=MON, default_calendar=CAL, bookings=stray)
    sp = compute_spare(
        ["a"], start=MON, default_calendar=CAL, bookings=stray, unknown_machines="ignore", days=2
    )
    assert sp.booked_h[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("hours", "end", "match"),
    [
        (25.0, None, "0..24"),
        (-1.0, None, "0..24"),
        (math.nan, None, "finite"),
        (math.inf, None, "finite"),
        (8.0, MON - timedelta(1), "before its start"),
    ],
)
def test_booking_validation(hours: float, end: date | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Booking(machine_id="a", start=MON, end=end, hours=hours)


def test_results_are_read_only_and_empty_cases_work() -> None:
    sp = compute_spare(["a"], start=MON, default_calendar=CAL, days=3)
    with pytest.raises(ValueError, match="read-only"):
        sp.spare_h[0, 0] = 1.0
    assert compute_spare([], start=MON, days=3).spare_h.shape == (0, 3)
    zero = compute_spare(
        ["a"],
        start=MON,
        default_calendar=CAL,
        days=0,
        bookings=[Booking(machine_id="a", start=MON, hours=1)],
    )
    assert zero.spare_h.shape == (1, 0)


def test_ten_thousand_machines_twelve_weeks_is_fast() -> None:
    n = 10_000
    machines = [f"m{i}" for i in range(n)]
    rng = np.random.default_rng(1)
    sites = [
        ShiftCalendar(weekly_hours=(16, 16, 16, 16, 16, 8, 0), holidays=frozenset({MON}))
        for _ in range(20)
    ]
    calendars = {m: sites[i % 20] for i, m in enumerate(machines)}
    offsets = rng.integers(-3, 90, size=5 * n)
    bookings = [
        Booking(machine_id=machines[i % n], start=MON + timedelta(int(o)), hours=8.0)
        for i, o in enumerate(offsets)
    ]
    availability = {m: float(r) for m, r in zip(machines, rng.random(n), strict=True)}
    t0 = time.perf_counter()
    sp = compute_spare(
        machines, start=MON, calendars=calendars, bookings=bookings, availability=availability
    )
    elapsed = time.perf_counter() - t0
    assert sp.spare_h.shape == (n, 84)
    assert elapsed < 1.0, f"{elapsed:.3f} s for 10k machines x 84 days"
    # Cross-check a few rows against the scalar definition.
    for i in (0, 1, n - 1):
        a, b, r = sp.available_h[i], sp.booked_h[i], sp.availability_ratio[i]
        np.testing.assert_allclose(sp.spare_h[i], np.maximum(0, a - b - a * (1 - r)))
