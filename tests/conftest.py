"""Shared fixtures: real Mosquitto and InfluxDB on free loopback ports, temp dirs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.services import InfluxDB, Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto broker for one test (starts in milliseconds)."""
    broker = Mosquitto(workdir=tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(scope="session")
def influxdb_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One InfluxDB for the session; tests isolate themselves by database name."""
    server = InfluxDB(workdir=tmp_path_factory.mktemp("influxdb"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxdb(influxdb_shared: InfluxDB) -> InfluxDB:
    """The shared InfluxDB (do not stop it; use ``influxdb_own`` for outage tests)."""
    return influxdb_shared


@pytest.fixture
def influxdb_own(tmp_path: Path) -> Iterator[InfluxDB]:
    """An InfluxDB of this test's own, which the test may stop, kill and restart."""
    server = InfluxDB(workdir=tmp_path / "influxdb")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def database() -> str:
    """A unique InfluxDB database name for one test."""
    return f"t_{uuid.uuid4().hex[:12]}"


def pytest_report_header() -> list[str]:
    return [f"RENKEI_DATA_DIR={os.environ.get('RENKEI_DATA_DIR', '<auto>')}"]
