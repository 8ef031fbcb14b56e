"""The firm's registry and spreadsheet uploads in the page, and the layout at a phone's
390 px and a laptop's 1366 px, in a real headless Chromium.

Each test runs at both widths: create and edit a machine and a mold through the forms
(an API 422 detail appears next to its field), import a CSV and an XLSX with one bad cell
(the cell is named), upload bookings, and Accept/Decline stay in the viewport without
sideways scrolling. Every page passes axe-core without serious or critical violations,
and its screenshot is written to ``docs/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.cloud.registry import (
    CapacityBooking,
    Line,
    Machine,
    Mold,
    Role,
    Site,
    session_scope,
)
from tests.api.xlsx import workbook
from tests.web.axe import (
    horizontal_overflow,
    outside_viewport,
    screenshot,
    serious_violations,
    viewport,
)
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, KYOTO, create_takeover, seed_network

WIDTHS = [390, 1366]
MOLD_HEADER = (
    "id,name,width_mm,height_mm,thickness_mm,weight_kg,required_clamp_force_kN,"
    "shot_weight_g,resin,cavities,locating_ring_mm,cycle_time_s"
)


def _check_page(page: Browser, name: str, width: int, *, at: str | None = None) -> None:
    """No sideways scroll, no serious axe violation, a screenshot (scrolled to ``at``)."""
    assert horizontal_overflow(page) <= 0, f"{name} scrolls sideways at {width} px"
    assert _scrolling_tables(page) == 0, f"a table of {name} scrolls sideways at {width} px"
    assert serious_violations(page) == [], name
    screenshot(page, f"{name}-{width}", at=at)


def _scrolling_tables(page: Browser) -> int:
    """How many table boxes scroll sideways (their content is wider than they are)."""
    return int(
        page.js(
            "return [...document.querySelectorAll('.table-scroll')]"
            ".filter((e) => e.scrollWidth > e.clientWidth + 1).length"
        )
    )


def _go(page: Browser, view: str) -> None:
    page.click(f"nav a[data-view={view}]")
    page.wait_view(view)


def _save(page: Browser, kind: str, obj_id: str) -> None:
    """Submit the form and wait until the page says it saved ``obj_id``."""
    page.js("document.getElementById('status').textContent = '';")
    page.click(f"#{kind}-form-save")
    page.wait_text("#status", f"Saved {obj_id}.")
    page.wait_idle()


def _field_error(page: Browser, form: str, field: str) -> str:
    el = page.wait_visible(f"#{form}-form .field[data-field={field}] .field-error")
    assert page.find(f"#{form}-form-{field}").get_attribute("aria-invalid") == "true"
    return str(el.text)


@pytest.mark.parametrize("width", WIDTHS)
def test_create_and_edit_machine_and_mold(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    with viewport(page, width):
        page.open(live.url, "/app/")
        page.sign_in(live.rig.key(HIT, Role.OPERATOR))

        # a machine: the API's 422 on a bad clamp force shows next to the field
        _go(page, "machines")
        page.wait_visible("#machines-list tr[data-id='tohoku-1']")
        page.fill("#machines-form-id", "tohoku-9")
        page.fill("#machines-form-name", "Big IMM")
        page.select("#machines-form-line_id", f"{HIT}-l1")
        page.select("#machines-form-process", "injection_molding")
        assert not page.visible("#machines-form-tonnage_kN")  # press fields hidden
        for name, value in {
            "clamp_force_kN": "-5",
            "tie_bar_h_mm": "700",
            "tie_bar_v_mm": "700",
            "min_mold_height_mm": "200",
            "max_mold_height_mm": "650",
            "shot_capacity_g": "900",
            "locating_ring_mm": "100",
        }.items():
            page.fill(f"#machines-form-{name}", value)
        page.click("#machines-form-save")
        assert "greater than 0" in _field_error(page, "machines", "clamp_force_kN")
        page.fill("#machines-form-clamp_force_kN", "3500")
        page.click("#machines-form-save")
        row = page.wait_visible("#machines-list tr[data-id='tohoku-9']")
        assert "3,500 kN" in row.text
        assert not page.visible("#machines-form .field-error")
        _check_page(page, "machines", width)
        page.click("#machines-list tr[data-id='tohoku-1'] button.edit")
        page.wait_text("#machines-form-title", "tohoku-1")
        page.fill("#machines-form-tie_bar_v_mm", "0")
        page.click("#machines-form-save")
        _field_error(page, "machines", "tie_bar_v_mm")
        screenshot(page, f"machine-error-{width}", at="#machines-form")
        page.click("#machines-form-new")

        # edit it: rename and a larger tie-bar spacing
        page.click("#machines-list tr[data-id='tohoku-9'] button.edit")
        page.wait_text("#machines-form-title", "tohoku-9")
        page.wait_for(
            lambda d: d.execute_script("return document.activeElement.id") == "machines-form-name",
            "the form in edit mode",
        )
        assert page.find("#machines-form-id").get_attribute("readonly") is not None
        page.fill("#machines-form-name", "Big IMM (rebuilt)")
        page.fill("#machines-form-tie_bar_h_mm", "760")
        _save(page, "machines", "tohoku-9")
        page.wait_text("#machines-list tr[data-id='tohoku-9']", "Big IMM (rebuilt)")
        with session_scope(live.rig.engine) as s:
            m = s.get(Machine, "tohoku-9")
            assert m is not None and m.firm_id == HIT
            assert (m.name, m.clamp_force_kN, m.tie_bar_h_mm) == ("Big IMM (rebuilt)", 3500, 760)

        # a mold: a missing field is named by the API next to it
        _go(page, "molds")
        page.wait_visible("#molds-list tr[data-id='m-cover']")
        values = {
            "id": "m-tray",
            "name": "Tray",
            "width_mm": "500",
            "height_mm": "450",
            "thickness_mm": "380",
            "weight_kg": "600",
            "required_clamp_force_kN": "2200",
            "shot_weight_g": "300",
            "resin": "ABS",
            "cavities": "1",
            "locating_ring_mm": "100",
            "cycle_time_s": "",
        }
        for name, value in values.items():
            page.fill(f"#molds-form-{name}", value)
        page.click("#molds-form-save")
        assert "required" in _field_error(page, "molds", "cycle_time_s").lower()
        page.fill("#molds-form-cycle_time_s", "42.5")
        page.click("#molds-form-save")
        page.wait_visible("#molds-list tr[data-id='m-tray']")
        _check_page(page, "molds", width)

        page.click("#molds-list tr[data-id='m-tray'] button.edit")
        page.wait_text("#molds-form-title", "m-tray")
        page.fill("#molds-form-cavities", "0")
        page.click("#molds-form-save")
        assert "greater than or equal to 1" in _field_error(page, "molds", "cavities")
        page.fill("#molds-form-cavities", "2")
        _save(page, "molds", "m-tray")
        with session_scope(live.rig.engine) as s:
            mold = s.get(Mold, "m-tray")
            assert mold is not None and (mold.cavities, mold.cycle_time_s) == (2, 42.5)

        # the sites page (sites and lines)
        _go(page, "sites")
        page.wait_visible(f"#sites-list tr[data-id='{HIT}-s1']")
        page.wait_visible(f"#lines-list tr[data-id='{HIT}-l1']")
        page.fill("#lines-form-id", f"{HIT}-l2")
        page.select("#lines-form-site_id", f"{HIT}-s1")
        page.fill("#lines-form-name", "Second line")
        _save(page, "lines", f"{HIT}-l2")
        page.wait_visible(f"#lines-list tr[data-id='{HIT}-l2']")
        page.click(f"#sites-list tr[data-id='{HIT}-s1'] button.edit")
        page.wait_text("#sites-form-title", f"{HIT}-s1")
        page.fill("#sites-form-latitude_deg", "95")
        page.click("#sites-form-save")
        assert "less than or equal to 90" in _field_error(page, "sites", "latitude_deg")
        page.fill("#sites-form-latitude_deg", "38.3")
        page.fill("#sites-form-resins", "PP; ABS")
        _save(page, "sites", f"{HIT}-s1")
        page.wait_text(f"#sites-list tr[data-id='{HIT}-s1']", "38.3")
        _check_page(page, "sites", width)
        with session_scope(live.rig.engine) as s:
            site = s.get(Site, f"{HIT}-s1")
            assert site is not None and (site.latitude_deg, site.resins) == (38.3, ["PP", "ABS"])
            assert s.get(Line, f"{HIT}-l2") is not None
        assert page.console_problems(allow_http_errors=True) == []


def _xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    path.write_bytes(workbook(sheets))
    return path


def _upload(page: Browser, form: str, path: Path) -> None:
    page.find(f"#{form}-file").send_keys(str(path))
    page.click(f"#{form}-upload-submit")
    page.wait_idle()


@pytest.mark.parametrize("width", WIDTHS)
def test_import_spreadsheets_and_upload_bookings(
    live: Live, page: Browser, width: int, tmp_path: Path
) -> None:
    seed_network(live.rig)
    bad_csv = tmp_path / "molds.csv"
    bad_csv.write_text(
        f"{MOLD_HEADER}\n"
        "m-a,Cover A,400,400,350,450,1200,120,PP,2,100,30\n"
        "m-b,Cover B,wide,400,350,450,1200,120,PP,2,100,30\n",
        encoding="utf-8",
    )
    header = ["id", "line_id", "name", "process", "tonnage_kN", "bed_width_mm", "bed_depth_mm"]
    bad_xlsx = _xlsx(
        tmp_path / "bad.xlsx",
        {"machines": [header, ["press-1", f"{HIT}-l1", "Press 1", "press", "lots", 1200, 800]]},
    )
    good_xlsx = _xlsx(
        tmp_path / "registry.xlsx",
        {"machines": [header, ["press-1", f"{HIT}-l1", "Press 1", "press", 2000, 1200, 800]]},
    )
    with viewport(page, width):
        page.open(live.url, "/app/")
        page.sign_in(live.rig.key(HIT, Role.OPERATOR))
        _go(page, "uploads")

        # CSV with one bad cell: the cell is named, nothing written
        page.select("#registry-table", "molds")
        _upload(page, "registry", bad_csv)
        cell = page.wait_visible("#registry-upload-result tr[data-loc='molds.csv:3.width_mm']")
        assert "number" in cell.text
        assert "molds.csv was not imported: 1 problem(s)" in page.text("#registry-upload-result")
        _check_page(page, "import-errors", width, at="#registry-upload-form")
        if width == WIDTHS[0]:  # the same problems in Japanese
            page.click("#lang-toggle")
            page.wait_text(
                "#registry-upload-result", "molds.csv は取り込まれませんでした：問題 1 件"
            )
            # at 390 px the header row is visually hidden (cards label each cell), so read
            # its text content rather than the rendered text
            header = page.js(
                "return document.querySelector('#registry-upload-result th').textContent"
            )
            assert "場所" in header
            page.click("#lang-toggle")
            page.wait_text("#registry-upload-result", "molds.csv was not imported")

        # XLSX with one bad cell: sheet and cell named
        _upload(page, "registry", bad_xlsx)
        page.wait_visible("#registry-upload-result tr[data-loc='machines!E2.tonnage_kN']")
        with session_scope(live.rig.engine) as s:
            assert s.get(Mold, "m-a") is None and s.get(Machine, "press-1") is None

        # the good workbook and the fixed CSV
        _upload(page, "registry", good_xlsx)
        page.wait_text("#registry-upload-result", "registry.xlsx imported (machines: 1 rows)")
        bad_csv.write_text(f"{MOLD_HEADER}\nm-a,Cover A,400,400,350,450,1200,120,PP,2,100,30\n")
        _upload(page, "registry", bad_csv)
        page.wait_text("#registry-upload-result", "molds.csv imported (molds: 1 rows)")

        # bookings: a bad line first, then the plan
        plan = tmp_path / "plan.csv"
        plan.write_text("machine_id,start,end,hours_per_day\npress-1,2026/12/1,2026-12-03,30\n")
        _upload(page, "bookings", plan)
        page.wait_visible("#bookings-upload-result tr[data-loc='bookings.csv:2.hours_per_day']")
        bad_plan = _xlsx(
            tmp_path / "plan.xlsx",
            {"bookings": [["machine_id", "start", "hours_per_day"], ["press-1", "2026-12-01", 25]]},
        )
        _upload(page, "bookings", bad_plan)
        page.wait_visible("#bookings-upload-result tr[data-loc='bookings!C2.hours_per_day']")
        plan.write_text(
            "machine_id,start,end,hours_per_day,reference\npress-1,2026/12/1,2026-12-03,8,PO-1\n"
        )
        _upload(page, "bookings", plan)
        page.wait_text("#bookings-upload-result", "plan.csv: 1 bookings added.")
        _check_page(page, "import", width)
        with session_scope(live.rig.engine) as s:
            assert s.get(Machine, "press-1") is not None and s.get(Mold, "m-a") is not None
            booking = s.scalars(select(CapacityBooking)).one()
            assert (booking.machine_id, booking.hours_per_day) == ("press-1", 8)
        assert page.console_problems(allow_http_errors=True) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_actions_and_tables_fit_the_viewport(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    plan = create_takeover(live.rig)
    offered = [a["id"] for a in plan["assignments"] if a["partner_firm_id"] == KYOTO]
    assert offered
    with viewport(page, width):
        page.open(live.url, "/app/#assignments")
        page.sign_in(live.rig.key(KYOTO, Role.PARTNER))
        page.wait_view("assignments")
        page.wait_visible(f"#assignment-{offered[0]} button.accept")
        assert outside_viewport(page, "#assignment-list button") == []
        assert len(page.find_all("#assignment-list button")) == 2 * len(offered)
        assert _scrolling_tables(page) == 0
        _check_page(page, "assignments", width)
        page.click(f"#assignment-{offered[0]} button.accept")
        page.wait_for(
            lambda d: (
                d.find_element("id", f"assignment-{offered[0]}").get_attribute("data-status")
                == "accepted"
            ),
            "the accepted row",
        )

        # the requester's plan: long tables wrap (or become cards) instead of scrolling
        page.click("#sign-out")
        page.sign_in(live.rig.key(HIT, Role.OPERATOR))
        page.driver.get(f"{live.url}/app/#takeovers/{plan['id']}")
        page.wait_for(
            lambda d: d.execute_script(
                "const p = document.getElementById('takeover-plan');"
                "return p && p.dataset.requestId;"
            ),
            "the plan",
        )
        page.wait_idle()
        assert outside_viewport(page, "#takeover-list a") == []
        assert horizontal_overflow(page) <= 0
        assert _scrolling_tables(page) == 0
        screenshot(page, f"takeover-accepted-{width}")
