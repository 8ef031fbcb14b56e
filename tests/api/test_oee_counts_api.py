"""Operator-recorded good/reject counts: record, list, correct, delete; the overlap rule;
field errors; the audit log; tenant isolation (another firm, partners, engineers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renkei.cloud.registry import AuditEvent, OperatorCount, session_scope
from tests.api.rig import ApiRig, imm

M = "/api/v1/firms/acme/machines"
SHIFT = {"start": "2026-11-22T23:00:00Z", "end": "2026-11-23T07:00:00Z"}


def _body(**kw: Any) -> dict[str, Any]:
    return {**SHIFT, "good": 1180, "reject": 20, **kw}


def test_record_list_correct_delete(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2")])
    c = rig.client("acme")
    r = c.post(f"{M}/a1/operator-counts", json=_body(reject_reason="short_shot", note="NG 20"))
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["oee"] == "not_configured" and saved["oee_detail"] == ""
    entry = saved["entry"]
    assert entry["machine_id"] == "a1" and entry["good"] == 1180 and entry["reject"] == 20
    assert entry["start"] == "2026-11-22T23:00:00Z" and entry["end"] == "2026-11-23T07:00:00Z"
    assert entry["reject_reason"] == "short_shot" and entry["note"] == "NG 20"
    assert entry["recorded_at"] == "2026-11-23T01:00:00Z" and entry["recorded_by"]
    # an offset is converted to UTC; naive times are UTC; the next shift touches: no overlap
    r = c.post(
        f"{M}/a1/operator-counts",
        json=_body(start="2026-11-23T16:00:00+09:00", end="2026-11-23T15:00:00", good=5),
    )
    assert r.status_code == 201, r.text
    assert r.json()["entry"]["start"] == "2026-11-23T07:00:00Z"
    listed = c.get(f"{M}/a1/operator-counts").json()
    assert [e["good"] for e in listed] == [5, 1180]  # newest first
    assert c.get(f"{M}/a2/operator-counts").json() == []
    window = c.get(
        f"{M}/a1/operator-counts",
        params={"start": "2026-11-23T07:00:00Z", "end": "2026-11-23T08:00:00Z"},
    ).json()
    assert [e["good"] for e in window] == [5]
    # correct: same interval, new counts
    r = c.put(f"{M}/a1/operator-counts/{entry['id']}", json=_body(good=1175, reject=25))
    assert r.status_code == 200, r.text
    assert r.json()["entry"]["good"] == 1175 and r.json()["entry"]["id"] == entry["id"]
    # delete
    assert c.delete(f"{M}/a1/operator-counts/{entry['id']}").status_code == 204
    assert [e["good"] for e in c.get(f"{M}/a1/operator-counts").json()] == [5]
    assert c.delete(f"{M}/a1/operator-counts/{entry['id']}").status_code == 404
    with session_scope(rig.engine) as s:
        actions = [
            (e.action, e.reader_role, e.detail["good"])
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
    assert actions == [
        ("operator_counts.create", "operator", 1180),
        ("operator_counts.create", "operator", 5),
        ("operator_counts.replace", "operator", 1175),
        ("operator_counts.delete", "operator", 1175),
    ]


def test_overlap_is_refused_with_409_naming_it(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2")])
    c = rig.client("acme")
    first = c.post(f"{M}/a1/operator-counts", json=_body()).json()["entry"]
    r = c.post(
        f"{M}/a1/operator-counts",
        json=_body(start="2026-11-23T06:59:00Z", end="2026-11-23T08:00:00Z"),
    )
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert f"entry {first['id']}" in err["message"] and "2026-11-22T23:00:00" in err["message"]
    assert err["detail"]["overlaps"] == first["id"]
    # the same interval on another machine is fine
    assert c.post(f"{M}/a2/operator-counts", json=_body()).status_code == 201
    # a correction may keep its own interval, but not move onto another entry
    second = c.post(
        f"{M}/a1/operator-counts",
        json=_body(start="2026-11-23T07:00:00Z", end="2026-11-23T09:00:00Z"),
    ).json()["entry"]
    assert c.put(f"{M}/a1/operator-counts/{second['id']}", json=_body()).status_code == 409
    assert (
        c.put(
            f"{M}/a1/operator-counts/{second['id']}",
            json=_body(start="2026-11-23T07:00:00Z", end="2026-11-23T10:00:00Z"),
        ).status_code
        == 200
    )


def test_bad_fields_are_named(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1")])
    c = rig.client("acme")
    cases: list[tuple[dict[str, Any], str]] = [
        (_body(good=-1), "good"),
        (_body(reject=1.5), "reject"),
        (_body(good="many"), "good"),
        (_body(end="2026-11-22T23:00:00Z"), "must be after start"),
        (_body(end="2026-11-23T23:00:01Z"), "exceeds 24 h"),
        (_body(start="yesterday"), "start"),
        (_body(start="1999-12-31T23:00:00Z"), "outside 2000-01-01"),
        (_body(start="9999-12-31T23:59:59-23:59"), "outside 2000-01-01"),
        (_body(reject_reason="bad reason!"), "reject_reason"),
        (_body(note="x" * 501), "note"),
        ({**_body(), "shift": "A"}, "shift"),
    ]
    for body, expected in cases:
        r = c.post(f"{M}/a1/operator-counts", json=body)
        assert r.status_code == 422, (body, r.text)
        assert expected in r.text, (expected, r.json())
    assert c.post(f"{M}/nope/operator-counts", json=_body()).status_code == 404
    r = c.post(f"{M}/a1/operator-counts", json=_body(end="2026-11-22T22:00:00Z"))
    assert r.json()["error"]["detail"][0]["loc"] == "body.end", r.text
    r = c.get(f"{M}/a1/operator-counts", params={"start": "0001-01-01T00:00:00+01:00"})
    assert r.status_code == 422 and "start" in r.json()["error"]["message"], r.text
    assert c.put(f"{M}/a1/operator-counts/0", json=_body()).status_code == 422
    assert c.put(f"{M}/a1/operator-counts/99", json=_body()).status_code == 404
    with session_scope(rig.engine) as s:
        assert s.scalars(select(OperatorCount)).all() == []


def test_other_firms_and_partners_never_read_or_write(rig: ApiRig) -> None:
    rig.seed_firm("acme", machines=[imm("a1")])
    rig.seed_firm("beta", machines=[imm("b1")])
    own = rig.client("acme")
    entry = own.post(f"{M}/a1/operator-counts", json=_body()).json()["entry"]
    one = f"{M}/a1/operator-counts/{entry['id']}"
    beta = rig.client("beta")
    # another firm naming acme's path: refused by the access rule
    for r in (
        beta.get(f"{M}/a1/operator-counts"),
        beta.post(f"{M}/a1/operator-counts", json=_body()),
        beta.put(one, json=_body(good=0)),
        beta.delete(one),
    ):
        assert r.status_code in (403, 404), r.text
    # another firm through its own path: acme's machine and entry do not exist (404)
    B = "/api/v1/firms/beta/machines"
    assert beta.get(f"{B}/a1/operator-counts").status_code == 404
    assert beta.post(f"{B}/a1/operator-counts", json=_body()).status_code == 404
    assert beta.put(f"{B}/b1/operator-counts/{entry['id']}", json=_body()).status_code == 404
    assert beta.delete(f"{B}/b1/operator-counts/{entry['id']}").status_code == 404
    # a partner key of acme itself neither reads nor writes; an engineer only reads
    partner = rig.client("acme", "partner")
    assert partner.get(f"{M}/a1/operator-counts").status_code == 403
    assert partner.post(f"{M}/a1/operator-counts", json=_body()).status_code == 403
    engineer = rig.client("acme", "engineer")
    assert engineer.get(f"{M}/a1/operator-counts").status_code == 200
    assert engineer.delete(one).status_code == 403
    assert [e["good"] for e in own.get(f"{M}/a1/operator-counts").json()] == [1180]
    # nothing of them in what partners see: capacity search, profiles
    shared = beta.get("/api/v1/capacity/search").text + beta.get("/api/v1/firms/acme/profile").text
    assert "1180" not in shared and "operator" not in shared
