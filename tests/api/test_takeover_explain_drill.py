"""Explained unmet volume and disaster drills over the API (real SQLite registry).

The world of :mod:`tests.api.test_takeovers_api`: A (Osaka) is disrupted; B (43 km) shares
everything with machine detail; C (35 km, PC only) and E (11 km, inside A's 30 km zone)
share without detail; D shares only the 1000-2000 kN class while its machine is 2,500 kN
(so D's machine is not shared); F shares nothing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from renkei.cloud.registry import CapacityBooking, session_scope
from tests.api.rig import ApiRig, mold
from tests.api.test_takeovers_api import WINDOW, audit_rows, by_job, declare, job, seed_world

URL = "/api/v1/firms/A/takeovers"


def world(rig: ApiRig) -> None:
    seed_world(rig)
    rig.seed({"molds": [{"firm_id": "A"} | mold("m10", required_clamp_force_kN=4500.0)]})


def strip_generated(body: str, request_id: str) -> str:
    """*body* without the generated request id and ISO timestamps."""
    return re.sub(
        r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)?", "<ts>", body.replace(request_id, "<id>")
    )


def explanation(plan: dict[str, Any], job_id: str) -> dict[str, Any]:
    [unmet] = by_job(plan)[job_id]["unmet"]
    assert unmet["explanation"] is not None
    return dict(unmet["explanation"])


def test_unmet_volume_is_explained_in_both_languages_without_unshared_machines(
    rig: ApiRig,
) -> None:
    world(rig)
    a = rig.client("A")
    r = a.post(
        URL,
        json={
            "origin_site_id": "A-s1",
            **WINDOW,
            "jobs": [job("K1", "m10", 1000), job("W1", "m6", 1000)],
        },
    )
    assert r.status_code == 201, r.text
    plan = r.json()

    # clamp force: 4,500 kN + 10 % margin; the largest *shared* machine has 1,500 kN.
    # D's 2,500 kN machine is in a class D does not share with A: never named or counted.
    k1 = explanation(plan, "K1")
    assert by_job(plan)["K1"]["unmet"][0]["reason"] == "no_compatible_machine"
    assert [c["firm_id"] for c in k1["candidates"]] == ["B", "E", "C"]
    b = k1["candidates"][0]
    assert (b["machine_id"], b["site_id"], b["firm_name"]) == ("b1", "B-s1", "B Co.")
    assert b["machine_class"] == "injection_molding:1000-2000kN"
    [clamp] = b["shortfalls"]
    assert (clamp["rule"], clamp["comparison"], clamp["unit"]) == ("clamp_force", "at_least", "kN")
    assert (round(clamp["required"], 6), clamp["offered"]) == (4950.0, 1500.0)
    assert clamp["text"] == {
        "en": "needs 4,950 kN clamp force (4,500 kN + 10 % margin); the machine has 1,500 kN",
        "ja": "必要な型締力 4,950 kN（4,500 kN + 余裕 10%）に対し、設備は 1,500 kN",
    }
    # E and C share no machine detail: no machine id, no machine figures, but the class
    e, c = k1["candidates"][1], k1["candidates"][2]
    assert e["machine_id"] is None and c["machine_id"] is None
    assert [s["quantity"] for s in e["shortfalls"]] == ["clamp_force", "zone_radius"]
    assert all(s["offered"] is None for s in e["shortfalls"] + c["shortfalls"])
    assert [s["quantity"] for s in c["shortfalls"]] == ["clamp_force", "resin"]
    assert c["shortfalls"][1]["text"]["ja"] == "樹脂 PP をこの拠点では扱っていません"
    assert e["machine_class"] == "injection_molding:1000-2000kN"
    assert k1["text"]["en"].startswith("No machine shared with you fits the mold. Nearest")
    assert "1) B Co. B-s1 (43 km, machine b1, injection_molding:1000-2000kN)" in k1["text"]["en"]
    assert k1["text"]["ja"].startswith("金型に合う共有設備がありません。近い候補：1) B Co. B-s1")

    # tie bars: the 900 mm wide mold vs B's 510 mm spacing
    w1 = explanation(plan, "W1")
    [tie] = w1["candidates"][0]["shortfalls"]
    assert (tie["quantity"], tie["required"], tie["offered"]) == ("tie_bar_h", 900.0, 510.0)
    assert tie["text"]["en"] == "mold width 900 mm exceeds the horizontal tie-bar spacing 510 mm"
    assert tie["text"]["ja"] == "金型の幅 900 mm が横方向のタイバー間隔 510 mm を超えています"

    # nothing of D's or F's machines leaks, in any language or field
    # (the generated request id and the timestamps are random hex and clock digits:
    # they are cut out first, so "d1" or "2500" inside them is no leak)
    body = strip_generated(r.text, plan["id"])
    for secret in ('"D"', '"F"', "d1", "f1", "2,500", "2500", "D Co.", "F Co.", "D-s1", "F-s1"):
        assert secret not in body, secret
    assert audit_rows(rig, "D", "takeover.plan") == audit_rows(rig, "F", "takeover.plan") == []
    # the firms named as candidates are audited as disclosed, with the jobs
    [e_row] = audit_rows(rig, "E", "takeover.plan")
    assert e_row.detail["explained_job_ids"] == ["K1", "W1"]
    assert e_row.detail["assignment_ids"] == [] and e_row.detail["machine_detail"] is False

    # a revoked grant hides the candidate at the next read
    with session_scope(rig.engine) as s:
        from renkei.cloud.registry import SharingGrant

        for g in s.scalars(select(SharingGrant).where(SharingGrant.owner_firm_id == "E")):
            s.delete(g)
    again = a.get(f"{URL}/{plan['id']}").json()
    assert [c["firm_id"] for c in explanation(again, "K1")["candidates"]] == ["B", "C"]


def test_not_shared_and_capacity_facts(rig: ApiRig) -> None:
    world(rig)
    r = rig.client("A").post(
        URL,
        json={
            "origin_site_id": "A-s1",
            **WINDOW,
            "jobs": [job("R1", "m4", 1000), job("R4", "m7", 200_000)],
        },
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    [sharing] = explanation(plan, "R1")["shortfalls"]
    assert (sharing["rule"], sharing["extras"]) == ("sharing", {"machines": 1.0, "firms": 1.0})
    assert sharing["text"]["en"].startswith("1 compatible machines at 1 firms do not share")
    [cap] = explanation(plan, "R4")["shortfalls"]
    assert (cap["rule"], cap["quantity"], cap["unit"]) == ("capacity", "spare_hours", "h")
    r4 = by_job(plan)["R4"]
    assert cap["required"] > 1000 and cap["offered"] < cap["required"]
    assert r4["unmet"][0]["parts"] == 400_000 - r4["covered_parts"]


def bookings(rig: ApiRig) -> int:
    with session_scope(rig.engine) as s:
        return int(s.scalar(select(func.count()).select_from(CapacityBooking)) or 0)


def test_drill_plans_offers_nothing_then_promotes_to_a_real_request(rig: ApiRig) -> None:
    world(rig)
    disruption = declare(rig)
    a, b = rig.client("A"), rig.client("B", "partner")
    drill_body = {
        "id": "drill-1",
        "drill": True,
        "disruption_id": disruption,
        **WINDOW,
        "jobs": [job("J4", "m7", 200_000), job("W1", "m6", 1000)],  # J4 takes all of B's hours
    }
    r = a.post(URL, json=drill_body)
    assert r.status_code == 201, r.text
    drill = r.json()
    assert drill["drill"] is True and drill["status"] == "open"
    assert drill["assignments"] and {x["status"] for x in drill["assignments"]} == {"drill"}
    jobs = by_job(drill)
    assert jobs["J4"]["covered_parts"] > 0
    assert jobs["J4"]["unmet"][0]["reason"] == "no_capacity"  # B's hours used up in the drill
    assert explanation(drill, "W1")["candidates"][0]["shortfalls"][0]["quantity"] == "tie_bar_h"
    assert drill["summary"]["covered_parts"] > 0
    assert drill["summary"]["assignments"]["drill"] == len(drill["assignments"])
    assert drill["summary"]["assignments"]["proposed"] == 0

    # partners are not offered anything and cannot answer; nothing is booked or held
    assert b.get("/api/v1/firms/B/assignments").json() == []
    assert b.get("/api/v1/firms/B/assignments?status=drill").json() == []
    some = drill["assignments"][0]
    assert b.post(f"/api/v1/firms/B/assignments/{some['id']}/accept").status_code == 404
    assert b.post(f"/api/v1/firms/B/assignments/{some['id']}/decline").status_code == 404
    assert bookings(rig) == 0
    # the drill held no hours: a real request right after it gets B's hours in full
    real = a.post(URL, json={"origin_site_id": "A-s1", **WINDOW, "jobs": [job("S1", "m2", 5000)]})
    assert real.status_code == 201, real.text
    assert by_job(real.json())["S1"]["covered_parts"] == 10000, by_job(real.json())["S1"]
    a.post(f"{URL}/{real.json()['id']}/close")  # out of the way again
    # partners' data shown in the drill plan is audited as a drill
    shown = {
        e.detail["request_id"]: e.detail["drill"] for e in audit_rows(rig, "B", "takeover.plan")
    }
    assert shown == {"drill-1": True, real.json()["id"]: False}

    # drills are listed as drills
    listed = a.get(URL).json()
    assert {x["id"]: x["drill"] for x in listed}["drill-1"] is True
    assert [x["id"] for x in a.get(f"{URL}?drill=true").json()] == ["drill-1"]
    assert "drill-1" not in [x["id"] for x in a.get(f"{URL}?drill=false").json()]

    # a re-plan of a drill replaces its plan (still never offered)
    r = a.post(f"{URL}/drill-1/replan")
    assert r.status_code == 200, r.text
    replanned = r.json()
    assert replanned["revision"] == 2 and {x["status"] for x in replanned["assignments"]} == {
        "drill"
    }
    assert len(replanned["assignments"]) == len(drill["assignments"])
    assert by_job(replanned)["J4"]["covered_parts"] == jobs["J4"]["covered_parts"]

    # promote: a real request planned anew on current data, offered to the partners
    assert a.post(f"{URL}/{real.json()['id']}/promote").status_code == 409  # not a drill
    r = a.post(f"{URL}/drill-1/promote", json={"id": "tko-real"})
    assert r.status_code == 201, r.text
    promoted = r.json()
    assert promoted["id"] == "tko-real" and promoted["drill"] is False
    assert promoted["revision"] == 1 and promoted["disruption_id"] == disruption
    assert {x["status"] for x in promoted["assignments"]} == {"proposed"}
    assert by_job(promoted)["J4"]["covered_parts"] == jobs["J4"]["covered_parts"]
    assert [u["reason"] for u in by_job(promoted)["J4"]["unmet"]] == ["no_capacity"]
    old = a.get(f"{URL}/drill-1").json()
    assert old["status"] == "closed" and old["promoted_to"] == "tko-real"
    assert {x["status"] for x in old["assignments"]} == {"drill"}
    conflict = a.post(f"{URL}/drill-1/promote")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["detail"]["promoted_to"] == "tko-real"

    offers = b.get("/api/v1/firms/B/assignments?status=proposed").json()
    assert offers and {x["request_id"] for x in offers} == {"tko-real"}
    r = b.post(f"/api/v1/firms/B/assignments/{offers[0]['id']}/accept")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert bookings(rig) == 1
    # only the owner's operators and admins may promote
    assert rig.client("A", "partner").post(f"{URL}/drill-1/promote").status_code == 403
    assert rig.client("B").post(f"{URL}/drill-1/promote").status_code == 403
