"""Haversine distance, demand in the horizon, hours per volume."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from renkei.cloud.planner import Job, PlannerInputError, haversine_km, hours_for_parts, needed_parts
from renkei.cloud.planner.demand import parts_per_hour
from renkei.cloud.planner.geo import haversine_km_array
from tests.unit.test_planner_support import KM_PER_DEG_LAT, mold


def test_haversine_known_distances() -> None:
    # Tokyo Station – Osaka Station, straight line ≈ 403 km.
    assert haversine_km(35.6812, 139.7671, 34.7025, 135.4959) == pytest.approx(403.06, abs=0.5)
    # One degree of latitude on the mean sphere = R·π/180 ≈ 111.195 km.
    assert haversine_km(35.0, 137.0, 36.0, 137.0) == pytest.approx(KM_PER_DEG_LAT, rel=1e-9)
    assert haversine_km(35.0, 137.0, 35.0, 137.0) == 0.0
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(KM_PER_DEG_LAT * 180, rel=1e-9)


def test_haversine_array_broadcasts_and_matches_scalar() -> None:
    lat = np.array([35.0, 36.0, 34.5])
    lon = np.array([137.0, 138.0, 135.5])
    d = haversine_km_array(35.0, 137.0, lat, lon)
    assert d.shape == (3,)
    for i in range(3):
        assert d[i] == haversine_km(35.0, 137.0, float(lat[i]), float(lon[i]))


def _job(weekly: int, start: date, end: date) -> Job:
    return Job(
        job_id="J",
        part_id="P",
        mold_id="M1",
        weekly_volume_parts=weekly,
        window_start=start,
        window_end=end,
    )


@pytest.mark.parametrize(
    ("window", "horizon", "parts"),
    [
        ((date(2026, 1, 5), date(2026, 1, 12)), (date(2026, 1, 5), date(2026, 1, 12)), 1000),
        ((date(2026, 1, 1), date(2026, 3, 1)), (date(2026, 1, 5), date(2026, 1, 19)), 2000),
        # 3 days of overlap: ceil(1000 × 3 / 7) = 429 (a partial part is still owed)
        ((date(2026, 1, 9), date(2026, 2, 1)), (date(2026, 1, 5), date(2026, 1, 12)), 429),
        ((date(2026, 2, 1), date(2026, 3, 1)), (date(2026, 1, 5), date(2026, 1, 12)), 0),
    ],
)
def test_needed_parts_prorates_the_overlap(
    window: tuple[date, date], horizon: tuple[date, date], parts: int
) -> None:
    j = _job(1000, *window)
    assert needed_parts(j, horizon_start=horizon[0], horizon_end=horizon[1]) == parts


def test_hours_formula() -> None:
    m = mold(cavities=2, cycle_s=30.0)
    # volume / cavities × cycle_time_s / 3600: 2400 / 2 × 30 / 3600 = 10 h
    assert hours_for_parts(2400, m) == pytest.approx(10.0)
    assert parts_per_hour(m) == pytest.approx(240.0)


def test_job_validation() -> None:
    with pytest.raises(PlannerInputError, match="window_end"):
        _job(10, date(2026, 1, 5), date(2026, 1, 5))
    with pytest.raises(PlannerInputError, match="weekly_volume_parts"):
        _job(-1, date(2026, 1, 5), date(2026, 1, 6))
