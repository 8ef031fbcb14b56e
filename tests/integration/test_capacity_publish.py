"""The producer of ``capacity`` (``renkei cloud capacity-publish``) against a real InfluxDB
and a SQLite registry: two firms, three sites' worth of calendars and time zones,
bookings, and measured availability from ``features`` points in the same InfluxDB.

Clock: Monday 2026-11-23 10:00 Asia/Tokyo (02:00 in Berlin, also Monday).
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from harness.services import InfluxDB, free_port
from harness.wait import wait_for
from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.capacity import ShiftCalendar
from renkei.cloud.capacity.publish import publish_capacity, publisher_state, run_periodic
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.registry import (
    CapacityBooking,
    Line,
    Site,
    import_document,
    make_engine,
    session_scope,
)
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from tests.api.rig import imm

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)
TOKYO, BERLIN = ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/Berlin")
#: machine -> the tags its points must carry (no ``area`` where the line has none)
TAGS = {
    "acme-m1": {"firm": "acme", "site": "acme-s1", "area": "molding", "line": "acme-l1"},
    "acme-m2": {"firm": "acme", "site": "acme-s1", "area": "molding", "line": "acme-l1"},
    "acme-m3": {"firm": "acme", "site": "acme-s1", "line": "acme-l2"},
    "beta-b1": {"firm": "beta", "site": "beta-de", "area": "press", "line": "beta-l1"},
}


def _seed(engine: Engine) -> None:
    doc = {
        "firms": [
            {"id": "acme", "name": "Acme", "region": "kansai"},
            {"id": "beta", "name": "Beta", "region": "europe"},
        ],
        "sites": [
            {
                "id": "acme-s1",
                "firm_id": "acme",
                "name": "Acme Osaka",
                "latitude_deg": 34.7,
                "longitude_deg": 135.5,
                "region": "kansai",
            },
            {
                "id": "beta-de",
                "firm_id": "beta",
                "name": "Beta Kassel",
                "latitude_deg": 51.3,
                "longitude_deg": 9.5,
                "region": "europe",
            },
        ],
        "lines": [
            {"id": "acme-l1", "site_id": "acme-s1", "name": "L1", "area": "molding"},
            {"id": "acme-l2", "site_id": "acme-s1", "name": "L2"},
            {"id": "beta-l1", "site_id": "beta-de", "name": "P1", "area": "press"},
        ],
        "machines": [
            imm("acme-m1") | {"firm_id": "acme", "line_id": "acme-l1"},
            imm("acme-m2") | {"firm_id": "acme", "line_id": "acme-l1"},
            imm("acme-m3") | {"firm_id": "acme", "line_id": "acme-l2"},
            imm("beta-b1") | {"firm_id": "beta", "line_id": "beta-l1"},
        ],
    }
    with session_scope(engine) as s:
        import_document(s, doc)
        # Acme's site has no calendar (the API default: 16 h Mon-Fri, Asia/Tokyo); Beta's
        # runs one 8-h shift Mon-Fri in Germany.
        site = s.get(Site, "beta-de")
        assert site is not None
        site.calendar = ShiftCalendar(
            weekly_hours=(8, 8, 8, 8, 8, 0, 0), timezone="Europe/Berlin"
        ).model_dump(mode="json")
        s.add(
            CapacityBooking(
                firm_id="acme",
                machine_id="acme-m1",
                start=TODAY,
                end=TODAY + timedelta(days=1),
                hours_per_day=10.0,
            )
        )


def _features(influx: InfluxDB, database: str) -> None:
    """acme-m2 ran 12 of the 16 scheduled hours on Friday 2026-11-20 (one features row per
    minute), and nothing since: measured availability 12 / 16 = 0.75 (Fri..Sun)."""
    start = int(datetime(2026, 11, 20, tzinfo=TOKYO).timestamp() * 1000)
    tags = "area=molding,firm=acme,gw=gw-1,line=acme-l1,machine=acme-m2,site=acme-s1"
    body = "".join(
        f"features,{tags} v_mean={i % 7}.5 {start + i * 60_000}\n" for i in range(12 * 60)
    )
    store = InfluxStore(settings=InfluxSettings(url=influx.url, database=database))
    try:
        store.write_lines(body.encode())
    finally:
        store.close()


@dataclass
class Setup:
    registry: str
    engine: Engine
    influx: InfluxDB
    database: str
    settings: ApiSettings
    store: InfluxStore

    def publish(self, days: int, **kw: Any) -> Any:
        state = publisher_state(self.settings.capacity(), engine=self.engine, clock=lambda: NOW)
        return publish_capacity(state, self.store, days=days, **kw)

    def points(self) -> dict[tuple[str, int], dict[str, Any]]:
        """(machine, time ms) -> the point's tags and fields."""
        series = self.influx.query('SELECT * FROM "capacity"', db=self.database)
        if not series:
            return {}
        cols = series[0]["columns"]
        rows = [dict(zip(cols, v)) for v in series[0]["values"]]
        return {(r["machine"], r["time"]): r for r in rows}


