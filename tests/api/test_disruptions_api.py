"""Disruptions and gateway states over the API: declare, suspicion from gateway states,
confirm / dismiss / end, the status machine's 409s, scoping (404/403) and validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from renkei.cloud.disruption import SuspectRules, apply_gateway_state, check_site
from renkei.cloud.registry import session_scope
from renkei.core.wire import GatewayState
from tests.api.rig import NOW, ApiRig

T0 = NOW - timedelta(hours=1)
RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2, zone_radius_km=30)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _state(rig: ApiRig, firm: str, gw: str, *, online: bool, at: datetime) -> int | None:
    """Apply one state message as the watcher would; return a raised disruption's id."""
    with session_scope(rig.engine) as s:
        out = apply_gateway_state(
            s,
            firm_id=firm,
            site_id=f"{firm}-s1",
            gateway_id=gw,
            state=GatewayState(v=1, gw=gw, online=online, sent_ms=_ms(at if online else T0)),
            received_at=at,
        )
        if out.offline:
            d = check_site(s, firm_id=firm, site_id=f"{firm}-s1", rules=RULES)
            return None if d is None else d.id
    return None


def _three_gateways(rig: ApiRig, firm: str) -> None:
    for gw in ("gw-1", "gw-2", "gw-3"):
        _state(rig, firm, gw, online=True, at=T0)


