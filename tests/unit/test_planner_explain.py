"""Explained unmet volume: every rule's numbers, both languages, ranking and disclosure.

Geometry and defaults: see ``test_planner_support`` (default machine 1,500 kN, tie bars
600 x 600 mm, mold height 200–600 mm, shot capacity 500 g, ring 100 mm, PP/ABS, ISO9001).
"""

from __future__ import annotations

import numpy as np
import pytest

from renkei.cloud.planner import CompatRules, MachineSpec, check_compat, plan_takeover
from renkei.cloud.planner.explain import Candidate, Explanation
from renkei.cloud.planner.shortfall import Shortfall, pair_shortfalls
from renkei.cloud.planner.wording import candidate_text, explanation_text, shortfall_text
from tests.unit.test_planner_support import context, imm, job, mold, north


def only(**kw: object) -> Shortfall:
    """The single shortfall of mold(**mold_kw) on imm(**machine_kw)."""
    m_kw = {k[2:]: v for k, v in kw.items() if k.startswith("m_")}
    x_kw = {k[2:]: v for k, v in kw.items() if k.startswith("x_")}
    rules = kw.get("rules")
    certs = kw.get("certs", frozenset())
    found = pair_shortfalls(
        mold=mold(**m_kw),  # type: ignore[arg-type]
        machine=imm(**x_kw),  # type: ignore[arg-type]
        required_certifications=certs,  # type: ignore[arg-type]
        rules=rules,  # type: ignore[arg-type]
    )
    assert len(found) == 1, found
    return found[0]


def texts(s: Shortfall) -> tuple[str, str]:
    return shortfall_text(s, "en"), shortfall_text(s, "ja")


def test_clamp_force_numbers_and_sentences() -> None:
    s = only(m_clamp_kN=4500.0, x_clamp_kN=1800.0, x_tie_h=600.0)
    assert (s.rule, s.quantity, s.comparison, s.unit) == (
        "clamp_force",
        "clamp_force",
        "at_least",
        "kN",
    )
    assert s.required == pytest.approx(4950.0) and s.offered == 1800.0
    assert s.extras == {"margin_pct": pytest.approx(10.0), "mold_value": 4500.0}
    assert texts(s) == (
        "needs 4,950 kN clamp force (4,500 kN + 10 % margin); the machine has 1,800 kN",
        "必要な型締力 4,950 kN（4,500 kN + 余裕 10%）に対し、設備は 1,800 kN",
    )
    assert shortfall_text(s.redacted(), "en").endswith("the machine has (not disclosed)")
    assert shortfall_text(s.redacted(), "ja").endswith("設備は （非公開）")


def test_clamp_force_boundary_is_inclusive() -> None:
    assert pair_shortfalls(mold=mold(clamp_kN=1200.0), machine=imm(clamp_kN=1320.0)) == ()


def test_tie_bar_width_and_height() -> None:
    s = only(m_width=900.0, m_height=400.0, x_tie_h=560.0)
    assert (s.quantity, s.required, s.offered, s.unit) == ("tie_bar_h", 900.0, 560.0, "mm")
    assert texts(s) == (
        "mold width 900 mm exceeds the horizontal tie-bar spacing 560 mm",
        "金型の幅 900 mm が横方向のタイバー間隔 560 mm を超えています",
    )
    both = pair_shortfalls(mold=mold(width=900.0, height=700.0), machine=imm())
    assert [(b.quantity, b.required, b.offered) for b in both] == [
        ("tie_bar_h", 900.0, 600.0),
        ("tie_bar_v", 700.0, 600.0),
    ]


def test_tie_bar_rotation() -> None:
    m, x = mold(width=700.0, height=500.0), imm(tie_h=560.0, tie_v=720.0)
    assert [s.quantity for s in pair_shortfalls(mold=m, machine=x)] == ["tie_bar_h"]
    rot = CompatRules(allow_mold_rotation=True)
    assert pair_shortfalls(mold=m, machine=x, rules=rot) == ()


def test_mold_height_above_daylight_and_below_minimum() -> None:
    hi = only(m_thickness=700.0)
    assert (hi.quantity, hi.comparison, hi.required, hi.offered) == (
        "max_mold_height",
        "at_least",
        700.0,
        600.0,
    )
    assert texts(hi) == (
        "mold thickness 700 mm exceeds the maximum mold height (daylight) 600 mm",
        "金型の厚さ 700 mm が最大型厚（デーライト）600 mm を超えています",
    )
    lo = only(m_thickness=150.0)
    assert (lo.quantity, lo.comparison, lo.required, lo.offered) == (
        "min_mold_height",
        "at_most",
        150.0,
        200.0,
    )
    assert texts(lo)[0] == "mold thickness 150 mm is below the minimum mold height 200 mm"


