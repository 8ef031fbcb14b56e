"""Own capacity, the DCM export and partner capacity search (policy, privacy, audit).

Clock: Monday 2026-11-23 10:00 Tokyo. Default calendar: 16 h Monday–Friday, ratio 0.9, so
an unbooked machine has 14.4 spare hours per weekday and 72 h per full week.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from renkei.cloud.capacity import WeekBasedCapacityGroup
from renkei.cloud.capacity.index import ChangeLog, ChangeSet
from renkei.cloud.capacity.index import service as capacity_index
from renkei.cloud.registry import CapacityBooking, session_scope
from tests.api.rig import ApiRig, imm

API = "/api/v1"
TODAY = date(2026, 11, 23)
SEARCH_KEYS = {"start", "end", "total_spare_h", "results"}
RESULT_KEYS = {
    "firm_id",
    "firm_name",
    "region",
    "granularity",
    "machine_detail",
    "spare_h_total",
    "classes",
    "machines",
}
MACHINE_KEYS = {
    "machine_id",
    "name",
    "capability_class",
    "site_id",
    "region",
    "clamp_force_kN",
    "tie_bar_h_mm",
    "tie_bar_v_mm",
    "min_mold_height_mm",
    "max_mold_height_mm",
    "shot_capacity_g",
    "locating_ring_mm",
    "resins",
    "certifications",
    "spare_h_total",
}


def grant(rig: ApiRig, owner: str, grantee: str, kind: str = "firm", **kw: Any) -> int:
    body = {"grantee_kind": kind, "grantee_id": grantee} | kw
    r = rig.client(owner).post(f"{API}/firms/{owner}/grants", json=body)
    assert r.status_code == 201, r.text
    grant_id: int = r.json()["id"]
    return grant_id


def search(rig: ApiRig, firm: str, **params: Any) -> dict[str, Any]:
    r = rig.client(firm, "partner").get(f"{API}/capacity/search", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_firm(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["firm_id"]: r for r in result["results"]}


def book(rig: ApiRig, firm: str, rows: list[dict[str, Any]]) -> None:
    r = rig.client(firm).post(f"{API}/firms/{firm}/bookings", json=rows)
    assert r.status_code == 201, r.text


@pytest.fixture
def fleet(rig: ApiRig) -> ApiRig:
    """acme (the searcher), beta (3 IMMs in 2 classes), gamma (1 IMM, other region)."""
    rig.seed_firm("acme", machines=[imm("a1")])
    rig.seed_firm(
        "beta",
        machines=[imm("b1"), imm("b2", 1800, tie_bar_h_mm=600.0), imm("b3", 600)],
        resins=("PP", "PA66-GF30"),
        certifications=("ISO9001", "IATF16949"),
    )
    rig.seed_firm("gamma", region="tohoku", machines=[imm("g1")], resins=("ABS",))
    return rig


# ---------------------------------------------------------------------------- own capacity


def test_own_capacity_week_and_day(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2"), imm("a3", 3000)])
    book(rig, "acme", [{"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 4.5}])
    c = rig.client("acme")
    week = c.get(f"{API}/firms/acme/capacity").json()
    assert week["start"] == "2026-11-23" and week["days"] == 84 and week["granularity"] == "week"
    a1 = next(m for m in week["machines"] if m["machine_id"] == "a1")
    first = a1["points"][0]
    assert first == {
        "period_start": "2026-11-23",
        "days": 7,
        "available_h": 80.0,
        "booked_h": 4.5,
        "downtime_h": 8.0,
        "spare_h": 67.5,
    }
    assert len(a1["points"]) == 12 and a1["ratio_measured"] is False
    assert a1["availability_ratio"] == 0.9
    # The class roll-up sums the machines of the class.
    classes = {k["capability_class"]: k for k in week["classes"]}
    band = classes["injection_molding:1000-2000kN"]
    assert band["machines"] == ["a1", "a2"]
    assert band["points"][0]["actual_h"] == 67.5 + 72.0
    assert band["points"][0]["maximum_h"] == 160.0
    day = c.get(
        f"{API}/firms/acme/capacity",
        params={"granularity": "day", "start": "2026-11-28", "days": 3},
    ).json()
    points = next(m for m in day["machines"] if m["machine_id"] == "a1")["points"]
    assert [(p["period_start"], p["spare_h"]) for p in points] == [
        ("2026-11-28", 0.0),
        ("2026-11-29", 0.0),
        ("2026-11-30", 14.4),
    ]
    assert c.get(f"{API}/firms/acme/capacity", params={"granularity": "month"}).status_code == 422


def test_own_capacity_is_own_only(fleet: ApiRig) -> None:
    assert fleet.client("acme").get(f"{API}/firms/beta/capacity").status_code == 403
    assert fleet.client("acme", "supporter").get(f"{API}/firms/acme/capacity").status_code == 403


def test_dcm_export_validates_and_needs_bpnl(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2", 3000)], bpnl="BPNL00000000ACME")
    rig.seed_firm("beta", machines=[imm("b1")])
    c = rig.client("acme")
    r = c.get(f"{API}/firms/acme/capacity/dcm", params={"customer_bpnl": "BPNL00000000BETA"})
    assert r.status_code == 200, r.text
    docs = r.json()
    assert len(docs) == 2
    for doc in docs:
        group = WeekBasedCapacityGroup.model_validate(doc)
        assert group.supplier == "BPNL00000000ACME" and group.customer == "BPNL00000000BETA"
        assert group.unit_of_measure == "unit:hourUnitOfTime"
        assert len(group.capacities) == 12
        assert group.capacities[0].point_in_time == TODAY
        assert group.capacities[0].actual_capacity == 72.0
        assert group.capacities[0].maximum_capacity == 80.0
    assert {d["name"].rsplit(" ", 1)[1] for d in docs} == {
        "injection_molding:1000-2000kN",
        "injection_molding:2000-4000kN",
    }
    bad = c.get(f"{API}/firms/acme/capacity/dcm", params={"customer_bpnl": "nope"})
    assert bad.status_code == 422
    r = rig.client("beta").get(
        f"{API}/firms/beta/capacity/dcm", params={"customer_bpnl": "BPNL00000000ACME"}
    )
    assert r.status_code == 422
    assert "no BPNL" in r.json()["error"]["message"]


# ---------------------------------------------------------------------------- search: policy


def test_default_deny_and_own_firm_excluded(fleet: ApiRig) -> None:
    out = search(fleet, "acme")
    assert set(out) == SEARCH_KEYS
    assert out == {"start": "2026-11-23", "end": "2026-12-21", "total_spare_h": 0.0, "results": []}
    grant(fleet, "acme", "beta")  # acme shares with beta: acme still sees nobody
    assert search(fleet, "acme")["results"] == []
    assert [r["firm_id"] for r in search(fleet, "beta")["results"]] == ["acme"]


def test_firm_grant_week_without_detail(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme")
    out = search(fleet, "acme")
    (beta,) = out["results"]
    assert set(beta) == RESULT_KEYS
    assert beta["firm_name"] == "beta Co." and beta["region"] == "kansai"
    assert beta["granularity"] == "week" and beta["machine_detail"] is False
    assert beta["machines"] == []
    assert beta["spare_h_total"] == out["total_spare_h"] == 3 * 4 * 72.0
    small, mid = beta["classes"]
    assert small["capability_class"] == "injection_molding:500-1000kN" and small["machines"] == 1
    assert mid["capability_class"] == "injection_molding:1000-2000kN" and mid["machines"] == 2
    assert mid["points"] == [
        {"period_start": f"2026-{d}", "days": 7, "spare_h": 144.0}
        for d in ("11-23", "11-30", "12-07", "12-14")
    ]
    # Nothing about bookings, references or telemetry anywhere in the body.
    text = str(out)
    for word in ("booked", "reference", "telemetry", "customer"):
        assert word not in text


def test_group_grant_and_class_limits(fleet: ApiRig) -> None:
    c = fleet.client("beta")
    r = c.post(
        f"{API}/firms/beta/groups", json={"id": "beta-circle", "name": "c", "members": ["acme"]}
    )
    assert r.status_code == 201, r.text
    grant(
        fleet,
        "beta",
        "beta-circle",
        kind="group",
        capability_classes=["injection_molding:500-1000kN"],
    )
    (beta,) = search(fleet, "acme")["results"]
    assert [k["capability_class"] for k in beta["classes"]] == ["injection_molding:500-1000kN"]
    assert beta["spare_h_total"] == 4 * 72.0
    # gamma is not in the group: sees nothing.
    assert search(fleet, "gamma")["results"] == []
    # A second grant widens the view (union of classes, finest granularity, detail).
    grant(fleet, "beta", "acme", capability_classes=["injection_molding"], granularity="day")
    (beta,) = search(fleet, "acme")["results"]
    assert beta["granularity"] == "day" and len(beta["classes"]) == 2
    assert len(beta["classes"][0]["points"]) == 28


def test_day_granularity_and_machine_detail(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme", granularity="day", machine_detail=True)
    book(
        fleet,
        "beta",
        [{"machine_id": "b1", "start": "2026-11-24", "end": "2026-11-25", "hours_per_day": 10}],
    )
    out = search(fleet, "acme", start="2026-11-23", end="2026-11-26")
    (beta,) = out["results"]
    assert beta["granularity"] == "day" and beta["machine_detail"] is True
    mid = beta["classes"][1]
    assert [(p["period_start"], p["days"], p["spare_h"]) for p in mid["points"]] == [
        ("2026-11-23", 1, 28.8),
        ("2026-11-24", 1, 18.8),
        ("2026-11-25", 1, 18.8),
    ]
    machines = {m["machine_id"]: m for m in beta["machines"]}
    assert set(machines) == {"b1", "b2", "b3"}
    assert all(set(m) == MACHINE_KEYS for m in machines.values())
    assert machines["b1"]["spare_h_total"] == pytest.approx(14.4 + 2 * 4.4)
    assert machines["b2"]["tie_bar_h_mm"] == 600.0 and machines["b2"]["clamp_force_kN"] == 1800
    assert machines["b1"]["resins"] == ["PP", "PA66-GF30"]
    assert [m["machine_id"] for m in beta["machines"]][-1] == "b1"  # least spare last


def test_week_granularity_counts_whole_weeks(fleet: ApiRig) -> None:
    """A week-sharing owner's hours cannot be narrowed to days by moving the window."""
    grant(fleet, "beta", "acme", granularity="week")
    grant(fleet, "gamma", "acme", granularity="day")
    results = by_firm(search(fleet, "acme", start="2026-11-25", end="2026-11-27"))
    beta, gamma = results["beta"], results["gamma"]
    assert gamma["spare_h_total"] == 2 * 14.4
    assert beta["spare_h_total"] == 3 * 72.0  # the whole week of 23 Nov, 3 machines
    assert beta["classes"][0]["points"] == [
        {"period_start": "2026-11-23", "days": 7, "spare_h": 72.0}
    ]
    one_day = by_firm(search(fleet, "acme", start="2026-11-25", end="2026-11-26"))["beta"]
    assert one_day["spare_h_total"] == beta["spare_h_total"]
    # A window crossing a week boundary counts both weeks.
    two = by_firm(search(fleet, "acme", start="2026-11-29", end="2026-12-01"))["beta"]
    assert [p["period_start"] for p in two["classes"][0]["points"]] == ["2026-11-23", "2026-11-30"]