@pytest.fixture
def setup(registry_url: str, influxdb: InfluxDB, database: str) -> Iterator[Setup]:
    registry = registry_url  # SQLite, then PostgreSQL
    upgrade(registry)
    engine = make_engine(registry)
    _seed(engine)
    influxdb.create_database(database)
    _features(influxdb, database)
    settings = ApiSettings(database_url=registry, influx_url=influxdb.url, influx_database=database)
    store = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database))
    try:
        yield Setup(registry, engine, influxdb, database, settings, store)
    finally:
        store.close()
        engine.dispose()


def _ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def _fields(p: dict[str, Any]) -> tuple[float, ...]:
    return tuple(
        p[f] for f in ("available_h", "booked_h", "downtime_h", "spare_h", "availability_ratio")
    ) + (p["ratio_measured"],)


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- tests


def test_publish_writes_the_spare_capacity_of_every_machine(setup: Setup) -> None:
    report = setup.publish(days=14)
    assert report.ok and (report.firms, report.machines, report.points) == (2, 4, 56)
    points = setup.points()
    assert len(points) == 4 * 14

    # Tags: the registry's ids; no area tag for a line without one; no gateway tag.
    for (machine, _), p in points.items():
        tags = {k: p[k] for k in ("firm", "site", "area", "line") if p.get(k) is not None}
        assert tags == TAGS[machine], (machine, p)
        assert p.get("gw") is None

    mon, tue, wed, sat = (TODAY + timedelta(days=d) for d in (0, 1, 2, 5))
    # acme-m1: 16 h scheduled, 10 h booked Mon+Tue, default ratio 0.9 (no telemetry).
    m1 = {d: _fields(points["acme-m1", _ms(d, TOKYO)]) for d in (mon, tue, wed, sat)}
    assert _close(m1[mon], (16.0, 10.0, 1.6, 4.4, 0.9, 0))
    assert _close(m1[tue], m1[mon])
    assert _close(m1[wed], (16.0, 0.0, 1.6, 14.4, 0.9, 0))
    assert _close(m1[sat], (0.0, 0.0, 0.0, 0.0, 0.9, 0))
    # acme-m2: measured availability 0.75 from its features rows.
    assert _close(_fields(points["acme-m2", _ms(mon, TOKYO)]), (16.0, 0.0, 4.0, 12.0, 0.75, 1))
    assert _close(_fields(points["acme-m3", _ms(mon, TOKYO)]), (16.0, 0.0, 1.6, 14.4, 0.9, 0))
    # beta-b1: its site's calendar (8 h) and its site's day, stamped at Berlin midnight.
    b1 = points["beta-b1", _ms(mon, BERLIN)]
    assert _close(_fields(b1), (8.0, 0.0, 0.8, 7.2, 0.9, 0))
    assert ("beta-b1", _ms(mon, TOKYO)) not in points
    assert min(t for m, t in points if m == "beta-b1") == _ms(mon, BERLIN)
    assert max(t for m, t in points if m == "beta-b1") == _ms(mon + timedelta(days=13), BERLIN)


def test_publishing_again_overwrites_the_same_points(setup: Setup) -> None:
    setup.publish(days=14)
    first = setup.points()
    setup.publish(days=14, batch_lines=7)  # several write requests; same points
    assert setup.points() == first
    assert setup.influx.count_points(setup.database, "capacity", "spare_h") == 56
    # A changed booking shows up at the next run, on the same point.
    with session_scope(setup.engine) as s:
        s.execute(update(CapacityBooking).values(hours_per_day=4.0))
    setup.publish(days=14)
    again = setup.points()
    assert len(again) == 56
    monday = again["acme-m1", _ms(TODAY, TOKYO)]
    assert (monday["booked_h"], round(monday["spare_h"], 9)) == (4.0, 10.4)
    changed = {k for k in again if again[k] != first[k]}
    assert changed == {("acme-m1", _ms(TODAY + timedelta(days=d), TOKYO)) for d in (0, 1)}


