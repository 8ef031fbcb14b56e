"""Mounting a mold on a machine: owner firm only, same-firm molds only, one machine per
mold, and the machine's OEE parameters (mounted mold + ideal cycle time) for its gateway."""

from __future__ import annotations

from tests.api.rig import ApiRig, imm, mold

M = "/api/v1/firms/acme/machines"


def test_mount_unmount_and_oee_parameters(rig: ApiRig) -> None:
    rig.seed_firm(
        "acme",
        machines=[imm("a1"), imm("a2")],
        molds=[mold("am1", cycle_time_s=18.5), mold("am2")],
    )
    c = rig.client("acme")
    oee = c.get(f"{M}/a1/oee").json()
    assert oee == {
        "machine_id": "a1",
        "mounted_mold_id": None,
        "ideal_cycle_time_s": None,
        "oee": {"mold": None, "ideal_cycle_time_s": None},
    }
    r = c.put(f"{M}/a1/mold", json={"mold_id": "am1"})
    assert r.status_code == 200, r.text
    assert r.json()["mounted_mold_id"] == "am1"
    assert c.get(f"{M}/a1").json()["mounted_mold_id"] == "am1"
    oee = c.get(f"{M}/a1/oee").json()
    assert oee["mounted_mold_id"] == "am1" and oee["ideal_cycle_time_s"] == 18.5
    assert oee["oee"] == {"mold": "am1", "ideal_cycle_time_s": 18.5}
    # a mold is on one machine at a time: 409 names where it is
    r = c.put(f"{M}/a2/mold", json={"mold_id": "am1"})
    assert r.status_code == 409 and "a1" in r.json()["error"]["message"], r.text
    # re-mounting the same mold is idempotent; another mold replaces it
    assert c.put(f"{M}/a1/mold", json={"mold_id": "am1"}).status_code == 200
    assert c.put(f"{M}/a1/mold", json={"mold_id": "am2"}).json()["mounted_mold_id"] == "am2"
    assert c.put(f"{M}/a2/mold", json={"mold_id": "am1"}).status_code == 200
    # a PATCH of other attributes keeps the mount
    r = c.patch(f"{M}/a2", json={"clamp_force_kN": 2200})
    assert r.status_code == 200 and r.json()["mounted_mold_id"] == "am1", r.text
    assert c.delete(f"{M}/a2/mold").status_code == 204
    assert c.delete(f"{M}/a2/mold").status_code == 204  # nothing mounted: still fine
    assert c.get(f"{M}/a2/oee").json()["mounted_mold_id"] is None
    # deleting a mounted mold unmounts it
    assert c.delete("/api/v1/firms/acme/molds/am2").status_code == 204
    assert c.get(f"{M}/a1").json()["mounted_mold_id"] is None
    r = c.put(f"{M}/a1/mold", json={"mold_id": "nope"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["loc"] == "body.mold_id"


def test_other_firms_cannot_mount_or_see_mounted_molds(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1")], molds=[mold("am1")])
    rig.seed_firm("beta", machines=[imm("b1")], molds=[mold("bm1")])
    acme = rig.client("acme")
    assert acme.put(f"{M}/a1/mold", json={"mold_id": "am1"}).status_code == 200
    beta = rig.client("beta")
    # cross-firm mounting: beta's mold on acme's machine, acme's mold on beta's machine
    r = acme.put(f"{M}/a1/mold", json={"mold_id": "bm1"})
    assert r.status_code == 422, r.text
    missing = acme.put(f"{M}/a1/mold", json={"mold_id": "zz"}).json()["error"]["detail"]
    assert r.json()["error"]["detail"] == missing  # another firm's mold looks like none
    r = beta.put("/api/v1/firms/beta/machines/b1/mold", json={"mold_id": "am1"})
    assert r.status_code == 422
    # another firm, whatever its role, neither reads nor changes acme's mount
    for role in ("operator", "partner", "engineer"):
        other = rig.client("beta", role)
        for path in (f"{M}/a1", f"{M}/a1/oee"):
            assert other.get(path).status_code == 403, (role, path)
        assert other.put(f"{M}/a1/mold", json={"mold_id": "am1"}).status_code == 403
        assert other.delete(f"{M}/a1/mold").status_code == 403
        r = other.get("/api/v1/firms/beta/machines/a1/oee")
        assert r.status_code in (403, 404), (role, r.text)
    # acme's own partner and engineer keys read the parameters but cannot change them
    assert rig.client("acme", "engineer").get(f"{M}/a1/oee").json()["mounted_mold_id"] == "am1"
    assert rig.client("acme", "partner").delete(f"{M}/a1/mold").status_code == 403
    assert acme.get(f"{M}/a1").json()["mounted_mold_id"] == "am1"
