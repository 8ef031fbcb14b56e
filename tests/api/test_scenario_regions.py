"""A 30-firm, 3-region scenario through the API only: an earthquake in Tohoku.

Regions: Tohoku (Sendai and the north), Kanto (Tokyo area), Kansai (Osaka area); ten firms
each, four injection-molding machines per firm (800, 1500, 2500 and 4500 kN classes).
Policies: most firms share with the Tohoku firm ``t01`` through a partner group or a direct
grant; ``k09``, ``k10``, ``w09``, ``w10`` share nothing; every firm admits its region's
supporters into aggregates except ``w07``–``w10`` (so Kansai aggregates stay above k=3 but
only 6 firms contribute). Bookings fill part of some partners' weeks.

Then ``t01`` (Sendai) and ``t02`` (near Sendai) are stopped by an earthquake: ``t01``
declares a 60 km zone, a Last-Will-style suspicion for ``t03`` is confirmed, and ``t01``
asks partners to take over five jobs. The test checks the whole story: every allocation is
compatible, outside the zone, on a sharing and running firm, within spare hours; unmet
volumes carry the right reasons; partners accept and decline and the plan follows; accepted
hours are booked; the audit logs show who read what; supporters see k-anonymous aggregates
with the disrupted firms counted.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from renkei.cloud.planner import check_compat, haversine_km
from renkei.cloud.registry import (
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    Machine,
    Mold,
    Site,
    TakeoverAssignment,
    session_scope,
)
from renkei.cloud.takeover.convert import machine_spec, mold_spec
from tests.api.rig import ApiRig, imm, mold

REGIONS = {
    "tohoku": (38.27, 140.87),
    "kanto": (35.68, 139.69),
    "kansai": (34.69, 135.50),
}
SIZES = (  # clamp kN, tie bar mm, mold height min..max mm, shot g
    (800.0, 360.0, 150.0, 400.0, 150.0),
    (1500.0, 510.0, 200.0, 550.0, 400.0),
    (2500.0, 660.0, 250.0, 650.0, 900.0),
    (4500.0, 860.0, 350.0, 850.0, 2000.0),
)
ZONE_KM = 60.0
NON_SHARING = {"k09", "k10", "w09", "w10"}
NO_SUPPORTERS = {"w07", "w08", "w09", "w10"}
WINDOW = ("2026-11-30", "2026-12-14")  # two ISO weeks, Monday to Monday (exclusive)


def _firm_ids() -> list[tuple[str, str, float, float]]:
    out = []
    for prefix, region in (("t", "tohoku"), ("k", "kanto"), ("w", "kansai")):
        lat0, lon0 = REGIONS[region]
        for i in range(1, 11):
            if prefix == "t" and i >= 6:
                lat, lon = lat0 + 0.9 + 0.1 * i, lon0 + 0.3  # Iwate / Aomori: > 100 km north
            else:
                lat, lon = lat0 + 0.04 * (i - 5), lon0 + 0.05 * ((i * 7) % 5 - 2)
            out.append((f"{prefix}{i:02d}", region, lat, lon))
    return out


def _machines(firm: str) -> list[dict[str, Any]]:
    return [
        imm(
            f"{firm}-m{j}",
            force,
            tie_bar_h_mm=tie,
            tie_bar_v_mm=tie,
            min_mold_height_mm=lo,
            max_mold_height_mm=hi,
            shot_capacity_g=shot,
        )
        for j, (force, tie, lo, hi, shot) in enumerate(SIZES, start=1)
    ]


T01_MOLDS = [
    mold(
        "t01-small",
        width_mm=300,
        height_mm=300,
        thickness_mm=250,
        required_clamp_force_kN=600,
        shot_weight_g=60,
        cycle_time_s=20,
    ),
    mold(
        "t01-medium",
        width_mm=450,
        height_mm=450,
        thickness_mm=400,
        required_clamp_force_kN=1300,
        shot_weight_g=200,
        cycle_time_s=30,
        resin="ABS",
    ),
    mold(
        "t01-large",
        width_mm=800,
        height_mm=780,
        thickness_mm=600,
        required_clamp_force_kN=3800,
        shot_weight_g=900,
        cycle_time_s=45,
        cavities=1,
    ),
    mold(
        "t01-huge",
        width_mm=1300,
        height_mm=1200,
        thickness_mm=900,
        required_clamp_force_kN=9000,
        shot_weight_g=3000,
        cycle_time_s=60,
        cavities=1,
    ),
    mold(
        "t01-auto",
        width_mm=420,
        height_mm=420,
        thickness_mm=380,
        required_clamp_force_kN=1200,
        shot_weight_g=150,
        cycle_time_s=25,
    ),
]


@pytest.fixture
def world(rig: ApiRig) -> ApiRig:
    admin = None
    for firm, region, lat, lon in _firm_ids():
        certs = ("ISO9001", "IATF16949") if firm in ("t04", "k03", "w02") else ("ISO9001",)
        rig.seed_firm(
            firm,
            region=region,
            lat=lat,
            lon=lon,
            machines=_machines(firm),
            molds=T01_MOLDS if firm == "t01" else [],
            certifications=certs,
        )
        admin = admin or firm
    # policies, through the API as each owner's operator
    for firm, region, _, _ in _firm_ids():
        c = rig.client(firm)
        if firm not in NO_SUPPORTERS:
            r = c.post(
                f"/api/v1/firms/{firm}/grants",
                json={"grantee_kind": "supporters", "grantee_id": region},
            )
            assert r.status_code == 201, r.text
        if firm in NON_SHARING or firm == "t01":
            continue
        if firm.startswith("t"):  # Tohoku firms: a regional aid group
            group = {
                "id": f"{firm}-aid",
                "name": "tohoku aid",
                "members": sorted({"t01", "t02", "t03"} - {firm}),
            }
            assert c.post(f"/api/v1/firms/{firm}/groups", json=group).status_code == 201
            body = {"grantee_kind": "group", "grantee_id": f"{firm}-aid", "machine_detail": True}
        else:
            body = {
                "grantee_kind": "firm",
                "grantee_id": "t01",
                "granularity": "day",
                "machine_detail": firm.endswith(("1", "3", "5")),
            }
        r = c.post(f"/api/v1/firms/{firm}/grants", json=body)
        assert r.status_code == 201, r.text
    # partners' own production plans: k01 and w01 are fully booked on their 4500 kN press
    for firm in ("k01", "w01"):
        rows = [
            {
                "machine_id": f"{firm}-m4",
                "start": WINDOW[0],
                "end": "2026-12-13",
                "hours_per_day": 24.0,
                "reference": "customer order",
            }
        ]
        r = rig.client(firm).post(f"/api/v1/firms/{firm}/bookings", json=rows)
        assert r.status_code == 201, r.text
    return rig


def _earthquake(rig: ApiRig) -> int:
    t01 = rig.client("t01")
    r = t01.post(
        "/api/v1/firms/t01/disruptions",
        json={
            "site_id": "t01-s1",
            "start": "2026-11-23T00:30:00Z",
            "radius_km": ZONE_KM,
            "note": "M7 earthquake, Sendai",
        },
    )
    assert r.status_code == 201, r.text
    declared = r.json()["id"]
    r = rig.client("t02").post(
        "/api/v1/firms/t02/disruptions",
        json={"site_id": "t02-s1", "start": "2026-11-23T00:30:00Z", "radius_km": 0},
    )
    assert r.status_code == 201, r.text
    # t03's gateways went silent: the watcher raised a suspicion; t03 confirms it
    with session_scope(rig.engine) as s:
        d = Disruption(
            firm_id="t03",
            site_id="t03-s1",
            status=DisruptionStatus.SUSPECTED,
            source=DisruptionSource.LAST_WILL,
            start=rig.now - timedelta(minutes=20),
            radius_km=30.0,
            detail={"offline": ["gw-1", "gw-2"]},
        )
        s.add(d)
        s.flush()
        suspected = d.id
    r = rig.client("t03").post(f"/api/v1/firms/t03/disruptions/{suspected}/confirm", json={})
    assert r.status_code == 200, r.text
    return int(declared)


def _jobs() -> list[dict[str, Any]]:
    return [
        {
            "job_id": "J-small",
            "part_id": "P-cap",
            "mold_id": "t01-small",
            "weekly_volume": 20000,
            "volume_unit": "parts",
        },
        {
            "job_id": "J-medium",
            "part_id": "P-housing",
            "mold_id": "t01-medium",
            "weekly_volume": 6000,
            "volume_unit": "shots",
        },
        {
            "job_id": "J-large",
            "part_id": "P-bumper",
            "mold_id": "t01-large",
            "weekly_volume": 3000,
            "volume_unit": "parts",
        },
        {
            "job_id": "J-huge",
            "part_id": "P-pallet",
            "mold_id": "t01-huge",
            "weekly_volume": 500,
            "volume_unit": "parts",
        },
        {
            "job_id": "J-auto",
            "part_id": "P-bracket",
            "mold_id": "t01-auto",
            "weekly_volume": 8000,
            "volume_unit": "parts",
            "required_certifications": ["IATF16949"],
        },
    ]


def test_thirty_firms_three_regions_earthquake(world: ApiRig) -> None:
    rig = world
    disruption_id = _earthquake(rig)
    t01 = rig.client("t01")
    r = t01.post(
        "/api/v1/firms/t01/takeovers",
        json={
            "id": "quake-1",
            "disruption_id": disruption_id,
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "jobs": _jobs(),
        },
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    jobs = {j["job_id"]: j for j in plan["jobs"]}
    live = [a for a in plan["assignments"] if a["status"] == "proposed"]
    assert live, plan

    # --- every allocation is admissible -------------------------------------------------
    sharing = {f for f, *_ in _firm_ids()} - NON_SHARING - {"t01"}
    with session_scope(rig.engine) as s:
        origin = s.get(Site, "t01-s1")
        assert origin is not None
        stopped = {"t01-s1", "t02-s1", "t03-s1"}
        for a in live:
            assert a["partner_firm_id"] in sharing, a
            row = s.get(TakeoverAssignment, a["id"])  # the API hides some machine ids
            assert row is not None
            machine = s.get(Machine, row.machine_id)
            site = s.get(Site, a["site_id"])
            assert site is not None and machine is not None
            assert site.id not in stopped, a
            km = haversine_km(
                origin.latitude_deg, origin.longitude_deg, site.latitude_deg, site.longitude_deg
            )
            assert km > ZONE_KM, (a, km)
            assert a["transport_km"] == pytest.approx(km, rel=0.02), a
            job = jobs[a["job_id"]]
            m = s.get(Mold, job["mold_id"])
            assert m is not None
            certs = {"IATF16949"} if a["job_id"] == "J-auto" else set()
            result = check_compat(
                mold=mold_spec(m, origin=origin),
                machine=machine_spec(machine, site),
                required_certifications=certs,
            )
            assert result.ok, (a, result)
        # machine ids are disclosed only where the owner shares machine detail
        for a in live:
            firm = a["partner_firm_id"]
            detail = firm.startswith("t") or firm.endswith(("1", "3", "5"))
            assert (a["machine_id"] is not None) == detail, a

    # --- coverage and reasons -----------------------------------------------------------
    assert jobs["J-small"]["covered_parts"] == jobs["J-small"]["needed_parts"] > 0
    assert jobs["J-medium"]["covered_parts"] == jobs["J-medium"]["needed_parts"]
    assert jobs["J-medium"]["needed_parts"] == 2 * 6000 * 2  # shots x 2 cavities x 2 weeks
    assert {u["reason"] for u in jobs["J-huge"]["unmet"]} == {"no_compatible_machine"}
    assert jobs["J-huge"]["covered_parts"] == 0
    # IATF 16949: t04 is inside the zone; k03 and w02 are outside and share
    auto_sites = {a["site_id"] for a in live if a["job_id"] == "J-auto"}
    assert auto_sites <= {"k03-s1", "w02-s1"}, auto_sites
    assert jobs["J-auto"]["covered_parts"] > 0
    for j in jobs.values():
        assert j["covered_parts"] + sum(u["parts"] for u in j["unmet"]) == j["needed_parts"], j
        for u in j["unmet"]:
            assert u["reason"] in {
                "no_compatible_machine",
                "no_capacity",
                "not_shared",
                "only_inside_zone",
            }
    # the fully booked 4500 kN machines are never used
    assert not {a["machine_id"] for a in live} & {"k01-m4", "w01-m4"}

    # --- partners answer; the plan follows ----------------------------------------------
    first, second = (
        live[0],
        next(a for a in live if a["partner_firm_id"] != live[0]["partner_firm_id"]),
    )
    partner_a, partner_b = first["partner_firm_id"], second["partner_firm_id"]
    offers = rig.client(partner_a, "partner").get(f"/api/v1/firms/{partner_a}/assignments")
    assert offers.status_code == 200 and {o["id"] for o in offers.json()} >= {first["id"]}
    assert all(o["requester_firm_id"] == "t01" for o in offers.json())
    before = (
        rig.client(partner_a)
        .get(f"/api/v1/firms/{partner_a}/capacity", params={"start": WINDOW[0], "days": 14})
        .json()
    )
    booked_before = sum(p["booked_h"] for m in before["machines"] for p in m["points"])
    r = rig.client(partner_a, "partner").post(
        f"/api/v1/firms/{partner_a}/assignments/{first['id']}/accept", json={}
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    r = rig.client(partner_b, "partner").post(
        f"/api/v1/firms/{partner_b}/assignments/{second['id']}/decline",
        json={"note": "our own customers first"},
    )
    assert r.status_code == 200 and r.json()["status"] == "declined", r.text
    after = (
        rig.client(partner_a)
        .get(f"/api/v1/firms/{partner_a}/capacity", params={"start": WINDOW[0], "days": 14})
        .json()
    )
    booked_after = sum(p["booked_h"] for m in after["machines"] for p in m["points"])
    assert booked_after == pytest.approx(booked_before + first["hours"], abs=0.01)
    plan2 = t01.get("/api/v1/firms/t01/takeovers/quake-1").json()
    assert plan2["revision"] >= 2
    statuses = {a["id"]: a["status"] for a in plan2["assignments"]}
    assert statuses[first["id"]] == "accepted" and statuses[second["id"]] == "declined"
    job2 = {j["job_id"]: j for j in plan2["jobs"]}
    declined_job = second["job_id"]
    assert job2[first["job_id"]]["accepted_parts"] >= first["parts"]
    # the declined volume went elsewhere or is explained
    replanned = [
        a for a in plan2["assignments"] if a["job_id"] == declined_job and a["status"] == "proposed"
    ]
    assert replanned or job2[declined_job]["unmet"], plan2
    assert all(
        a["machine_id"] != second["machine_id"] or a["machine_id"] is None for a in replanned
    )

    # --- audit: partners see that t01 read their data -----------------------------------
    log = rig.client(partner_a).get(f"/api/v1/firms/{partner_a}/audit").json()
    assert any(e["reader_firm_id"] == "t01" and e["action"] == "takeover.plan" for e in log)
    non_sharing_log = rig.client("k09").get("/api/v1/firms/k09/audit").json()
    assert non_sharing_log == []  # nothing of k09 was ever disclosed

    # --- search: t01 never sees non-sharing firms ----------------------------------------
    found = t01.get(
        "/api/v1/capacity/search",
        params={"process": "injection_molding", "start": WINDOW[0], "end": WINDOW[1]},
    ).json()
    firms_seen = {res["firm_id"] for res in found["results"]}
    assert firms_seen and not firms_seen & NON_SHARING and "t01" not in firms_seen

    # --- supporters: k-anonymous regional aggregates ------------------------------------
    supporter = "k10"  # any firm's supporter credential sees its own region's view
    regions = {
        x["region"]: x for x in rig.client(supporter, "supporter").get("/api/v1/regions").json()
    }
    kanto = regions["kanto"]
    assert not kanto["suppressed"] and kanto["firms"] == 10
    tohoku = rig.client("t05", "supporter").get("/api/v1/regions/tohoku").json()
    assert tohoku["firms_disrupted"] == 3 and tohoku["firms_up"] == 7, tohoku
    kansai = rig.client("w01", "supporter").get("/api/v1/regions/kansai").json()
    assert kansai["firms"] == 6  # w07..w10 did not admit supporters
    assert rig.client("t01", "partner").get("/api/v1/regions").status_code == 403


def test_every_takeover_firm_is_known_and_dates_are_sane() -> None:
    """Guard the scenario's own geometry: the zone splits Tohoku as described."""
    pos = {f: (lat, lon) for f, _, lat, lon in _firm_ids()}
    origin = pos["t01"]
    inside = {f for f, p in pos.items() if haversine_km(*origin, *p) <= ZONE_KM}
    assert inside == {"t01", "t02", "t03", "t04", "t05"}
    assert date.fromisoformat(WINDOW[0]).weekday() == 0
