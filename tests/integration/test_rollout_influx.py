"""The rollout controller as producer of ``model_deploy``: real Mosquitto, real InfluxDB,
a SQLite registry. Gateway reports are published to the broker as a gateway publishes
them (retained, QoS 1); ``test_model_rollout.py`` has the same with real gateways.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from harness.services import InfluxDB, Mosquitto
from harness.wait import wait_for
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.registry import FleetModel, make_engine, session_scope
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.rollout import RolloutController, RolloutSettings
from renkei.cloud.store.influx import InfluxSettings
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import DeployResult, ModelReport, RunningModel, encode, rollout_topic

FIRM, SITE, GW = "acme", "acme-s1", "gw-a"
SHA = "ab" * 32
T0 = 1_790_000_000_000  # 2026-09-21, UTC epoch ms


def report(**results: DeployResult) -> ModelReport:
    """A report of gateway ``gw-a`` running ``pump-t2`` 1.1.0 and ``cell-t2`` 1.0.0."""
    return ModelReport(
        v=1,
        gw=GW,
        sent_ms=T0 + 60_000,
        models={
            "pump-t2": RunningModel(version="1.1.0", sha256=SHA, machines=["pump-1"]),
            "cell-t2": RunningModel(version="1.0.0", sha256=SHA, machines=["imm-1"]),
        },
        results=results,
    )


SUCCEEDED = DeployResult(
    deployment=7,
    version="1.1.0",
    status="succeeded",
    stage="done",
    finished_ms=T0,
    checks={"windows": 12.0},
)
ROLLED_BACK = DeployResult(
    deployment=8,
    version="1.2.0",
    status="rolled_back",
    stage="probation",
    reason='probation: 3 of 3 windows non-finite, "score" NaN',
    finished_ms=T0 + 5_000,
)


def publish(broker: Mosquitto, msg: ModelReport, *, gw: str = GW) -> None:
    """Publish a report as the gateway does: retained, QoS 1."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fake-{gw}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        topic = rollout_topic(firm=FIRM, site=SITE, gateway=gw, kind="report")
        client.publish(topic, encode(msg), qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def points(influx: InfluxDB, database: str) -> list[dict[str, Any]]:
    """Every ``model_deploy`` point as a dict (time, tags, fields)."""
    series = influx.query('SELECT * FROM "model_deploy" ORDER BY time', db=database)
    if not series:
        return []
    cols = series[0]["columns"]
    return [dict(zip(cols, row)) for row in series[0]["values"]]


@pytest.fixture
def registry(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    return url


def controller(
    registry: str, broker: Mosquitto, influx: InfluxDB | None, database: str, **kw: Any
) -> RolloutController:
    settings = RolloutSettings(
        database_url=registry,
        broker=BrokerSettings.from_url(broker.url, client_id="rollout-test"),
        tick_s=0.1,
        influx=None if influx is None else InfluxSettings(url=influx.url, database=database),
        **kw,
    )
    c = RolloutController(settings)
    c.start()
    return c


def last_status(registry: str, model: str) -> tuple[Any, ...] | None:
    engine = make_engine(registry)
    try:
        with session_scope(engine) as s:
            fm = s.get(FleetModel, (FIRM, GW, model))
            if fm is None or fm.last_status is None:
                return None
            return (fm.last_deployment_id, fm.last_status, fm.last_stage, fm.last_reason)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- tests


def test_report_results_become_model_deploy_points_idempotently(
    registry: str, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    influxdb.create_database(database)
    c = controller(registry, mosquitto, influxdb, database)
    try:
        publish(mosquitto, report(**{"pump-t2": SUCCEEDED, "cell-t2": ROLLED_BACK}))
        got = wait_for(
            lambda: len(points(influxdb, database)) == 2 and points(influxdb, database),
            20,
            "two model_deploy points",
        )
        # the registry has the report too
        assert last_status(registry, "pump-t2") == (7, "succeeded", "done", "")
        assert last_status(registry, "cell-t2") == (
            8,
            "rolled_back",
            "probation",
            ROLLED_BACK.reason,
        )
        # the same report again (a gateway republishing it) writes nothing new
        publish(mosquitto, report(**{"pump-t2": SUCCEEDED, "cell-t2": ROLLED_BACK}))
        wait_for(lambda: c.stats().reports >= 2, 10, "second report")
        assert c.stats().deploy_points_written == 2
    finally:
        c.stop()
    by_model = {p["model"]: p for p in got}
    assert by_model["pump-t2"] == {
        "time": T0,
        "firm": FIRM,
        "site": SITE,
        "gw": GW,
        "model": "pump-t2",
        "version": "1.1.0",
        "result": "succeeded",
        "stage": "done",
        "deployment": 7,
        "reason": "",
    }
    back = by_model["cell-t2"]
    assert (back["time"], back["version"], back["result"], back["stage"]) == (
        T0 + 5_000,
        "1.2.0",
        "rolled_back",
        "probation",
    )
    assert (back["deployment"], back["reason"]) == (8, ROLLED_BACK.reason)

    # A restarted controller gets the retained report again and rewrites the same points.
    c2 = controller(registry, mosquitto, influxdb, database)
    try:
        wait_for(lambda: c2.stats().deploy_points_written == 2, 20, "rewrite after restart")
    finally:
        c2.stop()
    assert points(influxdb, database) == got
    # A later attempt on the same gateway and model is a new point (same series, new time).
    newer = SUCCEEDED.model_copy(update={"deployment": 9, "finished_ms": T0 + 90_000})
    c3 = controller(registry, mosquitto, influxdb, database)
    try:
        publish(mosquitto, report(**{"pump-t2": newer, "cell-t2": ROLLED_BACK}))
        wait_for(lambda: len(points(influxdb, database)) == 3, 20, "third point")
    finally:
        c3.stop()
    assert [p["deployment"] for p in points(influxdb, database)] == [7, 8, 9]


def test_influxdb_outage_keeps_the_registry_and_writes_the_points_later(
    registry: str,
    mosquitto: Mosquitto,
    influxdb_own: InfluxDB,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    influxdb_own.create_database(database)
    influxdb_own.stop()
    caplog.set_level(logging.INFO, logger="renkei.cloud.rollout")
    c = controller(registry, mosquitto, influxdb_own, database, influx_retry_max_s=1.0)
    try:
        publish(mosquitto, report(**{"pump-t2": SUCCEEDED}))
        # the report's effect on the registry does not wait for InfluxDB
        wait_for(lambda: last_status(registry, "pump-t2"), 10, "registry updated")
        wait_for(lambda: c.stats().deploy_write_failures >= 2, 20, "retried writes")
        stats = c.stats()
        assert stats.deploy_points_pending == 1 and stats.deploy_points_written == 0
        failed = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert failed, caplog.text
        message = failed[0].getMessage()
        assert "model_deploy" in message and influxdb_own.url in message, message
        assert "registry is up to date" in message and "retried in" in message
        influxdb_own.start()
        wait_for(lambda: c.stats().deploy_points_written == 1, 20, "write after the outage")
        assert c.stats().deploy_points_pending == 0
    finally:
        c.stop()
    (p,) = points(influxdb_own, database)
    assert (p["time"], p["model"], p["result"], p["deployment"]) == (
        T0,
        "pump-t2",
        "succeeded",
        7,
    )
    assert any("writable again" in r.getMessage() for r in caplog.records)


def test_without_influxdb_the_controller_only_drives_deployments(
    registry: str, mosquitto: Mosquitto
) -> None:
    c = controller(registry, mosquitto, None, "unused")
    try:
        publish(mosquitto, report(**{"pump-t2": SUCCEEDED}))
        wait_for(lambda: last_status(registry, "pump-t2"), 10, "registry updated")
        stats = c.stats()
        assert stats.deploy_points_written == stats.deploy_points_pending == 0
        assert stats.last_error is None
    finally:
        c.stop()


def test_rollout_command_reads_the_ingest_style_influx_settings(
    tmp_path: Path, registry: str, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """``renkei cloud rollout`` configured by environment, as docker-compose.yml does."""
    influxdb.create_database(database)
    env = {
        **os.environ,
        "RENKEI_API_DATABASE_URL": registry,
        "RENKEI_BROKER": mosquitto.url,
        "RENKEI_ROLLOUT_CLIENT_ID": "rollout-cli",
        "RENKEI_INFLUX_URL": influxdb.url,
        "RENKEI_INFLUX_DATABASE": database,
    }
    log = tmp_path / "rollout.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "renkei.cli", "cloud", "rollout"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        publish(mosquitto, report(**{"pump-t2": SUCCEEDED}))
        wait_for(lambda: points(influxdb, database), 30, "point from the rollout command")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    (p,) = points(influxdb, database)
    assert (p["firm"], p["site"], p["gw"], p["model"]) == (FIRM, SITE, GW, "pump-t2")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--influx", "ftp://influx:8086"], {}, "--influx / RENKEI_INFLUX_URL"),
        (
            ["--influx", "http://influx:8086", "--database", ""],
            {},
            "--database / RENKEI_INFLUX_DATABASE",
        ),
        (
            ["--influx", "http://influx:8086", "--username", "u"],
            {},
            "username and password go together",
        ),
        ([], {"RENKEI_INFLUX_USERNAME": "u"}, "RENKEI_INFLUX_URL is not"),
    ],
)
def test_rollout_command_names_the_bad_influx_setting(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = CliRunner().invoke(
        cloud_app,
        ["rollout", "--database-url", f"sqlite:///{tmp_path / 'r.sqlite3'}", *args],
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "r.sqlite3").exists(), "nothing is done with a bad configuration"


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read RENKEI_* variables: the tests' own environment must not leak in."""
    for name in list(os.environ):
        if name.startswith(("RENKEI_INFLUX_", "RENKEI_MQTT_")):
            monkeypatch.delenv(name)
