"""Operators record good/reject part counts from the machines view, in a real headless
Chromium at 390 px (a phone) and 1366 px (a laptop): record an entry (Japan time in the
form, UTC in the registry), see an API 422 next to its field and a 409 for an overlapping
span naming the entry, correct the entry, delete it. No sideways scrolling, no serious
axe-core violation; screenshots in ``docs/screenshots/``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from renkei.cloud.registry import OperatorCount, Role, session_scope
from tests.web.axe import horizontal_overflow, screenshot, serious_violations, viewport
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, seed_network


def _entries(live: Live) -> list[tuple[datetime, datetime, int, int]]:
    with session_scope(live.rig.engine) as s:
        rows = s.scalars(select(OperatorCount).order_by(OperatorCount.id)).all()
        return [
            (r.start.replace(tzinfo=UTC), r.end.replace(tzinfo=UTC), r.good, r.reject) for r in rows
        ]


def _fill(page: Browser, start: str, end: str, good: str, reject: str) -> None:
    page.fill_date("#oc-start", start)
    page.fill_date("#oc-end", end)
    page.fill("#oc-good", good)
    page.fill("#oc-reject", reject)


def _save(page: Browser, expect: str) -> None:
    page.js("document.getElementById('status').textContent = '';")
    page.click("#oc-save")
    page.wait_text("#status", expect)
    page.wait_idle()


@pytest.mark.parametrize("width", [390, 1366])
def test_record_correct_delete_counts(live: Live, page: Browser, width: int) -> None:
    seed_network(live.rig)
    with viewport(page, width):
        page.open(live.url, "/app/")
        page.sign_in(live.rig.key(HIT, Role.OPERATOR))
        page.click("nav a[data-view=machines]")
        page.wait_view("machines")
        page.wait_visible("#oc-form")
        page.wait_visible("#oc-empty")
        page.select("#oc-machine", "tohoku-1")
        # a shift in Japan time: 22:00 .. 06:00 next morning
        _fill(page, "2026-11-22T22:00", "2026-11-23T06:00", "1180", "20")
        page.fill("#oc-reject_reason", "short_shot")
        _save(page, "Saved entry")
        row = page.wait_visible("#oc-list tr[data-id]")
        assert "1,180" in row.text and "98.3 %" in row.text and "short_shot" in row.text
        assert _entries(live) == [
            (
                datetime(2026, 11, 22, 13, tzinfo=UTC),
                datetime(2026, 11, 22, 21, tzinfo=UTC),
                1180,
                20,
            )
        ]
        assert horizontal_overflow(page) <= 0, f"machines view scrolls sideways at {width} px"
        assert serious_violations(page) == []
        screenshot(page, f"operator-counts-{width}", at="#oc-list")
        # a bad count: the API's 422 shows next to the field
        _fill(page, "2026-11-23T06:00", "2026-11-23T14:00", "-1", "0")
        page.click("#oc-save")
        error = page.wait_visible("#oc-form .field[data-field=good] .field-error")
        assert "greater than or equal to 0" in error.text
        assert page.find("#oc-good").get_attribute("aria-invalid") == "true"
        # an end before the start: named next to the end field
        _fill(page, "2026-11-23T06:00", "2026-11-23T05:00", "100", "0")
        page.click("#oc-save")
        error = page.wait_visible("#oc-form .field[data-field=end] .field-error")
        assert "must be after start" in error.text
        # an overlapping span: 409 naming the entry, nothing stored
        _fill(page, "2026-11-23T05:00", "2026-11-23T09:00", "100", "0")
        page.click("#oc-save")
        box = page.wait_visible("#oc-form .form-errors")
        entry_id = page.find("#oc-list tr[data-id]").get_attribute("data-id")
        assert f"overlaps entry {entry_id}" in box.text, box.text
        assert len(_entries(live)) == 1
        assert serious_violations(page) == []
        # correct the entry
        page.click(f"#oc-list tr[data-id='{entry_id}'] button.edit")
        page.wait_text("#oc-form-title", f"Correct entry {entry_id}")
        assert page.js("return document.getElementById('oc-start').value") == "2026-11-22T22:00"
        assert page.js("return document.getElementById('oc-good').value") == "1180"
        page.fill("#oc-good", "1175")
        page.fill("#oc-reject", "25")
        _save(page, f"Saved entry {entry_id}")
        assert _entries(live)[0][2:] == (1175, 25)
        page.wait_text("#oc-list", "1,175")
        # delete it (after the browser's confirm dialog)
        page.js("window.confirm = () => true;")
        page.click(f"#oc-list tr[data-id='{entry_id}'] button.delete")
        page.wait_text("#status", f"Deleted entry {entry_id}")
        page.wait_visible("#oc-empty")
        assert _entries(live) == []
        assert page.console_problems(allow_http_errors=True) == []