def test_declare_list_end(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    c = rig.client("acme")
    start = "2026-11-22T21:30:00Z"
    r = c.post("/api/v1/firms/acme/disruptions", json={"site_id": "acme-s1", "start": start})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "confirmed" and d["source"] == "declared"
    assert d["radius_km"] == 30.0 and d["end"] is None
    assert d["decided_by"] and d["start"].startswith("2026-11-22T21:30:00")
    again = c.post("/api/v1/firms/acme/disruptions", json={"site_id": "acme-s1", "start": start})
    assert again.status_code == 409
    assert again.json()["error"]["detail"]["id"] == d["id"]
    assert [x["id"] for x in c.get("/api/v1/firms/acme/disruptions").json()] == [d["id"]]
    assert c.get("/api/v1/firms/acme/disruptions?status=suspected").json() == []
    bad = c.post(
        f"/api/v1/firms/acme/disruptions/{d['id']}/end", json={"end": "2026-11-01T00:00:00Z"}
    )
    assert bad.status_code == 422
    r = c.post(f"/api/v1/firms/acme/disruptions/{d['id']}/end")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended"
    assert r.json()["end"].startswith("2026-11-23T01:00:00")  # the rig's clock
    assert c.post(f"/api/v1/firms/acme/disruptions/{d['id']}/end").status_code == 409
    assert c.post(f"/api/v1/firms/acme/disruptions/{d['id']}/confirm").status_code == 409
    assert c.post(f"/api/v1/firms/acme/disruptions/{d['id']}/dismiss").status_code == 409
    # once ended, the site may be declared again
    r = c.post(
        "/api/v1/firms/acme/disruptions",
        json={"site_id": "acme-s1", "start": start, "radius_km": 0, "note": "flood"},
    )
    assert r.status_code == 201 and r.json()["radius_km"] == 0.0


def test_declare_validation_and_scope(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    rig.seed_firm("beta")
    c = rig.client("acme")
    url = "/api/v1/firms/acme/disruptions"
    r = c.post(url, json={"site_id": "beta-s1", "start": "2026-11-22T00:00:00Z"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["loc"] == "body.site_id"
    r = c.post(
        url,
        json={"site_id": "acme-s1", "start": "2026-11-22T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
    )
    assert r.status_code == 422
    assert c.post(url, json={"site_id": "acme-s1"}).status_code == 422  # start is required
    r = c.post(url, json={"site_id": "acme-s1", "start": "2026-11-22T00:00:00Z", "radius_km": -1})
    assert r.status_code == 422
    assert c.post(url, json={"site_id": "acme-s1", "start": "x", "extra": 1}).status_code == 422
    # another firm's disruptions are neither listed nor reachable
    r = rig.client("beta").post(
        "/api/v1/firms/beta/disruptions",
        json={"site_id": "beta-s1", "start": "2026-11-22T00:00:00Z"},
    )
    beta_id = r.json()["id"]
    assert c.get("/api/v1/firms/beta/disruptions").status_code == 403
    assert c.post(f"/api/v1/firms/acme/disruptions/{beta_id}/end").status_code == 404
    assert c.post("/api/v1/firms/acme/disruptions/99999/confirm").status_code == 404
    # a partner key may read but not declare
    p = rig.client("acme", "partner")
    assert p.get(url).status_code == 200
    assert (
        p.post(url, json={"site_id": "acme-s1", "start": "2026-11-22T00:00:00Z"}).status_code == 403
    )


def test_suspicion_from_gateways_then_confirm(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    rig.seed_firm("admin-co")
    _three_gateways(rig, "acme")
    assert _state(rig, "acme", "gw-1", online=False, at=T0 + timedelta(minutes=10)) is None
    raised = _state(rig, "acme", "gw-2", online=False, at=T0 + timedelta(minutes=12))
    assert raised is not None
    # a third gateway going down does not raise a second suspicion
    assert _state(rig, "acme", "gw-3", online=False, at=T0 + timedelta(minutes=13)) is None
    c = rig.client("acme")
    gws = c.get("/api/v1/firms/acme/gateways").json()
    assert [(g["gateway_id"], g["online"]) for g in gws] == [
        ("gw-1", False),
        ("gw-2", False),
        ("gw-3", False),
    ]
    assert rig.client("acme", "engineer").get("/api/v1/firms/acme/gateways?online=false").json()
    assert rig.client("acme", "partner").get("/api/v1/firms/acme/gateways").status_code == 403
    sus = c.get("/api/v1/firms/acme/disruptions?status=suspected").json()
    assert [d["id"] for d in sus] == [raised]
    d = sus[0]
    assert d["source"] == "last_will" and d["start"].startswith("2026-11-23T00:10:00")
    assert [g["gateway_id"] for g in d["detail"]["offline"]] == ["gw-1", "gw-2"]
    assert d["detail"]["gateways_total"] == 3
    # declaring while a suspicion is open: confirm it instead
    r = c.post("/api/v1/firms/acme/disruptions", json={"site_id": "acme-s1", "start": d["start"]})
    assert r.status_code == 409 and "confirm" in r.json()["error"]["message"]
    # an admin of another firm may confirm for acme
    admin = rig.client("admin-co", "admin")
    r = admin.post(f"/api/v1/firms/acme/disruptions/{raised}/confirm", json={"radius_km": 50})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["radius_km"] == 50.0
    assert c.post(f"/api/v1/firms/acme/disruptions/{raised}/dismiss").status_code == 409


def test_dismissed_outage_is_not_raised_again_but_a_new_one_is(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    _three_gateways(rig, "acme")
    _state(rig, "acme", "gw-1", online=False, at=T0 + timedelta(minutes=1))
    first = _state(rig, "acme", "gw-2", online=False, at=T0 + timedelta(minutes=2))
    assert first is not None
    c = rig.client("acme")
    r = c.post(f"/api/v1/firms/acme/disruptions/{first}/dismiss", json={"note": "router"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert r.json()["note"] == "router"
    # the same outage goes on: gw-3 drops too, but it belongs to the judged outage
    assert _state(rig, "acme", "gw-3", online=False, at=T0 + timedelta(minutes=3)) is None
    # the gateways come back and a new outage strikes after the decision
    later = NOW + timedelta(hours=2)
    for gw in ("gw-1", "gw-2", "gw-3"):
        _state(rig, "acme", gw, online=True, at=later)
    assert _state(rig, "acme", "gw-1", online=False, at=later + timedelta(minutes=1)) is None
    second = _state(rig, "acme", "gw-3", online=False, at=later + timedelta(minutes=2))
    assert second is not None and second != first


def test_suspicion_needs_a_registered_site(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    with session_scope(rig.engine) as s:
        for gw in ("a", "b"):
            apply_gateway_state(
                s,
                firm_id="acme",
                site_id="nowhere",
                gateway_id=gw,
                state=GatewayState(v=1, gw=gw, online=True, sent_ms=_ms(T0)),
                received_at=T0,
            )
        for gw in ("a", "b"):
            apply_gateway_state(
                s,
                firm_id="acme",
                site_id="nowhere",
                gateway_id=gw,
                state=GatewayState(v=1, gw=gw, online=False, sent_ms=_ms(T0)),
                received_at=T0 + timedelta(seconds=5),
            )
        assert check_site(s, firm_id="acme", site_id="nowhere", rules=RULES) is None
    gws = rig.client("acme").get("/api/v1/firms/acme/gateways?site_id=nowhere").json()
    assert len(gws) == 2 and not any(g["online"] for g in gws)
    assert datetime.fromisoformat(gws[0]["changed_at"]) == (T0 + timedelta(seconds=5)).astimezone(
        UTC
    )
