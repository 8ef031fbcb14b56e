"""Operator counts reach OEE through a real InfluxDB, as the plant-overview dashboard reads it.

Gateway ``oee`` rows of machine a1 (firm acme), one per minute 22:00-08:00 UTC, each with
10 good and 1 reject part (basis ``counts``); the same rows for a machine "a1" of another
firm (site s9), which no entry of acme may touch. An operator records 1180 good / 20 reject
for 23:00-07:00 through the API: the dashboard's quality (Grafana expression over the
committed panel queries) then counts the operator's parts for that interval and the
machine's outside it, the basis panel says ``operator``; a correction moves the interval,
a deletion restores the machine's own quality exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.services import InfluxDB, free_port
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.cloud.store.influxql import run_query
from renkei.core.oee import BASIS_CODES
from renkei.dashboards.boards import build_boards
from renkei.dashboards.emulate import TimeRange
from renkei.dashboards.verify import PanelRun, run_board
from tests.api.rig import ApiRig, imm
from tests.integration.test_dashboards_pipeline import _model

API = "/api/v1/firms/acme/machines/a1/operator-counts"
T0 = datetime(2026, 11, 22, 22, tzinfo=UTC)
MINUTES = 600  # 22:00 .. 08:00
BOARD = next(b for b in build_boards() if b.uid == "renkei-plant-overview")


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _rows(firm: str, site: str) -> Iterator[str]:
    for k in range(MINUTES):
        t_ms = _ms(T0 + timedelta(minutes=k))
        yield (
            f"oee,area=a1,firm={firm},gw=gw-1,line=l1,machine=a1,site={site} "
            "planned_s=60.0,run_s=50.0,shots=2.0,ideal_s=36.0,ideal_run_s=50.0,good=10.0,"
            "reject=1.0,availability_basis=1.0,performance_basis=4.0,quality_basis=6.0 "
            f"{t_ms}"
        )


@pytest.fixture
def setup(influxdb: InfluxDB, database: str, tmp_path: Path) -> Iterator[tuple[ApiRig, Any]]:
    settings = InfluxSettings(url=influxdb.url, database=database)
    store = InfluxStore(settings=settings)
    store.ensure_database()
    lines = [*_rows("acme", "s1"), *_rows("other", "s9")]
    store.write_lines("\n".join(lines).encode())
    store.close()
    rig = ApiRig(tmp_path, influx_url=influxdb.url, influx_database=database)
    rig.seed_firm("acme", machines=[imm("a1")])
    try:
        yield rig, settings
    finally:
        rig.close()


def _board(settings: InfluxSettings, start: datetime, end: datetime) -> list[PanelRun]:
    def run(q: str) -> list[dict[str, Any]]:
        return run_query(settings, q)[0].get("series") or []

    tr = TimeRange(from_ms=_ms(start), to_ms=_ms(end) - 1)
    runs = run_board(BOARD, _model(BOARD), run, now_ms=_ms(end), time_range=tr)
    oee = [r for r in runs if "OEE" in r.title]
    assert len(oee) == 8  # OEE (A, P, Q), factors (A, P, Q), basis (B, O)
    for r in oee:
        assert not r.problems and not r.query_failed, (r.title, r.ref_id, r.problems)
    return oee


def _factor(runs: list[PanelRun], ref: str, site: str = "s1") -> float | None:
    oee = next(r for r in runs if r.expressions)
    (value,) = [n.value for n in oee.expressions[ref] if dict(n.labels).get("site") == site]
    return value


def _basis(runs: list[PanelRun], ref: str, column: str) -> Any:
    run = next(r for r in runs if "OEE basis" in r.title and r.ref_id == ref)
    found = [s for s in run.answer if s["tags"]["site"] == "s1"]
    if not found:
        return None
    (series,) = found
    return dict(zip(series["columns"], series["values"][0], strict=True))[column]


def _hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def test_operator_counts_replace_the_machine_quality_of_their_interval(
    setup: tuple[ApiRig, InfluxSettings],
) -> None:
    rig, settings = setup
    whole = (_hours(0), _hours(10))
    before = _board(settings, *whole)
    assert _factor(before, "rQ") == pytest.approx(10 / 11)
    assert _basis(before, "O", "operator_share") is None  # no operator entry ever
    availability = _factor(before, "rA")
    assert availability == pytest.approx(50 / 60)
    c = rig.client("acme")
    body = {"start": _hours(1).isoformat(), "end": _hours(9).isoformat(), "good": 1180}
    r = c.post(API, json={**body, "reject": 20})
    assert r.status_code == 201 and r.json()["oee"] == "written", r.text
    entry = r.json()["entry"]
    after = _board(settings, *whole)
    # 120 machine minutes outside [23:00, 07:00) + the operator's parts inside it
    assert _factor(after, "rQ") == pytest.approx((1200 + 1180) / (1320 + 1200))
    assert _factor(after, "rA") == pytest.approx(availability)  # untouched
    assert _factor(after, "rQ", site="s9") == pytest.approx(10 / 11)  # other firm untouched
    assert _basis(after, "B", "quality_basis") == BASIS_CODES["counts"]  # range ends outside
    assert _basis(after, "O", "operator_share") == pytest.approx(480 / 600)
    inside = _board(settings, _hours(2), _hours(5))
    assert _factor(inside, "rQ") == pytest.approx(1180 / 1200)
    assert _basis(inside, "B", "quality_basis") == BASIS_CODES["operator"]
    assert _basis(inside, "B", "availability_basis") == BASIS_CODES["run_state"]
    # applying again (e.g. after late rows) changes nothing
    r = c.put(f"{API}/{entry['id']}", json={**body, "reject": 20})
    assert r.json()["oee"] == "written"
    assert _factor(_board(settings, *whole), "rQ") == pytest.approx(2380 / 2520)
    # correct: 00:00-06:00, 900 good, 0 reject -> 23:00-00:00 and 06:00-07:00 come back
    r = c.put(
        f"{API}/{entry['id']}",
        json={
            "start": _hours(2).isoformat(),
            "end": _hours(8).isoformat(),
            "good": 900,
            "reject": 0,
        },
    )
    assert r.status_code == 200 and r.json()["oee"] == "written", r.text
    moved = _board(settings, *whole)
    assert _factor(moved, "rQ") == pytest.approx((2400 + 900) / (2640 + 900))
    assert _basis(moved, "O", "operator_share") == pytest.approx(360 / 600)
    # delete: the machine's own quality, exactly as before
    assert c.delete(f"{API}/{entry['id']}").status_code == 204
    restored = _board(settings, *whole)
    assert _factor(restored, "rQ") == pytest.approx(10 / 11)
    assert _basis(restored, "O", "operator_share") == 0
    (masked,) = run_query(
        settings,
        'SELECT count("good") FROM "oee" WHERE "operator_masked" = 1.0 OR "src" = \'operator\'',
    )
    assert not masked.get("series"), masked
    (other,) = run_query(settings, 'SELECT sum("good") FROM "oee" WHERE "firm" = \'other\'')
    assert other["series"][0]["values"][0][1] == 10.0 * MINUTES


def test_counts_of_a_machine_without_rows_group_with_its_registry_tags(
    setup: tuple[ApiRig, InfluxSettings],
) -> None:
    rig, settings = setup
    rig.seed_firm("acme", machines=[imm("a2")])  # no gateway rows at all
    r = rig.client("acme").post(
        "/api/v1/firms/acme/machines/a2/operator-counts",
        json={"start": _hours(1).isoformat(), "end": _hours(2).isoformat(), "good": 9, "reject": 1},
    )
    assert r.json()["oee"] == "written", r.text
    (res,) = run_query(
        settings,
        'SELECT sum("good"), sum("reject"), max("quality_basis"), count("good") FROM "oee" '
        "WHERE \"machine\" = 'a2' GROUP BY *",
    )
    (series,) = res["series"]
    assert series["tags"]["firm"] == "acme" and series["tags"]["src"] == "operator"
    assert series["tags"]["site"] and series["tags"]["line"]
    good, reject, basis, points = series["values"][0][1:]
    assert (good, reject) == (pytest.approx(9), pytest.approx(1))
    assert basis == BASIS_CODES["operator"] and points == 60  # one a minute


def test_unreachable_influxdb_keeps_the_entry_and_says_failed(tmp_path: Path) -> None:
    rig = ApiRig(tmp_path, influx_url=f"http://127.0.0.1:{free_port()}")
    try:
        rig.seed_firm("acme", machines=[imm("a1")])
        body = {"start": _hours(1).isoformat(), "end": _hours(2).isoformat(), "good": 1}
        r = rig.client("acme").post(API, json={**body, "reject": 0})
        assert r.status_code == 201, r.text
        assert r.json()["oee"] == "failed" and r.json()["oee_detail"], r.json()
        assert len(rig.client("acme").get(API).json()) == 1
    finally:
        rig.close()
