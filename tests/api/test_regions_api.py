"""Regional view for supporters: who contributes, k-anonymity, disruptions, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from renkei.cloud.registry import Disruption, DisruptionSource, DisruptionStatus, session_scope
from tests.api.rig import NOW, ApiRig, imm

API = "/api/v1"
PRESS = {
    "process": "press",
    "tonnage_kN": 800.0,
    "bed_width_mm": 1200.0,
    "bed_depth_mm": 800.0,
}


def press(machine_id: str) -> dict[str, object]:
    return {"id": machine_id, "name": machine_id} | PRESS


def grant(rig: ApiRig, owner: str, region: str) -> None:
    body = {"grantee_kind": "supporters", "grantee_id": region}
    r = rig.client(owner).post(f"{API}/firms/{owner}/grants", json=body)
    assert r.status_code == 201, r.text


def disruption(rig: ApiRig, firm: str, status: DisruptionStatus, *, ended: bool = False) -> None:
    with session_scope(rig.engine) as s:
        s.add(
            Disruption(
                firm_id=firm,
                site_id=f"{firm}-s1",
                status=status,
                source=DisruptionSource.DECLARED,
                start=NOW - timedelta(hours=5),
                end=NOW - timedelta(hours=1) if ended else None,
            )
        )


@pytest.fixture
def region(rig: ApiRig) -> ApiRig:
    """kansai: k1 (2 IMM + press, grants kansai), k2 (IMM, grants *), k3 (IMM, grants
    kansai), k4 (IMM, no grant); tohoku: t1, t2 (grant tohoku); supporters osaka, sendai."""
    rig.seed_firm("k1", machines=[imm("k1a"), imm("k1b", 3000), press("k1p")])
    for f in ("k2", "k3", "k4"):
        rig.seed_firm(f, machines=[imm(f"{f}a")])
    for f in ("t1", "t2"):
        rig.seed_firm(f, region="tohoku", machines=[imm(f"{f}a")])
    rig.seed_firm("osaka")
    rig.seed_firm("sendai", region="tohoku")
    for f, r in (
        ("k1", "kansai"),
        ("k2", "*"),
        ("k3", "kansai"),
        ("t1", "tohoku"),
        ("t2", "tohoku"),
    ):
        grant(rig, f, r)
    disruption(rig, "k1", DisruptionStatus.CONFIRMED)
    disruption(rig, "k2", DisruptionStatus.SUSPECTED)
    disruption(rig, "k3", DisruptionStatus.CONFIRMED, ended=True)
    return rig


def test_supporter_sees_k_anonymous_aggregates_of_admitting_firms(region: ApiRig) -> None:
    r = region.client("osaka", "supporter").get(f"{API}/regions")
    assert r.status_code == 200, r.text
    (kansai,) = r.json()  # no tohoku firm admits kansai supporters
    assert kansai == {
        "region": "kansai",
        "suppressed": False,
        "k": 3,
        "firms": 3,
        "firms_up": 2,
        "firms_disrupted": 1,
        "start": "2026-11-23",
        "end": "2027-02-15",
        "processes": [
            {
                "process": "injection_molding",
                "suppressed": False,
                "firms": 3,
                "machines": 4,
                "spare_h_total": 4 * 12 * 72.0,
            },
            {"process": "press", "suppressed": True},
        ],
    }


def test_region_detail_has_iso_weeks(region: ApiRig) -> None:
    r = region.client("osaka", "supporter").get(f"{API}/regions/kansai")
    assert r.status_code == 200, r.text
    imm_cell = r.json()["processes"][0]
    weeks = imm_cell["weeks"]
    assert len(weeks) == 12
    assert weeks[0] == {
        "week": "2026-W48",
        "period_start": "2026-11-23",
        "days": 7,
        "spare_h": 288.0,
    }
    assert sum(w["spare_h"] for w in weeks) == imm_cell["spare_h_total"]


def test_small_regions_are_suppressed(region: ApiRig) -> None:
    sendai = region.client("sendai", "supporter")
    listed = {v["region"]: v for v in sendai.get(f"{API}/regions").json()}
    # tohoku: 2 firms < k; kansai: only k2 admits supporters of any region.
    assert listed == {
        "kansai": {"region": "kansai", "suppressed": True},
        "tohoku": {"region": "tohoku", "suppressed": True},
    }
    assert sendai.get(f"{API}/regions/tohoku").json() == {"region": "tohoku", "suppressed": True}
    assert sendai.get(f"{API}/regions/nowhere").json() == {"region": "nowhere", "suppressed": True}
    # One more admitting firm lifts the suppression.
    region.seed_firm("t3", region="tohoku", machines=[imm("t3a")])
    grant(region, "t3", "tohoku")
    shown = sendai.get(f"{API}/regions/tohoku").json()
    assert shown["suppressed"] is False and shown["firms"] == 3 and shown["firms_up"] == 3


def test_admin_views_each_region_as_its_supporters(region: ApiRig) -> None:
    region.seed_firm("ops")
    views = {v["region"]: v for v in region.client("ops", "admin").get(f"{API}/regions").json()}
    assert views["kansai"]["firms"] == 3 and views["tohoku"] == {
        "region": "tohoku",
        "suppressed": True,
    }


def test_regional_reads_are_audited_per_contributing_firm(region: ApiRig) -> None:
    region.client("osaka", "supporter").get(f"{API}/regions")
    for firm, processes in (("k1", ["injection_molding"]), ("k2", ["injection_molding"])):
        (event,) = region.client(firm).get(f"{API}/firms/{firm}/audit").json()
        assert event["action"] == "regional.aggregate" and event["reader_firm_id"] == "osaka"
        assert event["detail"] == {"region": "kansai", "processes": processes, "k": 3}
    assert region.client("k4").get(f"{API}/firms/k4/audit").json() == []
    # Suppressed regions disclose nothing and are not logged.
    region.client("sendai", "supporter").get(f"{API}/regions")
    assert region.client("t1").get(f"{API}/firms/t1/audit").json() == []


def test_only_supporters_and_admins(region: ApiRig) -> None:
    assert region.client("k1").get(f"{API}/regions").status_code == 403
    assert region.client("k1", "partner").get(f"{API}/regions/kansai").status_code == 403
