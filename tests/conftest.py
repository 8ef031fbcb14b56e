"""Shared fixtures: real Mosquitto, InfluxDB and PostgreSQL on free loopback ports, temp dirs.

Registry databases: a test asking for ``registry_url`` runs twice, on SQLite (a file in
its temp dir) and on PostgreSQL (a fresh database of the session's server, copied from a
template at the newest Alembic revision, dropped after the test). ``module_registry_url``
does the same for a module's shared rig, ``registry_db(name)`` makes several empty
databases of the test's backend, ``empty_registry_url`` one without any schema
(migration tests). ``-k sqlite`` / ``-k postgresql`` runs one side only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.services import InfluxDB, Mosquitto, PostgreSQL


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


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    """One PostgreSQL for the session; tests isolate themselves by database."""
    server = PostgreSQL(workdir=tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        yield server
    finally:
        server.remove()


#: The session's template database at the newest Alembic revision (see ``registry_url``).
PG_TEMPLATE = "renkei_head"


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgreSQL) -> str:
    """Name of a database migrated to head once per session (copied per test)."""
    from renkei.cloud.registry.migrate import upgrade

    postgres.create_database(PG_TEMPLATE)
    upgrade(postgres.url(PG_TEMPLATE))
    return PG_TEMPLATE


def _pg_database(request: pytest.FixtureRequest, template: str | None) -> Iterator[str]:
    server: PostgreSQL = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"
    server.create_database(name, template=template)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_backend(request: pytest.FixtureRequest) -> str:
    """Which database the registry of this test runs on (each test runs on both)."""
    return str(request.param)


@pytest.fixture
def registry_url(
    registry_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh registry database for one test: SQLite file (schema made on first
    ``upgrade``/``create_app``), or a PostgreSQL database already at head."""
    if registry_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    template = request.getfixturevalue("postgres_template")
    yield from _pg_database(request, template)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_registry_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``registry_url``, for a module's shared rig (its tests run once per database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.sqlite3'}"
        return
    template = request.getfixturevalue("postgres_template")
    yield from _pg_database(request, template)


@pytest.fixture
def registry_db(
    registry_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """Fresh empty registry databases of this test's backend by name (the same name gives
    the same database): ``registry_db("target")`` is ``sqlite:///<tmp>/target.sqlite3`` or
    a new PostgreSQL database (dropped after the test)."""
    made: dict[str, str] = {}
    server: PostgreSQL | None = None

    def make(name: str) -> str:
        nonlocal server
        if name not in made:
            if registry_backend == "sqlite":
                made[name] = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
            else:
                server = server or request.getfixturevalue("postgres")
                db = f"t_{uuid.uuid4().hex[:12]}"
                server.create_database(db)
                made[name] = server.url(db)
        return made[name]

    try:
        yield make
    finally:
        if server is not None:
            for url in made.values():
                server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def empty_registry_url(
    registry_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh registry database without any table (SQLite file or PostgreSQL)."""
    if registry_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    yield from _pg_database(request, None)


def pytest_report_header() -> list[str]:
    return [f"RENKEI_DATA_DIR={os.environ.get('RENKEI_DATA_DIR', '<auto>')}"]
