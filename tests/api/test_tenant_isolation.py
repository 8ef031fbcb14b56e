"""Tenant isolation: nothing firm A's keys can send changes a row of firm B.

Firm B's rows are every row the firm export selects for B
(:data:`renkei.cloud.portability.tables.SPECS` with
:func:`~renkei.cloud.portability.tables.firm_filter`: registry, credentials, policies, bookings,
disruptions, takeovers, rollout state, audit log), read straight from the database before and after.
The regression tests pin the reported break (a registry PUT with B's ids moved B's rows to A); the
property test throws sequences of mutating calls, plausible and hostile (B's ids in paths and
bodies, B's firm id, integer ids of B's rows), at the API with A's operator and engineer keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from renkei.cloud.api import api_routes
from renkei.cloud.portability.tables import SPECS, firm_filter, table_of
from tests.api.rig import ApiRig, imm, mold

API = "/api/v1"
A, B = "fa", "fb"
#: audit actions that record a read of another firm's shared data (cloud/api/audit.py)
READ_ACTIONS = frozenset({"takeover.plan", "capacity.search", "firm.profile"})
AUDIT_COLUMNS = tuple(c.name for c in table_of(next(s for s in SPECS if s.name == "audit_event")).c)


def snapshot(rig: ApiRig, firm_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``firm_id`` (the export's selection), per table, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with rig.engine.connect() as conn:
        for s in SPECS:
            t = table_of(s)
            rows = conn.execute(select(t).where(firm_filter(s, firm_id))).all()
            out[s.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def _seed(rig: ApiRig) -> None:
    rig.seed_firm(A, machines=[imm("fa-m1")], molds=[mold("fa-p1")])
    rig.seed_firm(B, machines=[imm("fb-m1"), imm("fb-m2", 3000)], molds=[mold("fb-p1")])
    b = rig.client(B)
    assert b.post(f"{API}/firms/{B}/bookings", json=[_booking("fb-m1")]).status_code == 201
    grant = {"grantee_kind": "firm", "grantee_id": A, "machine_detail": True}
    assert b.post(f"{API}/firms/{B}/grants", json=grant).status_code == 201
    group = {"id": "fb-g1", "name": "partners", "members": [A]}
    assert b.post(f"{API}/firms/{B}/groups", json=group).status_code == 201
    cal = {"weekly_hours": [8, 8, 8, 8, 8, 0, 0]}
    assert b.put(f"{API}/firms/{B}/sites/fb-s1/calendar", json=cal).status_code == 200
    r = b.post(f"{API}/firms/{B}/disruptions", json={"site_id": "fb-s1", "start": _iso(rig)})
    assert r.status_code == 201, r.text


def _iso(rig: ApiRig) -> str:
    return rig.now.isoformat()


def _booking(machine_id: str) -> dict[str, Any]:
    return {"machine_id": machine_id, "start": "2026-11-24", "hours_per_day": 8}


def _hostile_registry(firm: str) -> dict[str, Any]:
    """B's site, line, machine and mold ids, declared as ``firm``'s (the reported attack)."""
    return {
        "sites": [
            {
                "id": "fb-s1",
                "firm_id": firm,
                "name": "taken",
                "latitude_deg": 35.0,
                "longitude_deg": 135.0,
                "region": "kansai",
            }
        ],
        "lines": [{"id": "fb-l1", "site_id": "fb-s1", "name": "taken"}],
        "machines": [{"firm_id": firm, "line_id": "fb-l1"} | imm("fb-m1")],
        "molds": [{"firm_id": firm} | mold("fb-p1")],
    }


# ------------------------------------------------------------------ regression tests


def test_registry_put_with_another_firms_ids_is_refused_naming_them(rig: ApiRig) -> None:
    _seed(rig)
    before = snapshot(rig, B)
    a = rig.client(A)
    r = a.put(f"{API}/firms/{A}/registry", json=_hostile_registry(A))
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "conflict"
    for name in ("fb-s1", "fb-l1", "fb-m1", "fb-p1"):
        assert name in err["message"], err
    assert sorted(d["msg"] for d in err["detail"]) == [
        "lines 'fb-l1' belongs to another firm",
        "machines 'fb-m1' belongs to another firm",
        "molds 'fb-p1' belongs to another firm",
        "sites 'fb-s1' belongs to another firm",
    ]
    assert snapshot(rig, B) == before
    b = rig.client(B)
    assert len(b.get(f"{API}/firms/{B}/sites").json()) == 1
    assert len(b.get(f"{API}/firms/{B}/lines").json()) == 1
    assert len(b.get(f"{API}/firms/{B}/machines").json()) == 2
    assert len(b.get(f"{API}/firms/{B}/molds").json()) == 1
    assert len(a.get(f"{API}/firms/{A}/machines").json()) == 1


def test_registry_put_may_not_hang_rows_on_another_firms_site_or_line(rig: ApiRig) -> None:
    _seed(rig)
    before = snapshot(rig, B)
    a = rig.client(A)
    doc = {
        "lines": [{"id": "fa-l9", "site_id": "fb-s1", "name": "L9"}],
        "machines": [{"firm_id": A, "line_id": "fb-l1"} | imm("fa-m9")],
    }
    r = a.put(f"{API}/firms/{A}/registry", json=doc)
    assert r.status_code == 422, r.text
    locs = sorted(d["loc"] for d in r.json()["error"]["detail"])
    assert locs == ["lines[0].site_id", "machines[0].line_id"]
    assert snapshot(rig, B) == before
    assert len(a.get(f"{API}/firms/{A}/lines").json()) == 1


def test_registry_put_of_own_rows_still_upserts(rig: ApiRig) -> None:
    _seed(rig)
    a = rig.client(A)
    doc = a.get(f"{API}/firms/{A}/registry").json()
    doc["machines"].append({"firm_id": A, "line_id": "fa-l1"} | imm("fa-m2"))
    doc["machines"][0]["name"] = "renamed"
    r = a.put(f"{API}/firms/{A}/registry", json=doc)
    assert r.status_code == 200, r.text
    assert r.json() == {"firms": 1, "sites": 1, "lines": 1, "machines": 2, "molds": 1}
    names = {m["id"]: m["name"] for m in a.get(f"{API}/firms/{A}/machines").json()}
    assert names == {"fa-m1": "renamed", "fa-m2": "fa-m2"}
    dup = {"molds": [{"firm_id": A} | mold("fa-p7"), {"firm_id": A} | mold("fa-p7")]}
    r = a.put(f"{API}/firms/{A}/registry", json=dup)
    assert r.status_code == 422
    assert r.json()["error"]["detail"] == [
        {"loc": "molds[1].id", "msg": "'fa-p7' appears twice in molds"}
    ]


# ------------------------------------------------------------------ property test

MUTATING = [
    (name, path, method)
    for name, path, methods in api_routes()
    for method in sorted(methods & {"POST", "PUT", "PATCH", "DELETE"})
]
_B_IDS = {
    "site_id": ["fb-s1", "fa-s1"],
    "line_id": ["fb-l1", "fa-l1"],
    "machine_id": ["fb-m1", "fb-m2", "fa-m1"],
    "mold_id": ["fb-p1", "fa-p1"],
    "group_id": ["fb-g1", "fa-g1"],
    "gateway_id": ["fb-gw1"],
    "model_name": ["cell-t2"],
    "region": ["kansai"],
    "key_id": ["1"],
}


def _bodies(name: str) -> list[Any]:
    """Plausible and hostile bodies of the route ``name`` (A's view: B's ids everywhere)."""
    window = {"window_start": "2026-11-24", "window_end": "2026-12-08"}
    job = {"job_id": "j1", "part_id": "P1", "weekly_volume": 100}
    per_route: dict[str, list[Any]] = {
        "registry.import": [
            _hostile_registry(A),
            _hostile_registry(B),
            {"firms": [{"id": B, "name": "mine", "region": "kanto"}]},
            {"machines": [{"firm_id": A, "line_id": "fa-l1"} | imm("fa-m5")]},
            {"lines": [{"id": "fa-l5", "site_id": "fb-s1", "name": "x"}]},
        ],
        "sites.create": [
            _hostile_registry(A)["sites"][0],
            _hostile_registry(A)["sites"][0] | {"id": "fa-s5"},
        ],
        "lines.create": [
            {"id": "fb-l1", "site_id": "fa-s1", "name": "x"},
            {"id": "fa-l6", "site_id": "fb-s1", "name": "x"},
        ],
        "machines.create": [
            {"firm_id": A, "line_id": "fa-l1"} | imm("fb-m2"),
            {"firm_id": A, "line_id": "fb-l1"} | imm("fa-m6"),
        ],
        "machines.update": [{"name": "mine", "clamp_force_kN": 9000}],
        "molds.create": [{"firm_id": A} | mold("fb-p1"), {"firm_id": A} | mold("fa-p6")],
        "sites.calendar.put": [{"weekly_hours": [24, 24, 24, 24, 24, 24, 24]}],
        "bookings.create": [[_booking("fb-m1")], [_booking("fa-m1")]],
        "grants.create": [
            {"grantee_kind": "firm", "grantee_id": B},
            {"grantee_kind": "group", "grantee_id": "fb-g1"},
        ],
        "grants.update": [
            {"grantee_kind": "firm", "grantee_id": B, "machine_detail": False},
            {"grantee_kind": "supporters", "grantee_id": "*"},
        ],
        "groups.create": [
            {"id": "fb-g1", "name": "mine", "members": [B]},
            {"id": "fa-g1", "name": "mine", "members": [B]},
        ],
        "credentials.create": [{"role": "operator"}, {"role": "admin"}],
        "firms.update": [{"name": "taken", "region": "kanto"}],
        "disruptions.declare": [
            {"site_id": "fb-s1", "start": "2026-11-23T00:00:00Z"},
            {"site_id": "fa-s1", "start": "2026-11-23T00:00:00Z"},
        ],
        "takeovers.create": [
            window | {"origin_site_id": "fa-s1", "jobs": [job | {"mold_id": "fb-p1"}]},
            window | {"origin_site_id": "fb-s1", "jobs": [job | {"mold_id": "fa-p1"}]},
            window
            | {"id": "fb-t1", "origin_site_id": "fa-s1", "jobs": [job | {"mold_id": "fa-p1"}]},
        ],
        "deployments.create": [{"model": "cell-t2", "target": "site:fb-s1"}],
        "fleet.pin": [{"version": "1.0.0"}],
    }
    return [*per_route.get(name, []), {}, {"firm_id": B, "id": "fb-m1", "site_id": "fb-s1"}]


#: Routes that create or upsert rows by an id the caller chooses: drawn half of the time.
UPSERTS = [
    c
    for c in MUTATING
    if c[0]
    in {
        "registry.import",
        "sites.create",
        "lines.create",
        "machines.create",
        "molds.create",
        "groups.create",
        "takeovers.create",
        "bookings.create",
    }
]


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, str, str, Any, str]:
    name, template, method = draw(st.sampled_from(MUTATING) | st.sampled_from(UPSERTS))
    firm = draw(st.sampled_from([A, A, A, B]))
    values = {"firm_id": firm} | {
        k: draw(st.sampled_from(v)) for k, v in _B_IDS.items() if "{" + k + "}" in template
    }

    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in values:
            return str(values[key])
        return str(draw(st.integers(min_value=1, max_value=4)))  # integer ids: B's and A's

    path = re.sub(r"\{(\w+)\}", fill, template)
    body = draw(st.sampled_from(_bodies(name))) if method != "DELETE" else None
    role = draw(st.sampled_from(["operator", "operator", "engineer"]))
    return name, method, path, body, role


@pytest.fixture(scope="module")
def isolation_rig(
    tmp_path_factory: pytest.TempPathFactory, module_registry_url: str
) -> Iterator[ApiRig]:
    """One API for every example: A's state accumulates, B's must never change."""
    rig = ApiRig(tmp_path_factory.mktemp("isolation"), database_url=module_registry_url)
    _seed(rig)
    try:
        yield rig
    finally:
        rig.close()


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(calls(), min_size=1, max_size=8))
def test_no_sequence_of_firm_a_calls_changes_a_row_of_firm_b(
    isolation_rig: ApiRig, sequence: list[tuple[str, str, str, Any, str]]
) -> None:
    before = snapshot(isolation_rig, B)
    for name, method, path, body, role in sequence:
        client = isolation_rig.client(A, role)
        kwargs = {} if body is None else {"json": body}
        r = client.request(method, path, **kwargs)
        assert r.status_code < 500, (name, method, path, body, r.text)
        if path.startswith(f"{API}/firms/{B}"):
            assert r.status_code in (403, 404, 405), (name, path, r.status_code, r.text)
        client.close()
    after = snapshot(isolation_rig, B)
    # B's read log may only GAIN rows recording A's reads of what B shares with A (e.g.
    # B's machines named as candidates in A's takeover plan); nothing of B's changes.
    audit_before, audit_after = before.pop("audit_event"), after.pop("audit_event")
    assert after == before, sequence
    assert all(r in audit_after for r in audit_before), sequence
    new = [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in audit_after if r not in audit_before]
    for row in new:
        assert row["reader_firm_id"] == A and row["owner_firm_id"] == B, (row, sequence)
        assert row["action"] in READ_ACTIONS, (row, sequence)