def test_a_machine_whose_tags_cannot_be_written_is_skipped_and_reported(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    with session_scope(setup.engine) as s:
        s.execute(update(Line).where(Line.id == "acme-l2").values(area="hall\\2"))
    report = setup.publish(days=3)
    assert not report.ok and report.skipped_machines == ("acme-m3",)
    assert (report.machines, report.points) == (3, 9)
    assert {m for m, _ in setup.points()} == {"acme-m1", "acme-m2", "beta-b1"}
    assert "acme-m3" in caplog.text and "left out" in caplog.text


def test_run_periodic_repeats_until_stopped_and_survives_a_failed_run() -> None:
    stop = threading.Event()
    calls: list[float] = []
    errors: list[Exception] = []

    def once() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("InfluxDB went away")
        if len(calls) == 4:
            stop.set()

    failures = run_periodic(once, every_s=0.05, stop=stop, on_error=errors.append)
    assert len(calls) == 4 and failures == 1 and len(errors) == 1
    assert all(b - a >= 0.04 for a, b in itertools.pairwise(calls))
    with pytest.raises(ValueError, match="every_s"):
        run_periodic(once, every_s=0, stop=stop)


# --------------------------------------------------------------------------- command


def _env(setup: Setup, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    return env | {
        "RENKEI_API_DATABASE_URL": setup.registry,
        "RENKEI_INFLUX_URL": setup.influx.url,
        "RENKEI_INFLUX_DATABASE": setup.database,
        **extra,
    }


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "renkei.cli", "cloud", "capacity-publish", *args]


def test_command_one_shot_writes_todays_horizon(setup: Setup) -> None:
    before = datetime.now(TOKYO).date()
    done = subprocess.run(
        _command("--horizon-days", "3"),
        env=_env(setup),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "capacity: 12 point(s) of 4 machine(s) of 2 firm(s) written (3 days)" in done.stderr
    points = setup.points()
    assert len(points) == 12
    # Today at each site is the real today (the command runs on the system clock): the
    # date when it started, or the next one if Tokyo's midnight passed meanwhile.
    after = datetime.now(TOKYO).date()
    firsts = {m: min(t for mm, t in points if mm == m) for m in TAGS}
    assert firsts["acme-m1"] in {_ms(before, TOKYO), _ms(after, TOKYO)}


def test_command_now_fixes_the_horizon_start_at_each_site(setup: Setup) -> None:
    """``--now``: Sunday 23:58:30 in Tokyo is 15:58:30 in Berlin, the same Sunday."""
    done = subprocess.run(
        _command("--horizon-days", "2", "--now", "2026-12-13T23:58:30+09:00"),
        env=_env(setup),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sunday = date(2026, 12, 13)
    expected = {
        (m, _ms(sunday + timedelta(days=k), BERLIN if m == "beta-b1" else TOKYO))
        for m in TAGS
        for k in range(2)
    }
    points = setup.points()
    assert set(points) == expected
    # Sunday has no shift at either site; Monday has Acme's default 16 h and Beta's 8 h.
    monday_h = {m: 8.0 if m == "beta-b1" else 16.0 for m in TAGS}
    assert {key: p["available_h"] for key, p in points.items()} == {
        (m, t): 0.0 if t == _ms(sunday, BERLIN if m == "beta-b1" else TOKYO) else monday_h[m]
        for m, t in expected
    }


def test_command_periodic_runs_until_sigterm(setup: Setup, tmp_path: Path) -> None:
    log = tmp_path / "capacity.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            _command("--horizon-days", "2", "--every", "1"),
            env=_env(setup),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: log.read_text().count("point(s) of") >= 2, 60, "two runs")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "stopping capacity-publish" in log.read_text()
    assert setup.influx.count_points(setup.database, "capacity", "spare_h") == 8


def test_command_exits_1_naming_an_unreachable_influxdb(setup: Setup) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        _command("--horizon-days", "1"),
        env=_env(setup, RENKEI_INFLUX_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"capacity-publish: InfluxDB {url}" in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--influx", "influx:8086"], "--influx / RENKEI_INFLUX_URL"),
        (["--token", "t", "--username", "u", "--password", "p"], "not both"),
        (["--every", "0"], "--every"),
        (["--horizon-days", "0"], "--horizon-days"),
        (["--now", "2026-12-13T23:58:30"], "invalid --now '2026-12-13T23:58:30'"),
        (["--now", "tomorrow"], "invalid --now 'tomorrow'"),
        (["--now", "2026-12-13T14:58:30Z", "--every", "60"], "--now runs once"),
    ],
)
def test_command_names_the_bad_setting(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(
        cloud_app,
        ["capacity-publish", "--database-url", f"sqlite:///{tmp_path / 'r.sqlite3'}", *args],
        env={"RENKEI_INFLUX_TOKEN": None, "RENKEI_INFLUX_USERNAME": None},
    )
    assert result.exit_code == 2, result.output
    assert expected in result.output
