"""``renkei dashboards verify`` against a real InfluxDB (issue 15): an empty database is
"ok, no data yet" (exit 0), a query InfluxDB refuses is "BROKEN QUERY" naming the panel
(exit 1), a server that is down or a missing database is one line naming the URL, with no
traceback (exit 2)."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.services import InfluxDB
from renkei.dashboards import verify as verify_module
from renkei.dashboards.cli import app
from renkei.dashboards.panels import Board


def _create(influx: InfluxDB, database: str) -> None:
    body = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{influx.url}/query", data=body)):
        pass


def _verify(influx_url: str, database: str) -> Any:
    return CliRunner().invoke(
        app, ["verify", "--influx-url", influx_url, "--influx-database", database]
    )


def test_empty_database_is_ok_with_no_data_yet(influxdb: InfluxDB, database: str) -> None:
    _create(influxdb, database)
    result = _verify(influxdb.url, database)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    panel_lines = [line for line in lines if line.startswith("renkei-")]
    assert panel_lines and all(line.endswith(": ok, no data yet") for line in panel_lines)
    assert any(line.startswith("alert ") for line in lines)
    assert "BROKEN" not in result.stdout
    assert lines[-1].endswith(" ok with no data yet, 0 broken"), lines[-1]


def test_broken_query_fails_naming_the_panel(
    influxdb: InfluxDB, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(influxdb, database)
    real = verify_module._models
    broken: list[str] = []  # the broken panel's line prefix

    def models() -> Iterator[tuple[Board, dict[str, Any]]]:
        for i, (board, model) in enumerate(real()):
            if i == 0:
                panel = next(p for p in model["panels"] if p.get("targets"))
                panel["targets"][0]["query"] = "SELEC nothing FROM"  # InfluxDB: parse error
                ref = panel["targets"][0]["refId"]
                broken.append(f"{board.uid} #{panel['id']} {ref} {panel['title']}")
            yield board, model

    monkeypatch.setattr(verify_module, "_models", models)
    result = _verify(influxdb.url, database)
    assert result.exit_code == 1, result.output
    bad = [line for line in result.stdout.splitlines() if "BROKEN QUERY" in line]
    assert len(bad) == 1 and bad[0].startswith(f"{broken[0]}: BROKEN QUERY: "), bad
    assert "error parsing query" in bad[0], bad[0]
    assert result.stdout.splitlines()[-1].endswith(", 1 broken")


def test_server_down_is_one_line_without_traceback(influxdb_own: InfluxDB) -> None:
    url = influxdb_own.url
    influxdb_own.stop()
    result = _verify(url, "renkei")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: InfluxDB at {url}: unreachable"), result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), nothing else


def test_missing_database_is_one_line(influxdb: InfluxDB, database: str) -> None:
    result = _verify(influxdb.url, database)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: InfluxDB at {influxdb.url}: no database {database!r} (the ingest creates it "
        f"on its first start; or check --influx-database) [database not found: {database}]\n"
    )


def test_bad_url_is_one_line() -> None:
    result = _verify("ftp://nowhere", "renkei")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "RENKEI_INFLUX_URL" in result.stderr, result.stderr