def test_shot_capacity_both_ends() -> None:
    hi = only(m_shot_g=450.0)  # 80 % of 500 g = 400 g
    assert (hi.quantity, hi.required, hi.offered, hi.extras) == (
        "max_shot_weight",
        450.0,
        400.0,
        {"fraction_pct": 80.0},
    )
    assert texts(hi) == (
        "shot weight 450 g exceeds 80 % of the shot capacity: 400 g",
        "ショット重量 450 g が射出容量の 80%（400 g）を超えています",
    )
    lo = only(m_shot_g=80.0)  # 20 % of 500 g = 100 g
    assert (lo.quantity, lo.comparison, lo.required, lo.offered) == (
        "min_shot_weight",
        "at_most",
        80.0,
        100.0,
    )


def test_locating_ring_resin_certification_weight() -> None:
    ring = only(m_ring=120.0)
    assert (ring.quantity, ring.comparison, ring.required, ring.offered) == (
        "locating_ring",
        "equal",
        120.0,
        100.0,
    )
    resin = only(m_resin="PBT")
    assert (resin.rule, resin.items, resin.required, resin.offered) == (
        "resin",
        ("PBT",),
        None,
        None,
    )
    assert texts(resin) == (
        "resin PBT is not processed at the site",
        "樹脂 PBT をこの拠点では扱っていません",
    )
    cert = only(certs=frozenset({"IATF16949"}))
    assert (cert.rule, cert.items) == ("certifications", ("IATF16949",))
    assert texts(cert) == (
        "the site lacks certification IATF16949",
        "この拠点には認証 IATF16949 がありません",
    )
    weight = only(x_max_mold_weight_kg=500.0)  # mold 800 kg
    assert (weight.quantity, weight.required, weight.offered, weight.unit) == (
        "max_mold_weight",
        800.0,
        500.0,
        "kg",
    )


def test_press_and_machining_rules() -> None:
    lat, lon = north(100)
    press = MachineSpec(
        machine_id="p", firm_id="F1", site_id="F1-S", site_lat_deg=lat, site_lon_deg=lon,
        process="press", tonnage_kN=2000.0, bed_width_mm=800.0, bed_depth_mm=600.0,
        min_mold_height_mm=300.0, max_mold_height_mm=500.0,
    )  # fmt: skip
    die = mold(clamp_kN=2000.0, width=900.0, height=500.0, thickness=400.0).__class__(
        mold_id="D", owner_firm_id="REQ", process="press", width_mm=900.0, height_mm=500.0,
        thickness_mm=400.0, weight_kg=1000.0, required_clamp_force_kN=2000.0, cycle_time_s=5.0,
    )  # fmt: skip
    found = pair_shortfalls(mold=die, machine=press)
    assert [(s.quantity, s.required, s.offered) for s in found] == [
        ("tonnage", pytest.approx(2200.0), 2000.0),
        ("bed_width", 900.0, 800.0),
    ]
    cnc = MachineSpec(
        machine_id="c", firm_id="F1", site_id="F1-S", site_lat_deg=lat, site_lon_deg=lon,
        process="machining", axes=3, envelope_x_mm=1000.0, envelope_y_mm=500.0,
        envelope_z_mm=300.0,
    )  # fmt: skip
    part = die.__class__(
        mold_id="W", owner_firm_id="REQ", process="machining", width_mm=800.0, height_mm=400.0,
        thickness_mm=350.0, weight_kg=50.0, required_clamp_force_kN=0.0, cycle_time_s=600.0,
        required_axes=5,
    )  # fmt: skip
    found = pair_shortfalls(mold=part, machine=cnc)
    assert [(s.quantity, s.required, s.offered) for s in found] == [
        ("axes", 5.0, 3.0),
        ("envelope_z", 350.0, 300.0),
    ]
    assert shortfall_text(found[0], "en") == "needs 5 axes; the machine has 3 axes"


def test_shortfalls_name_exactly_the_rules_check_compat_fails() -> None:
    rng = np.random.default_rng(15)
    for _ in range(300):
        m = mold(
            width=float(rng.uniform(300, 800)),
            height=float(rng.uniform(300, 800)),
            thickness=float(rng.uniform(150, 700)),
            clamp_kN=float(rng.uniform(800, 2000)),
            shot_g=float(rng.uniform(50, 500)),
            ring=float(rng.choice([100.0, 120.0])),
            resin=str(rng.choice(["PP", "PBT"])),
        )
        x = imm(max_mold_weight_kg=float(rng.uniform(500, 1000)))
        rules = CompatRules(allow_mold_rotation=bool(rng.integers(2)))
        certs = frozenset({"IATF16949"}) if rng.integers(2) else frozenset()
        got = {
            s.rule
            for s in pair_shortfalls(mold=m, machine=x, required_certifications=certs, rules=rules)
        }
        want = set(
            check_compat(mold=m, machine=x, required_certifications=certs, rules=rules).codes
        )
        assert got == want


# ------------------------------------------------------------------ plans


def explanation(machines: list[MachineSpec], **kw: object) -> Explanation:
    spare = kw.pop("spare", None)
    p = plan_takeover(
        jobs=[job()],
        molds=[kw.pop("the_mold", mold())],  # type: ignore[list-item]
        machines=machines,
        spare_hours=spare if spare is not None else {m.machine_id: 40.0 for m in machines},  # type: ignore[arg-type]
        context=context(**kw),  # type: ignore[arg-type]
    )
    unmet = p.jobs[0].unmet
    assert unmet is not None and unmet.explanation is not None
    assert unmet.explanation.reason == unmet.reason
    return unmet.explanation


