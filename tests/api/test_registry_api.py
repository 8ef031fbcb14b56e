"""Registry endpoints: CRUD of one's own firm, validation errors, firm scoping."""

from __future__ import annotations

from tests.api.rig import ApiRig, imm, mold


def test_me_and_unauthenticated(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    assert rig.client().get("/api/v1/me").status_code == 401
    bad = rig.client()
    bad.headers["Authorization"] = "Bearer rk_nope_nope"
    r = bad.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    me = rig.client("acme", "operator").get("/api/v1/me").json()
    assert me["firm_id"] == "acme" and me["role"] == "operator"


def test_machine_crud_and_validation(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    c = rig.client("acme")
    body = {"firm_id": "acme", "line_id": "acme-l1"} | imm("m9")
    r = c.post("/api/v1/firms/acme/machines", json=body)
    assert r.status_code == 201, r.text
    assert c.post("/api/v1/firms/acme/machines", json=body).status_code == 409
    r = c.patch("/api/v1/firms/acme/machines/m9", json={"clamp_force_kN": 2200})
    assert r.status_code == 200 and r.json()["clamp_force_kN"] == 2200
    r = c.patch("/api/v1/firms/acme/machines/m9", json={"min_mold_height_mm": 900})
    assert r.status_code == 422
    bad = body | {"id": "m10", "clamp_force_kN": -5}
    r = c.post("/api/v1/firms/acme/machines", json=bad)
    assert r.status_code == 422
    err = r.json()["error"]
    assert any(d["loc"] == "body.clamp_force_kN" for d in err["detail"]), err
    assert c.delete("/api/v1/firms/acme/machines/m9").status_code == 204
    assert c.get("/api/v1/firms/acme/machines/m9").status_code == 404


def test_other_firms_objects_are_not_reachable(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1")], molds=[mold("am1")])
    rig.seed_firm("beta", machines=[imm("b1")])
    c = rig.client("acme")
    assert c.get("/api/v1/firms/beta/machines").status_code == 403
    assert c.get("/api/v1/firms/acme/machines/b1").status_code == 404
    body = {"firm_id": "beta", "line_id": "beta-l1"} | imm("x")
    assert c.post("/api/v1/firms/acme/machines", json=body).status_code == 422
    body = {"firm_id": "acme", "line_id": "beta-l1"} | imm("x")
    assert c.post("/api/v1/firms/acme/machines", json=body).status_code == 422


def test_registry_export_import_round_trip(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2", 3500)], molds=[mold("am1")])
    c = rig.client("acme")
    doc = c.get("/api/v1/firms/acme/registry").json()
    assert {m["id"] for m in doc["machines"]} == {"a1", "a2"}
    doc["machines"][0]["name"] = "renamed"
    r = c.put("/api/v1/firms/acme/registry", json=doc)
    assert r.status_code == 200, r.text
    assert c.get("/api/v1/firms/acme/registry").json() == doc
    doc["molds"][0]["firm_id"] = "beta"
    assert c.put("/api/v1/firms/acme/registry", json=doc).status_code == 422


def test_calendar_round_trip(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    c = rig.client("acme")
    assert c.get("/api/v1/firms/acme/sites/acme-s1/calendar").json() is None
    cal = {"weekly_hours": [24, 24, 24, 24, 24, 8, 0], "holidays": ["2026-12-31"]}
    r = c.put("/api/v1/firms/acme/sites/acme-s1/calendar", json=cal)
    assert r.status_code == 200, r.text
    got = c.get("/api/v1/firms/acme/sites/acme-s1/calendar").json()
    assert got["weekly_hours"] == [24, 24, 24, 24, 24, 8, 0]
    bad = {"weekly_hours": [25, 0, 0, 0, 0, 0, 0]}
    assert c.put("/api/v1/firms/acme/sites/acme-s1/calendar", json=bad).status_code == 422


def test_credentials_issue_and_revoke(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    c = rig.client("acme")
    r = c.post("/api/v1/firms/acme/credentials", json={"role": "partner", "label": "web"})
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["key_id"]
    other = rig.client()
    other.headers["X-API-Key"] = key
    assert other.get("/api/v1/me").json()["role"] == "partner"
    assert "key" not in c.get("/api/v1/firms/acme/credentials").json()[0]
    assert c.post("/api/v1/firms/acme/credentials", json={"role": "admin"}).status_code == 403
    assert c.delete(f"/api/v1/firms/acme/credentials/{key_id}").status_code == 204
    assert other.get("/api/v1/me").status_code == 401
