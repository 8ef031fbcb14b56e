"""Builders shared by the planner tests (no tests here).

Geometry: the requester's disrupted site ``REQ-S0`` is at 35.0 N 137.0 E with a 50 km
disruption zone around it; :func:`north` places a site a given number of km due north.
Horizon: one week, so ``weekly_volume_parts`` = parts needed. The default mold makes
240 parts/h (2 cavities, 30 s), so 2,400 parts = 10 machine hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from renkei.cloud.planner import (
    CompatRules,
    DisruptionZone,
    Job,
    MachineSpec,
    MoldSpec,
    PlanContext,
    SearchSettings,
    SolverSettings,
)
from renkei.cloud.planner.geo import EARTH_RADIUS_KM

REQ = "REQ"
ORIGIN_LAT, ORIGIN_LON = 35.0, 137.0
START, END = date(2026, 1, 5), date(2026, 1, 12)
KM_PER_DEG_LAT = EARTH_RADIUS_KM * 3.141592653589793 / 180.0


def north(km: float) -> tuple[float, float]:
    """(lat, lon) of a point ``km`` due north of the origin (haversine-exact)."""
    return ORIGIN_LAT + km / KM_PER_DEG_LAT, ORIGIN_LON


def imm(
    machine_id: str = "m1",
    *,
    firm: str = "F1",
    site: str | None = None,
    km: float = 100.0,
    clamp_kN: float = 1500.0,
    tie_h: float = 600.0,
    tie_v: float = 600.0,
    min_h: float = 200.0,
    max_h: float = 600.0,
    shot_g: float = 500.0,
    ring: float = 100.0,
    resins: Iterable[str] = ("PP", "ABS"),
    certs: Iterable[str] = ("ISO9001",),
    disrupted: bool = False,
    **kw: Any,
) -> MachineSpec:
    """An injection-molding machine ``km`` north of the origin (compatible with mold())."""
    lat, lon = north(km)
    return MachineSpec(
        machine_id=machine_id,
        firm_id=firm,
        site_id=site or f"{firm}-S",
        site_lat_deg=lat,
        site_lon_deg=lon,
        clamp_force_kN=clamp_kN,
        tie_bar_h_mm=tie_h,
        tie_bar_v_mm=tie_v,
        min_mold_height_mm=min_h,
        max_mold_height_mm=max_h,
        shot_capacity_g=shot_g,
        locating_ring_mm=ring,
        resins=frozenset(resins),
        certifications=frozenset(certs),
        disrupted=disrupted,
        **kw,
    )


def mold(
    mold_id: str = "M1",
    *,
    width: float = 500.0,
    height: float = 450.0,
    thickness: float = 350.0,
    weight: float = 800.0,
    clamp_kN: float = 1200.0,
    shot_g: float = 250.0,
    resin: str = "PP",
    ring: float = 100.0,
    cavities: int = 2,
    cycle_s: float = 30.0,
    **kw: Any,
) -> MoldSpec:
    """An injection mold that fits :func:`imm` defaults (1200 kN × 1.1 = 1320 <= 1500)."""
    return MoldSpec(
        mold_id=mold_id,
        owner_firm_id=REQ,
        width_mm=width,
        height_mm=height,
        thickness_mm=thickness,
        weight_kg=weight,
        required_clamp_force_kN=clamp_kN,
        shot_weight_g=shot_g,
        resin=resin,
        locating_ring_mm=ring,
        cavities=cavities,
        cycle_time_s=cycle_s,
        **kw,
    )


def job(
    job_id: str = "J1",
    mold_id: str = "M1",
    *,
    parts: int = 2400,
    certs: Iterable[str] = (),
    priority: float = 1.0,
) -> Job:
    """A job needing ``parts`` in the one-week horizon."""
    return Job(
        job_id=job_id,
        part_id=f"P-{job_id}",
        mold_id=mold_id,
        weekly_volume_parts=parts,
        window_start=START,
        window_end=END,
        required_certifications=frozenset(certs),
        priority=priority,
    )


def context(
    *,
    sharing: Iterable[str] = ("F1", "F2", "F3"),
    radius_km: float = 50.0,
    disrupted_sites: Iterable[str] = (),
    rules: CompatRules | None = None,
    search: SearchSettings | None = None,
    solver: SolverSettings | None = None,
) -> PlanContext:
    """The requester's context: origin ``REQ-S0``, one zone around it."""
    return PlanContext(
        requester_firm_id=REQ,
        origin_site_id="REQ-S0",
        origin_lat_deg=ORIGIN_LAT,
        origin_lon_deg=ORIGIN_LON,
        horizon_start=START,
        horizon_end=END,
        sharing_firm_ids=frozenset(sharing),
        zones=(
            DisruptionZone(
                center_lat_deg=ORIGIN_LAT, center_lon_deg=ORIGIN_LON, radius_km=radius_km
            ),
        ),
        disrupted_site_ids=frozenset(disrupted_sites),
        rules=rules or CompatRules(),
        search=search or SearchSettings(),
        solver=solver or SolverSettings(),
    )
