"""Registry import from spreadsheets over the API: CSV per table and XLSX workbooks, with
per-cell errors (as the bookings CSV upload), owner firm only."""

from __future__ import annotations

from renkei.cloud.registry import Role
from tests.api.rig import ApiRig
from tests.api.xlsx import XLSX, workbook

API = "/api/v1"
MOLD_HEADER = (
    "id,name,width_mm,height_mm,thickness_mm,weight_kg,required_clamp_force_kN,"
    "shot_weight_g,resin,cavities,locating_ring_mm,cycle_time_s"
)


def test_csv_creates_rows_and_defaults_the_firm(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    client = rig.client("acme", Role.OPERATOR)
    body = f"{MOLD_HEADER}\nm-a,Cover A,400,400,350,450,1200,120,PP,2,100,30\n"
    r = client.post(
        f"{API}/firms/acme/registry/molds.csv",
        content=body.encode("cp932"),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"written": {"molds": 1}}
    got = client.get(f"{API}/firms/acme/molds/m-a").json()
    assert got["firm_id"] == "acme" and got["cavities"] == 2
    # the same file again changes nothing (upsert by id)
    r = client.post(f"{API}/firms/acme/registry/molds.csv", content=body)
    assert r.status_code == 200, r.text


def test_csv_reports_every_bad_cell_and_writes_nothing(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    client = rig.client("acme", Role.OPERATOR)
    body = (
        f"{MOLD_HEADER}\n"
        "m-a,Cover A,400,400,350,450,1200,120,PP,2,100,30\n"
        "m-b,Cover B,-4,400,350,450,1200,120,PP,two,100,30\n"
    )
    r = client.post(f"{API}/firms/acme/registry/molds.csv", content=body)
    assert r.status_code == 422, r.text
    locs = [d["loc"] for d in r.json()["error"]["detail"]]
    assert locs == ["molds.csv:3.width_mm", "molds.csv:3.cavities"]
    assert client.get(f"{API}/firms/acme/molds").json() == []


def test_xlsx_imports_sheets_and_names_the_bad_cell(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    client = rig.client("acme", Role.OPERATOR)
    header = ["id", "line_id", "name", "process", "tonnage_kN", "bed_width_mm", "bed_depth_mm"]
    good = workbook(
        {
            "lines": [["id", "site_id", "name"], ["acme-l2", "acme-s1", "Press line"]],
            "machines": [header, ["acme-p1", "acme-l2", "Press 1", "press", 2000, 1200.5, 800]],
        }
    )
    r = client.post(f"{API}/firms/acme/registry.xlsx", content=good, headers={"Content-Type": XLSX})
    assert r.status_code == 200, r.text
    assert r.json() == {"written": {"lines": 1, "machines": 1}}
    assert client.get(f"{API}/firms/acme/machines/acme-p1").json()["bed_width_mm"] == 1200.5

    bad = workbook({"machines": [header, ["acme-p2", "acme-l2", "Press 2", "press", "lots", 1, 1]]})
    r = client.post(f"{API}/firms/acme/registry.xlsx", content=bad)
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["detail"]
    assert [d["loc"] for d in detail] == ["machines!E2.tonnage_kN"]
    assert "number" in detail[0]["msg"]


def test_xlsx_rejects_junk_and_unknown_sheets(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    client = rig.client("acme", Role.OPERATOR)
    r = client.post(f"{API}/firms/acme/registry.xlsx", content=b"not a zip")
    assert r.status_code == 422 and r.json()["error"]["detail"][0]["loc"] == "workbook"
    r = client.post(f"{API}/firms/acme/registry.xlsx", content=workbook({"Sheet9": [["a"]]}))
    assert r.status_code == 422
    assert "unknown table 'Sheet9'" in r.json()["error"]["detail"][0]["msg"]


def test_only_the_owner_firm_imports(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    rig.seed_firm("other")
    body = f"{MOLD_HEADER}\nm-x,X,400,400,350,450,1200,120,PP,2,100,30\n"
    r = rig.client("other", Role.OPERATOR).post(
        f"{API}/firms/acme/registry/molds.csv", content=body
    )
    assert r.status_code == 403
    r = rig.client("acme", Role.PARTNER).post(f"{API}/firms/acme/registry/molds.csv", content=body)
    assert r.status_code == 403
    # a row naming another firm is refused, not written
    r = rig.client("acme", Role.OPERATOR).post(
        f"{API}/firms/acme/registry/molds.csv",
        content=f"firm_id,{MOLD_HEADER}\nother,m-x,X,400,400,350,450,1200,120,PP,2,100,30\n",
    )
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["loc"] == "molds[0].firm_id"