def test_largest_shared_machine_is_named_and_unshared_ones_never() -> None:
    e = explanation(
        [
            imm("small", firm="F2", km=60, clamp_kN=1000.0),
            imm("big", firm="F1", km=300, clamp_kN=1800.0),
            imm("secret", firm="F9", km=80, clamp_kN=6000.0),  # fits, but F9 does not share
        ],
        the_mold=mold(clamp_kN=4500.0),
    )
    assert e.reason == "not_shared"
    [sharing] = e.shortfalls
    assert (sharing.rule, sharing.extras) == ("sharing", {"machines": 1.0, "firms": 1.0})
    # fewest failed rules, then the smallest relative shortfall: 1,800 kN before 1,000 kN
    assert [c.machine_id for c in e.candidates] == ["big", "small"]
    assert all(c.firm_id != "F9" for c in e.candidates)
    big = e.candidates[0]
    assert (
        big.shortfalls[0].required == pytest.approx(4950.0) and big.shortfalls[0].offered == 1800.0
    )
    en, ja = explanation_text(e, "en"), explanation_text(e, "ja")
    assert "secret" not in en + ja and "F9" not in en + ja
    assert "1) F1 F1-S (300 km, machine big): needs 4,950 kN clamp force" in en
    assert "1 compatible machines at 1 firms do not share with you" in en
    assert "1) F1 F1-S（300 km、設備 big）：必要な型締力 4,950 kN" in ja
    assert "近い候補：" in ja


def test_fewest_rules_first_one_per_site_at_most_three() -> None:
    machines = [
        imm("two-rules", firm="F1", km=60, clamp_kN=1000.0, tie_h=400.0),
        imm("one-a", firm="F2", site="F2-A", km=500, clamp_kN=1000.0),
        imm("one-a2", firm="F2", site="F2-A", km=500, clamp_kN=900.0),
        imm("one-b", firm="F2", site="F2-B", km=400, resins=("ABS",)),
        imm("one-c", firm="F3", km=450, ring=120.0),
        imm("one-d", firm="F3", site="F3-D", km=700, max_h=300.0),
    ]
    e = explanation(machines)
    assert e.reason == "no_compatible_machine"
    assert len(e.candidates) == 3
    assert all(c.failed_rules == 1 for c in e.candidates)
    assert len({c.site_id for c in e.candidates}) == 3
    assert "two-rules" not in [c.machine_id for c in e.candidates]
    # relative shortfalls: ring 100 vs 120 (0.17), height 350 vs 300 (0.14), clamp 1320
    # vs 1000 (0.24), resin (1.0)
    assert [c.machine_id for c in e.candidates] == ["one-d", "one-c", "one-a"]


def test_zone_capacity_and_stopped_sites() -> None:
    e = explanation([imm("in", km=30.0)])
    assert e.reason == "only_inside_zone"
    [z] = e.candidates[0].shortfalls
    assert (z.rule, z.quantity, z.required, z.unit) == ("zone", "zone_radius", 50.0, "km")
    assert z.offered == pytest.approx(30.0)
    assert (
        shortfall_text(z, "en")
        == "the site is 30 km from the disrupted site, inside the 50 km zone"
    )
    assert shortfall_text(z, "ja") == "拠点は被災拠点から 30 km で、半径 50 km の被災地域の内側です"
    flagged = explanation([imm("down", km=100.0, disrupted=True)])
    [s] = flagged.candidates[0].shortfalls
    assert (s.quantity, s.required, s.offered) == ("site_stopped", None, None)
    # the requester's own disrupted site is never a candidate
    own = explanation([imm("own", firm="REQ", site="REQ-S0", km=0.0)], sharing=())
    assert own.candidates == ()
    assert [s.quantity for s in own.shortfalls] == ["no_candidate"]

    full = explanation([imm("a")], spare={"a": 4.0})  # the job needs 10 h
    assert full.reason == "no_capacity"
    [cap] = full.shortfalls
    assert (cap.quantity, cap.required, cap.offered, cap.unit) == ("spare_hours", 6.0, 0.0, "h")
    assert shortfall_text(cap, "en") == (
        "needs 6 h more; compatible machines shared with you have 0 h left"
    )


def test_json_round_trip_and_redaction() -> None:
    e = explanation([imm("big", km=300, clamp_kN=1800.0)], the_mold=mold(clamp_kN=4500.0))
    assert Explanation.from_json(e.to_json()).to_json() == e.to_json()
    hidden = e.candidates[0].redacted()
    assert hidden.machine_id is None and hidden.shortfalls[0].offered is None
    assert hidden.shortfalls[0].required == pytest.approx(4950.0)
    text = candidate_text(
        Candidate.from_json(hidden.to_json() | {"machine_class": "injection_molding:1000-2000kN"}),
        "en",
        firm_name="Kyoto Co.",
    )
    assert text.startswith("Kyoto Co. F1-S (300 km, injection_molding:1000-2000kN): needs 4,950")
    assert "1,800" not in text and "big" not in text
