"""Takeover requests end to end over the API.

Firm A (Osaka) is disrupted. Partners: B (Kyoto, 43 km, shares everything with machine
detail), C (35 km, shares, no machine detail, PC only), D (far, shares only the
1000-2000 kN class while its POM machine is 2500 kN), E (11 km: inside A's 30 km zone,
shares, the only IATF 16949 site), F (Nagoya, the only PBT site, shares nothing).
A declares, requests 3 jobs, B accepts, C declines and the volume moves to B; a second
request shows every unmet reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from renkei.cloud.registry import (
    AuditEvent,
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    GranteeKind,
    ShareGranularity,
    SharingGrant,
    session_scope,
)
from tests.api.rig import ApiRig, imm, mold

WINDOW = {"window_start": "2026-11-23", "window_end": "2026-12-07"}  # 14 days, 10 workdays


def grant(
    rig: ApiRig, owner: str, grantee: str, *, classes: Iterable[str] = (), detail: bool = False
) -> None:
    with session_scope(rig.engine) as s:
        s.add(
            SharingGrant(
                owner_firm_id=owner,
                grantee_kind=GranteeKind.FIRM,
                grantee_id=grantee,
                capability_classes=list(classes),
                granularity=ShareGranularity.DAY,
                machine_detail=detail,
            )
        )


def seed_world(rig: ApiRig) -> None:
    rig.seed_firm(
        "A",
        lat=34.69,
        lon=135.50,
        machines=[imm("a1")],
        molds=[
            mold("m1"),
            mold("m2", resin="ABS"),
            mold("m3", resin="PC"),
            mold("m4", resin="POM"),
            mold("m5"),
            mold("m6", width_mm=900.0),
            mold("m7"),
            mold("m8", cavities=4),
            mold("m9", resin="PBT"),
        ],
    )
    rig.seed_firm(
        "B", lat=35.01, lon=135.77, machines=[imm("b1"), imm("b2")], resins=("PP", "ABS", "PC")
    )
    rig.seed_firm("C", lat=34.69, lon=135.88, machines=[imm("c1")], resins=("PC",))
    rig.seed_firm("D", lat=34.66, lon=133.93, machines=[imm("d1", 2500.0)], resins=("POM",))
    rig.seed_firm(
        "E",
        lat=34.75,
        lon=135.60,
        machines=[imm("e1")],
        certifications=("ISO9001", "IATF16949"),
    )
    rig.seed_firm("F", lat=35.18, lon=136.9, machines=[imm("f1")], resins=("PBT",))  # no grant
    rig.seed_firm("ops")
    grant(rig, "B", "A", detail=True)
    grant(rig, "C", "A")
    grant(rig, "D", "A", classes=["injection_molding:1000-2000kN"], detail=True)
    grant(rig, "E", "A")


def declare(rig: ApiRig) -> int:
    r = rig.client("A").post(
        "/api/v1/firms/A/disruptions",
        json={"site_id": "A-s1", "start": "2026-11-22T20:00:00Z", "note": "earthquake"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def job(job_id: str, mold_id: str, weekly: int, **over: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "part_id": f"P-{job_id}",
        "mold_id": mold_id,
        "weekly_volume": weekly,
    } | over


def by_job(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["job_id"]: j for j in plan["jobs"]}


def live(plan: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    return [
        a
        for a in plan["assignments"]
        if a["job_id"] == job_id and a["status"] in ("proposed", "accepted")
    ]


def audit_rows(rig: ApiRig, owner: str, action: str) -> list[AuditEvent]:
    with session_scope(rig.engine) as s:
        return list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.owner_firm_id == owner, AuditEvent.action == action
                )
            )
        )


def test_full_story_declare_plan_accept_decline_replan(rig: ApiRig) -> None:
    seed_world(rig)
    disruption = declare(rig)
    a = rig.client("A")
    body = {
        "id": "tko-1",
        "disruption_id": disruption,
        **WINDOW,
        "jobs": [job("J1", "m1", 5000), job("J2", "m2", 5000), job("J3", "m3", 3000)],
    }
    r = a.post("/api/v1/firms/A/takeovers", json=body)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert set(plan) == {
        "id",
        "firm_id",
        "status",
        "revision",
        "window_start",
        "window_end",
        "origin_site_id",
        "disruption_id",
        "summary",
        "jobs",
        "assignments",
        "drill",
        "promoted_to",
    }
    assert plan["drill"] is False and plan["promoted_to"] is None
    assert plan["id"] == "tko-1" and plan["revision"] == 1 and plan["status"] == "open"
    assert plan["origin_site_id"] == "A-s1" and plan["disruption_id"] == disruption
    jobs = by_job(plan)
    assert {k: (j["needed_parts"], j["covered_parts"], j["unmet"]) for k, j in jobs.items()} == {
        "J1": (10000, 10000, []),
        "J2": (10000, 10000, []),
        "J3": (6000, 6000, []),
    }
    assert set(jobs["J1"]) == {
        "job_id",
        "part_id",
        "mold_id",
        "needed_parts",
        "covered_parts",
        "accepted_parts",
        "unmet",
    }
    assert {x["partner_firm_id"] for x in live(plan, "J1") + live(plan, "J2")} == {"B"}
    [c_assignment] = live(plan, "J3")
    assert c_assignment["partner_firm_id"] == "C" and c_assignment["site_id"] == "C-s1"
    assert c_assignment["machine_id"] is None  # C shares no machine detail
    assert c_assignment["partner_firm_name"] == "C Co."
    assert all(x["machine_id"] in ("b1", "b2") for x in live(plan, "J1"))  # B does
    assert set(c_assignment) == {
        "id",
        "job_id",
        "partner_firm_id",
        "partner_firm_name",
        "site_id",
        "machine_id",
        "hours",
        "parts",
        "transport_km",
        "status",
        "revision",
    }
    assert 30 < c_assignment["transport_km"] < 40
    assert c_assignment["hours"] == 25.0  # 6000 parts / 2 cavities × 30 s
    s = plan["summary"]
    assert (s["needed_parts"], s["covered_parts"], s["accepted_parts"]) == (26000, 26000, 0)
    assert s["coverage"] == 1.0 and s["partner_firms"] == 2 and s["plan"]["revision"] == 1
    # every partner shown to A is audited, once per response
    assert len(audit_rows(rig, "B", "takeover.plan")) == 1
    assert len(audit_rows(rig, "C", "takeover.plan")) == 1

    # B sees its assignments with the mold it will receive, and accepts them
    b = rig.client("B", "partner")
    mine = b.get("/api/v1/firms/B/assignments?status=proposed").json()
    assert {x["job_id"] for x in mine} == {"J1", "J2"}
    first = mine[0]
    assert first["requester_firm_id"] == "A" and first["requester_firm_name"] == "A Co."
    assert first["mold"]["cavities"] == 2 and first["mold"]["width_mm"] == 400.0
    assert first["window_start"] == "2026-11-23" and first["window_end"] == "2026-12-07"
    assert set(first["mold"]) == {
        "id",
        "width_mm",
        "height_mm",
        "thickness_mm",
        "weight_kg",
        "required_clamp_force_kN",
        "shot_weight_g",
        "resin",
        "cavities",
        "locating_ring_mm",
        "cycle_time_s",
    }
    assert len(audit_rows(rig, "A", "takeover.assignment")) == 1
    for x in mine:
        r = b.post(f"/api/v1/firms/B/assignments/{x['id']}/accept", json={"note": "ok"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
    again = b.post(f"/api/v1/firms/B/assignments/{first['id']}/accept")
    assert again.status_code == 409
    assert b.post(f"/api/v1/firms/B/assignments/{first['id']}/decline").status_code == 409
    # B cannot answer C's assignment; C cannot see B's
    assert b.post(f"/api/v1/firms/B/assignments/{c_assignment['id']}/decline").status_code == 404
    assert b.post(f"/api/v1/firms/C/assignments/{c_assignment['id']}/decline").status_code == 403

    # C declines: the volume is re-planned at once, without c1 for J3: it moves to B
    c = rig.client("C")
    r = c.post(
        f"/api/v1/firms/C/assignments/{c_assignment['id']}/decline", json={"note": "no dryer"}
    )
    assert r.status_code == 200 and r.json()["status"] == "declined"
    plan = a.get("/api/v1/firms/A/takeovers/tko-1").json()
    assert plan["revision"] == 2
    jobs = by_job(plan)
    assert jobs["J1"]["accepted_parts"] == 10000 and jobs["J2"]["accepted_parts"] == 10000
    assert jobs["J3"]["accepted_parts"] == 0
    assert jobs["J3"]["covered_parts"] == 6000 and jobs["J3"]["unmet"] == []
    [moved] = live(plan, "J3")
    assert moved["partner_firm_id"] == "B" and moved["revision"] == 2
    assert moved["status"] == "proposed"
    declined = [x for x in plan["assignments"] if x["status"] == "declined"]
    assert [x["id"] for x in declined] == [c_assignment["id"]]
    s = plan["summary"]
    assert s["accepted_parts"] == 20000 and s["covered_parts"] == 26000
    assert s["assignments"]["declined"] == 1 and s["plan"]["revision"] == 2
    assert len(audit_rows(rig, "C", "takeover.plan")) == 2  # C's declined row is still shown

    # the list is light (no partners); an explicit replan has nothing left to plan
    listed = a.get("/api/v1/firms/A/takeovers").json()
    assert [(x["id"], x["revision"]) for x in listed] == [("tko-1", 2)]
    r = a.post("/api/v1/firms/A/takeovers/tko-1/replan")
    assert r.status_code == 200 and r.json()["revision"] == 3
    assert len(r.json()["assignments"]) == len(plan["assignments"])

    # close: B's unanswered proposal is withdrawn; nothing can be answered any more
    r = a.post("/api/v1/firms/A/takeovers/tko-1/close")
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["status"] == "closed"
    assert [x["status"] for x in live(closed, "J3")] == []
    assert {x["status"] for x in closed["assignments"]} == {"accepted", "declined", "withdrawn"}
    assert b.post(f"/api/v1/firms/B/assignments/{moved['id']}/accept").status_code == 409
    assert a.post("/api/v1/firms/A/takeovers/tko-1/close").status_code == 409
    assert a.post("/api/v1/firms/A/takeovers/tko-1/replan").status_code == 409
    assert a.get("/api/v1/firms/A/takeovers?status=open").json() == []


def test_every_unmet_reason(rig: ApiRig) -> None:
    seed_world(rig)
    disruption = declare(rig)
    a = rig.client("A")
    body = {
        "disruption_id": disruption,
        **WINDOW,
        "jobs": [
            job("R1", "m4", 1000),  # POM: only D, whose 2500 kN class is not shared with A
            job("R2", "m5", 1000, required_certifications=["IATF16949"]),  # only E, in zone
            job("R3", "m6", 1000),  # 900 mm wide: passes no tie bars
            job("R4", "m7", 200_000),  # 400,000 parts = 1,667 h: more than B has
            job("R5", "m9", 1000),  # PBT: only F, which shares nothing with A
        ],
    }
    r = a.post("/api/v1/firms/A/takeovers", json=body)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["id"].startswith("tko-20261123-")
    reasons = {k: [u["reason"] for u in j["unmet"]] for k, j in by_job(plan).items()}
    assert reasons == {
        "R1": ["not_shared"],
        "R2": ["only_inside_zone"],
        "R3": ["no_compatible_machine"],
        "R4": ["no_capacity"],
        "R5": ["not_shared"],
    }
    r4 = by_job(plan)["R4"]
    assert r4["needed_parts"] == 400_000 and 0 < r4["covered_parts"] < 400_000
    assert r4["unmet"][0]["parts"] == 400_000 - r4["covered_parts"]
    hours_on_b = sum(x["hours"] for x in live(plan, "R4"))
    assert 280 < hours_on_b <= 288.0 + 1e-6  # 2 machines × 10 days × 16 h × 0.9
    assert plan["summary"]["unmet_parts_by_reason"]["not_shared"] == 4000
    # D's and F's machines were never planned, so they are not disclosed (no audit rows)
    assert audit_rows(rig, "D", "takeover.plan") == audit_rows(rig, "F", "takeover.plan") == []

    # a second open request competes for B's hours: what the first holds is not offered
    r = a.post(
        "/api/v1/firms/A/takeovers",
        json={"origin_site_id": "A-s1", **WINDOW, "jobs": [job("S1", "m1", 5000)]},
    )
    assert r.status_code == 201, r.text
    s1 = by_job(r.json())["S1"]
    assert s1["covered_parts"] == 0 and s1["unmet"][0]["reason"] == "no_capacity"


def test_other_confirmed_disruptions_stop_partner_sites_and_shots(rig: ApiRig) -> None:
    seed_world(rig)
    rig.client("B").post(
        "/api/v1/firms/B/disruptions",
        json={"site_id": "B-s1", "start": "2026-11-30T00:00:00Z", "radius_km": 0},
    )
    a = rig.client("A")
    r = a.post(
        "/api/v1/firms/A/takeovers",
        json={
            "origin_site_id": "A-s1",
            "zone_radius_km": 5,  # E (11 km) is outside this zone
            **WINDOW,
            "jobs": [job("J1", "m8", 1000, volume_unit="shots", due_date="2026-11-29")],
        },
    )
    assert r.status_code == 201, r.text
    j1 = by_job(r.json())["J1"]
    # 1000 shots × 4 cavities per week, 7 days up to the due date
    assert j1["needed_parts"] == 4000 and j1["covered_parts"] == 4000
    # B's site is stopped from Nov 30 (inside the window): E takes it
    assert {x["partner_firm_id"] for x in live(r.json(), "J1")} == {"E"}


def test_validation_conflicts_and_scope(rig: ApiRig) -> None:
    seed_world(rig)
    a = rig.client("A")
    url = "/api/v1/firms/A/takeovers"
    ok = {"origin_site_id": "A-s1", **WINDOW, "jobs": [job("J1", "m1", 100)]}

    def err(body: dict[str, Any], status: int = 422) -> dict[str, Any]:
        r = a.post(url, json=body)
        assert r.status_code == status, r.text
        return dict(r.json()["error"])

    def loc(body: dict[str, Any]) -> str:
        return str(err(body)["detail"][0]["loc"])

    assert loc(ok | {"jobs": [job("J1", "b-mold", 100)]}) == "body.jobs[0].mold_id"
    rig.seed_firm("Z", molds=[mold("zm")])
    assert loc(ok | {"jobs": [job("J1", "zm", 100)]}) == "body.jobs[0].mold_id"
    assert loc(ok | {"jobs": [job("J1", "m1", 1), job("J1", "m2", 1)]}) == "body.jobs[1].job_id"
    assert loc(ok | {"jobs": [job("J1", "m1", 1), job("J2", "m1", 1)]}) == "body.jobs[1].mold_id"
    assert loc(ok | {"window_end": "2026-11-23"}) == "body.window_end"
    assert loc(ok | {"window_end": "2028-01-01"}) == "body.window_end"
    assert (
        loc(ok | {"jobs": [job("J1", "m1", 1, due_date="2026-11-01")]}) == "body.jobs[0].due_date"
    )
    assert loc({**WINDOW, "jobs": [job("J1", "m1", 1)]}) == "body.origin_site_id"
    assert loc(ok | {"origin_site_id": "B-s1"}) == "body.origin_site_id"
    assert loc(ok | {"disruption_id": 12345}) == "body.disruption_id"
    err(ok | {"jobs": [job("J1", "m1", 0)]})
    err(ok | {"jobs": []})
    err(ok | {"jobs": [job("J1", "m1", 1, volume_unit="kg")]})
    err(ok | {"surprise": 1})
    # a suspected disruption must be confirmed before it is planned against
    with session_scope(rig.engine) as s:
        d = Disruption(
            firm_id="A",
            site_id="A-s1",
            status=DisruptionStatus.SUSPECTED,
            source=DisruptionSource.LAST_WILL,
            start=datetime(2026, 11, 22, tzinfo=UTC),
        )
        s.add(d)
        s.flush()
        suspected = d.id
    assert err({**WINDOW, "disruption_id": suspected, "jobs": ok["jobs"]}, 409)
    r = a.post(url, json=ok | {"id": "t1"})
    assert r.status_code == 201
    assert err(ok | {"id": "t1"}, 409)
    # scope: other firms' requests are 404 under one's own path and 403 under theirs
    assert rig.client("B").get("/api/v1/firms/A/takeovers/t1").status_code == 403
    assert a.get("/api/v1/firms/A/takeovers/nope").status_code == 404
    assert rig.client("A", "partner").post(url, json=ok).status_code == 403
    assert rig.client("A", "partner").get(url).status_code == 403
    assert a.post("/api/v1/firms/A/assignments/999/accept").status_code == 404
    # an admin may read A's plan; that read is audited for A itself
    r = rig.client("ops", "admin").get("/api/v1/firms/A/takeovers/t1")
    assert r.status_code == 200
    assert [e.reader_firm_id for e in audit_rows(rig, "A", "takeover.plan")] == ["ops"]
