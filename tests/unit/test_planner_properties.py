"""Property tests: random small fleets and jobs, exact MILP and neighbourhood-search paths.

Whatever the input, the plan never puts a mold on an incompatible machine, never exceeds a
machine's spare hours, never uses a stopped machine (flag, disrupted site, origin site,
inside the zone) or a firm that does not share, sends each mold to at most one site, and
accounts for every needed part (covered + unmet, with a reason for the unmet rest). When
one eligible site alone has enough compatible spare hours for everything, all volume is
covered.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.cloud.planner import (
    CompatRules,
    Job,
    MachineSpec,
    MoldSpec,
    PlanContext,
    SolverSettings,
    TakeoverPlan,
    check_compat,
    haversine_km,
    hours_for_parts,
    plan_takeover,
)
from tests.unit.test_planner_support import (
    END,
    KM_PER_DEG_LAT,
    ORIGIN_LAT,
    ORIGIN_LON,
    REQ,
    START,
    context,
)

FIRMS = [REQ, "F1", "F2", "F3", "F4"]
RESINS = ["PP", "ABS", "PC"]
CERTS = ["ISO9001", "IATF16949"]


def _latlon(km_n: float, km_e: float) -> tuple[float, float]:
    lat = ORIGIN_LAT + km_n / KM_PER_DEG_LAT
    return lat, ORIGIN_LON + km_e / (KM_PER_DEG_LAT * math.cos(math.radians(lat)))


@dataclass(frozen=True)
class Case:
    machines: list[MachineSpec]
    molds: list[MoldSpec]
    jobs: list[Job]
    spare: dict[str, float]
    ctx: PlanContext


@st.composite
def machines_st(draw: st.DrawFn) -> list[MachineSpec]:
    out: list[MachineSpec] = []
    for s in range(draw(st.integers(1, 5))):
        firm = draw(st.sampled_from(FIRMS))
        site = "REQ-S0" if firm == REQ and draw(st.booleans()) else f"{firm}-S{s}"
        lat, lon = _latlon(draw(st.floats(-300, 300)), draw(st.floats(-300, 300)))
        resins = frozenset(draw(st.sets(st.sampled_from(RESINS), min_size=1)))
        certs = frozenset(draw(st.sets(st.sampled_from(CERTS))))
        for k in range(draw(st.integers(1, 3))):
            tie = draw(st.sampled_from([400.0, 600.0, 900.0]))
            out.append(
                MachineSpec(
                    machine_id=f"{site}-{s}-m{k}",
                    firm_id=firm,
                    site_id=site,
                    site_lat_deg=lat,
                    site_lon_deg=lon,
                    resins=resins,
                    certifications=certs,
                    disrupted=draw(st.booleans()) and draw(st.booleans()),
                    clamp_force_kN=draw(st.sampled_from([800.0, 1500.0, 3000.0])),
                    tie_bar_h_mm=tie,
                    tie_bar_v_mm=tie,
                    min_mold_height_mm=draw(st.sampled_from([150.0, 300.0])),
                    max_mold_height_mm=draw(st.sampled_from([400.0, 700.0])),
                    shot_capacity_g=draw(st.sampled_from([300.0, 800.0, 2000.0])),
                    locating_ring_mm=draw(st.sampled_from([100.0, 120.0])),
                )
            )
    return out


@st.composite
def molds_st(draw: st.DrawFn) -> list[MoldSpec]:
    return [
        MoldSpec(
            mold_id=f"M{i}",
            owner_firm_id=REQ,
            width_mm=draw(st.sampled_from([350.0, 550.0, 850.0])),
            height_mm=draw(st.sampled_from([350.0, 550.0])),
            thickness_mm=draw(st.sampled_from([250.0, 350.0, 600.0])),
            weight_kg=500.0,
            required_clamp_force_kN=draw(st.sampled_from([600.0, 1200.0, 2500.0])),
            shot_weight_g=draw(st.sampled_from([100.0, 300.0, 900.0])),
            resin=draw(st.sampled_from(RESINS)),
            locating_ring_mm=draw(st.sampled_from([100.0, 120.0])),
            cavities=draw(st.sampled_from([1, 4])),
            cycle_time_s=draw(st.sampled_from([20.0, 45.0])),
        )
        for i in range(draw(st.integers(1, 6)))
    ]


@st.composite
def cases(draw: st.DrawFn, *, rescue: bool = False) -> Case:
    machines = draw(machines_st())
    molds = draw(molds_st())
    jobs = [
        Job(
            job_id=f"J{i}",
            part_id=f"P{i}",
            mold_id=molds[i].mold_id,  # one job per mold
            weekly_volume_parts=draw(st.integers(0, 6000)),
            window_start=START,
            window_end=END,
            required_certifications=frozenset(draw(st.sets(st.sampled_from(CERTS), max_size=1))),
        )
        for i in range(draw(st.integers(1, len(molds))))
    ]
    spare = {m.machine_id: draw(st.sampled_from([0.0, 5.0, 20.0, 60.0])) for m in machines}
    sharing = set(draw(st.sets(st.sampled_from(FIRMS[1:]))))
    if rescue:
        machines, spare = _add_rescue_site(machines, spare, molds, jobs)
        sharing.add("F1")
    solver = draw(
        st.sampled_from(
            [
                SolverSettings(),  # one exact MILP
                SolverSettings(exact_max_jobs=0, neighbourhood_jobs=2, max_passes=2),  # search
            ]
        )
    )
    ctx = context(
        sharing=sharing,
        radius_km=draw(st.sampled_from([0.0, 50.0, 150.0])),
        disrupted_sites=draw(st.sets(st.sampled_from(sorted({m.site_id for m in machines})))),
        rules=CompatRules(
            allow_mold_rotation=draw(st.booleans()), allow_locating_ring_adapter=draw(st.booleans())
        ),
        solver=solver,
    )
    if rescue:  # the rescue site must stay eligible
        ctx = context(
            sharing=sharing,
            radius_km=ctx.zones[0].radius_km,
            disrupted_sites=ctx.disrupted_site_ids - {"RESCUE"},
            rules=ctx.rules,
            solver=solver,
        )
    return Case(machines=machines, molds=molds, jobs=jobs, spare=spare, ctx=ctx)


def _add_rescue_site(
    machines: list[MachineSpec],
    spare: dict[str, float],
    molds: list[MoldSpec],
    jobs: list[Job],
) -> tuple[list[MachineSpec], dict[str, float]]:
    """One site of F1, 400 km away, with a machine made for each mold and enough hours
    for every job at once."""
    lat, lon = _latlon(400.0, 0.0)
    need = (
        sum(
            hours_for_parts(j.weekly_volume_parts, next(m for m in molds if m.mold_id == j.mold_id))
            for j in jobs
        )
        + 1.0
    )
    certs = frozenset(c for j in jobs for c in j.required_certifications)
    extra = []
    for m in molds:
        assert m.shot_weight_g is not None and m.locating_ring_mm is not None and m.resin
        extra.append(
            MachineSpec(
                machine_id=f"rescue-{m.mold_id}",
                firm_id="F1",
                site_id="RESCUE",
                site_lat_deg=lat,
                site_lon_deg=lon,
                resins=frozenset({m.resin}),
                certifications=certs,
                clamp_force_kN=m.required_clamp_force_kN * 1.5,
                tie_bar_h_mm=max(m.width_mm, m.height_mm),
                tie_bar_v_mm=max(m.width_mm, m.height_mm),
                min_mold_height_mm=m.thickness_mm,
                max_mold_height_mm=m.thickness_mm,
                shot_capacity_g=m.shot_weight_g * 2,
                locating_ring_mm=m.locating_ring_mm,
            )
        )
    return machines + extra, {**spare, **{x.machine_id: need for x in extra}}


def _run(c: Case) -> TakeoverPlan:
    return plan_takeover(
        jobs=c.jobs, molds=c.molds, machines=c.machines, spare_hours=c.spare, context=c.ctx
    )


def check_invariants(c: Case, p: TakeoverPlan) -> None:
    machines = {m.machine_id: m for m in c.machines}
    molds = {m.mold_id: m for m in c.molds}
    jobs = {j.job_id: j for j in c.jobs}
    used: dict[str, float] = defaultdict(float)
    job_sites: dict[str, set[str]] = defaultdict(set)
    job_parts: dict[str, int] = defaultdict(int)
    zone = c.ctx.zones[0]
    for a in p.allocations:
        m, j = machines[a.machine_id], jobs[a.job_id]
        assert check_compat(
            mold=molds[j.mold_id],
            machine=m,
            required_certifications=j.required_certifications,
            rules=c.ctx.rules,
        ).ok
        assert not m.disrupted
        assert m.site_id not in c.ctx.disrupted_site_ids and m.site_id != "REQ-S0"
        assert (
            haversine_km(zone.center_lat_deg, zone.center_lon_deg, m.site_lat_deg, m.site_lon_deg)
            > zone.radius_km
        )
        assert m.firm_id == REQ or m.firm_id in c.ctx.sharing_firm_ids
        assert a.hours > 0 and a.parts >= 0
        used[a.machine_id] += a.hours
        job_sites[a.job_id].add(a.site_id)
        job_parts[a.job_id] += a.parts
    for mid, h in used.items():
        assert h <= c.spare.get(mid, 0.0) + 1e-9
    for o in p.jobs:
        assert len(job_sites[o.job_id]) <= 1  # a mold is in one place
        if job_sites[o.job_id]:
            assert o.site_id in job_sites[o.job_id]
        assert job_parts[o.job_id] == o.covered_parts <= o.needed_parts
        assert o.covered_hours <= o.needed_hours + 1e-6
        assert (o.unmet is None) == (o.covered_parts == o.needed_parts)
        if o.unmet is not None:
            assert o.unmet.parts == o.needed_parts - o.covered_parts
    assert {o.job_id for o in p.jobs} == set(jobs)
    assert set(p.partner_firm_ids) == {a.firm_id for a in p.allocations} - {REQ}
    # The MILP never makes the greedy start lexicographically worse.
    greedy = p.stats.greedy_covered_hours
    assert p.covered_hours >= greedy - 1e-5 * max(1.0, greedy)
    if abs(p.covered_hours - greedy) <= 1e-5 * max(1.0, greedy):
        assert p.transport_km <= p.stats.greedy_transport_km + 1e-3


@settings(max_examples=150, deadline=None)
@given(cases())
def test_plan_respects_every_constraint(c: Case) -> None:
    check_invariants(c, _run(c))


@settings(max_examples=100, deadline=None)
@given(cases(rescue=True))
def test_everything_covered_when_one_site_can_take_it_all(c: Case) -> None:
    p = _run(c)
    check_invariants(c, p)
    for o in p.jobs:
        assert o.covered_parts == o.needed_parts, o
    assert p.coverage >= 1.0 - 1e-6
