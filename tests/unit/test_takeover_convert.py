"""Registry rows -> planner inputs, and planning exact volumes with pins and exclusions
(no database: ORM objects are built in memory)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from renkei.cloud.planner import PlannerInputError, SolverSettings
from renkei.cloud.planner import needed_parts as planner_needed
from renkei.cloud.registry import Machine, Mold, Process, Site, VolumeUnit
from renkei.cloud.takeover import Demand, Fleet, plan_demands
from renkei.cloud.takeover.convert import (
    MASK_SUFFIX,
    exact_horizon,
    job_window,
    machine_spec,
    mold_spec,
    needed_parts,
    planner_job,
    prorated_hours,
    weekly_parts,
    window_overlap_days,
    zone,
)

D0 = date(2026, 11, 23)


def site(site_id: str, lat: float = 35.0, lon: float = 135.8, **over: Any) -> Site:
    values: dict[str, Any] = {
        "id": site_id,
        "firm_id": site_id.split("-")[0],
        "name": site_id,
        "latitude_deg": lat,
        "longitude_deg": lon,
        "region": "kansai",
        "resins": ["PP", "ABS"],
        "certifications": ["ISO9001"],
    }
    return Site(**(values | over))


def machine(machine_id: str, firm_id: str, **over: Any) -> Machine:
    values: dict[str, Any] = {
        "id": machine_id,
        "firm_id": firm_id,
        "line_id": f"{firm_id}-l1",
        "name": machine_id,
        "process": Process.INJECTION_MOLDING,
        "clamp_force_kN": 1500.0,
        "tie_bar_h_mm": 510.0,
        "tie_bar_v_mm": 510.0,
        "min_mold_height_mm": 200.0,
        "max_mold_height_mm": 550.0,
        "shot_capacity_g": 400.0,
        "locating_ring_mm": 100.0,
    }
    return Machine(**(values | over))


def mold(mold_id: str = "m1", **over: Any) -> Mold:
    values: dict[str, Any] = {
        "id": mold_id,
        "firm_id": "A",
        "name": mold_id,
        "width_mm": 400.0,
        "height_mm": 400.0,
        "thickness_mm": 350.0,
        "weight_kg": 450.0,
        "required_clamp_force_kN": 1200.0,
        "shot_weight_g": 150.0,
        "resin": "PP",
        "cavities": 2,
        "locating_ring_mm": 100.0,
        "cycle_time_s": 30.0,
    }
    return Mold(**(values | over))


def test_machine_spec_takes_position_resins_and_certifications_from_the_site() -> None:
    s = site("B-s1", certifications=["IATF16949"])
    spec = machine_spec(machine("b1", "B"), s)
    assert (spec.machine_id, spec.firm_id, spec.site_id) == ("b1", "B", "B-s1")
    assert (spec.site_lat_deg, spec.site_lon_deg) == (35.0, 135.8)
    assert spec.resins == {"PP", "ABS"} and spec.certifications == {"IATF16949"}
    assert spec.process == "injection_molding" and spec.clamp_force_kN == 1500.0
    masked = machine_spec(machine("b1", "B"), s, masked=True)
    assert masked.firm_id == "B" + MASK_SUFFIX and masked.site_id == "B-s1" + MASK_SUFFIX
    assert masked.machine_id == "b1"


def test_machine_spec_rejects_rows_the_planner_cannot_use() -> None:
    press = machine(
        "p1",
        "B",
        process=Process.PRESS,
        clamp_force_kN=None,
        min_mold_height_mm=None,
        max_mold_height_mm=None,
        tonnage_kN=2000.0,
        bed_width_mm=1000.0,
        bed_depth_mm=800.0,
    )
    with pytest.raises(PlannerInputError, match="min_mold_height_mm"):
        machine_spec(press, site("B-s1"))


def test_mold_spec_is_at_the_origin_with_the_jobs_resin() -> None:
    origin = site("A-s1", lat=34.69, lon=135.5)
    spec = mold_spec(mold(), origin=origin)
    assert (spec.location_lat_deg, spec.location_lon_deg) == (34.69, 135.5)
    assert spec.resin == "PP" and spec.cavities == 2 and spec.owner_firm_id == "A"
    assert mold_spec(mold(), origin=origin, resin="PA66-GF30").resin == "PA66-GF30"


def test_volumes_in_parts() -> None:
    assert weekly_parts(1000, VolumeUnit.SHOTS, 4) == 4000
    assert weekly_parts(1000, "parts", 4) == 1000
    end = date(2026, 12, 7)
    assert needed_parts(5000, window_start=D0, window_end=end) == 10000
    assert needed_parts(5000, window_start=D0, window_end=end, due_date=date(2026, 11, 29)) == 5000
    assert needed_parts(10, window_start=D0, window_end=date(2026, 11, 26)) == 5  # ceil(30/7)
    assert needed_parts(10, window_start=D0, window_end=end, due_date=date(2026, 11, 1)) == 0
    assert job_window(D0, end, date(2027, 1, 1)) == (D0, end)


@pytest.mark.parametrize("parts", [0, 1, 7, 9999, 400_000])
def test_planner_job_asks_for_exactly_the_parts(parts: int) -> None:
    job = planner_job(
        job_id="j",
        part_id="p",
        mold_id="m",
        parts=parts,
        required_certifications=["IATF16949"],
        horizon_start=D0,
    )
    start, end = exact_horizon(D0)
    assert planner_needed(job, horizon_start=start, horizon_end=end) == parts
    assert job.required_certifications == {"IATF16949"}


def test_window_overlap_and_prorated_hours() -> None:
    a = (D0, date(2026, 12, 7))
    b = (date(2026, 11, 30), date(2026, 12, 14))
    assert window_overlap_days(a, b) == 7
    assert window_overlap_days(a, (date(2027, 1, 1), date(2027, 1, 2))) == 0
    assert prorated_hours(140.0, of=b, within=a) == 70.0
    assert prorated_hours(140.0, of=a, within=a) == 140.0
    assert prorated_hours(5.0, of=(D0, D0), within=a) == 0.0
    z = zone(site("A-s1", lat=34.69, lon=135.5), 30.0)
    assert (z.center_lat_deg, z.center_lon_deg, z.radius_km) == (34.69, 135.5, 30.0)


# ------------------------------------------------------------------ plan_demands


def fleet(spare: dict[str, float], *, masked: tuple[str, ...] = ()) -> Fleet:
    origin = site("A-s1", lat=34.69, lon=135.50)
    near, far = site("B-s1", lat=35.01, lon=135.77), site("C-s1", lat=35.18, lon=136.9)
    specs = [
        machine_spec(machine("b1", "B"), near),
        machine_spec(machine("b2", "B"), near),
        machine_spec(machine("c1", "C"), far, masked="c1" in masked),
    ]
    return Fleet(
        requester_firm_id="A",
        origin=origin,
        window=(D0, date(2026, 12, 7)),
        specs=specs,
        spare_h=dict(spare),
        sharing_firm_ids=frozenset({"B", "C"}),
        zones=(zone(origin, 30.0),),
        disrupted_site_ids=frozenset({"A-s1"}),
        shared_machines=3,
        solver=SolverSettings(time_budget_s=1.0),
    )


def demand(parts: int, **over: Any) -> Demand:
    values: dict[str, Any] = {
        "job_id": "J1",
        "part_id": "P1",
        "mold_id": "m1",
        "resin": None,
        "certifications": (),
        "parts": parts,
    }
    return Demand(**(values | over))


MOLDS = {"m1": mold()}  # 240 parts per hour


def test_plan_demands_places_exact_parts_and_uses_up_spare() -> None:
    f = fleet({"b1": 10.0, "b2": 10.0, "c1": 100.0})
    run = plan_demands(f, [demand(2400)], MOLDS)  # 10 h
    assert sum(p.parts for p in run.placements) == 2400
    assert {p.site_id for p in run.placements} == {"B-s1"}  # nearest
    assert run.outcomes["J1"].unmet_parts == 0 and run.outcomes["J1"].reason is None
    assert sum(f.spare_h.values()) == pytest.approx(110.0)
    assert run.planner_calls == 1


def test_pinned_and_excluded_demands() -> None:
    f = fleet({"b1": 10.0, "b2": 10.0, "c1": 100.0})
    # pinned to B's site without b1: only b2 may take it, the rest is "no capacity" at B
    run = plan_demands(
        f, [demand(4800, pin_site_id="B-s1", excluded_machine_ids=frozenset({"b1"}))], MOLDS
    )
    assert {p.machine_id for p in run.placements} == {"b2"}
    out = run.outcomes["J1"]
    assert out.covered_parts == 2400 and out.unmet_parts == 2400 and out.reason == "no_capacity"
    # not pinned, both B machines declined it: it moves to C
    f = fleet({"b1": 10.0, "b2": 10.0, "c1": 100.0})
    run = plan_demands(f, [demand(4800, excluded_machine_ids=frozenset({"b1", "b2"}))], MOLDS)
    assert {p.machine_id for p in run.placements} == {"c1"}
    # a pin to a site with no usable machine
    run = plan_demands(f, [demand(10, pin_site_id="gone")], MOLDS)
    assert run.outcomes["J1"].reason == "no_capacity" and not run.placements


def test_masked_machines_count_as_not_shared() -> None:
    f = fleet({"b1": 0.0, "b2": 0.0}, masked=("c1",))
    molds = {"m1": mold(resin="ABS")}
    f.specs = [s for s in f.specs if s.machine_id == "c1"]
    run = plan_demands(f, [demand(100)], molds)
    assert run.outcomes["J1"].reason == "not_shared" and not run.placements
    assert plan_demands(f, [demand(0)], molds).outcomes == {}
