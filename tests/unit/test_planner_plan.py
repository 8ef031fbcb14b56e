"""plan_takeover on crafted cases: lexicographic order, eligibility, unmet reasons, inputs.

Geometry and defaults: see ``test_planner_support`` (origin at 35 N 137 E, 50 km zone,
default mold = 240 parts/h, 2,400 parts = 10 h).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from renkei.cloud.planner import (
    Job,
    MachineSpec,
    MoldSpec,
    PlanContext,
    PlannerInputError,
    TakeoverPlan,
    plan_takeover,
)
from tests.unit.test_planner_support import REQ, context, imm, job, mold, north


def plan(
    machines: Sequence[MachineSpec],
    jobs: Sequence[Job],
    molds: Sequence[MoldSpec] = (),
    spare: Mapping[str, float] | None = None,
    ctx: PlanContext | None = None,
) -> TakeoverPlan:
    return plan_takeover(
        jobs=jobs,
        molds=molds or [mold()],
        machines=machines,
        spare_hours=spare if spare is not None else {m.machine_id: 40.0 for m in machines},
        context=ctx or context(),
    )


def sites(p: TakeoverPlan) -> set[str]:
    return {a.site_id for a in p.allocations}


# ------------------------------------------------------------------ lexicographic order


@pytest.mark.parametrize("reverse", [False, True])
def test_equal_coverage_nearer_site_wins(reverse: bool) -> None:
    ms = [imm("near", firm="F1", km=100), imm("far", firm="F2", km=200)]
    p = plan(ms[::-1] if reverse else ms, [job()])
    assert sites(p) == {"F1-S"}
    (out,) = p.jobs
    assert out.covered_parts == 2400 and out.unmet is None
    assert out.distance_km == pytest.approx(100.0, abs=1e-6)
    assert p.stats.exact


def test_coverage_beats_distance() -> None:
    ms = [imm("near", firm="F1", km=100), imm("far", firm="F2", km=300)]
    p = plan(ms, [job()], spare={"near": 5.0, "far": 10.0})
    assert sites(p) == {"F2-S"}
    assert p.jobs[0].covered_parts == 2400


def test_equal_distance_fewer_partners_win() -> None:
    # Job A runs at F1 or F2 (both 100 km away, north and south); job B only at F2
    # (ABS). F1 comes first, so the nearest-first greedy start puts A at F1; the
    # partner stage must move it to F2.
    ms = [
        imm("f1", firm="F1", km=100, resins=("PP",)),
        imm("f2", firm="F2", km=-100, resins=("PP", "ABS")),
    ]
    molds = [mold("MA"), mold("MB", resin="ABS")]
    p = plan(ms, [job("A", "MA"), job("B", "MB")], molds)
    assert p.partner_firm_ids == ("F2",)
    assert sites(p) == {"F2-S"}
    assert all(o.unmet is None for o in p.jobs)
    assert p.stats.greedy_transport_km == pytest.approx(p.transport_km)


def test_distance_is_measured_from_the_molds_location() -> None:
    lat, lon = north(300)
    ms = [imm("a", firm="F1", km=100), imm("b", firm="F2", km=320)]
    p = plan(ms, [job()], [mold(location_lat_deg=lat, location_lon_deg=lon)])
    assert sites(p) == {"F2-S"}
    assert p.jobs[0].distance_km == pytest.approx(20.0, abs=1e-6)


def test_own_other_site_is_used_and_not_a_partner() -> None:
    ms = [imm("own", firm=REQ, site="REQ-S1", km=-100), imm("f1", firm="F1", km=100)]
    p = plan(ms, [job()], ctx=context(sharing=()))
    assert sites(p) == {"REQ-S1"}
    assert p.partner_firm_ids == ()


def test_job_splits_over_machines_of_one_site() -> None:
    ms = [imm("a", firm="F1", km=100), imm("b", firm="F1", km=100)]
    p = plan(ms, [job(parts=7200)], spare={"a": 20.0, "b": 20.0})  # 30 h needed
    assert {a.machine_id for a in p.allocations} == {"a", "b"}
    assert sum(a.hours for a in p.allocations) == pytest.approx(30.0)
    assert sum(a.parts for a in p.allocations) == 7200 == p.jobs[0].covered_parts


def test_mold_goes_to_one_site_only() -> None:
    ms = [imm("a", firm="F1", km=100), imm("b", firm="F2", km=150)]
    p = plan(ms, [job(parts=7200)], spare={"a": 20.0, "b": 20.0})
    assert sites(p) == {"F1-S"}  # 20 h either way; the nearer one
    (out,) = p.jobs
    assert out.covered_parts == 4800 and out.unmet_parts == 2400
    assert out.unmet is not None and out.unmet.reason == "no_capacity"
    assert "one site" in out.unmet.detail


def test_priority_decides_contention() -> None:
    p = plan(
        [imm("a")],
        [job("low", "M1", priority=1.0), job("high", "M2", priority=2.0)],
        [mold("M1"), mold("M2")],
        spare={"a": 10.0},
    )
    by_id = {o.job_id: o for o in p.jobs}
    assert by_id["high"].covered_parts == 2400
    assert by_id["low"].covered_parts == 0
    assert by_id["low"].unmet is not None and by_id["low"].unmet.reason == "no_capacity"


# ------------------------------------------------------------------ eligibility


@pytest.mark.parametrize(
    ("machine", "ctx"),
    [
        (imm(firm=REQ, site="REQ-S0", km=200), context(radius_km=0)),  # origin site, always
        (imm(km=100, disrupted=True), context()),
        (imm(km=100), context(disrupted_sites=("F1-S",))),
        (imm(km=49.9), context()),  # inside the 50 km zone
    ],
)
def test_stopped_machines_are_never_used(machine: MachineSpec, ctx: PlanContext) -> None:
    p = plan([machine], [job()], ctx=ctx)
    assert p.allocations == ()
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "only_inside_zone"
    assert unmet.compatible.stopped == 1


def test_just_outside_the_zone_is_eligible() -> None:
    p = plan([imm(km=50.1)], [job()])
    assert sites(p) == {"F1-S"}


# ------------------------------------------------------------------ unmet reasons


def test_reason_no_compatible_machine_with_rule_failures() -> None:
    ms = [imm("a", clamp_kN=1500), imm("b", firm="F2", clamp_kN=1000, km=300)]
    p = plan(ms, [job()], [mold(clamp_kN=5000)])
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "no_compatible_machine"
    assert unmet.parts == 2400 and unmet.hours == pytest.approx(10.0)
    assert unmet.rule_failure_counts == {"clamp_force": 2}
    assert [n.machine_id for n in unmet.near_misses] == ["a", "b"]  # nearest first on ties
    assert unmet.near_misses[0].failures[0].message == (
        "clamp_force: needs 5500 kN incl. 10 % margin, machine 1500 kN"
    )


def test_reason_no_capacity() -> None:
    p = plan([imm("a")], [job()], spare={"a": 0.0})
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "no_capacity"
    assert unmet.compatible.eligible == 1 and unmet.compatible.eligible_with_spare == 0


def test_reason_only_inside_zone() -> None:
    ms = [
        imm("in", km=30),
        imm("flag", firm="F2", km=100, disrupted=True),
        imm("site", firm="F3", km=100),
    ]
    p = plan(ms, [job()], ctx=context(disrupted_sites=("F3-S",)))
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "only_inside_zone"
    assert unmet.compatible.stopped == 3


def test_reason_not_shared() -> None:
    p = plan([imm("a", firm="F9", km=100)], [job()])
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "not_shared"
    assert "1 firms that do not share with REQ" in unmet.detail


def test_reason_precedence() -> None:
    # not_shared beats only_inside_zone (asking a firm is actionable, waiting is not).
    p = plan([imm("in", km=30), imm("ns", firm="F9", km=100)], [job()])
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "not_shared"
    assert unmet.compatible.stopped == 1 and unmet.compatible.not_shared == 1
    # An eligible but full machine makes it no_capacity; the other facts stay visible.
    p = plan(
        [imm("full", km=100), imm("ns", firm="F9", km=100)],
        [job()],
        spare={"full": 0.0, "ns": 100.0},
    )
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.reason == "no_capacity"
    assert unmet.compatible.not_shared == 1
    assert p.unmet_parts_by_reason() == {"no_capacity": 2400}


def test_partial_cover_gets_a_reason_for_the_rest() -> None:
    p = plan([imm("a")], [job()], spare={"a": 4.0})
    (out,) = p.jobs
    assert out.covered_parts == 960 and out.unmet is not None
    assert out.unmet.parts == 1440 and out.unmet.reason == "no_capacity"
    assert p.coverage == pytest.approx(0.4)


# ------------------------------------------------------------------ inputs


def test_empty_inputs() -> None:
    p = plan([], [])
    assert p.jobs == () and p.allocations == () and p.coverage == 1.0
    p = plan([], [job()])
    assert p.jobs[0].unmet is not None
    assert p.jobs[0].unmet.reason == "no_compatible_machine"
    p = plan([imm()], [job(parts=0)])
    assert p.jobs[0].unmet is None and p.jobs[0].needed_parts == 0


@pytest.mark.parametrize(
    ("machines", "jobs", "spare", "match"),
    [
        ([imm("a"), imm("a")], [job()], {}, "duplicate machine_id"),
        ([imm("a")], [job(), job()], {}, "duplicate job_id"),
        ([imm("a")], [job("J", "nope")], {}, "unknown mold"),
        ([imm("a")], [job("J1"), job("J2")], {}, "merge them"),
        ([imm("a")], [job()], {"a": -1.0}, "spare hours"),
        ([imm("a", firm="F1", site="S"), imm("b", firm="F2", site="S")], [job()], {}, "belongs to"),
    ],
)
def test_invalid_input_raises(
    machines: list[MachineSpec], jobs: list[Job], spare: dict[str, float], match: str
) -> None:
    with pytest.raises(PlannerInputError, match=match):
        plan(machines, jobs, spare=spare)


def test_unknown_spare_hours_ids_are_ignored_and_missing_means_zero() -> None:
    p = plan([imm("a"), imm("b", firm="F2", km=300)], [job()], spare={"zzz": 5.0, "b": 50.0})
    assert sites(p) == {"F2-S"}
