"""Sharing policy endpoints: grants and partner groups (validation, scoping, effect)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api.rig import ApiRig, imm

API = "/api/v1"


@pytest.fixture
def firms(rig: ApiRig) -> ApiRig:
    rig.seed_firm("acme", machines=[imm("a1")])
    rig.seed_firm("beta", machines=[imm("b1")])
    rig.seed_firm("gamma", region="tohoku", machines=[imm("g1")])
    return rig


def post_grant(rig: ApiRig, owner: str, **body: Any) -> Any:
    return rig.client(owner).post(f"{API}/firms/{owner}/grants", json=body)


def visible_to(rig: ApiRig, viewer: str) -> list[str]:
    r = rig.client(viewer, "partner").get(f"{API}/capacity/search")
    assert r.status_code == 200, r.text
    return sorted(x["firm_id"] for x in r.json()["results"])


def test_grant_crud(firms: ApiRig) -> None:
    r = post_grant(
        firms,
        "beta",
        grantee_kind="firm",
        grantee_id="acme",
        capability_classes=[
            "injection_molding:1000-2000kN",
            "press",
            "injection_molding:1000-2000kN",
        ],
        granularity="day",
        machine_detail=True,
        expires_at="2027-01-01T00:00:00+09:00",
    )
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["owner_firm_id"] == "beta" and g["grantee_kind"] == "firm"
    assert g["capability_classes"] == ["injection_molding:1000-2000kN", "press"]
    assert g["granularity"] == "day" and g["machine_detail"] is True
    assert g["expires_at"] == "2026-12-31T15:00:00Z"
    assert g["created_at"] == "2026-11-23T01:00:00Z"
    c = firms.client("beta")
    assert c.get(f"{API}/firms/beta/grants").json() == [g]
    assert visible_to(firms, "acme") == ["beta"]
    assert c.delete(f"{API}/firms/beta/grants/{g['id']}").status_code == 204
    assert c.get(f"{API}/firms/beta/grants").json() == []
    assert visible_to(firms, "acme") == []
    assert c.delete(f"{API}/firms/beta/grants/{g['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"grantee_kind": "firm", "grantee_id": "nobody"}, "body.grantee_id"),
        ({"grantee_kind": "firm", "grantee_id": "beta"}, "body.grantee_id"),
        ({"grantee_kind": "group", "grantee_id": "acme-circle"}, "body.grantee_id"),
        ({"grantee_kind": "group", "grantee_id": "none"}, "body.grantee_id"),
        ({"grantee_kind": "supporters", "grantee_id": " "}, "body.grantee_id"),
        (
            {"grantee_kind": "firm", "grantee_id": "acme", "capability_classes": ["imm:big"]},
            "body.capability_classes[0]",
        ),
        (
            {
                "grantee_kind": "firm",
                "grantee_id": "acme",
                "capability_classes": ["press", "injection_molding:1000-3000kN"],
            },
            "body.capability_classes[1]",
        ),
        (
            {"grantee_kind": "firm", "grantee_id": "acme", "expires_at": "2026-11-01T00:00:00Z"},
            "body.expires_at",
        ),
        ({"grantee_kind": "everyone", "grantee_id": "acme"}, "body.grantee_kind"),
        ({"grantee_kind": "firm", "grantee_id": "acme", "granularity": "hour"}, "body.granularity"),
        ({"grantee_kind": "firm", "grantee_id": "acme", "telemetry": True}, "body.telemetry"),
        (
            {"grantee_kind": "firm", "grantee_id": "acme", "expires_at": "2027-01-01T00:00"},
            "body.expires_at",
        ),
    ],
)
def test_grant_validation(firms: ApiRig, body: dict[str, Any], loc: str) -> None:
    acme = firms.client("acme")
    r = acme.post(
        f"{API}/firms/acme/groups", json={"id": "acme-circle", "name": "c", "members": ["gamma"]}
    )
    assert r.status_code == 201
    r = post_grant(firms, "beta", **body)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["error"]["detail"]]
    assert firms.client("beta").get(f"{API}/firms/beta/grants").json() == []


def test_supporter_grants_are_accepted_but_open_no_firm_view(firms: ApiRig) -> None:
    for region in ("kansai", "*"):
        r = post_grant(firms, "beta", grantee_kind="supporters", grantee_id=region)
        assert r.status_code == 201, r.text
    assert visible_to(firms, "acme") == []


def test_groups(firms: ApiRig) -> None:
    c = firms.client("beta")
    r = c.post(
        f"{API}/firms/beta/groups",
        json={"id": "beta-circle", "name": "Suppliers", "members": ["gamma", "acme", "acme"]},
    )
    assert r.status_code == 201, r.text
    group = r.json()
    assert group["members"] == ["acme", "gamma"] and group["owner_firm_id"] == "beta"
    assert c.get(f"{API}/firms/beta/groups").json() == [group]
    again = c.post(f"{API}/firms/beta/groups", json={"id": "beta-circle", "name": "x"})
    assert again.status_code == 409
    same_name = c.post(f"{API}/firms/beta/groups", json={"id": "other", "name": "Suppliers"})
    assert same_name.status_code == 409
    bad = c.post(
        f"{API}/firms/beta/groups",
        json={"id": "g2", "name": "n", "members": ["acme", "ghost", "beta"]},
    )
    assert bad.status_code == 422
    assert [d["loc"] for d in bad.json()["error"]["detail"]] == [
        "body.members[1]",
        "body.members[2]",
    ]
    gid = post_grant(firms, "beta", grantee_kind="group", grantee_id="beta-circle").json()["id"]
    assert visible_to(firms, "acme") == ["beta"] and visible_to(firms, "gamma") == ["beta"]
    # Another firm's group cannot be used, nor deleted.
    assert (
        post_grant(firms, "acme", grantee_kind="group", grantee_id="beta-circle").status_code == 422
    )
    assert firms.client("acme").delete(f"{API}/firms/acme/groups/beta-circle").status_code == 404
    # Deleting the group revokes the grants made to it.
    assert c.delete(f"{API}/firms/beta/groups/beta-circle").status_code == 204
    assert c.get(f"{API}/firms/beta/grants").json() == []
    assert visible_to(firms, "acme") == []
    assert c.delete(f"{API}/firms/beta/grants/{gid}").status_code == 404


def test_policy_is_managed_by_operators_of_the_firm_only(firms: ApiRig) -> None:
    body = {"grantee_kind": "firm", "grantee_id": "acme"}
    assert (
        firms.client("beta", "partner").post(f"{API}/firms/beta/grants", json=body).status_code
        == 403
    )
    assert firms.client("acme").post(f"{API}/firms/beta/grants", json=body).status_code == 403
    assert firms.client("acme").get(f"{API}/firms/beta/grants").status_code == 403
    assert firms.client("beta", "engineer").get(f"{API}/firms/beta/groups").status_code == 403
    firms.seed_firm("ops")
    admin = firms.client("ops", "admin")
    assert admin.post(f"{API}/firms/beta/grants", json=body).status_code == 201
    assert visible_to(firms, "acme") == ["beta"]


def search_view(rig: ApiRig, viewer: str, owner: str) -> dict[str, Any] | None:
    r = rig.client(viewer, "partner").get(f"{API}/capacity/search")
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = [x for x in r.json()["results"] if x["firm_id"] == owner]
    return hits[0] if hits else None


def test_grant_edit_in_place_changes_what_the_partner_sees(
    firms: ApiRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="renkei.cloud.api.routers.policies")
    c = firms.client("beta")
    g = post_grant(firms, "beta", grantee_kind="firm", grantee_id="acme").json()
    view = search_view(firms, "acme", "beta")
    assert view is not None and view["granularity"] == "week" and view["machines"] == []
    url = f"{API}/firms/beta/grants/{g['id']}"

    # Finer and with machine detail: same id, created_at kept, the partner sees machines.
    body = {
        "grantee_kind": "firm",
        "grantee_id": "acme",
        "granularity": "day",
        "machine_detail": True,
        "expires_at": "2027-01-01T00:00:00+09:00",
    }
    r = c.put(url, json=body)
    assert r.status_code == 200, r.text
    edited = r.json()
    assert (edited["id"], edited["created_at"]) == (g["id"], g["created_at"])
    assert edited["granularity"] == "day" and edited["machine_detail"] is True
    assert edited["expires_at"] == "2026-12-31T15:00:00Z"
    assert c.get(f"{API}/firms/beta/grants").json() == [edited]
    view = search_view(firms, "acme", "beta")
    assert view is not None and view["granularity"] == "day" and view["machine_detail"] is True
    assert [m["machine_id"] for m in view["machines"]] == ["b1"]
    assert f"grant {g['id']} of firm beta changed by key" in caplog.text
    assert "'granularity': ['week', 'day']" in caplog.text

    # To another grantee: acme no longer sees beta, gamma does (a PUT replaces all terms).
    r = c.put(url, json={"grantee_kind": "firm", "grantee_id": "gamma"})
    assert r.status_code == 200, r.text
    assert r.json()["machine_detail"] is False and r.json()["expires_at"] is None
    assert visible_to(firms, "acme") == [] and visible_to(firms, "gamma") == ["beta"]

    # Bad terms: 422 naming the field, nothing changed.
    bad = c.put(url, json={"grantee_kind": "firm", "grantee_id": "beta"})
    assert bad.status_code == 422 and bad.json()["error"]["detail"][0]["loc"] == "body.grantee_id"
    bad = c.put(url, json={"grantee_kind": "firm", "grantee_id": "acme", "telemetry": True})
    assert bad.status_code == 422
    assert visible_to(firms, "gamma") == ["beta"] and visible_to(firms, "acme") == []


def test_another_firm_cannot_edit_a_grant(firms: ApiRig) -> None:
    g = post_grant(firms, "beta", grantee_kind="firm", grantee_id="acme").json()
    widen = {"grantee_kind": "firm", "grantee_id": "acme", "machine_detail": True}
    acme = firms.client("acme")
    # Through its own firm's path: no such grant of acme (404); through beta's: 403.
    assert acme.put(f"{API}/firms/acme/grants/{g['id']}", json=widen).status_code == 404
    assert acme.put(f"{API}/firms/beta/grants/{g['id']}", json=widen).status_code == 403
    partner = firms.client("beta", "partner")
    assert partner.put(f"{API}/firms/beta/grants/{g['id']}", json=widen).status_code == 403
    assert firms.client("beta").put(f"{API}/firms/beta/grants/999", json=widen).status_code == 404
    assert firms.client("beta").get(f"{API}/firms/beta/grants").json() == [g]
    view = search_view(firms, "acme", "beta")
    assert view is not None and view["machine_detail"] is False
