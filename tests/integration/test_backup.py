"""``renkei cloud backup`` / ``restore``: a whole install into an empty stack, every row and point.

The source is the registry and time series of :mod:`tests.integration.test_portability`
(two firms, partners, plans, audit log; real SQLite, real InfluxDB). The registry goes
through the backup folder; InfluxDB through its own ``influxd backup -portable`` /
``influxd restore -portable``, as ``deploy/README.md`` documents them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.services import InfluxDB
from renkei.cloud.backup import BACKUP_FORMAT, BackupError, backup, restore
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.portability.archive import ArchiveReader
from renkei.cloud.store import InfluxSettings
from tests.integration.test_portability import (
    build_registry,
    build_timeseries,
    points_of,
    registry_rows,
)

REPO = Path(__file__).resolve().parents[2]
INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


def _influxd(*args: str) -> None:
    run = subprocess.run([INFLUXD, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def _all_points(server: InfluxDB, db: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in server.query("SHOW MEASUREMENTS", db=db):
        for (m,) in s["values"]:
            [row] = server.query(f'SELECT count(*) FROM "{m}"', db=db)
            counts[m] = max(v for v in row["values"][0][1:] if isinstance(v, int))
    return counts


def test_restore_into_an_empty_stack_reproduces_every_row_and_point(
    tmp_path: Path, influxdb_own: InfluxDB, database: str
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    build_registry(source_url)
    build_timeseries(InfluxSettings(url=influxdb_own.url, database=database))
    folder = tmp_path / "backup"
    renkei = str(REPO / ".venv" / "bin" / "renkei")
    env = {"PATH": "/usr/bin:/bin", "RENKEI_API_DATABASE_URL": source_url}
    run = subprocess.run(
        [renkei, "cloud", "backup", "--out", str(folder), "--influx", influxdb_own.url]
        + ["--influx-database", database],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert f"backup written to {folder}" in run.stdout and "registry.sqlite3" in run.stdout
    # InfluxDB's own backup, beside it (deploy/README.md)
    host = f"127.0.0.1:{influxdb_own.rpc_port}"
    _influxd("backup", "-portable", "-host", host, "-database", database, str(folder / "influx"))

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == BACKUP_FORMAT
    assert set(manifest["firms"]) == {r["id"] for r in registry_rows(source_url)["firm"]}
    for firm, points in manifest["firms"].items():
        with ArchiveReader(folder / "firms" / f"{firm}.renkei") as archive:
            assert archive.manifest.firm_id == firm
            assert archive.manifest.points == points
    assert manifest["firms"]["acme"] > 0

    # an empty stack: a new registry file and a new InfluxDB
    target_url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    empty = InfluxDB(workdir=tmp_path / "influx-empty")
    empty.start()
    try:
        run = subprocess.run(
            [renkei, "cloud", "restore", str(folder), "--database-url", target_url],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("restored ")
        _influxd(
            "restore", "-portable", "-host", f"127.0.0.1:{empty.rpc_port}", str(folder / "influx")
        )
        assert registry_rows(target_url) == registry_rows(source_url)
        for firm in ("acme", "beta"):
            assert points_of(empty.url, database, firm) == points_of(
                influxdb_own.url, database, firm
            )
        assert _all_points(empty, database) == _all_points(influxdb_own, database)
    finally:
        empty.stop()


def test_restore_refuses_altered_unfinished_or_into_a_registry_with_rows(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    build_registry(source_url)
    folder = tmp_path / "b"
    report = backup(database_url=source_url, out=folder)
    assert report.rows["firm"] >= 2 and set(report.firms) and "registry.sqlite3" in report.files

    # into a registry that holds rows: refused, the table named, nothing changed
    with pytest.raises(BackupError, match=r"not empty \(table \w+ has \d+ row"):
        restore(folder=folder, database_url=source_url)

    # an altered file: refused before anything is written, the file named
    target = tmp_path / "t.sqlite3"
    dump = folder / "registry.sqlite3"
    saved = dump.read_bytes()
    dump.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
    with pytest.raises(BackupError, match="registry.sqlite3: SHA-256 differs"):
        restore(folder=folder, database_url=f"sqlite:///{target}")
    assert not target.exists()
    dump.write_bytes(saved)

    # a file named in the manifest pointing outside the folder
    manifest = json.loads((folder / "manifest.json").read_text())
    evil = dict(manifest, files={**manifest["files"], "../x": {"sha256": "0", "bytes": 1}})
    (folder / "manifest.json").write_text(json.dumps(evil))
    with pytest.raises(BackupError, match="outside the backup folder"):
        restore(folder=folder, database_url=f"sqlite:///{target}")

    # an unfinished backup (no manifest), and a non-empty --out
    (folder / "manifest.json").unlink()
    with pytest.raises(BackupError, match="unfinished"):
        restore(folder=folder, database_url=f"sqlite:///{target}")
    with pytest.raises(BackupError, match="not an empty folder"):
        backup(database_url=source_url, out=folder)


def test_round_trip_on_each_database(
    tmp_path: Path, registry_db: Callable[[str], str], registry_url: str
) -> None:
    """SQLite (backup API) and PostgreSQL (pg_dump / pg_restore): into a database without
    tables, and into one already migrated by a first API start (tables, no rows)."""
    source_url = registry_db("source")
    build_registry(source_url)
    folder = tmp_path / "b"
    report = backup(database_url=source_url, out=folder, firm_archives=False)
    assert not (folder / "firms").exists()
    dump = "registry.sqlite3" if source_url.startswith("sqlite") else "registry.pgdump"
    assert list(report.files) == [dump]
    expected = registry_rows(source_url)
    for target_url in (registry_db("target"), registry_url):
        restored = restore(folder=folder, database_url=target_url)
        assert restored.schema_from == restored.schema_to is not None
        assert registry_rows(target_url) == expected
    with pytest.raises(BackupError, match="not empty"):
        restore(folder=folder, database_url=registry_url)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "none.sqlite3"
    r = runner.invoke(
        cloud_app,
        ["backup", "--out", str(tmp_path / "b"), "--database-url", f"sqlite:///{missing}"],
    )
    assert r.exit_code == 2 and f"registry file {missing} does not exist" in r.output
    (tmp_path / "f").mkdir()
    r = runner.invoke(
        cloud_app, ["restore", str(tmp_path / "f"), "--database-url", f"sqlite:///{tmp_path / 'x'}"]
    )
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "not a Renkei backup" in r.output
