"""End to end: ``renkei edge run`` with an ``opcua`` machine (real asyncua server subprocess)
publishing to a real Mosquitto; a witness sees the server's values and quality rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.live.opcua_fixtures import NS, opcua_server
from harness.procs import start_agent
from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from tests.e2e import write_gateway_config

SPEC = {
    "period_ms": 100,
    "vars": [
        {"name": "Temp", "start": 200, "step": 1, "unit": "°C"},
        {"name": "Broken", "status": "BadSensorFailure"},
    ],
}


def test_agent_publishes_opcua_values(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with opcua_server(tmp_path, SPEC) as srv:
        machine = {
            "id": "press-7",
            "area": "molding",
            "line": "line-1",
            "source": {
                "type": "opcua",
                "endpoint": srv.endpoint,
                "publishing_interval_ms": 100,
                "quality_interval_s": 1,
                "signals": [
                    {"name": "temp_C", "node_id": f"nsu={NS};s=Temp", "scale": 0.1},
                    {"name": "broken", "browse_path": [f"nsu={NS};Machine", f"nsu={NS};Broken"]},
                ],
            },
            "window_s": 1,
        }
        cfg = write_gateway_config(
            tmp_path / "gw.yaml",
            port=mosquitto.port,
            state_dir=tmp_path / "state",
            machines=[machine],
            mqtt={
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "keepalive_s": 5,
                "wait_for_ingest": None,
            },
        )
        witness = Witness(port=mosquitto.port, client_id="witness-opcua")
        agent = start_agent(cfg, tmp_path / "agent.log")
        try:

            def kinds(kind: str) -> list[dict[str, Any]]:
                return [p for t, p in witness.machine_messages() if t.kind.value == kind]

            def temps() -> list[float]:
                return [
                    v
                    for p in kinds("telemetry")
                    for v in p["fields"].get("temp_C", [])
                    if v is not None
                ]

            wait_for(
                lambda: len(temps()) >= 5 and bool(kinds("quality")),
                40,
                "telemetry and quality rows",
            )
            assert agent.alive(), agent.tail()
            assert all(20.0 <= v < 200 for v in temps())  # the server's 200.. scaled by 0.1
            tel = kinds("telemetry")
            assert all(v is None for p in tel for v in p["fields"].get("broken", []))
            wait_for(
                lambda: any(v for q in kinds("quality") for v in q["fields"].get("bad", []) if v),
                20,
                "a quality row counting the Bad readings",
            )
        finally:
            agent.terminate()
            witness.close()