def test_expired_grant_and_revocation(fleet: ApiRig) -> None:
    gid = grant(fleet, "beta", "acme", expires_at="2026-11-25T00:00:00Z")
    assert [r["firm_id"] for r in search(fleet, "acme")["results"]] == ["beta"]
    fleet.now += timedelta(days=2)
    assert search(fleet, "acme")["results"] == []
    fleet.now -= timedelta(days=2)
    assert [r["firm_id"] for r in search(fleet, "acme")["results"]] == ["beta"]
    assert fleet.client("beta").delete(f"{API}/firms/beta/grants/{gid}").status_code == 204
    assert search(fleet, "acme")["results"] == []


def test_audit_one_event_per_firm_in_response(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme", machine_detail=True)
    grant(fleet, "gamma", "acme")
    search(fleet, "acme", resin="pa66 gf30")  # only beta matches
    beta_log = fleet.client("beta").get(f"{API}/firms/beta/audit").json()
    assert len(beta_log) == 1
    event = beta_log[0]
    assert event["action"] == "capacity.search" and event["reader_firm_id"] == "acme"
    assert event["resource"] == "/api/v1/capacity/search"
    assert event["detail"]["granularity"] == "week"
    assert sorted(event["detail"]["machine_ids"]) == ["b1", "b2", "b3"]
    assert event["detail"]["query"]["resin"] == "pa66 gf30"
    assert len(event["detail"]["classes"]) == 2
    assert fleet.client("gamma").get(f"{API}/firms/gamma/audit").json() == []
    search(fleet, "acme")
    gamma_log = fleet.client("gamma").get(f"{API}/firms/gamma/audit").json()
    assert len(gamma_log) == 1 and "machine_ids" not in gamma_log[0]["detail"]


def test_filters_with_machine_detail(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme", machine_detail=True)
    grant(fleet, "gamma", "acme", machine_detail=True)

    def ids(**params: Any) -> set[str]:
        out = search(fleet, "acme", **params)
        return {m["machine_id"] for r in out["results"] for m in r["machines"]}

    assert ids() == {"b1", "b2", "b3", "g1"}
    assert ids(min_clamp_force_kN=1000) == {"b1", "b2", "g1"}
    assert ids(min_clamp_force_kN=1000, max_clamp_force_kN=1600) == {"b1", "g1"}
    assert ids(min_tie_bar_h_mm=550) == {"b2"}
    assert ids(min_tie_bar_v_mm=511) == set()
    assert ids(min_mold_height_mm=550) == {"b1", "b2", "b3", "g1"}
    assert ids(min_mold_height_mm=551) == set()
    assert ids(max_mold_height_mm=199) == set()
    assert ids(min_shot_capacity_g=400, resin="abs") == {"g1"}
    assert ids(certification="IATF 16949") == {"b1", "b2", "b3"}
    assert ids(region="tohoku") == {"g1"}
    assert ids(process="press") == set()
    assert ids(process="injection_molding", min_spare_h=288.0) == {"b1", "b2", "b3", "g1"}
    assert ids(min_spare_h=288.1) == set()
    assert len(search(fleet, "acme", limit=1)["results"]) == 1


def test_window_validation(fleet: ApiRig) -> None:
    c = fleet.client("acme", "partner")
    for params in (
        {"start": "2026-11-22"},
        {"start": "2026-11-30", "end": "2026-11-30"},
        {"end": "2027-02-16"},
        {"limit": 0},
    ):
        r = c.get(f"{API}/capacity/search", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "invalid"
    ok = search(fleet, "acme", start="2027-02-01")
    assert ok["end"] == "2027-02-15"  # default end clipped to the horizon
    assert fleet.client("acme", "supporter").get(f"{API}/capacity/search").status_code == 403
    assert fleet.client("acme", "engineer").get(f"{API}/capacity/search").status_code == 403


# ---------------------------------------------------------------------------- search: privacy


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    min_clamp=st.sampled_from([None, 500.0, 1500.0, 1700.0]),
    max_clamp=st.sampled_from([None, 1600.0, 2000.0]),
    tie=st.sampled_from([None, 500.0, 520.0, 650.0]),
    resin=st.sampled_from([None, "PP", "ABS"]),
    min_spare=st.sampled_from([0.0, 100.0, 300.0, 500.0]),
)
def test_without_detail_filters_select_whole_class_groups(
    privacy_fleet: ApiRig,
    min_clamp: float | None,
    max_clamp: float | None,
    tie: float | None,
    resin: str | None,
    min_spare: float,
) -> None:
    """Any filter combination returns a class group's full total or omits it."""
    params = {
        k: v
        for k, v in {
            "min_clamp_force_kN": min_clamp,
            "max_clamp_force_kN": max_clamp,
            "min_tie_bar_h_mm": tie,
            "resin": resin,
            "min_spare_h": min_spare or None,
        }.items()
        if v is not None
    }
    full = {
        c["capability_class"]: (c["spare_h_total"], c["machines"], c["points"])
        for c in by_firm(search(privacy_fleet, "acme"))["beta"]["classes"]
    }
    got = by_firm(search(privacy_fleet, "acme", **params)).get("beta")
    for cls in got["classes"] if got else []:
        assert full[cls["capability_class"]] == (
            cls["spare_h_total"],
            cls["machines"],
            cls["points"],
        )
        assert cls["spare_h_total"] >= min_spare
    assert got is None or got["machines"] == []


@pytest.fixture
def privacy_fleet(fleet: ApiRig) -> ApiRig:
    grant(fleet, "beta", "acme", granularity="day")
    book(
        fleet,
        "beta",
        [{"machine_id": "b2", "start": "2026-11-23", "end": "2026-12-04", "hours_per_day": 9}],
    )
    return fleet


# ---------------------------------------------------------------------------- index freshness


def test_changes_are_visible_at_once(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme", granularity="day", machine_detail=True)

    def totals() -> dict[str, float]:
        (beta,) = search(fleet, "acme", start="2026-11-23", end="2026-11-24")["results"]
        return {m["machine_id"]: m["spare_h_total"] for m in beta["machines"]}

    assert totals() == {"b1": 14.4, "b2": 14.4, "b3": 14.4}
    beta = fleet.client("beta")
    book(fleet, "beta", [{"machine_id": "b1", "start": "2026-11-23", "hours_per_day": 6}])
    assert totals()["b1"] == pytest.approx(8.4)
    booking_id = beta.get(f"{API}/firms/beta/bookings").json()[0]["id"]
    assert beta.delete(f"{API}/firms/beta/bookings/{booking_id}").status_code == 204
    assert totals()["b1"] == 14.4
    cal = {"weekly_hours": [8, 8, 8, 8, 8, 0, 0]}
    assert beta.put(f"{API}/firms/beta/sites/beta-s1/calendar", json=cal).status_code == 200
    assert totals() == {"b1": 7.2, "b2": 7.2, "b3": 7.2}
    body = {"firm_id": "beta", "line_id": "beta-l1"} | imm("b4", 5000)
    assert beta.post(f"{API}/firms/beta/machines", json=body).status_code == 201
    assert beta.delete(f"{API}/firms/beta/machines/b3").status_code == 204
    assert totals() == {"b1": 7.2, "b2": 7.2, "b4": 7.2}
    assert beta.patch(f"{API}/firms/beta", json={"name": "Beta Renamed"}).status_code == 200
    (row,) = search(fleet, "acme")["results"]
    assert row["firm_name"] == "Beta Renamed"
    service = fleet.app.state.renkei.capacity.index
    assert service.full_builds == 1 and service.patches >= 5


def test_patched_index_equals_full_rebuild(fleet: ApiRig) -> None:
    for owner in ("beta", "gamma"):
        grant(fleet, owner, "acme", granularity="day", machine_detail=True)
    params = {"start": "2026-11-23", "end": "2027-01-04"}
    search(fleet, "acme", **params)
    book(
        fleet,
        "beta",
        [{"machine_id": "b2", "start": "2026-11-20", "end": "2027-01-10", "hours_per_day": 3.3}],
    )
    book(fleet, "gamma", [{"machine_id": "g1", "start": "2026-12-01", "hours_per_day": 24}])
    cal = {"weekly_hours": [24, 24, 24, 24, 24, 8, 0], "holidays": ["2026-12-31"]}
    fleet.client("gamma").put(f"{API}/firms/gamma/sites/gamma-s1/calendar", json=cal)
    fleet.client("beta").patch(f"{API}/firms/beta/machines/b1", json={"clamp_force_kN": 2500})
    fleet.seed_firm("delta", machines=[imm("d1")])
    grant(fleet, "delta", "acme", granularity="day", machine_detail=True)
    patched = search(fleet, "acme", **params)
    state = fleet.app.state.renkei
    assert state.capacity.index.full_builds == 1 and state.capacity.index.patches == 1
    state.capacity = state.capacity.fresh()  # a new index service: a full build
    assert search(fleet, "acme", **params) == patched
    assert {r["firm_id"] for r in patched["results"]} == {"beta", "gamma", "delta"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bookings=st.lists(
        st.tuples(
            st.sampled_from(["b1", "b2", "b3"]),
            st.integers(-5, 40),
            st.integers(0, 20),
            st.sampled_from([0.5, 2.0, 7.25, 12.0, 24.0]),
        ),
        max_size=4,
    ),
    weekly=st.lists(st.sampled_from([0.0, 8.0, 12.5, 16.0, 24.0]), min_size=7, max_size=7),
)
def test_search_hours_equal_own_capacity(
    detail_fleet: ApiRig, bookings: list[tuple[str, int, int, float]], weekly: list[float]
) -> None:
    """The index (search) and spare_for (own capacity) agree, booking after booking."""
    beta = detail_fleet.client("beta")
    beta.put(f"{API}/firms/beta/sites/beta-s1/calendar", json={"weekly_hours": weekly})
    book(
        detail_fleet,
        "beta",
        [
            {
                "machine_id": m,
                "start": (TODAY + timedelta(days=s)).isoformat(),
                "end": (TODAY + timedelta(days=s + n)).isoformat(),
                "hours_per_day": h,
            }
            for m, s, n, h in bookings
        ],
    )
    own = beta.get(f"{API}/firms/beta/capacity", params={"granularity": "day", "days": 35}).json()
    expected = {m["machine_id"]: sum(p["spare_h"] for p in m["points"]) for m in own["machines"]}
    (row,) = search(detail_fleet, "acme", end=(TODAY + timedelta(days=35)).isoformat())["results"]
    got = {m["machine_id"]: m["spare_h_total"] for m in row["machines"]}
    assert got == pytest.approx(expected, abs=0.02)  # own points are rounded to 1e-3 h


@pytest.fixture
def detail_fleet(fleet: ApiRig) -> ApiRig:
    grant(fleet, "beta", "acme", granularity="day", machine_detail=True)
    return fleet


def test_bulk_statements_force_a_full_rebuild(fleet: ApiRig) -> None:
    grant(fleet, "beta", "acme", granularity="day", machine_detail=True)
    search(fleet, "acme")
    with session_scope(fleet.engine) as s:
        s.execute(
            insert(CapacityBooking),
            [
                {
                    "firm_id": "beta",
                    "machine_id": "b1",
                    "start": TODAY,
                    "end": TODAY,
                    "hours_per_day": 14.4,
                }
            ],
        )
    (beta,) = search(fleet, "acme", end="2026-11-24")["results"]
    assert {m["machine_id"]: m["spare_h_total"] for m in beta["machines"]}["b1"] == 0.0
    assert fleet.app.state.renkei.capacity.index.full_builds == 2


def test_writes_outside_sessions_are_seen_after_capacity_cache_s(
    tmp_path: Path, registry_url: str
) -> None:
    rig = ApiRig(tmp_path, database_url=registry_url, capacity_cache_s=0)
    try:
        rig.seed_firm("acme", machines=[imm("a1")])
        rig.seed_firm("beta", machines=[imm("b1")])
        grant(rig, "beta", "acme", granularity="day")
        assert search(rig, "acme", end="2026-11-24")["total_spare_h"] == 14.4
        with rig.engine.begin() as conn:  # Core, no ORM session: not in the change log
            conn.execute(
                text(
                    'INSERT INTO capacity_booking (firm_id, machine_id, start, "end", '
                    "hours_per_day, reference, created_at) VALUES ('beta', 'b1', "
                    "'2026-11-23', '2026-11-23', 4.4, '', '2026-11-23 00:00:00')"
                )
            )
        assert search(rig, "acme", end="2026-11-24")["total_spare_h"] == 10.0
    finally:
        rig.close()


def test_new_day_rebuilds_in_the_background_for_large_indexes(
    fleet: ApiRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(fleet, "beta", "acme", granularity="day")
    service = fleet.app.state.renkei.capacity.index
    first = service.current()
    monkeypatch.setattr(capacity_index, "SYNC_REBUILD_MAX_MACHINES", 0)
    fleet.now += timedelta(days=1)
    # Yesterday's index still covers today's horizon: served at once, rebuilt behind.
    out = search(fleet, "acme")
    assert out["start"] == "2026-11-24" and out["results"][0]["spare_h_total"] == pytest.approx(
        3 * 20 * 14.4
    )
    assert service._background is not None
    service._background.join(timeout=30)
    rebuilt = service.current()
    assert rebuilt is not first and rebuilt.start == date(2026, 11, 24)
    assert service.full_builds == 2


def test_change_log_keeps_a_bounded_history() -> None:
    log = ChangeLog(keep=2)
    assert log.since(0) == ChangeSet()
    for firm in ("a", "b", "c"):
        log.record(ChangeSet(firms=frozenset({firm})))
    log.record(ChangeSet(grants=True))
    assert (log.version, log.grants_version) == (3, 1)
    assert log.since(1) == ChangeSet(firms=frozenset({"b", "c"}))
    assert log.since(0) is None  # dropped: a full rebuild is needed
    assert log.since(3) == ChangeSet()
