"""``renkei edge check`` and ``renkei edge probe`` against a real pymodbus server: the
commands a new user runs at a machine before starting the gateway."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.modbus_server import ModbusServer
from harness.services import REPO, free_port
from tests.e2e import write_gateway_config


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer({"port": free_port(), "units": [1]}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _config(tmp_path: Path, port: int, **source: Any) -> Path:
    src = {
        "type": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval_ms": 100,
        "link": {"reconnect_min_s": 0.2, "reconnect_max_s": 0.5, "timeout_s": 0.5},
        "signals": [
            {
                "name": "barrel_temp_C",
                "table": "holding_register",
                "address": 0,
                "type": "int16",
                "scale": 0.1,
                "unit": "degC",
            },
            {"name": "running", "table": "coil", "address": 0},
        ],
        **source,
    }
    return write_gateway_config(
        tmp_path / "gw.yaml",
        port=1883,
        state_dir=tmp_path / "state",
        machines=[{"id": "imm-9", "area": "molding", "line": "line-1", "source": src}],
    )


def _renkei(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renkei.cli", "edge", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_probe_shows_every_signal_of_a_reachable_machine(
    server: ModbusServer, tmp_path: Path
) -> None:
    server.set("h", 0, [1234])
    server.set("c", 0, [True])
    done = _renkei(
        "probe", "--config", str(_config(tmp_path, server.spec["port"])), "--seconds", "1.5"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    temp = next(line for line in lines if "barrel_temp_C" in line)
    assert "123.4" in temp and "degC" in temp
    assert any("running" in line and " 1 " in f" {line} " for line in lines)
    assert "source_up" in done.stdout


def test_probe_of_an_unreachable_machine_exits_1_and_says_why(tmp_path: Path) -> None:
    done = _renkei("probe", "--config", str(_config(tmp_path, free_port())), "--seconds", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "source_down" in done.stdout and "unreachable" in done.stdout


def test_check_names_the_key_path_of_a_bad_signal(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 502)
    good = _renkei("check", "--config", str(cfg))
    assert good.returncode == 0 and "imm-9 (modbus)" in good.stdout
    bad = _config(
        tmp_path,
        502,
        signals=[{"name": "firm", "table": "holding_register", "address": 0}],
    )
    done = _renkei("check", "--config", str(bad))
    assert done.returncode == 2
    assert "machines[0].source.signals[0].name" in done.stderr
    assert "Traceback" not in done.stderr
