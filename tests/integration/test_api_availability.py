"""Measured availability from a real InfluxDB reaches the API's spare capacity.

Clock: Monday 2026-11-23 10:00 Tokyo, so the availability window is the 28 Tokyo days
2026-10-26 .. 2026-11-22 (20 weekdays). Default calendar: 16 h Monday–Friday. Machine a1
sends ``features`` rows for 4 h every weekday -> ratio 4/16 = 0.25 -> 4.0 spare hours per
weekday. a2 has no data of its own firm (a gateway of another firm reports a machine "a2"
too, which must not count) -> default ratio 0.9 -> 14.4 h.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.services import InfluxDB, free_port
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from tests.api.rig import ApiRig, imm

API = "/api/v1"
JST = timezone(timedelta(hours=9))
WINDOW = [date(2026, 10, 26) + timedelta(days=k) for k in range(28)]


def _features(firm: str, machine: str, day: date, hours: float) -> Iterator[str]:
    begin = datetime(day.year, day.month, day.day, 8, tzinfo=JST)
    for k in range(round(hours * 60)):
        t_ms = int((begin + timedelta(minutes=k)).timestamp() * 1000)
        yield (
            f"features,area=a1,firm={firm},gw=gw-1,line=l1,machine={machine},site=s1 "
            f"cycle_time_s={30 + k % 3}.0,oil_temp_C=41.5 {t_ms}"
        )


@pytest.fixture
def measured(
    influxdb: InfluxDB, database: str, tmp_path: Path, registry_url: str
) -> Iterator[ApiRig]:
    store = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database))
    store.ensure_database()
    lines: list[str] = []
    for day in WINDOW:
        if day.weekday() < 5:
            lines += _features("acme", "a1", day, 4)
            lines += _features("other", "a2", day, 1)
    for i in range(0, len(lines), 5000):
        store.write_lines("\n".join(lines[i : i + 5000]).encode())
    store.close()
    rig = ApiRig(
        tmp_path, database_url=registry_url, influx_url=influxdb.url, influx_database=database
    )
    rig.seed_firm("acme", machines=[imm("a1"), imm("a2")])
    rig.seed_firm("beta", machines=[imm("b1")])
    r = rig.client("acme").post(
        f"{API}/firms/acme/grants",
        json={
            "grantee_kind": "firm",
            "grantee_id": "beta",
            "granularity": "day",
            "machine_detail": True,
        },
    )
    assert r.status_code == 201, r.text
    try:
        yield rig
    finally:
        rig.close()


def test_low_measured_availability_means_less_spare(measured: ApiRig) -> None:
    own = measured.client("acme").get(
        f"{API}/firms/acme/capacity", params={"granularity": "day", "days": 7}
    )
    assert own.status_code == 200, own.text
    machines = {m["machine_id"]: m for m in own.json()["machines"]}
    assert machines["a1"]["availability_ratio"] == 0.25 and machines["a1"]["ratio_measured"]
    assert machines["a2"]["availability_ratio"] == 0.9 and not machines["a2"]["ratio_measured"]
    assert [p["spare_h"] for p in machines["a1"]["points"]] == [4.0] * 5 + [0.0] * 2
    assert [p["downtime_h"] for p in machines["a1"]["points"]][:5] == [12.0] * 5
    assert [p["spare_h"] for p in machines["a2"]["points"]][:5] == [14.4] * 5
    # The partner search (capacity index) uses the same measurements.
    r = measured.client("beta", "partner").get(f"{API}/capacity/search")
    assert r.status_code == 200, r.text
    (acme,) = r.json()["results"]
    totals = {m["machine_id"]: m["spare_h_total"] for m in acme["machines"]}
    assert totals == {"a1": 20 * 4.0, "a2": pytest.approx(20 * 14.4)}
    # Measurements are cached: more requests ask InfluxDB nothing new.
    cache = measured.app.state.renkei.capacity.availability
    asked = cache.queries
    measured.client("acme").get(f"{API}/firms/acme/capacity")
    measured.client("beta", "partner").get(f"{API}/capacity/search", params={"min_spare_h": 1})
    assert cache.queries == asked


def test_unreachable_influxdb_falls_back_to_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = ApiRig(tmp_path, influx_url=f"http://127.0.0.1:{free_port()}")
    try:
        rig.seed_firm("acme", machines=[imm("a1")])
        with caplog.at_level(logging.WARNING, logger="renkei.cloud.capacity"):
            r = rig.client("acme").get(f"{API}/firms/acme/capacity", params={"days": 7})
        assert r.status_code == 200, r.text
        (a1,) = r.json()["machines"]
        assert a1["availability_ratio"] == 0.9 and not a1["ratio_measured"]
        assert a1["spare_h_total"] == 72.0
        assert any("using the default ratio" in rec.getMessage() for rec in caplog.records)
    finally:
        rig.close()
