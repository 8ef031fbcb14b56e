"""``renkei cloud oee-sync`` against a real InfluxDB with users, as the compose stack has them.

The API's InfluxDB user may only read (least privilege); the ingest's user writes. An
operator's entry saved through the API is then ``pending``, and the reconciliation made
with the writer's credentials applies it; a gateway row arriving late (a backlog) inside
the interval gets masked by the next run; a correction and a deletion get their rows
restored; another firm's rows of a machine with the same id are never touched; a second
run right after one changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from harness.services import InfluxDB
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.oee.reconcile import OeeReconciler
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.cloud.store.influxql import run_query
from tests.api.rig import ApiRig, imm

API = "/api/v1/firms/acme/machines/a1/operator-counts"
T0 = datetime(2026, 11, 22, 22, tzinfo=UTC)
MINUTES = 600  # 22:00 .. 08:00, one gateway row a minute, 10 good + 1 reject each
DB = "renkei"
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _row(firm: str, site: str, t: datetime) -> str:
    return (
        f"oee,area=a1,firm={firm},gw=gw-1,line=l1,machine=a1,site={site} "
        "planned_s=60.0,run_s=50.0,good=10.0,reject=1.0,quality_basis=6.0 "
        f"{_ms(t)}"
    )


def _user(url: str, name: str) -> InfluxSettings:
    return InfluxSettings(url=url, database=DB, username=name, password=SecretStr(f"{name}-pw"))


@pytest.fixture(scope="module")
def influx_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(workdir=tmp_path_factory.mktemp("influx-auth"), auth=True)
    server.start()
    try:
        anyone = InfluxSettings(url=server.url, database=DB)
        run_query(anyone, "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
        run_query(
            _user(server.url, "admin"),
            f"CREATE DATABASE {DB}; CREATE USER api WITH PASSWORD 'api-pw'; "
            f"GRANT READ ON {DB} TO api; CREATE USER ingest WITH PASSWORD 'ingest-pw'; "
            f"GRANT ALL ON {DB} TO ingest",
        )
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack(influx_auth: InfluxDB, tmp_path: Path) -> Iterator[tuple[ApiRig, OeeReconciler]]:
    admin = _user(influx_auth.url, "admin")
    run_query(admin, 'DROP MEASUREMENT "oee"')
    lines = [
        _row(firm, site, T0 + timedelta(minutes=k))
        for firm, site in (("acme", "s1"), ("other", "s9"))
        for k in range(MINUTES)
    ]
    store = InfluxStore(settings=_user(influx_auth.url, "ingest"))
    store.write_lines("\n".join(lines).encode())
    store.close()
    rig = ApiRig(
        tmp_path,
        influx_url=influx_auth.url,
        influx_database=DB,
        influx_username="api",
        influx_password=SecretStr("api-pw"),
    )
    rig.seed_firm("acme", machines=[imm("a1")])
    rig.seed_firm("other", machines=[imm("o1")])  # its InfluxDB rows say machine=a1
    sync = OeeReconciler(
        engine=rig.engine, influx=_user(influx_auth.url, "ingest"), clock=lambda: NOW
    )
    try:
        yield rig, sync
    finally:
        rig.close()


def _sums(rig_url: str, firm: str) -> tuple[float, float, int, int]:
    """(sum good, sum reject, masked rows, operator points) of ``firm``."""
    api = _user(rig_url, "api")
    f = f"\"firm\" = '{firm}'"
    (a, b, c) = run_query(
        api,
        f'SELECT sum("good"), sum("reject") FROM "oee" WHERE {f}; '
        f'SELECT count("good") FROM "oee" WHERE {f} AND "operator_masked" = 1; '
        f'SELECT count("good") FROM "oee" WHERE {f} AND "src" = \'operator\'',
    )

    def one(res: dict[str, Any], i: int = 1) -> Any:
        return res["series"][0]["values"][0][i] if res.get("series") else 0

    return one(a), one(a, 2), one(b), one(c)


def _dump(url: str) -> list[Any]:
    (res,) = run_query(_user(url, "api"), 'SELECT * FROM "oee" GROUP BY *')
    return sorted(str(s) for s in res.get("series") or [])


def test_the_writer_applies_what_the_read_only_api_could_not(
    influx_auth: InfluxDB, stack: tuple[ApiRig, OeeReconciler]
) -> None:
    rig, sync = stack
    url = influx_auth.url
    untouched = _sums(url, "other")
    assert untouched == (10.0 * MINUTES, 1.0 * MINUTES, 0, 0)
    c = rig.client("acme")
    body = {"start": _hours(1).isoformat(), "end": _hours(9).isoformat(), "good": 1180}
    r = c.post(API, json={**body, "reject": 20})
    assert r.status_code == 201, r.text
    assert (r.json()["oee"], r.json()["oee_detail"]) == ("pending", ""), r.json()
    entry = r.json()["entry"]
    assert _sums(url, "acme") == (6000.0, 600.0, 0, 0)  # nothing written by the API

    report = sync.run()
    assert report.ok and report.entries == 1 and report.rows_masked == 480
    # 120 machine minutes outside [23:00, 07:00) + the operator's parts inside it
    good, reject, masked, points = _sums(url, "acme")
    assert (good, reject, masked, points) == pytest.approx((2380, 140, 480, 480))
    assert _sums(url, "other") == untouched

    # idempotent: a second run changes nothing
    before = _dump(url)
    again = sync.run()
    assert (again.rows_masked, again.rows_restored, again.gaps_cleared, again.rebuilt) == (
        0,
        0,
        0,
        0,
    )
    assert _dump(url) == before

    # a gateway's backlog arrives late inside the interval: masked by the next run
    store = InfluxStore(settings=_user(url, "ingest"))
    store.write_lines(_row("acme", "s1", _hours(5) + timedelta(seconds=30)).encode())
    store.close()
    assert _sums(url, "acme")[0] == pytest.approx(2390)
    assert sync.run().rows_masked == 1
    assert _sums(url, "acme")[:3] == pytest.approx((2380, 140, 481))

    # a correction (00:00-06:00, 900 good, 0 reject): 23:00-00:00 and 06:00-07:00 come back
    r = c.put(
        f"{API}/{entry['id']}",
        json={
            "start": _hours(2).isoformat(),
            "end": _hours(8).isoformat(),
            "good": 900,
            "reject": 0,
        },
    )
    assert r.status_code == 200 and r.json()["oee"] == "pending", r.text
    report = sync.run()
    assert report.rows_restored == 120 and report.gaps_cleared == 2, report
    good, reject, masked, points = _sums(url, "acme")
    assert (good, reject) == pytest.approx((2400 + 900, 240))
    assert (masked, points) == (361, 360)

    # a deletion the API could not revert: the next run restores every row exactly
    assert c.delete(f"{API}/{entry['id']}").status_code == 204
    report = sync.run()
    assert report.rows_restored == 361 and report.gaps_cleared == 1, report
    assert _sums(url, "acme") == (6010.0, 601.0, 0, 0)
    assert _sums(url, "other") == untouched
    after = sync.run()
    assert (after.rows_restored, after.gaps_cleared) == (0, 0)


def test_an_entry_outside_the_window_changed_since_the_last_run_is_applied(
    influx_auth: InfluxDB, stack: tuple[ApiRig, OeeReconciler]
) -> None:
    rig, _ = stack
    late = OeeReconciler(
        engine=rig.engine,
        influx=_user(influx_auth.url, "ingest"),
        lookback_s=3600,  # the window ends up after the entry: only "changed since" finds it
        clock=lambda: NOW + timedelta(days=10),
    )
    late.run()  # the first run: "since" = the window's start
    rig.now = NOW + timedelta(days=10)
    body = {"start": _hours(1).isoformat(), "end": _hours(2).isoformat(), "good": 60}
    r = rig.client("acme").post(API, json={**body, "reject": 0})
    assert r.json()["oee"] == "pending", r.text
    report = late.run()
    assert report.entries == 1 and report.rows_masked == 60, report
    assert _sums(influx_auth.url, "acme")[2:] == (60, 60)
    assert _sums(influx_auth.url, "other")[2:] == (0, 0)


def test_the_command_runs_once_and_says_what_failed(
    influx_auth: InfluxDB, stack: tuple[ApiRig, OeeReconciler]
) -> None:
    rig, _ = stack
    registry = rig.settings.database_url
    clean = {"RENKEI_INFLUX_TOKEN": None, "RENKEI_OEE_SYNC_EVERY_S": None}
    ok = CliRunner().invoke(
        cloud_app,
        ["oee-sync", "--database-url", registry, "--influx", influx_auth.url, "--database", DB],
        env={**clean, "RENKEI_INFLUX_USERNAME": "ingest", "RENKEI_INFLUX_PASSWORD": "ingest-pw"},
    )
    assert ok.exit_code == 0, ok.output
    # the API's read-only user: InfluxDB refuses it for both firms -> exit 1, one line
    refused = CliRunner().invoke(
        cloud_app,
        ["oee-sync", "--database-url", registry, "--influx", influx_auth.url, "--database", DB],
        env={**clean, "RENKEI_INFLUX_USERNAME": "nobody", "RENKEI_INFLUX_PASSWORD": "x"},
    )
    assert refused.exit_code == 1, refused.output
    assert "InfluxDB failed for firms ['acme', 'other']" in refused.output
    bad = CliRunner().invoke(
        cloud_app, ["oee-sync", "--database-url", registry, "--lookback-h", "0"], env=clean
    )
    assert bad.exit_code == 2 and "--lookback-h" in bad.output, bad.output


def test_late_first_rows_of_a_machine_leave_one_operator_series(
    influx_auth: InfluxDB, stack: tuple[ApiRig, OeeReconciler]
) -> None:
    """Applied before the machine had any row, the operator points carry the registry's
    tags; once the backlog arrives the entry's points move to the rows' tags (one series,
    the operator's parts counted once)."""
    rig, sync = stack
    rig.seed_firm("acme", machines=[imm("a2")])
    r = rig.client("acme").post(
        "/api/v1/firms/acme/machines/a2/operator-counts",
        json={
            "start": _hours(1).isoformat(),
            "end": _hours(2).isoformat(),
            "good": 60,
            "reject": 0,
        },
    )
    assert r.json()["oee"] == "pending", r.text
    sync.run()
    store = InfluxStore(settings=_user(influx_auth.url, "ingest"))
    rows = [_row("acme", "s1", _hours(1) + timedelta(minutes=k)) for k in range(60)]
    store.write_lines("\n".join(rows).replace("machine=a1", "machine=a2").encode())
    store.close()
    report = sync.run()
    assert report.rows_masked == 60 and report.rebuilt == 1, report
    (res,) = run_query(
        _user(influx_auth.url, "api"),
        'SELECT sum("good") FROM "oee" WHERE "machine" = \'a2\' AND "src" = \'operator\' '
        "GROUP BY *",
    )
    (series,) = res["series"]
    assert series["tags"]["gw"] == "gw-1" and series["values"][0][1] == pytest.approx(60)
    assert sync.run().rebuilt == 0
