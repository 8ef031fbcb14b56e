"""Compatibility rules at their boundaries (DOMAIN.md, "Can mold M run on machine X?").

Numbers from DOMAIN.md: clamp force >= required with a ~10–20 % margin; shot weight
within ~20–80 % of the shot capacity; mold within the tie bars; thickness within the
daylight range; locating ring match or adapter; resin at the site; certifications
(IATF 16949 for automotive). The vectorised matrix must agree with the scalar rules.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.cloud.planner import CompatRules, MachineSpec, MoldSpec, PlannerInputError, check_compat
from renkei.cloud.planner.compat import RULE_CODES
from renkei.cloud.planner.compat_matrix import (
    Vocabulary,
    compatible_matrix,
    demand_arrays,
    machine_arrays,
    rule_failure_masks,
)
from tests.unit.test_planner_support import imm, mold


def codes(
    m: MoldSpec,
    x: MachineSpec,
    rules: CompatRules | None = None,
    certs: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    return check_compat(mold=m, machine=x, required_certifications=certs, rules=rules).codes


def test_defaults_are_compatible() -> None:
    result = check_compat(mold=mold(), machine=imm())
    assert result.ok
    assert result.failures == ()


@pytest.mark.parametrize(
    ("margin", "machine_kN", "ok"),
    [
        (0.10, 1320.0, True),  # 1200 kN × 1.10, exactly (binary rounding tolerated)
        (0.10, 1319.0, False),
        (0.20, 1440.0, True),  # the upper end of DOMAIN.md's 10–20 %
        (0.20, 1439.0, False),
        (0.0, 1200.0, True),
    ],
)
def test_clamp_force_margin_boundary(margin: float, machine_kN: float, ok: bool) -> None:
    rules = CompatRules(clamp_margin=margin)
    got = codes(mold(clamp_kN=1200), imm(clamp_kN=machine_kN), rules)
    assert ("clamp_force" not in got) is ok


def test_clamp_force_message_has_the_numbers() -> None:
    r = check_compat(mold=mold(clamp_kN=1200), machine=imm(clamp_kN=1000))
    assert [f.message for f in r.failures] == [
        "clamp_force: needs 1320 kN incl. 10 % margin, machine 1000 kN"
    ]


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [(600, 600, True), (601, 500, False), (500, 601, False), (599.9, 599.9, True)],
)
def test_tie_bar_boundary(width: float, height: float, ok: bool) -> None:
    got = codes(mold(width=width, height=height), imm(tie_h=600, tie_v=600))
    assert ("tie_bar" not in got) is ok


def test_tie_bar_rotation_only_when_allowed() -> None:
    m, x = mold(width=700, height=500), imm(tie_h=600, tie_v=800)
    assert "tie_bar" in codes(m, x)
    assert "tie_bar" not in codes(m, x, CompatRules(allow_mold_rotation=True))
    # As drawn fits; rotation is never needed then.
    assert "tie_bar" not in codes(mold(width=500, height=700), x)


@pytest.mark.parametrize(
    ("thickness", "ok"), [(200, True), (600, True), (199, False), (601, False)]
)
def test_mold_height_daylight_boundary(thickness: float, ok: bool) -> None:
    got = codes(mold(thickness=thickness), imm(min_h=200, max_h=600))
    assert ("mold_height" not in got) is ok


@pytest.mark.parametrize(
    ("shot_g", "ok"), [(200, True), (800, True), (199.9, False), (800.1, False), (500, True)]
)
def test_shot_weight_20_to_80_percent(shot_g: float, ok: bool) -> None:
    got = codes(mold(shot_g=shot_g), imm(shot_g=1000))
    assert ("shot_weight" not in got) is ok


def test_shot_weight_custom_range_and_message() -> None:
    rules = CompatRules(shot_min_fraction=0.3, shot_max_fraction=0.7)
    r = check_compat(mold=mold(shot_g=250), machine=imm(shot_g=1000), rules=rules)
    assert r.codes == ("shot_weight",)
    assert "shot 250 g outside 300–700 g (30–70 % of 1000 g)" in r.failures[0].message


@pytest.mark.parametrize(
    ("mold_ring", "machine_ring", "adapter", "ok"),
    [
        (100, 100, False, True),
        (100, 100.05, False, True),  # within 0.1 mm
        (100, 101.6, False, False),  # 4-inch ring is another standard size
        (100, 120, False, False),
        (100, 120, True, True),  # smaller ring + adapter sleeve
        (120, 100, True, False),  # a bigger ring never fits
    ],
)
def test_locating_ring(mold_ring: float, machine_ring: float, adapter: bool, ok: bool) -> None:
    rules = CompatRules(allow_locating_ring_adapter=adapter)
    got = codes(mold(ring=mold_ring), imm(ring=machine_ring), rules)
    assert ("locating_ring" not in got) is ok


def test_resin_must_be_processed_at_the_site() -> None:
    r = check_compat(mold=mold(resin="PA66-GF30"), machine=imm(resins=("PP", "ABS")))
    assert r.codes == ("resin",)
    assert "PA66-GF30 not processed at site F1-S (has ABS, PP)" in r.failures[0].message
    assert check_compat(mold=mold(resin="PA66-GF30"), machine=imm(resins=("PP", "PA66-GF30"))).ok


def test_certifications_must_be_a_subset() -> None:
    x = imm(certs=("ISO9001",))
    assert codes(mold(), x, certs=frozenset({"IATF16949"})) == ("certifications",)
    assert codes(mold(), x, certs=frozenset({"ISO9001"})) == ()
    assert (
        codes(
            mold(), imm(certs=("ISO9001", "IATF16949")), certs=frozenset({"IATF16949", "ISO9001"})
        )
        == ()
    )


def test_mold_weight_only_when_machine_has_a_limit() -> None:
    assert "mold_weight" not in codes(mold(weight=800), imm(max_mold_weight_kg=800))
    assert "mold_weight" in codes(mold(weight=801), imm(max_mold_weight_kg=800))
    assert "mold_weight" not in codes(mold(weight=5000), imm())


def test_process_mismatch_reports_process_only() -> None:
    press = MachineSpec(
        machine_id="p1",
        firm_id="F1",
        site_id="F1-S",
        site_lat_deg=35.5,
        site_lon_deg=137.0,
        process="press",
        tonnage_kN=100.0,
        bed_width_mm=100.0,
        bed_depth_mm=100.0,
        min_mold_height_mm=10.0,
        max_mold_height_mm=20.0,
    )
    assert codes(mold(), press) == ("process",)
    assert codes(mold(), press, certs=frozenset({"IATF16949"})) == ("process", "certifications")


def test_press_rules() -> None:
    die = MoldSpec(
        mold_id="D1",
        owner_firm_id="REQ",
        process="press",
        width_mm=1000,
        height_mm=700,
        thickness_mm=400,
        weight_kg=2000,
        required_clamp_force_kN=2000,
        cycle_time_s=3,
    )
    press = MachineSpec(
        machine_id="p1",
        firm_id="F1",
        site_id="F1-S",
        site_lat_deg=35.5,
        site_lon_deg=137.0,
        process="press",
        tonnage_kN=2200.0,
        bed_width_mm=1000.0,
        bed_depth_mm=700.0,
        min_mold_height_mm=300.0,
        max_mold_height_mm=400.0,
    )
    assert codes(die, press) == ()  # 2000 × 1.1 = 2200, bed and die height at the limit
    small = dataclasses.replace(
        press, tonnage_kN=2199.0, bed_depth_mm=699.0, max_mold_height_mm=399.0
    )
    assert codes(die, small) == ("mold_height", "tonnage", "bed")


def test_machining_rules() -> None:
    part = MoldSpec(
        mold_id="F1",
        owner_firm_id="REQ",
        process="machining",
        width_mm=800,
        height_mm=500,
        thickness_mm=400,
        weight_kg=50,
        required_clamp_force_kN=0,
        cycle_time_s=600,
        required_axes=5,
    )
    mc = MachineSpec(
        machine_id="c1",
        firm_id="F1",
        site_id="F1-S",
        site_lat_deg=35.5,
        site_lon_deg=137.0,
        process="machining",
        axes=5,
        envelope_x_mm=800.0,
        envelope_y_mm=500.0,
        envelope_z_mm=400.0,
    )
    assert codes(part, mc) == ()
    assert codes(part, dataclasses.replace(mc, axes=3, envelope_z_mm=399.0)) == ("axes", "envelope")
    turned = dataclasses.replace(mc, envelope_x_mm=500.0, envelope_y_mm=800.0)
    assert codes(part, turned) == ("envelope",)
    assert codes(part, turned, CompatRules(allow_mold_rotation=True)) == ()


def test_all_failures_listed_in_rule_order() -> None:
    bad = imm(
        clamp_kN=500,
        tie_h=300,
        tie_v=300,
        max_h=300,
        shot_g=5000,
        ring=120,
        resins=("ABS",),
        certs=(),
    )
    got = codes(mold(), bad, certs=frozenset({"IATF16949"}))
    assert got == (
        "certifications",
        "clamp_force",
        "tie_bar",
        "mold_height",
        "shot_weight",
        "locating_ring",
        "resin",
    )
    assert list(got) == [c for c in RULE_CODES if c in got]


def test_invalid_specs_raise() -> None:
    with pytest.raises(PlannerInputError, match="clamp_force_kN is required"):
        imm(clamp_kN=None)  # type: ignore[arg-type]
    with pytest.raises(PlannerInputError, match="min_mold_height_mm"):
        imm(min_h=700, max_h=600)
    with pytest.raises(PlannerInputError, match="resin is required"):
        mold(resin="")
    with pytest.raises(PlannerInputError, match="cavities"):
        mold(cavities=0)
    with pytest.raises(PlannerInputError, match="shot_min_fraction"):
        CompatRules(shot_min_fraction=0.9, shot_max_fraction=0.8)
    with pytest.raises(PlannerInputError, match="lat_deg"):
        imm(km=20_000)


# --------------------------------------------------------------- scalar == vectorised

# Values around every boundary of the default mold (1200 kN → 1320 incl. margin, 600 mm
# tie bars, 200–600 daylight, 250 g shot → capacity 312.5–1250 g, ring 100).
MACHINES = st.builds(
    imm,
    machine_id=st.just("m"),
    clamp_kN=st.sampled_from([1000.0, 1319.0, 1320.0, 1440.0, 2000.0]),
    tie_h=st.sampled_from([450.0, 500.0, 599.0, 700.0]),
    tie_v=st.sampled_from([450.0, 499.0, 500.0, 700.0]),
    min_h=st.sampled_from([200.0, 350.0]),
    max_h=st.sampled_from([350.0, 600.0]),
    shot_g=st.sampled_from([312.5, 312.0, 1250.0, 1251.0, 1300.0]),
    ring=st.sampled_from([100.0, 100.05, 120.0]),
    resins=st.sets(st.sampled_from(["PP", "ABS", "PC"])),
    certs=st.sets(st.sampled_from(["ISO9001", "IATF16949"])),
    max_mold_weight_kg=st.sampled_from([None, 799.0, 800.0]),
)
MOLDS = st.builds(
    mold,
    width=st.sampled_from([450.0, 500.0, 600.0]),
    height=st.sampled_from([450.0, 500.0]),
    thickness=st.sampled_from([200.0, 350.0, 600.0]),
    clamp_kN=st.sampled_from([1200.0, 1000.0]),
    shot_g=st.sampled_from([250.0, 1000.0]),
    resin=st.sampled_from(["PP", "PC", "PA6"]),
    ring=st.sampled_from([100.0, 120.0]),
)
RULES = st.builds(
    CompatRules,
    clamp_margin=st.sampled_from([0.0, 0.1, 0.2]),
    allow_mold_rotation=st.booleans(),
    allow_locating_ring_adapter=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    machines=st.lists(MACHINES, min_size=1, max_size=6),
    molds=st.lists(MOLDS, min_size=1, max_size=4),
    certs=st.lists(st.sets(st.sampled_from(["ISO9001", "IATF16949"])), min_size=4, max_size=4),
    rules=RULES,
)
def test_matrix_agrees_with_scalar_rules(
    machines: list[MachineSpec],
    molds: list[MoldSpec],
    certs: list[set[str]],
    rules: CompatRules,
) -> None:
    machines = [dataclasses.replace(m, machine_id=f"m{i}") for i, m in enumerate(machines)]
    demand_certs = [frozenset(c) for c in certs[: len(molds)]]
    vocab = Vocabulary.build(machines, molds, demand_certs)
    d = demand_arrays(molds, demand_certs, vocab)
    x = machine_arrays(machines, vocab)
    ok = compatible_matrix(d, x, rules)
    masks = rule_failure_masks(d, x, rules)
    for i, m in enumerate(molds):
        for k, mach in enumerate(machines):
            scalar = check_compat(
                mold=m, machine=mach, required_certifications=demand_certs[i], rules=rules
            )
            vector = tuple(c for c in RULE_CODES if masks[c][i, k])
            assert vector == scalar.codes
            assert bool(ok[i, k]) is scalar.ok
    assert ok.dtype == np.bool_
