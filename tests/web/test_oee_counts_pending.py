"""The counts page says when the API's InfluxDB user may only read (the compose stack):
the entry is saved and OEE quality uses it after the writer's next sync (en and ja), in a
real headless Chromium against an API reading a real InfluxDB with users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from harness.services import InfluxDB
from renkei.cloud.registry import Role
from renkei.cloud.store.influx import InfluxSettings
from renkei.cloud.store.influxql import run_query
from tests.api.rig import ApiRig
from tests.web.conftest import Live
from tests.web.harness import Browser, LiveServer
from tests.web.seed import HIT, seed_network


@pytest.fixture
def live_read_only(tmp_path: Path) -> Iterator[Live]:
    influx = InfluxDB(workdir=tmp_path / "influx", auth=True)
    influx.start()
    try:
        run_query(
            InfluxSettings(url=influx.url, database="renkei"),
            "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES",
        )
        admin = InfluxSettings(
            url=influx.url, database="renkei", username="admin", password=SecretStr("admin-pw")
        )
        run_query(
            admin,
            "CREATE DATABASE renkei; CREATE USER api WITH PASSWORD 'api-pw'; "
            "GRANT READ ON renkei TO api",
        )
        rig = ApiRig(
            tmp_path,
            influx_url=influx.url,
            influx_username="api",
            influx_password=SecretStr("api-pw"),
        )
        server = LiveServer(rig.app)
        server.start()
        try:
            yield Live(rig, server)
        finally:
            server.stop()
            rig.close()
    finally:
        influx.kill()


@pytest.mark.parametrize(
    ("languages", "expect"),
    [("en-US,en", "uses it after the next sync"), ("ja-JP,ja", "次の同期")],
)
def test_a_read_only_api_says_pending(
    live_read_only: Live, page: Browser, languages: str, expect: str
) -> None:
    live = live_read_only
    seed_network(live.rig)
    page.open(live.url, "/app/", languages=languages)
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.click("nav a[data-view=machines]")
    page.wait_view("machines")
    page.wait_visible("#oc-form")
    page.select("#oc-machine", "tohoku-1")
    page.fill_date("#oc-start", "2026-11-22T22:00")
    page.fill_date("#oc-end", "2026-11-23T06:00")
    page.fill("#oc-good", "1180")
    page.fill("#oc-reject", "20")
    page.js("document.getElementById('status').textContent = '';")
    page.click("#oc-save")
    page.wait_text("#status", expect)
    page.wait_visible("#oc-list tr[data-id]")
    assert page.console_problems(allow_http_errors=True) == []
