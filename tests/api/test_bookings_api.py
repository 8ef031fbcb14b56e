"""Bookings (a firm's production plan): JSON and CSV upload, validation, effect on spare.

Default calendar 16 h Monday–Friday, ratio 0.9: an unbooked weekday has 14.4 spare hours.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from tests.api.rig import ApiRig, imm
from tests.api.xlsx import XLSX, workbook

API = "/api/v1"


@pytest.fixture
def firms(rig: ApiRig) -> ApiRig:
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2")])
    rig.seed_firm("beta", machines=[imm("b1")])
    return rig


def own_spare(rig: ApiRig, start: str, days: int) -> dict[str, list[float]]:
    r = rig.client("acme").get(
        f"{API}/firms/acme/capacity", params={"granularity": "day", "start": start, "days": days}
    )
    assert r.status_code == 200, r.text
    return {m["machine_id"]: [p["spare_h"] for p in m["points"]] for m in r.json()["machines"]}


def post_csv(rig: ApiRig, text: str | bytes, **params: Any) -> Any:
    body = text.encode() if isinstance(text, str) else text
    return rig.client("acme").post(
        f"{API}/firms/acme/bookings.csv",
        content=body,
        headers={"Content-Type": "text/csv"},
        params=params,
    )


def test_json_create_list_delete(firms: ApiRig) -> None:
    c = firms.client("acme")
    rows = [
        {
            "machine_id": "a1",
            "start": "2026-11-24",
            "end": "2026-11-26",
            "hours_per_day": 6,
            "reference": "PO-1",
        },
        {"machine_id": "a2", "start": "2026-11-25", "hours_per_day": 24},
    ]
    r = c.post(f"{API}/firms/acme/bookings", json=rows)
    assert r.status_code == 201, r.text
    created = r.json()
    assert [b["end"] for b in created] == ["2026-11-26", "2026-11-25"]  # end defaults to start
    assert created[0]["reference"] == "PO-1" and created[0]["hours_per_day"] == 6.0
    listed = c.get(f"{API}/firms/acme/bookings").json()
    assert [b["id"] for b in listed] == [b["id"] for b in created]
    assert (
        c.get(f"{API}/firms/acme/bookings", params={"machine_id": "a2"}).json()[0]["machine_id"]
        == "a2"
    )
    assert c.get(f"{API}/firms/acme/bookings", params={"since": "2026-11-27"}).json() == []
    assert len(c.get(f"{API}/firms/acme/bookings", params={"until": "2026-11-25"}).json()) == 1
    assert c.delete(f"{API}/firms/acme/bookings/{created[0]['id']}").status_code == 204
    assert c.delete(f"{API}/firms/acme/bookings/{created[0]['id']}").status_code == 404
    assert len(c.get(f"{API}/firms/acme/bookings").json()) == 1


def test_bookings_reduce_spare_hours_exactly(firms: ApiRig) -> None:
    before = own_spare(firms, "2026-11-23", 5)
    assert before["a1"] == [14.4] * 5
    c = firms.client("acme")
    c.post(
        f"{API}/firms/acme/bookings",
        json=[
            {"machine_id": "a1", "start": "2026-11-24", "end": "2026-11-26", "hours_per_day": 6},
            {"machine_id": "a1", "start": "2026-11-25", "hours_per_day": 2.5},
            {"machine_id": "a2", "start": "2026-11-23", "hours_per_day": 20},
        ],
    )
    after = own_spare(firms, "2026-11-23", 5)
    assert after["a1"] == [14.4, 8.4, 5.9, 8.4, 14.4]
    assert after["a2"] == [0.0, 14.4, 14.4, 14.4, 14.4]  # overbooked: spare clamps at 0
    week = firms.client("acme").get(f"{API}/firms/acme/capacity").json()
    point = next(m for m in week["machines"] if m["machine_id"] == "a1")["points"][0]
    assert point["booked_h"] == 20.5 and point["spare_h"] == pytest.approx(72.0 - 20.5)


def test_json_validation_names_rows(firms: ApiRig) -> None:
    c = firms.client("acme")
    r = c.post(
        f"{API}/firms/acme/bookings",
        json=[
            {"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 4},
            {"machine_id": "b1", "start": "2026-11-24", "hours_per_day": 4},
            {"machine_id": "zz", "start": "2026-11-24", "hours_per_day": 4},
        ],
    )
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["error"]["detail"]]
    assert locs == ["body[1].machine_id", "body[2].machine_id"]
    for bad in (
        {"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 25},
        {"machine_id": "a1", "start": "2026-11-24", "end": "2026-11-23", "hours_per_day": 1},
        {"machine_id": "a1", "start": "24.11.2026", "hours_per_day": 1},
        {"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 1, "customer": "x"},
    ):
        assert c.post(f"{API}/firms/acme/bookings", json=[bad]).status_code == 422, bad
    assert c.get(f"{API}/firms/acme/bookings").json() == []


def test_replace_swaps_the_whole_plan(firms: ApiRig) -> None:
    c = firms.client("acme")
    c.post(
        f"{API}/firms/acme/bookings",
        json=[{"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 4}],
    )
    r = c.post(
        f"{API}/firms/acme/bookings",
        params={"replace": "true"},
        json=[{"machine_id": "a2", "start": "2026-11-24", "hours_per_day": 5}],
    )
    assert r.status_code == 201
    assert [b["machine_id"] for b in c.get(f"{API}/firms/acme/bookings").json()] == ["a2"]
    assert own_spare(firms, "2026-11-24", 1) == {"a1": [14.4], "a2": [9.4]}


def test_csv_upload(firms: ApiRig) -> None:
    text = (
        "machine_id,start,end,hours_per_day,reference\n"
        "a1,2026-11-24,2026-11-25,8,PO-4711\n"
        "\n"
        "a2,2026/11/24,,4.5,\n"
    )
    r = post_csv(firms, text)
    assert r.status_code == 201, r.text
    rows = r.json()
    assert [
        (b["machine_id"], b["start"], b["end"], b["hours_per_day"], b["reference"]) for b in rows
    ] == [
        ("a1", "2026-11-24", "2026-11-25", 8.0, "PO-4711"),
        ("a2", "2026-11-24", "2026-11-24", 4.5, ""),
    ]
    assert own_spare(firms, "2026-11-24", 2) == {"a1": [6.4, 6.4], "a2": [9.9, 14.4]}
    # Shift_JIS (Excel in Japan) with a Japanese reference, optional columns left out.
    sjis = "machine_id,start,hours_per_day,reference\na1,2026-11-27,1,受注123\n".encode("cp932")
    r = post_csv(firms, sjis)
    assert r.status_code == 201, r.text
    assert r.json()[0]["reference"] == "受注123"
    # BOM-prefixed UTF-8 with replace=true.
    r = post_csv(firms, "\ufeffmachine_id,start,hours_per_day\na2,2026-11-30,3\n", replace="true")
    assert r.status_code == 201
    assert len(firms.client("acme").get(f"{API}/firms/acme/bookings").json()) == 1


def test_csv_reports_every_bad_row_and_writes_nothing(firms: ApiRig) -> None:
    text = (
        "machine_id,start,end,hours_per_day,reference\n"
        "a1,2026-11-24,,8,ok\n"
        "b1,2026-11-24,,8,other firm's machine\n"
        "a2,2026-13-01,,8,bad date\n"
        "a2,2026-11-24,2026-11-20,8,end before start\n"
        "a1,2026-11-24,,30,too many hours\n"
        "a1,2026-11-24,,8\n"
        ",2026-11-24,,x,two problems\n"
    )
    r = post_csv(firms, text)
    assert r.status_code == 422
    err = r.json()["error"]
    problems = [f"{d['loc']}: {d['msg']}" for d in err["detail"]]
    locs = [d["loc"] for d in err["detail"]]
    assert locs == [
        "bookings.csv:3.machine_id",
        "bookings.csv:4.start",
        "bookings.csv:5.end",
        "bookings.csv:6.hours_per_day",
        "bookings.csv:7",
        "bookings.csv:8.machine_id",
        "bookings.csv:8.hours_per_day",
    ], problems
    assert "not a machine of 'acme'" in problems[0]
    assert "end 2026-11-20 is before start" in problems[2]
    assert err["message"].startswith(
        "bookings.csv rejected, 7 problem(s): bookings.csv:3.machine_id"
    )
    assert firms.client("acme").get(f"{API}/firms/acme/bookings").json() == []


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("", "bookings.csv:1"),
        ("machine,start,hours_per_day\n", "bookings.csv:1.machine"),
        ("machine_id,start\na1,2026-11-24\n", "bookings.csv:1.hours_per_day"),
        ("\r0", "bookings.csv:1.machine_id"),
        ('machine_id,start,hours_per_day\n"a1,2026-11-24,1\n', "bookings.csv:2"),
        ("machine_id,start,hours_per_day\na1\x00,2026-11-24,1\n", "bookings.csv:2.machine_id"),
    ],
)
def test_csv_header_problems(firms: ApiRig, text: str, loc: str) -> None:
    r = post_csv(firms, text)
    assert r.status_code == 422
    assert loc in [d["loc"] for d in r.json()["error"]["detail"]]


def test_a_nul_character_in_free_text_is_never_a_server_error(
    firms: ApiRig, registry_backend: str
) -> None:
    """SQLite stores a NUL in a reference; PostgreSQL cannot, which is a 422 naming the
    problem (not a 500)."""
    r = firms.client("acme").post(
        f"{API}/firms/acme/bookings",
        json=[
            {"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 1, "reference": "P\x00"}
        ],
    )
    if registry_backend == "sqlite":
        assert r.status_code == 201
    else:
        assert r.status_code == 422
        assert "NUL" in r.json()["error"]["message"]


def test_bookings_are_private(firms: ApiRig) -> None:
    assert firms.client("beta").get(f"{API}/firms/acme/bookings").status_code == 403
    assert firms.client("acme", "partner").get(f"{API}/firms/acme/bookings").status_code == 403
    c = firms.client("acme")
    booking = c.post(
        f"{API}/firms/acme/bookings",
        json=[{"machine_id": "a1", "start": "2026-11-24", "hours_per_day": 1}],
    ).json()[0]
    assert (
        firms.client("beta").delete(f"{API}/firms/beta/bookings/{booking['id']}").status_code == 404
    )
    assert post_csv(firms, "machine_id,start,hours_per_day\n").status_code == 201  # empty plan


def post_xlsx(rig: ApiRig, body: bytes, firm: str = "acme", **params: Any) -> Any:
    return rig.client(firm).post(
        f"{API}/firms/{firm}/bookings.xlsx",
        content=body,
        headers={"Content-Type": XLSX},
        params=params,
    )


def test_xlsx_upload_with_date_cells_and_other_sheets(firms: ApiRig) -> None:
    body = workbook(
        {
            "notes": [["this sheet is ignored"]],
            "bookings": [
                ["machine_id", "start", "end", "hours_per_day", "reference", None],
                ["a1", datetime(2026, 11, 24), date(2026, 11, 25), 8, "PO-4711"],
                [None, None, None, None, None],
                ["a2", "2026/11/24", None, 4.5, "受注123"],
            ],
        }
    )
    r = post_xlsx(firms, body)
    assert r.status_code == 201, r.text
    assert [
        (b["machine_id"], b["start"], b["end"], b["hours_per_day"], b["reference"])
        for b in r.json()
    ] == [
        ("a1", "2026-11-24", "2026-11-25", 8.0, "PO-4711"),
        ("a2", "2026-11-24", "2026-11-24", 4.5, "受注123"),
    ]
    assert own_spare(firms, "2026-11-24", 2) == {"a1": [6.4, 6.4], "a2": [9.9, 14.4]}
    # the only sheet, whatever its name, with replace=true
    only = workbook({"Sheet1": [["machine_id", "start", "hours_per_day"], ["a2", "2026-11-30", 3]]})
    assert post_xlsx(firms, only, replace="true").status_code == 201
    assert len(firms.client("acme").get(f"{API}/firms/acme/bookings").json()) == 1


def test_xlsx_names_every_bad_cell_and_writes_nothing(firms: ApiRig) -> None:
    body = workbook(
        {
            "bookings": [
                ["reference", "machine_id", "start", "end", "hours_per_day"],
                ["ok", "a1", "2026-11-24", None, 8],
                ["other firm's", "b1", "2026-11-24", None, 8],
                ["bad hours", "a2", "2026-11-24", None, 30],
                ["bad date", "a2", "2026-13-01", None, 8],
            ]
        }
    )
    r = post_xlsx(firms, body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert [d["loc"] for d in err["detail"]] == [
        "bookings!B3.machine_id",
        "bookings!E4.hours_per_day",
        "bookings!C5.start",
    ]
    assert err["message"].startswith("bookings.xlsx rejected, 3 problem(s)")
    assert firms.client("acme").get(f"{API}/firms/acme/bookings").json() == []


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        (b"PK\x03\x04 not a zip", "workbook", "not an XLSX workbook"),
        (b"", "workbook", "not an XLSX workbook"),
        (workbook({"a": [["x"]], "b": [["y"]]}), "workbook", "no sheet named 'bookings'"),
        (workbook({"bookings": [["machine", "start"]]}), "bookings!A1.machine", "unknown column"),
        (workbook({"bookings": []}), "bookings!1", "empty file"),
    ],
)
def test_xlsx_file_problems(firms: ApiRig, body: bytes, loc: str, msg: str) -> None:
    r = post_xlsx(firms, body)
    assert r.status_code == 422, r.text
    [first, *_] = r.json()["error"]["detail"]
    assert first["loc"] == loc and msg in first["msg"]


def test_xlsx_upload_is_the_firms_own(firms: ApiRig) -> None:
    body = workbook(
        {"bookings": [["machine_id", "start", "hours_per_day"], ["b1", "2026-11-24", 1]]}
    )
    r = firms.client("beta").post(
        f"{API}/firms/acme/bookings.xlsx", content=body, headers={"Content-Type": XLSX}
    )
    assert r.status_code == 403
    assert firms.client("acme").get(f"{API}/firms/acme/bookings").json() == []
