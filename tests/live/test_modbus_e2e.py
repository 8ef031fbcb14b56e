"""End to end: ``renkei edge run`` reads a pymodbus server and publishes ``telemetry`` rows
with the register values (scaled) to a real Mosquitto; a server kill is an event."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.modbus_server import ModbusServer
from harness.procs import start_agent
from harness.services import Mosquitto, free_port
from harness.wait import wait_for
from harness.witness import Witness
from tests.e2e import write_gateway_config


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer({"port": free_port(), "units": [1]}).start()
    try:
        yield srv
    finally:
        srv.stop()


def _values(w: Witness, kind: str, field: str) -> list[Any]:
    out: list[Any] = []
    for topic, p in w.machine_messages():
        if topic.kind.value == kind and field in p.get("fields", {}):
            out += [v for v in p["fields"][field] if v is not None]
    return out


def _events(w: Witness) -> list[str]:
    return [
        str(e["code"])
        for topic, p in w.machine_messages()
        if topic.kind.value == "event"
        for e in p["events"]
    ]


def test_edge_run_publishes_modbus_registers(
    server: ModbusServer, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    hi, lo = struct.unpack(">HH", struct.pack(">f", 212.5))
    server.set("h", 0, [1234, hi, lo])
    server.set("c", 0, [True])
    source = {
        "type": "modbus",
        "host": "127.0.0.1",
        "port": server.spec["port"],
        "poll_interval_ms": 100,
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "timeout_s": 0.5},
        "quality_interval_s": 1,
        "signals": [
            {
                "name": "barrel_temp_C",
                "table": "holding_register",
                "address": 0,
                "type": "int16",
                "scale": 0.1,
                "unit": "degC",
            },
            {"name": "pressure_bar", "table": "holding_register", "address": 1, "type": "float32"},
            {"name": "running", "table": "coil", "address": 0},
        ],
    }
    machine = {"id": "imm-mb", "area": "molding", "line": "line-1", "source": source}
    config = write_gateway_config(
        tmp_path / "gw.yaml",
        port=mosquitto.port,
        state_dir=tmp_path / "state",
        machines=[machine],
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "wait_for_ingest": None},
    )
    witness = Witness(port=mosquitto.port, client_id="witness-modbus")
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_for(lambda: bool(_values(witness, "telemetry", "pressure_bar")), 30, "telemetry rows")
        assert _values(witness, "telemetry", "barrel_temp_C")[0] == pytest.approx(123.4)
        assert _values(witness, "telemetry", "pressure_bar")[0] == pytest.approx(212.5)
        assert _values(witness, "telemetry", "running")[0] == 1
        wait_for(lambda: bool(_values(witness, "quality", "readings")), 30, "quality rows")
        assert "source_up" in _events(witness)
        server.kill9()
        wait_for(lambda: "source_down" in _events(witness), 30, "source_down event")
        assert agent.alive(), agent.tail()
    finally:
        agent.terminate()
        witness.close()
